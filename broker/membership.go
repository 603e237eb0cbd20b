package broker

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
)

// Membership lets an identity from one tenant's IdP act in another tenant
// (a partner's consultant, say). It is configuration by the target tenant,
// never a hint: S50/S51 hold for everyone else.
type Membership struct {
	// Tenant is the tenant the identity may act in.
	Tenant string
	// IdP is the IdP that must have authenticated the identity.
	IdP string
	// Subject is the upstream subject; or Email, a verified email asserted
	// by that IdP. One of the two is required.
	Subject, Email string
	// Reauth makes switching into Tenant re-authenticate at the IdP instead
	// of reusing the SSO session.
	Reauth bool
}

// memberships returns the memberships of the identity ident signed in through idp.
func (d *directory) memberships(idp string, ident *providers.Identity) []Membership {
	var out []Membership
	for _, m := range d.members[idp] {
		switch {
		case m.Subject != "" && m.Subject == ident.Subject:
		case m.Email != "" && ident.EmailVerified && sameEmail(m.Email, ident.Email): // S74
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// tenantChoice is one entry of the tenant picker.
type tenantChoice struct{ ID, Name string }

// activeTenant decides which tenant the sign-in is for: the home tenant (the
// IdP's), or one the identity is a member of, chosen with the `tenant`
// parameter or on the picker page. handled means a response was written.
func (s *Server) activeTenant(c echo.Context, ar *authRequest, sess *session) (tenant string, handled bool, err error) {
	d := s.dir()
	cl := s.dir().clients[ar.ClientID]
	var cands []tenantChoice
	reauth := map[string]bool{}
	add := func(id string) {
		if cl == nil || !cl.allows(id, sess.IdP) || slices.ContainsFunc(cands, func(t tenantChoice) bool { return t.ID == id }) {
			return
		}
		name := id
		if t, ok := d.resolver.Tenant(id); ok && t.Name != "" {
			name = t.Name
		}
		cands = append(cands, tenantChoice{ID: id, Name: name})
	}
	add(sess.Tenant)
	for _, m := range d.memberships(sess.IdP, &sess.Identity) {
		add(m.Tenant)
		reauth[m.Tenant] = reauth[m.Tenant] || m.Reauth
	}
	switch {
	case ar.Tenant != "":
		if !slices.ContainsFunc(cands, func(t tenantChoice) bool { return t.ID == ar.Tenant }) {
			s.auditEvent(c, "refused", "not_a_member", attrs{client: ar.ClientID, tenant: ar.Tenant, idp: sess.IdP, subject: sess.Subject})
			return "", true, s.authError(c, ar, oauth.New(oauth.AccessDenied, "the user cannot sign in to the requested tenant"))
		}
		tenant = ar.Tenant
	case len(cands) == 1:
		tenant = cands[0].ID
	case len(cands) == 0:
		s.auditEvent(c, "refused", "tenant_not_allowed", attrs{client: ar.ClientID, tenant: sess.Tenant, idp: sess.IdP})
		return "", true, s.renderError(c, http.StatusForbidden, "Not available",
			"Your organization cannot sign in to this application.")
	case ar.PromptNone:
		return "", true, s.authError(c, ar, oauth.New(oauth.AccountSelectionRequired, "the user must choose an organization"))
	default:
		if ar.fresh {
			ar.FreshSID = sess.SID // the picker's answer completes this fresh sign-in only (S67)
		}
		id, err := s.saveRequest(c, ar)
		if err != nil {
			return "", true, err
		}
		return "", true, s.render(c, http.StatusOK, "tenant", pageData{Title: "Choose an organization",
			Action: s.path("/tenant"), Request: id, Tenants: cands})
	}
	if tenant != sess.Tenant && reauth[tenant] && !ar.fresh {
		if ar.PromptNone {
			return "", true, s.authError(c, ar, oauth.New(oauth.LoginRequired, "the organization requires signing in again"))
		}
		// The target tenant wants a fresh upstream sign-in for its members.
		idp, ok := d.idps[sess.IdP]
		if !ok {
			return "", true, s.expired(c)
		}
		ar.Tenant, ar.ForceLogin = tenant, true
		key, err := s.saveRequestKey(c, ar)
		if err != nil {
			return "", true, err
		}
		return "", true, s.startUpstreamMFA(c, key, ar, idp, sess.Identity.Email, s.needsMFA(tenant, ar))
	}
	return tenant, false, nil
}

// pickTenant takes the tenant picker's answer.
func (s *Server) pickTenant(c echo.Context) error {
	v, err := signInForm(c) // S72: bounded request
	if err == nil {
		err = checkSignInParams(v)
	}
	if err != nil {
		return s.formError(c, "Invalid form", err)
	}
	ar, err := s.loadRequest(c, v.Get("r"))
	if err != nil {
		if isNotFound(err) {
			return s.expired(c)
		}
		return err
	}
	sess, err := s.currentSession(c)
	if err != nil {
		return err
	}
	if sess == nil {
		return s.expired(c)
	}
	ar.Tenant = v.Get("tenant")
	if ar.Tenant == "" {
		return s.renderError(c, http.StatusBadRequest, "Choose an organization", "No organization was chosen.")
	}
	_ = s.store.Delete(c.Request().Context(), s.keyer.key("ar", v.Get("r")))
	// Only the session that authenticated for this request makes it fresh;
	// finish decides again, so a request that wants a fresh or stronger
	// authentication is never completed from an older session (S67).
	ar.fresh = ar.FreshSID != "" && ar.FreshSID == sess.SID
	return s.finish(c, ar, sess)
}

// tenantFor is the tenant a request would sign in to from this session: the
// one it names, or the session's home tenant.
func (sess *session) tenantFor(ar *authRequest) string {
	if ar.Tenant != "" {
		return ar.Tenant
	}
	return sess.Tenant
}
