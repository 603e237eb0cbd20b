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
	"sort"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// ErrUnsupportedProvider marks a provider type no package of this build
// registered (idp.ErrUnsupported).
var ErrUnsupportedProvider = idp.ErrUnsupported

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
	// GlobalPolicies are the global conditional access policies, evaluated
	// before each tenant's (conditional.go).
	GlobalPolicies []config.AccessPolicy
	// SkipUnsupported leaves providers of a type this build cannot connect
	// out (logged) instead of reporting them as problems.
	SkipUnsupported bool
	// Connect builds a provider's connector; nil means Connector.
	Connect func(p *config.Provider) (providers.Connector, error)
	// Compile compiles a tenant's rules after the global ones; nil means
	// Engine.
	Compile func(global []config.Rule, t config.Tenant) (*transform.Engine, error)

	boot *Boot // BrokerConfig keeps what it built here (KeepBoot)
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
		if p.Pending { // setup portal: test sign-ins only until activated
			out.Realm.Pending = append(out.Realm.Pending, p.ID)
		}
		out.IdPs = append(out.IdPs, broker.IdP{ID: p.ID, Tenant: t.ID, Name: name, Connector: conn, Pending: p.Pending,
			MFAACRValues: p.MFAACRValues, UpstreamLogout: p.UpstreamLogout, TokenExchange: TokenExchange(p.TokenExchange)})
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
	if ta, err := TenantConditional(b.GlobalPolicies, t.ConditionalAccess); err != nil {
		probs = append(probs, Problem{Field: path + ".conditional_access", Message: err.Error()})
	} else if ta != nil {
		if out.Policy == nil {
			out.Policy = &broker.TenantPolicy{}
		}
		out.Policy.Conditional = ta
	}
	return out, probs
}

// Policy is t's sign-in policy, or nil when it has none.
func Policy(t config.Tenant) *broker.TenantPolicy {
	limits := TenantLimits(t.RateLimits)
	if !t.RequireMFA && t.Impersonation == nil && limits == nil && t.Directory == nil && t.Access == nil && t.Language == "" && t.Branding == nil {
		return nil
	}
	pol := &broker.TenantPolicy{RequireMFA: t.RequireMFA, RateLimits: limits, Language: t.Language, Branding: Branding(t.Branding)}
	if d := t.Directory; d != nil {
		pol.Users = &broker.UserPolicy{Match: map[string]string{"external_id": "externalId", "user_name": "userName",
			"email": "email"}[d.Match], MatchClaim: d.MatchClaim, ProvisionedOnly: d.ProvisionedOnly}
	}
	if a := t.Access; a != nil {
		pol.Access = AccessPolicy(a)
	}
	if im := t.Impersonation; im != nil {
		pol.Impersonation = &broker.ImpersonationPolicy{OperatorRoles: im.OperatorRoles,
			OperatorTenants: im.OperatorTenants, Lifetime: im.Lifetime.Duration()}
	}
	return pol
}

// AccessPolicy is the broker's form of a tenant's just-in-time access.
func AccessPolicy(a *config.Access) *broker.AccessPolicy {
	out := &broker.AccessPolicy{ApproverRoles: a.ApproverRoles, Roles: make(map[string]broker.AccessRole, len(a.Roles))}
	for _, r := range a.Roles {
		out.Roles[r.Name] = broker.AccessRole{MaxDuration: r.MaxDuration.Duration(), SelfActivate: r.SelfActivate}
	}
	return out
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
		BackchannelLogoutURI: c.BackchannelLogoutURI, SSFPushURL: c.SSFPushURL, ExchangeAudiences: c.ExchangeAudiences, Claims: c.Claims,
		SAML: SAMLApp(c.SAML), RequirePushedAuthorizationRequests: c.RequirePushedAuthorizationRequests,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, Machine: Machine(c), ClientSettings: ClientSettings(c),
		Branding: Branding(c.Branding)}
}

// Branding is the broker's form of a tenant's or client's branding block;
// nil when there is none.
func Branding(b *config.Branding) *broker.Branding {
	if b == nil {
		return nil
	}
	return &broker.Branding{DisplayName: b.DisplayName, Logo: b.Logo, LogoURL: b.LogoURL,
		PrimaryColor: b.PrimaryColor, AccentColor: b.AccentColor, SupportURL: b.SupportURL}
}

// ClientSettings is the broker's form of a client's token lifetimes,
// subject type and consent page.
func ClientSettings(c config.Client) broker.ClientSettings {
	return broker.ClientSettings{Name: c.ClientName, AccessTokenLifetime: c.AccessTokenLifetime.Duration(),
		IDTokenLifetime: c.IDTokenLifetime.Duration(), RefreshTokenLifetime: c.RefreshTokenLifetime.Duration(),
		SubjectType: c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI, ThirdParty: c.ThirdParty}
}

// Machine is the broker's form of a client's grants and token endpoint
// authentication. The key set was validated with the configuration.
func Machine(c config.Client) broker.Machine {
	m := broker.Machine{Tenant: c.Tenant, GrantTypes: c.GrantTypes, Scopes: c.Scopes, Audiences: c.Audiences,
		AuthMethod: c.TokenEndpointAuthMethod, JWKSURI: c.JWKSURI}
	if c.JWKS != nil {
		m.JWKS, _ = config.ParseJWKS(c.JWKS) // nil on error: every assertion is refused
	}
	return m
}

// Connector builds the upstream connector for one configured provider,
// through its type's package (idp registry). issuer is the broker's
// issuer: callback and SAML SP URLs derive from it. No connector touches
// the network here: OIDC discovery and SAML metadata URLs are fetched on
// first use, through hc (upstreamClient).
func Connector(p *config.Provider, issuer string, hc *http.Client, logger *slog.Logger) (providers.Connector, error) {
	return idp.Connector(p, idp.Env{Issuer: issuer, HTTP: hc, Logger: logger})
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

// TokenExchange is the broker's form of a provider's token_exchange
// section; nil unless enabled.
func TokenExchange(te *config.TokenExchange) *broker.ExternalExchange {
	if te == nil || !te.Enabled {
		return nil
	}
	return &broker.ExternalExchange{Accept: te.AcceptKinds(), Audiences: te.Audiences}
}
