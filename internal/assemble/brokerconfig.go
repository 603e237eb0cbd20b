package assemble

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// builtTenant is one tenant built by buildTenants.
type builtTenant struct {
	t     *Tenant
	probs []Problem
}

// buildTenantsMin is the fewest tenants built in parts at once (a
// variable for tests).
var buildTenantsMin = 512

// buildTenants builds every tenant with b, in parts at once, one per CPU,
// for a long list (a file of 100k tenants): building a tenant reads its
// configuration and makes its connectors and engine, touching nothing
// another tenant's building does (b's Compile, when set, must be safe for
// concurrent use). The results are in the order of ts.
func buildTenants(b *Builder, ts []config.Tenant) []builtTenant {
	out := make([]builtTenant, len(ts))
	parts := runtime.GOMAXPROCS(0)
	if len(ts) < buildTenantsMin {
		parts = 1
	}
	per := (len(ts) + parts - 1) / max(parts, 1)
	var wg sync.WaitGroup
	for from := 0; from < len(ts); from += per {
		to := min(from+per, len(ts))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < to; i++ {
				out[i].t, out[i].probs = b.Tenant(ts[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// Option changes how BrokerConfig builds the tenants.
type Option func(*Builder)

// WithCompile makes BrokerConfig compile tenants' rules with compile
// instead of Engine: the caller's engines, compiled from the same rules
// while the file was checked, are not compiled a second time. compile
// must be safe for concurrent use (tenants are built in parts at once).
func WithCompile(compile func(global []config.Rule, t config.Tenant) (*transform.Engine, error)) Option {
	return func(b *Builder) { b.Compile = compile }
}

// BrokerConfig turns the configuration file into the broker's configuration:
// every tenant through Builder, the clients, the rate limits and audit
// retention, cookies, trusted proxies and secrets. hc is the outbound client
// of every connector and of back-channel logout (SECURITY S70). Providers of
// a type this build does not support are left out with a logged error.
func BrokerConfig(cfg *config.Config, hc *http.Client, logger, audit *slog.Logger, opts ...Option) (broker.Config, error) {
	policies := map[string]broker.TenantPolicy{}
	rules := map[string]*transform.Engine{}
	var memberships []broker.Membership
	var tenants []realm.Tenant
	var idps []broker.IdP
	b := Builder{Issuer: cfg.Issuer, HTTP: hc, Logger: logger, Global: cfg.Rules, SkipUnsupported: true,
		GlobalPolicies: cfg.ConditionalAccess.Policies}
	for _, o := range opts {
		o(&b)
	}
	var errs []error
	built := buildTenants(&b, cfg.Tenants)
	for i, t := range cfg.Tenants {
		ct, probs := built[i].t, built[i].probs
		for _, p := range probs {
			errs = append(errs, fmt.Errorf("%s: %s", p.Field, p.Message))
		}
		tenants = append(tenants, ct.Realm)
		idps = append(idps, ct.IdPs...)
		memberships = append(memberships, ct.Members...)
		if ct.Engine != nil {
			rules[t.ID] = ct.Engine
		}
		if ct.Policy != nil {
			policies[t.ID] = *ct.Policy
		}
	}
	if err := errors.Join(errs...); err != nil {
		return broker.Config{}, err
	}
	res, err := realm.New(tenants, realm.Options{BaseDomain: cfg.BaseDomain})
	if err != nil {
		return broker.Config{}, err
	}
	clients := make([]broker.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		clients = append(clients, Client(c))
	}
	bc := broker.Config{
		Issuer: cfg.Issuer, Algorithm: cfg.Keys.Algorithm, RotateEvery: cfg.Keys.RotateEvery.Duration(),
		SessionLifetime:      cfg.Session.Lifetime.Duration(),
		JSONRecords:          cfg.Store.RecordFormat == config.RecordsJSON,
		AccessTokenLifetime:  cfg.Tokens.AccessTokenLifetime.Duration(),
		IDTokenLifetime:      cfg.Tokens.IDTokenLifetime.Duration(),
		RefreshTokenLifetime: cfg.Tokens.RefreshTokenLifetime.Duration(),
		Clients:              clients, IdPs: idps, Resolver: res, Rules: rules, Policies: policies, Memberships: memberships, Logger: logger, Audit: audit,
		HTTPClient: hc, // back-channel logout URIs (S70)
	}
	ApplyOperations(&bc, cfg) // rate limits (S60), audit retention (S61)
	// Conditional access: GeoIP, lists, global policies (conditional.go).
	if bc.Conditional, err = ConditionalConfig(cfg); err != nil {
		return broker.Config{}, err
	}
	if len(cfg.AdminAPI.Tokens) > 0 {
		// Dynamic client registration runs with the admin API (cmd/realmgate, package registration).
		bc.RegistrationEndpoint = strings.TrimSuffix(cfg.Issuer, "/") + "/register"
	}
	bc.UpstreamConcurrency = cfg.UpstreamConcurrency
	bc.PAR = broker.PAROptions{Require: cfg.PushedAuthorization.Required, RequestURILifetime: cfg.PushedAuthorization.RequestURILifetime.Duration()}
	bc.Device = broker.DeviceOptions{CodeLifetime: cfg.DeviceAuthorization.CodeLifetime.Duration(),
		Interval: cfg.DeviceAuthorization.Interval.Duration(), UserCodeAttempts: RateLimit(cfg.DeviceAuthorization.UserCodesPerIP)}
	bc.DPoP = broker.DPoPOptions{RequireNonce: cfg.ProofOfPossession.RequireNonce, ProofLifetime: cfg.ProofOfPossession.ProofLifetime.Duration()}
	if u, err := url.Parse(cfg.Issuer); err == nil && cfg.BaseDomain != "" {
		host, bd := strings.ToLower(u.Hostname()), strings.ToLower(cfg.BaseDomain)
		if host == bd || strings.HasSuffix(host, "."+bd) {
			bc.CookieDomain = bd
		}
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return broker.Config{}, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		bc.TrustedProxies = append(bc.TrustedProxies, pfx)
	}
	if cfg.Keys.Secret != "" {
		bc.Secret, bc.PreviousSecrets = []byte(cfg.Keys.Secret), PreviousSecrets(cfg)
	}
	if b.boot != nil {
		b.boot.keep(cfg, &bc) // boot.go: the admin API's compiler starts from it
	}
	return bc, nil
}

// PreviousSecrets returns keys.previous_secrets as bytes.
func PreviousSecrets(cfg *config.Config) [][]byte {
	var out [][]byte
	for _, p := range cfg.Keys.PreviousSecrets {
		out = append(out, []byte(p))
	}
	return out
}

// ApplyOperations copies the file's rate limits and audit retention into the
// broker's configuration (BrokerConfig calls it).
func ApplyOperations(bc *broker.Config, cfg *config.Config) {
	rate := RateLimit
	rl := cfg.RateLimits
	bc.RateLimits = broker.RateLimits{StartsPerIP: rate(rl.StartsPerIP), StartsPerTenant: rate(rl.StartsPerTenant),
		FailuresPerIP: rate(rl.FailuresPerIP), FailuresPerTenant: rate(rl.FailuresPerTenant)}
	// Each tenant's own limits also travel in its policy (Policy),
	// which the admin API replaces live; these are the boot-time copy.
	for _, t := range cfg.Tenants {
		if tl := TenantLimits(t.RateLimits); tl != nil {
			if bc.TenantRateLimits == nil {
				bc.TenantRateLimits = map[string]broker.TenantLimits{}
			}
			bc.TenantRateLimits[t.ID] = *tl
		}
	}
	bc.AuditMaxLen = cfg.Audit.MaxEventsPerTenant
	if bc.AuditMaxLen == 0 {
		bc.AuditMaxLen = -1 // the file's 0 keeps none; the broker's 0 means its default
	}
}
