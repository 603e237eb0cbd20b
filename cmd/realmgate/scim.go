package main

import (
	"log/slog"
	"net/http"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/scim"
)

// The broker tells the tenant's applications of a password a provisioning
// client set (CAEP credential-change).
var _ scim.CredentialObserver = (*broker.Server)(nil)

// scimTokens is the SCIM token store on the shared store, keyed by the
// server secret like every other secret (the admin API creates tokens, the
// SCIM endpoint verifies them: both build it the same way).
func scimTokens(cfg *config.Config, store broker.Store) *scim.Tokens {
	return scim.NewTokens(store, []byte(cfg.Keys.Secret), assemble.PreviousSecrets(cfg)...)
}

// mainHandler is the main listener's handler: the broker, and the SCIM
// endpoint of every tenant under <issuer>/scim/v2/ (docs/scim.md) when the
// store keeps a user directory.
func mainHandler(cfg *config.Config, store broker.Store, srv *broker.Server, logger, audit *slog.Logger) http.Handler {
	// The broker's own directory: one users.Directory per process, whose
	// revoker (the broker) ends the sessions of a user SCIM deprovisions.
	dir := srv.Users()
	if dir == nil {
		logger.Warn("scim: the store keeps no user directory; SCIM provisioning is off")
		return srv.Handler()
	}
	h, err := scim.New(scim.Options{Directory: scim.NewUsersDirectory(dir), Tokens: scimTokens(cfg, store), Store: store,
		Credentials:  srv, // CAEP credential-change to the tenant's receivers (broker/caep.go)
		TenantExists: srv.HasTenant, Issuer: cfg.Issuer, ClientIP: broker.IPExtractor(srv.TrustedProxies()),
		Limits: scimLimits(cfg.SCIM), Logger: logger, Audit: audit})
	if err != nil {
		logger.Error("scim: endpoint not started", "err", err)
		return srv.Handler()
	}
	mux := http.NewServeMux()
	mux.Handle(h.Prefix(), h)
	mux.Handle("/", srv.Handler())
	return mux
}

// scimLimits are the SCIM endpoint's throttles of the file's scim section
// (config.SCIM; "off" is a limit of -1, which scim treats as none).
func scimLimits(c config.SCIM) *scim.Limits {
	rate := func(r config.Rate) scim.RateLimit {
		return scim.RateLimit{Limit: r.Limit, Window: r.Window.Duration()}
	}
	return &scim.Limits{RequestsPerTenant: rate(c.RequestsPerTenant), FailuresPerIP: rate(c.FailuresPerIP)}
}
