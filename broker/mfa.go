package broker

import (
	"strings"

	"github.com/realmgate/realmgate/claims"
)

// Authentication context classes realmgate vouches for in the acr claim
// (the claims package sets it).
const (
	// ACRMFA says the user passed multi-factor authentication upstream
	// (claims.ACRMFA).
	ACRMFA = claims.ACRMFA
	// ACRSingleFactor says the upstream authentication had one factor (or
	// did not say it had more) (claims.ACRSingleFactor).
	ACRSingleFactor = claims.ACRSingleFactor
	// papeMFA is the widely understood multi-factor policy URI; clients may
	// ask for it as well as for ACRMFA.
	papeMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
)

// DefaultMFAACRValues is what the broker sends upstream to ask an IdP for
// multi-factor authentication when the IdP configures nothing else.
var DefaultMFAACRValues = []string{papeMFA}

// TenantPolicy is what a tenant requires of every sign-in.
type TenantPolicy struct {
	// RequireMFA refuses sign-ins whose upstream authentication was not
	// multi-factor; the broker first asks the IdP again for MFA.
	RequireMFA bool
	// Impersonation, when set, lets operators act as the tenant's users.
	Impersonation *ImpersonationPolicy
	// Incarnation identifies the tenant since it was created (the admin API
	// sets it; empty for tenants of the file): a grant issued under another
	// incarnation of the same tenant id is refused (S68).
	Incarnation string
	// RateLimits overrides the tenant's per-tenant sign-in limits (S60,
	// ratelimit.go), before Config.TenantRateLimits; nil keeps those. It
	// travels with the directory, so a tenant of the admin API has its
	// limits too, changed live.
	RateLimits *TenantLimits
	// Users says how the tenant's user directory meets a sign-in (users.go);
	// nil: records are created just in time, nothing provisioned is matched.
	Users *UserPolicy
	// Access, when set, lets the tenant's users hold roles for a while
	// (just-in-time access, access.go); nil: no time-bound grants.
	Access *AccessPolicy
	// Conditional is the tenant's conditional access (conditional.go); nil: the
	// global policies only.
	Conditional *TenantConditional
	// Language is the default language of the tenant's pages when the
	// browser's Accept-Language matches none of realmgate's (package locale).
	Language string
	// Branding is how the tenant's pages look (brand.go); nil: realmgate's
	// own look.
	Branding *Branding
}

// wantsMFA reports whether a client's acr_values ask for multi-factor
// authentication (step-up).
func wantsMFA(acrValues string) bool {
	for _, v := range strings.Fields(acrValues) {
		if v == ACRMFA || v == papeMFA {
			return true
		}
	}
	return false
}

// needsMFA reports whether this sign-in must be multi-factor: the tenant's
// policy or the client's step-up request.
func (s *Server) needsMFA(tenant string, ar *authRequest) bool {
	return ar.RequireMFA || s.dir().policies[tenant].RequireMFA
}

// mfaACRValues is what to send to idp to ask for multi-factor authentication.
func (idp IdP) mfaACRValues() []string {
	if len(idp.MFAACRValues) > 0 {
		return idp.MFAACRValues
	}
	return DefaultMFAACRValues
}
