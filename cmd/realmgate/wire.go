package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/github"
	"github.com/realmgate/realmgate/providers/oauth2"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/providers/saml"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// upstreamClients holds the one outbound client per policy (in practice one
// per process): boot and the admin API share its pool of kept-alive
// connections per IdP host instead of a new TLS handshake per sign-in.
var upstreamClients = struct {
	sync.Mutex
	m map[string]*http.Client
}{m: map[string]*http.Client{}}

// upstreamClient returns the client for every request whose address an
// upstream document or a tenant admin chooses (discovery, JWKS, token,
// userinfo, metadata, back-channel logout; SECURITY S70): the file's
// outbound policy decides which addresses it may reach. Connectors bound
// each call with their own timeouts.
func upstreamClient(cfg *config.Config) *http.Client {
	o := cfg.Outbound
	p := outbound.Policy{AllowLoopback: o.AllowLoopback, AllowPrivate: o.AllowPrivate, AllowCIDRs: o.Prefixes(),
		MaxBodyBytes: o.MaxBodyBytes, Timeout: o.Timeout.Duration()}
	key := fmt.Sprintf("%+v", p)
	upstreamClients.Lock()
	defer upstreamClients.Unlock()
	c, ok := upstreamClients.m[key]
	if !ok {
		c = outbound.New(p)
		upstreamClients.m[key] = c
	}
	return c
}

// errUnsupportedProvider marks a provider type this build cannot connect yet.
var errUnsupportedProvider = errors.New("provider type not supported by this build")

// closer is a store that holds resources.
type closer interface{ Close() error }

// openStore returns the store the configuration names.
func openStore(cfg *config.Config) (broker.Store, error) {
	switch cfg.Store.Type {
	case "", config.StoreMemory:
		return memstore.New(), nil
	case config.StoreRedis:
		s, err := redisstore.New(redisstore.Options{Addrs: cfg.Store.Redis.Addrs, MasterName: cfg.Store.Redis.MasterName,
			Username: cfg.Store.Redis.Username, Password: cfg.Store.Redis.Password, DB: cfg.Store.Redis.DB})
		if err != nil {
			return nil, fmt.Errorf("open redis store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store type %q", cfg.Store.Type)
}

// microsoftIssuer is the Entra ID v2.0 multi-tenant issuer template.
const microsoftIssuer = "https://login.microsoftonline.com/" + oidc.TenantPlaceholder + "/v2.0"

// connector builds the upstream connector for one configured provider.
// issuer is the broker's issuer: SAML SP URLs (entityID, ACS) derive from it.
// No connector touches the network here: OIDC discovery and SAML metadata
// URLs are fetched on first use, through hc (upstreamClient).
func connector(p *config.Provider, issuer string, hc *http.Client, logger *slog.Logger) (providers.Connector, error) {
	switch p.Type {
	case config.ProviderOIDC:
		return oidc.New(oidc.Config{ID: p.ID, HTTPClient: hc, Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			Scopes: p.Scopes, AllowedTenants: p.AllowedTenants, Logger: logger})
	case config.ProviderGoogle:
		// Google is an OpenID Provider; its issuer is fixed (a Provider built
		// in code may override it for tests). The hd claim stays in the
		// upstream claims for rules; hosted_domain makes it mandatory.
		iss := p.Issuer
		if iss == "" {
			iss = "https://accounts.google.com"
		}
		return oidc.New(oidc.Config{ID: p.ID, HTTPClient: hc, Issuer: iss, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			Scopes: p.Scopes, HostedDomain: p.HostedDomain, Logger: logger})
	case config.ProviderMicrosoft:
		return oidc.New(microsoftConfig(p, hc, logger))
	case config.ProviderGitHub:
		return github.New(github.Config{ID: p.ID, HTTPClient: hc, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: p.Scopes,
			Logger: logger})
	case config.ProviderOAuth2:
		return oauth2.New(oauth2.Config{ID: p.ID, HTTPClient: hc, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: p.Scopes,
			AuthURL: p.AuthURL, TokenURL: p.TokenURL, UserInfoURL: p.UserInfoURL, Logger: logger})
	case config.ProviderSAML:
		return samlConnector(p, issuer, hc, logger)
	}
	return nil, fmt.Errorf("provider %q: type %q: %w", p.ID, p.Type, errUnsupportedProvider)
}

// microsoftConfig maps a microsoft provider onto the OIDC connector. Without
// a pinned issuer it is Entra's multi-tenant template, checked against each
// token's tid (S23): accounts "any" (default) goes through the common
// endpoint and takes personal accounts too, "work" through organizations,
// and "personal" is the consumer tenant's own issuer.
func microsoftConfig(p *config.Provider, hc *http.Client, logger *slog.Logger) oidc.Config {
	cfg := oidc.Config{ID: p.ID, HTTPClient: hc, Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		Scopes: p.Scopes, AllowedTenants: p.AllowedTenants, Logger: logger}
	if cfg.Issuer == "" {
		cfg.Issuer = microsoftIssuer
	}
	if !strings.Contains(cfg.Issuer, oidc.TenantPlaceholder) {
		return cfg // one pinned directory
	}
	switch p.Accounts {
	case "", config.AccountsAny:
		cfg.PersonalAccounts = true
	case config.AccountsPersonal:
		cfg.Issuer = strings.Replace(cfg.Issuer, oidc.TenantPlaceholder, config.MicrosoftConsumerTenant, 1)
		cfg.AllowedTenants = nil
	}
	return cfg
}

// samlBindings maps the configuration's binding names to the connector's.
var samlBindings = map[string]string{"": "", config.BindingRedirect: saml.BindingRedirect, config.BindingPOST: saml.BindingPOST}

// samlConnector builds a SAML SP for one IdP. Its stable URLs, which the
// tenant admin registers, are <issuer>/saml/<id>/metadata (also the SP
// entityID) and <issuer>/saml/<id>/acs.
func samlConnector(p *config.Provider, issuer string, hc *http.Client, logger *slog.Logger) (providers.Connector, error) {
	base := strings.TrimSuffix(issuer, "/") + "/saml/" + url.PathEscape(p.ID)
	binding, ok := samlBindings[p.Binding]
	if !ok {
		return nil, fmt.Errorf("provider %q: unknown binding %q", p.ID, p.Binding)
	}
	nameID, ok := p.SAMLNameIDFormat()
	if !ok {
		return nil, fmt.Errorf("provider %q: unsupported name_id_format %q", p.ID, p.NameIDFormat)
	}
	cfg := saml.Config{ID: p.ID, HTTPClient: hc, EntityID: base + "/metadata", ACSURL: base + "/acs", MetadataURL: base + "/metadata",
		PostURL: base + "/post", IdPMetadataURL: p.MetadataURL, IdPEntityID: p.EntityID, IdPInitiated: p.IdPInitiated,
		RelayStateAllowList: p.RelayStateAllowlist, Binding: binding, NameIDFormat: nameID,
		SubjectAttribute: p.SubjectAttribute, ClockSkew: p.ClockSkew.Duration(), SignRequests: p.SignRequests,
		Logger: logger}
	md, err := p.IdPMetadataXML()
	if err != nil {
		return nil, fmt.Errorf("provider %q: metadata: %w", p.ID, err)
	}
	cfg.IdPMetadata = md
	key, cert, err := p.SPKeyPair()
	if err != nil {
		return nil, fmt.Errorf("provider %q: sp key: %w", p.ID, err)
	}
	if key != nil { // a nil *rsa.PrivateKey must not become a non-nil crypto.Signer
		cfg.Key, cfg.Certificate = key, cert
	}
	return saml.New(cfg)
}

// compileRules converts the file's rules into the engine's and compiles them.
func compileRules(cfg *config.Config) (map[string]*transform.Engine, error) {
	global := convertRules(cfg.Rules)
	engines := make(map[string]*transform.Engine, len(cfg.Tenants))
	var errs []error
	for _, t := range cfg.Tenants {
		eng, err := transform.Compile(global, convertRules(t.Rules), transform.Options{Tenant: t.ID})
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
			continue
		}
		engines[t.ID] = eng
	}
	return engines, errors.Join(errs...)
}

func convertRules(in []config.Rule) []transform.Rule {
	assign := func(m map[string]string) []transform.Assignment {
		var out []transform.Assignment
		for k, v := range m {
			out = append(out, transform.Assignment{Claim: k, Expr: v})
		}
		// Within one rule, set and add entries apply in claim-name order.
		sort.Slice(out, func(i, j int) bool { return out[i].Claim < out[j].Claim })
		return out
	}
	out := make([]transform.Rule, 0, len(in))
	for _, r := range in {
		tr := transform.Rule{Name: r.Name, If: r.If, Set: assign(r.Set), Add: assign(r.Add), Remove: r.Remove,
			Deny: r.Deny, Stop: r.Stop}
		if r.Map != nil {
			tr.Map = &transform.Map{From: r.Map.From, To: r.Map.To, Table: r.Map.Table, Default: r.Map.Default}
		}
		out = append(out, tr)
	}
	return out
}

// buildBroker wires the configuration into a broker on store. Providers of a
// type this build does not support are left out with a logged error.
func buildBroker(ctx context.Context, cfg *config.Config, store broker.Store, logger, audit *slog.Logger) (*broker.Server, error) {
	policies := map[string]broker.TenantPolicy{}
	var memberships []broker.Membership
	var tenants []realm.Tenant
	var idps []broker.IdP
	hc := upstreamClient(cfg)
	for _, t := range cfg.Tenants {
		rt := realm.Tenant{ID: t.ID, Name: t.Name, Domains: t.Domains, Subdomain: t.Subdomain, Default: t.Default}
		for _, r := range t.IPRanges {
			p, err := netip.ParsePrefix(r)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: ip range %q: %w", t.ID, r, err)
			}
			rt.IPRanges = append(rt.IPRanges, p)
		}
		for i := range t.Providers {
			p := &t.Providers[i]
			conn, err := connector(p, cfg.Issuer, hc, logger)
			if errors.Is(err, errUnsupportedProvider) {
				logger.Error("identity provider left out", "tenant", t.ID, "idp", p.ID, "type", p.Type, "err", err)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
			}
			name := p.Name
			if name == "" {
				name = t.Name
			}
			rt.IdPs = append(rt.IdPs, p.ID)
			idps = append(idps, broker.IdP{ID: p.ID, Tenant: t.ID, Name: name, Connector: conn, MFAACRValues: p.MFAACRValues,
				UpstreamLogout: p.UpstreamLogout})
		}
		if rt.Name == "" {
			rt.Name = t.ID
		}
		tenants = append(tenants, rt)
		for _, m := range t.Members {
			memberships = append(memberships, broker.Membership{Tenant: t.ID, IdP: m.IdP, Subject: m.Subject, Email: m.Email, Reauth: m.Reauth})
		}
		if t.RequireMFA || t.Impersonation != nil {
			pol := broker.TenantPolicy{RequireMFA: t.RequireMFA}
			if im := t.Impersonation; im != nil {
				pol.Impersonation = &broker.ImpersonationPolicy{OperatorRoles: im.OperatorRoles,
					OperatorTenants: im.OperatorTenants, Lifetime: im.Lifetime.Duration()}
			}
			policies[t.ID] = pol
		}
	}
	res, err := realm.New(tenants, realm.Options{BaseDomain: cfg.BaseDomain})
	if err != nil {
		return nil, err
	}
	rules, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	clients := make([]broker.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		clients = append(clients, brokerClient(c))
	}
	bc := broker.Config{
		Issuer: cfg.Issuer, Algorithm: cfg.Keys.Algorithm, RotateEvery: cfg.Keys.RotateEvery.Duration(),
		SessionLifetime:      cfg.Session.Lifetime.Duration(),
		AccessTokenLifetime:  cfg.Tokens.AccessTokenLifetime.Duration(),
		IDTokenLifetime:      cfg.Tokens.IDTokenLifetime.Duration(),
		RefreshTokenLifetime: cfg.Tokens.RefreshTokenLifetime.Duration(),
		Clients:              clients, IdPs: idps, Resolver: res, Rules: rules, Policies: policies, Memberships: memberships, Logger: logger, Audit: audit,
		HTTPClient: hc, // back-channel logout URIs (S70)
	}
	applyOperations(&bc, cfg) // admin.go: rate limits (S60), audit retention (S61)
	bc.UpstreamConcurrency = cfg.UpstreamConcurrency
	if u, err := url.Parse(cfg.Issuer); err == nil && cfg.BaseDomain != "" {
		host, bd := strings.ToLower(u.Hostname()), strings.ToLower(cfg.BaseDomain)
		if host == bd || strings.HasSuffix(host, "."+bd) {
			bc.CookieDomain = bd
		}
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		bc.TrustedProxies = append(bc.TrustedProxies, pfx)
	}
	if cfg.Keys.Secret != "" {
		bc.Secret = []byte(cfg.Keys.Secret)
	}
	return broker.New(ctx, bc, store)
}
