// Package claims is realmgate's one claims pipeline: an upstream identity's
// standard mapping (Standard), the tenant's rules (transform), and the
// email guard (GuardEmail, SECURITY S52 and S74). Sign-in, refresh and
// userinfo in the broker, the admin API's dry run and `realmgate rules
// test` all run a Pipeline, so the what-if testers show exactly what a
// sign-in would issue. What each client then receives is the broker's
// per-client release (transform.FilterClaims, S75).
package claims

import (
	"context"
	"strings"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// Authentication context classes realmgate vouches for in the acr claim.
const (
	// ACRMFA says the user passed multi-factor authentication upstream.
	ACRMFA = "urn:realmgate:acr:mfa"
	// ACRSingleFactor says the upstream authentication had one factor (or
	// did not say it had more).
	ACRSingleFactor = "urn:realmgate:acr:1fa"
)

// ACR is the acr claim (OIDC Core §2) realmgate issues for the upstream
// authentication methods amr (RFC 8176): ACRMFA when they are multi-factor
// (providers.MFA), ACRSingleFactor otherwise.
func ACR(amr []string) string {
	if providers.MFA(amr) {
		return ACRMFA
	}
	return ACRSingleFactor
}

// Standard maps an upstream identity to realmgate's normalized claims,
// before the tenant's rules run: the OIDC Core §5.1 profile and email
// claims the identity carries (an email realm.ParseEmail refuses is left
// out, S74), amr as asserted upstream, acr as realmgate
// vouches for it (ACR) and an empty roles list for rules to fill.
func Standard(id providers.Identity) map[string]any {
	cl := map[string]any{"roles": []any{}}
	set := func(k, v string) {
		if v != "" {
			cl[k] = v
		}
	}
	set("name", id.Name)
	set("given_name", id.GivenName)
	set("family_name", id.FamilyName)
	set("preferred_username", id.PreferredUsername)
	if _, err := realm.ParseEmail(id.Email); err == nil { // S74: an ambiguous address never enters
		cl["email"], cl["email_verified"] = id.Email, id.EmailVerified
	}
	if len(id.AMR) > 0 {
		amr := make([]any, len(id.AMR))
		for i, m := range id.AMR {
			amr[i] = m
		}
		cl["amr"] = amr
	}
	// acr says what realmgate vouches for, whatever the upstream's own
	// vocabulary; the upstream value stays available to rules.
	cl["acr"] = ACR(id.AMR)
	return cl
}

// Domains is what the email guard needs to know of the tenants' verified
// email domains. *realm.Resolver implements it.
type Domains interface {
	// DomainVerified reports whether email is in one of tenant's verified domains.
	DomainVerified(tenant, email string) bool
	// TenantForDomain returns the tenant that verified domain, if any.
	TenantForDomain(domain string) (string, bool)
	// Tenant returns the tenant with id.
	Tenant(id string) (realm.Tenant, bool)
}

// GuardEmail enforces S52 on final claims (after rules, which may set
// email), for an identity whose IdP belongs to tenant home: an email in a
// domain another tenant verified is dropped, so tenant A's IdP cannot mint
// identities in tenant B's domain; an email outside home's verified domains
// is marked unverified when home has any; an ambiguous address (S74) is
// dropped. claims is changed in place.
func GuardEmail(d Domains, home string, claims map[string]any) {
	email, _ := claims["email"].(string)
	if email == "" {
		if _, present := claims["email"]; present {
			delete(claims, "email")
			delete(claims, "email_verified")
		}
		return
	}
	addr, err := realm.ParseEmail(email)
	if err != nil { // S74: an ambiguous address is dropped, never verified
		delete(claims, "email")
		delete(claims, "email_verified")
		return
	}
	if d.DomainVerified(home, email) {
		if _, ok := claims["email_verified"].(bool); !ok {
			claims["email_verified"] = false
		}
		return
	}
	if owner, owned := d.TenantForDomain(addr.Domain); owned && owner != home {
		delete(claims, "email")
		delete(claims, "email_verified")
		return
	}
	if t, ok := d.Tenant(home); ok && len(t.Domains) > 0 {
		claims["email_verified"] = false
	} else if _, ok := claims["email_verified"].(bool); !ok {
		claims["email_verified"] = false
	}
}

// Request is one run of the pipeline: who signed in, where, and for which
// application.
type Request struct {
	// Identity is the upstream identity as the connector validated it.
	Identity providers.Identity
	// Home is the tenant of the IdP that authenticated the user; the email
	// guard (S52) checks against its domains. Empty means Tenant.
	Home string
	// Tenant is the tenant signed in to, whose rules run (Home, or a tenant
	// the user is a member of).
	Tenant string
	// IdP is the id of the IdP that authenticated the user.
	IdP string
	// Client is the client_id of the application signed in to.
	Client string
	// User is the user's tenant directory record as rules see it (`user`,
	// users.User.RuleView); nil when the directory has none.
	User map[string]any
}

// Pipeline runs Standard, then a tenant's rules, then GuardEmail.
type Pipeline struct {
	// Rules are the tenant's compiled rules (global first); nil passes the
	// standard claims through.
	Rules *transform.Engine
	// Domains answers the email guard's questions.
	Domains Domains
}

// Apply returns the claims a sign-in issues for r before the per-client
// release, or the rules' error: one wrapping transform.ErrDenied when a
// rule denied the sign-in; any other error also refuses it (fail closed).
func (p Pipeline) Apply(ctx context.Context, r Request) (map[string]any, error) {
	out, err := p.Rules.Apply(ctx, input(r))
	if err != nil {
		return nil, err
	}
	GuardEmail(p.Domains, home(r), out)
	return out, nil
}

// Explain is Apply with the trace of what each rule did, for the what-if
// testers. On a deny or failure the trace is returned with the error and
// no claims.
func (p Pipeline) Explain(ctx context.Context, r Request) (transform.Result, error) {
	res, err := p.Rules.Explain(ctx, input(r))
	if err != nil {
		res.Claims = nil
		return res, err
	}
	GuardEmail(p.Domains, home(r), res.Claims)
	return res, nil
}

func input(r Request) transform.Input {
	in := transform.Input{Upstream: r.Identity.Claims, Claims: Standard(r.Identity),
		Tenant: r.Tenant, IdP: r.IdP, Client: r.Client, User: r.User}
	if in.Upstream == nil {
		in.Upstream = map[string]any{}
	}
	return in
}

func home(r Request) string {
	if r.Home != "" {
		return r.Home
	}
	return r.Tenant
}

// FromUpstream is the identity a connector would report for raw upstream
// claims named as in OpenID Connect Core §5.1 (sub, email, email_verified,
// name, given_name, family_name, preferred_username) and §2 (iss, amr,
// acr); every claim stays in Claims for rules. The what-if testers use it
// for a sample identity given as a claims object. email_verified may be a
// boolean or the string "true"; amr a string or a list of strings.
func FromUpstream(up map[string]any) providers.Identity {
	str := func(k string) string { s, _ := up[k].(string); return s }
	id := providers.Identity{Issuer: str("iss"), Subject: str("sub"), Email: str("email"),
		Name: str("name"), GivenName: str("given_name"), FamilyName: str("family_name"),
		PreferredUsername: str("preferred_username"), ACR: str("acr"), Claims: up}
	switch v := up["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string:
		id.EmailVerified = strings.EqualFold(v, "true")
	}
	switch v := up["amr"].(type) {
	case string:
		id.AMR = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				id.AMR = append(id.AMR, s)
			}
		}
	case []string:
		id.AMR = v
	}
	return id
}

// Reserved are the claims only the broker sets (the protocol and tenancy
// claims); no rule output and no client registration reaches them.
var Reserved = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"nonce": true, "tid": true, "idp": true, "auth_time": true, "azp": true, "jti": true, "sid": true,
	"at_hash": true, "c_hash": true, "gid": true, "client_id": true, "scope": true, "cnf": true, "act": true,
	"acrs": true, "risk_level": true} // set by conditional access only (broker/conditional.go)

// Roles returns the roles claim of all as a list (a single string counts as
// one role); an empty list when there is none.
func Roles(all map[string]any) []any {
	switch r := all["roles"].(type) {
	case []any:
		return r
	case []string:
		out := make([]any, len(r))
		for i, v := range r {
			out[i] = v
		}
		return out
	case string:
		return []any{r}
	}
	return []any{}
}

// releaseRoom is the room Release leaves in its map for the reserved
// claims a token adds (broker/token.go sets up to 15 on an ID token).
const releaseRoom = 16

// Release is the pipeline's last step: the claims a client receives
// (SECURITY S75), through the one filter, transform.FilterClaims: standard
// claims by scope (OIDC Core §5.4), amr and acr always, roles with the roles
// scope or when granted names "roles", and a custom claim only when granted
// (the client's registration) names it. out is a new map without roles and
// without the Reserved claims the broker sets itself; roles is nil when the
// client does not receive them. ID tokens, access tokens, userinfo and
// introspection all take what it returns.
func Release(all map[string]any, scopes, granted []string) (out map[string]any, roles []any) {
	out = transform.FilterClaimsRoom(all, scopes, granted, releaseRoom)
	if _, ok := out["roles"]; ok {
		roles = Roles(out)
	}
	for k := range out {
		if Reserved[k] || k == "roles" {
			delete(out, k)
		}
	}
	return out, roles
}
