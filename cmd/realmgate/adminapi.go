package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
)

// newAdminCompiler is the admin API's compiler over the file (internal/assemble),
// with the file's outbound client (S70); assemble.WithBoot starts it from
// what the broker built of the file's tenants instead of compiling them again.
func newAdminCompiler(file *config.Config, logger *slog.Logger, copts ...assemble.CompilerOption) *assemble.Compiler {
	return assemble.NewCompiler(file, upstreamClient(file), logger, copts...)
}

// newAdminService builds the admin API over a running broker; nil when the
// configuration turns it off (no tokens). copts go to its compiler.
func newAdminService(cfg *config.Config, store broker.Store, srv *broker.Server, logger, audit *slog.Logger, copts ...assemble.CompilerOption) (*admin.Service, error) {
	if len(cfg.AdminAPI.Tokens) == 0 {
		return nil, nil
	}
	opts := admin.Options{Store: store, Compiler: newAdminCompiler(cfg, logger, copts...), Issuer: cfg.Issuer, Onboarder: idpOnboarder{},
		DNS: admin.NewDNSResolver(cfg.AdminAPI.DNSResolver), Logger: logger, Audit: audit,
		TrustedProxies:     srv.TrustedProxies(),           // S73: the broker's client-IP rule
		Users:              srv.Users(),                    // the tenant user directory (nil without one)
		Access:             srv,                            // time-bound role grants (broker/access.go)
		Risk:               srv,                            // compromised and risky users (conditional access)
		GlobalConditional:  srv.GlobalConditional(),        // dry runs decide with the global policies too
		Consents:           srv,                            // consents to third-party clients (broker/consent.go)
		SCIMTokens:         scimTokens(cfg, store),         // scim.go
		LogosInUse:         srv.LogosInUse,                 // logos fetched from a logo_url are kept too (broker/brand.go)
		RegistrationTokens: registrationTokens(cfg, store)} // registration.go
	if cfg.Keys.Secret != "" {
		opts.Secret = []byte(cfg.Keys.Secret)                // the admin package derives its own key (admin/secrets.go)
		opts.PreviousSecrets = assemble.PreviousSecrets(cfg) // as the broker (assemble.BrokerConfig)
	} else {
		logger.Warn("admin: keys.secret is not set: client secrets of API tenants and clients are stored unencrypted; set keys.secret to encrypt them")
	}
	opts.FileTenants, opts.FileClients = cfg.Tenants, cfg.Clients
	for _, t := range cfg.AdminAPI.Tokens {
		opts.Tokens = append(opts.Tokens, admin.Token{Name: t.Name, Token: t.Token, Tenant: t.Tenant})
	}
	opts.Apply = func(c *admin.Compiled) error {
		if ch := c.Changes; ch != nil && ch.Since != nil {
			// Only the tenants that changed are indexed again.
			return srv.ReconfigureTenants(ch.Since.Directory.Resolver, c.Directory, ch.Tenants, ch.Clients)
		}
		return srv.Reconfigure(c.Directory) // tenants, IdPs, rules and clients (file and API), live
	}
	return admin.New(opts)
}

// adminAPI is a running admin API.
type adminAPI struct {
	// Service is the API and its poller.
	Service *admin.Service
	// Addr is the listener's address.
	Addr string
	// Done is closed when the listener has shut down.
	Done <-chan struct{}
}

// startAdminAPI starts the admin API on its own listener when configured
// (nil when it is off): it loads the stored tenant state and applies it to
// srv, keeps polling for changes, and serves until ctx ends. copts go to
// its compiler (assemble.WithBoot).
func startAdminAPI(ctx context.Context, cfg *config.Config, store broker.Store, srv *broker.Server, logger, audit *slog.Logger, copts ...assemble.CompilerOption) (*adminAPI, error) {
	svc, err := newAdminService(cfg, store, srv, logger, audit, copts...)
	if err != nil || svc == nil {
		return nil, err
	}
	// Not ready (/readyz 503) until the stored tenants are loaded: an
	// instance taking traffic before would route no API tenant.
	srv.AddReadinessCheck(func() error {
		if !svc.Ready() {
			return errors.New("admin API tenants not loaded yet")
		}
		return nil
	})
	if err := svc.Load(ctx); err != nil {
		logger.Error("admin: tenant state not loaded yet; retrying in the background", "err", err)
	}
	ln, err := net.Listen("tcp", cfg.AdminAPI.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin api: listen %s: %w", cfg.AdminAPI.Listen, err)
	}
	tln, err := withTLS(ln, cfg.AdminAPI.TLS, logger) // tls.go
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin api: %w", err)
	}
	ln = tln
	logger.Info("admin API serving", "listen", ln.Addr().String(), "version", svc.Version(), "tls", cfg.AdminAPI.TLS != nil,
		"client_certificates", cfg.AdminAPI.TLS != nil && cfg.AdminAPI.TLS.ClientCAFile != "")
	done := make(chan struct{})
	go svc.Run(ctx)
	go func() {
		defer close(done)
		if err := serveHTTP(ctx, ln, tracing.Handler(svc.Handler(), "realmgate-admin"), logger); err != nil {
			logger.Error("admin api", "err", err)
		}
	}()
	return &adminAPI{Service: svc, Addr: ln.Addr().String(), Done: done}, nil
}
