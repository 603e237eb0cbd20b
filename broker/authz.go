package broker

import (
	"context"
	"errors"
	"time"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/users"
)

// The reasons the authorization decision refuses. Each path that mints a code
// or a token translates them into its own protocol's answer at the edge.
var (
	// errClientTenant: the receiving client may not have users of this tenant
	// (allowed_tenants).
	errClientTenant = errors.New("broker: the client may not receive this tenant")
	// errClientIdP: the receiving client may not have users of this IdP
	// (allowed_idps).
	errClientIdP = errors.New("broker: the client may not receive users of this identity provider")
	// errGone: the tenant, the IdP, its ownership by the tenant, or the
	// membership that admitted the user no longer exists.
	errGone = errors.New("broker: the tenant, identity provider or membership no longer exists")
	// errNeedsMFA: the tenant or the request wants multi-factor
	// authentication the user's authentication did not have.
	errNeedsMFA = errors.New("broker: multi-factor authentication is required")
	// errNeedsLogin: the request wants an authentication fresher than the
	// one at hand (prompt=login, max_age).
	errNeedsLogin = errors.New("broker: a fresh authentication is required")
)

// maxAgeSkew is the clock difference tolerated between the broker and an
// upstream IdP when a fresh upstream authentication is checked against max_age.
const maxAgeSkew = 60 * time.Second

// subjectOf is who is being authorized: the user as the IdP authenticated
// them. A grant's Origin and an SSO session are both one.
type subjectOf struct {
	// idp is the IdP that authenticated the user.
	idp string
	// ident is what the IdP said; nil when it is not known (an
	// impersonation, or a grant written before grants kept their origin),
	// in which case a membership cannot be shown.
	ident *providers.Identity
	// authTime is when the user authenticated upstream; zero if unknown.
	authTime time.Time
	// incarnations, when set, are the incarnations of the tenant and of the
	// home tenant the grant was issued under: both must still be current.
	incarnations *[2]string
	// uid is the user's directory record the session or grant is bound to
	// ("" for none), gen its revocation generation then, and user the
	// record as read now (nil: gone) when read is set. Paths that do not
	// read the record (userinfo, introspection, exchange: access tokens,
	// whose session a revocation ends) leave read unset.
	uid  string
	gen  int64
	user *users.User
	read bool
}

// strength is what an interactive request asks of the authentication; the
// zero value asks nothing (refresh, exchange).
type strength struct {
	// mfa: the request's step-up (acr_values).
	mfa bool
	// force: prompt=login or max_age=0; only a fresh upstream
	// authentication satisfies it.
	force bool
	// maxAge is the request's max_age in seconds; negative: none.
	maxAge int
	// fresh: the user authenticated upstream during this request.
	fresh bool
}

// strengthOf is the strength an auth request asks for; fresh says whether
// the user just authenticated upstream for it.
func strengthOf(ar *authRequest, fresh bool) strength {
	st := strength{mfa: ar.RequireMFA, force: ar.ForceLogin, maxAge: -1, fresh: fresh}
	if ar.MaxAge != nil {
		st.maxAge = *ar.MaxAge
	}
	return st
}

// authorizeFor is the one authorization decision (S66, S67, S68): may the
// client cl receive a token for tenant, for the user sub authenticated, with
// the strength st asks for, against the directory as it is now? Every path
// that mints a code or a token calls it: a fresh sign-in, SSO from a
// session, the tenant picker, refresh, token exchange (for the target
// audience) and impersonation. It reads only the directory, so it costs no
// store round trip.
func (d *directory) authorizeFor(now time.Time, cl *client, tenant string, sub subjectOf, st strength) error {
	idp, ok := d.idps[sub.idp]
	if !ok || idp.Pending { // a pending IdP serves no end user (pendingidp.go)
		return errGone
	}
	if _, ok := d.resolver.Tenant(tenant); !ok {
		return errGone
	}
	if owner, ok := d.resolver.TenantOfIdP(idp.ID); !ok || owner != idp.Tenant {
		return errGone
	}
	if tenant != idp.Tenant && !d.isMember(tenant, sub) {
		return errGone
	}
	if inc := sub.incarnations; inc != nil &&
		(inc[0] != d.policies[tenant].Incarnation || inc[1] != d.policies[idp.Tenant].Incarnation) {
		return errGone // a tenant deleted and created again under the same id
	}
	// S68: the user's directory record is active and was not revoked since.
	if err := userOf(sub.user, sub.read && sub.uid != "", sub.gen); err != nil {
		return err
	}
	if cl == nil || !cl.allowsTenant(tenant) {
		return errClientTenant
	}
	if cl.idps != nil && !cl.idps[idp.ID] {
		return errClientIdP
	}
	var amr []string
	if sub.ident != nil {
		amr = sub.ident.AMR
	}
	if (st.mfa || d.policies[tenant].RequireMFA) && !providers.MFA(amr) {
		return errNeedsMFA
	}
	if st.force && !st.fresh {
		return errNeedsLogin
	}
	if st.maxAge >= 0 {
		// OIDC Core §3.1.2.1: the End-User must have authenticated within
		// max_age seconds; an unknown authentication time never qualifies.
		limit := time.Duration(st.maxAge) * time.Second
		if st.fresh {
			limit += maxAgeSkew
		}
		if sub.authTime.IsZero() || now.Sub(sub.authTime) > limit {
			return errNeedsLogin
		}
	}
	return nil
}

// isMember reports whether the user of sub is, now, a member of tenant.
func (d *directory) isMember(tenant string, sub subjectOf) bool {
	if sub.ident == nil {
		return false
	}
	for _, m := range d.memberships(sub.idp, sub.ident) {
		if m.Tenant == tenant {
			return true
		}
	}
	return false
}

// sessionSubject is the subject an SSO session authenticated.
func sessionSubject(sess *session) subjectOf {
	return subjectOf{idp: sess.IdP, ident: &sess.Identity, authTime: sess.AuthTime, uid: sess.UID, gen: sess.UGen, user: sess.user, read: sess.userRead}
}

// grantSubject is the subject a grant was issued for.
func grantSubject(g *grant) subjectOf {
	inc := &[2]string{g.TI, g.HI}
	if g.Origin == nil {
		return subjectOf{idp: g.IdP, authTime: g.AuthTime, incarnations: inc}
	}
	return subjectOf{idp: g.Origin.IdP, ident: &g.Origin.Identity, authTime: g.Origin.AuthTime, incarnations: inc,
		uid: g.Origin.UID, gen: g.Origin.UGen, user: g.Origin.user, read: g.Origin.userRead}
}

// incarnations returns the current incarnations of tenant and of the
// tenant owning idp, as a grant records them.
func (d *directory) incarnations(tenant, idp string) (ti, hi string) {
	return d.policies[tenant].Incarnation, d.policies[d.idps[idp].Tenant].Incarnation
}

// refusal is the audit reason for a refused decision.
func refusal(err error) string {
	switch {
	case errors.Is(err, errClientTenant):
		return "tenant_not_allowed"
	case errors.Is(err, errClientIdP):
		return "idp_not_allowed"
	case errors.Is(err, errGone):
		return "tenant_idp_or_membership_gone"
	case errors.Is(err, errNeedsMFA):
		return "mfa_required"
	case errors.Is(err, errNeedsLogin):
		return "fresh_login_required"
	case errors.Is(err, errUserInactive):
		return "user_inactive"
	case errors.Is(err, errUserRevoked):
		return "user_revoked"
	}
	return "not_authorized"
}

// subjectTTL is how long a record of a subject issued for a tenant is kept
// after the user's last sign-in: impersonation can act on the user that long.
const subjectTTL = 90 * 24 * time.Hour

// subjectRecord says that realmgate issued a subject for a tenant, and which
// IdP authenticated it.
type subjectRecord struct {
	IdP string `json:"idp"`
}

// subjectKey is the store key of the record of sub issued for tenant.
func (s *Server) subjectKey(tenant, sub string) string {
	return s.keyer.key("su", tenant+"\x00"+sub)
}

// recordSubject remembers, for a tenant that allows impersonation, that its
// tokens carry sess's subject: impersonation acts only on subjects realmgate
// issued for that tenant (S69). Tenants without impersonation cost nothing.
func (s *Server) recordSubject(ctx context.Context, tenant string, sess *session) error {
	if s.dir().policies[tenant].Impersonation == nil {
		return nil
	}
	return s.putJSON(ctx, s.subjectKey(tenant, sess.Subject), subjectRecord{IdP: sess.IdP}, subjectTTL)
}

// issuedSubject returns the record of sub issued for tenant; ErrNotFound
// when realmgate never issued that subject for that tenant.
func (s *Server) issuedSubject(ctx context.Context, tenant, sub string) (subjectRecord, error) {
	var r subjectRecord
	err := s.getJSON(ctx, s.subjectKey(tenant, sub), &r)
	return r, err
}
