// Package assemble is the one path from the configuration model (a tenant
// or a client, whether from the file or the admin API) to the broker's
// objects: connectors, realm tenants, rule engines, policies, memberships
// and clients. Boot (cmd/realmgate's serve) and the admin API's compiler
// both call it, so a setting means the same whichever way it arrived.
package assemble

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/github"
	"github.com/realmgate/realmgate/providers/oauth2"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/providers/saml"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// ErrUnsupportedProvider marks a provider type this build cannot connect.
var ErrUnsupportedProvider = errors.New("assemble: provider type not supported by this build")

// Tenant is one tenant compiled for the broker.
type Tenant struct {
	// Realm is the tenant as home-realm discovery sees it.
	Realm realm.Tenant
	// IdPs are the tenant's identity providers with their connectors, in
	// the configured order (unsupported types left out, see Builder).
	IdPs []broker.IdP
	// Providers are the configured providers of IdPs, in the same order.
	Providers []config.Provider
	// Engine runs the global rules and then the tenant's; nil when there
	// are none (claims pass through).
	Engine *transform.Engine
	// Policy is the tenant's sign-in policy; nil when it has none.
	Policy *broker.TenantPolicy
	// Members are the identities of other tenants' IdPs admitted here.
	Members []broker.Membership
}

// Problem is what is wrong with one field of a tenant.
type Problem struct {
	// Field is the path of the field, such as tenants[acme].providers[0].
	Field string
	// Message says what is wrong.
	Message string
}

// Builder compiles tenants. The zero value of each function field builds
// directly; the admin API's compiler sets them to its caches.
type Builder struct {
	// Issuer is the broker's issuer: SAML SP URLs derive from it.
	Issuer string
	// HTTP is the outbound client of every connector (SECURITY S70).
	HTTP *http.Client
	// Logger receives the connectors' logs.
	Logger *slog.Logger
	// Global are the global rules, run before each tenant's.
	Global []config.Rule
	// SkipUnsupported leaves providers of a type this build cannot connect
	// out (logged) instead of reporting them as problems.
	SkipUnsupported bool
	// Connect builds a provider's connector; nil means Connector.
	Connect func(p *config.Provider) (providers.Connector, error)
	// Compile compiles a tenant's rules after the global ones; nil means
	// Engine.
	Compile func(global []config.Rule, t config.Tenant) (*transform.Engine, error)
}

// Tenant compiles t. Problems name their field; the tenant is returned
// with what could be compiled.
func (b *Builder) Tenant(t config.Tenant) (*Tenant, []Problem) {
	path := "tenants[" + t.ID + "]"
	var probs []Problem
	out := &Tenant{Realm: realm.Tenant{ID: t.ID, Name: t.Name, Domains: t.Domains, Subdomain: t.Subdomain, Default: t.Default}}
	if out.Realm.Name == "" {
		out.Realm.Name = t.ID
	}
	for i, r := range t.IPRanges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			probs = append(probs, Problem{Field: fmt.Sprintf("%s.ip_ranges[%d]", path, i), Message: err.Error()})
			continue
		}
		out.Realm.IPRanges = append(out.Realm.IPRanges, p)
	}
	connect := b.Connect
	if connect == nil {
		connect = func(p *config.Provider) (providers.Connector, error) { return Connector(p, b.Issuer, b.HTTP, b.Logger) }
	}
	for j := range t.Providers {
		p := t.Providers[j]
		conn, err := connect(&p)
		if errors.Is(err, ErrUnsupportedProvider) && b.SkipUnsupported {
			if b.Logger != nil {
				b.Logger.Error("identity provider left out", "tenant", t.ID, "idp", p.ID, "type", p.Type, "err", err)
			}
			continue
		}
		if err != nil {
			probs = append(probs, Problem{Field: fmt.Sprintf("%s.providers[%d]", path, j), Message: err.Error()})
			continue
		}
		name := p.Name
		if name == "" {
			name = t.Name
		}
		out.Realm.IdPs = append(out.Realm.IdPs, p.ID)
		out.IdPs = append(out.IdPs, broker.IdP{ID: p.ID, Tenant: t.ID, Name: name, Connector: conn,
			MFAACRValues: p.MFAACRValues, UpstreamLogout: p.UpstreamLogout})
		out.Providers = append(out.Providers, p)
	}
	compile := b.Compile
	if compile == nil {
		compile = Engine
	}
	eng, err := compile(b.Global, t)
	if err != nil {
		probs = append(probs, Problem{Field: path + ".rules", Message: err.Error()})
	}
	out.Engine = eng
	for _, m := range t.Members {
		out.Members = append(out.Members, broker.Membership{Tenant: t.ID, IdP: m.IdP, Subject: m.Subject, Email: m.Email, Reauth: m.Reauth})
	}
	out.Policy = Policy(t)
	return out, probs
}

// Policy is t's sign-in policy, or nil when it has none.
func Policy(t config.Tenant) *broker.TenantPolicy {
	limits := TenantLimits(t.RateLimits)
	if !t.RequireMFA && t.Impersonation == nil && limits == nil {
		return nil
	}
	pol := &broker.TenantPolicy{RequireMFA: t.RequireMFA, RateLimits: limits}
	if im := t.Impersonation; im != nil {
		pol.Impersonation = &broker.ImpersonationPolicy{OperatorRoles: im.OperatorRoles,
			OperatorTenants: im.OperatorTenants, Lifetime: im.Lifetime.Duration()}
	}
	return pol
}

// RateLimit is the broker's form of a rate ("off": the zero RateLimit).
func RateLimit(r config.Rate) broker.RateLimit {
	if r.Off() {
		return broker.RateLimit{}
	}
	return broker.RateLimit{Limit: r.Limit, Window: r.Window.Duration()}
}

// TenantLimits is the broker's form of a tenant's rate_limits; nil when
// it overrides nothing.
func TenantLimits(o config.TenantRateLimits) *broker.TenantLimits {
	if o.StartsPerTenant == nil && o.FailuresPerTenant == nil {
		return nil
	}
	var tl broker.TenantLimits
	if o.StartsPerTenant != nil {
		r := RateLimit(*o.StartsPerTenant)
		tl.StartsPerTenant = &r
	}
	if o.FailuresPerTenant != nil {
		r := RateLimit(*o.FailuresPerTenant)
		tl.FailuresPerTenant = &r
	}
	return &tl
}

// Engine compiles the global rules and then t's; nil when there are none
// at all.
func Engine(global []config.Rule, t config.Tenant) (*transform.Engine, error) {
	if len(global) == 0 && len(t.Rules) == 0 {
		return nil, nil
	}
	return transform.Compile(Rules(global), Rules(t.Rules), transform.Options{Tenant: t.ID})
}

// Client is the broker's form of a registered application.
func Client(c config.Client) broker.Client {
	return broker.Client{ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, AllowedTenants: c.AllowedTenants, AllowedIdPs: c.AllowedIdPs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, ExchangeAudiences: c.ExchangeAudiences, Claims: c.Claims}
}

// microsoftIssuer is the Entra ID v2.0 multi-tenant issuer template.
const microsoftIssuer = "https://login.microsoftonline.com/" + oidc.TenantPlaceholder + "/v2.0"

// Connector builds the upstream connector for one configured provider.
// issuer is the broker's issuer: SAML SP URLs (entityID, ACS) derive from it.
// No connector touches the network here: OIDC discovery and SAML metadata
// URLs are fetched on first use, through hc (upstreamClient).
func Connector(p *config.Provider, issuer string, hc *http.Client, logger *slog.Logger) (providers.Connector, error) {
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
	return nil, fmt.Errorf("provider %q: type %q: %w", p.ID, p.Type, ErrUnsupportedProvider)
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

// Rules converts the file's rules into the engine's.
func Rules(in []config.Rule) []transform.Rule {
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
