package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/store"
	"github.com/realmgate/realmgate/transform"
)

// callback receives the upstream IdP's answer at <issuer>/callback/<idp>
// (OIDC and OAuth 2.0: the state parameter).
func (s *Server) callback(c echo.Context) error {
	idp, ok := s.dir().idps[c.Param("idp")]
	if !ok {
		return s.renderError(c, http.StatusNotFound, "Unknown sign-in provider", "This sign-in address is not configured.")
	}
	return s.upstreamReturn(c, idp, c.FormValue("state"))
}

// upstreamReturn completes an upstream login identified by state: it
// consumes the login state, checks that the answer arrived on the chosen
// IdP's endpoint and in the browser that started it, lets the connector
// validate the response, and finishes the sign-in. Protocol-specific routes
// (the OIDC callback, the SAML ACS) extract the state and call it.
func (s *Server) upstreamReturn(c echo.Context, idp IdP, state string) error {
	ctx := c.Request().Context()
	setPageTenant(c, idp.Tenant) // pages from here on are the IdP's tenant's
	if state == "" || len(state) > 256 {
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-in response",
			"The response from your organization's sign-in is missing its state.")
	}
	if err := s.limitCallback(c, idp.Tenant, idp.ID); err != nil { // S60
		return err
	}
	var ul upstreamLogin
	// Single use: the state is consumed whatever happens next.
	if err := s.takeUpstream(ctx, state, &ul); errors.Is(err, ErrNotFound) {
		s.auditEvent(c, "refused", "unknown_state", attrs{idp: idp.ID, tenant: idp.Tenant})
		return s.expired(c)
	} else if err != nil {
		return err
	}
	// S22: the answer must come back on the callback of the IdP we chose.
	if ul.IdP != idp.ID {
		s.auditEvent(c, "refused", "idp_mixup", attrs{idp: idp.ID, tenant: idp.Tenant})
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-in response",
			"The response came from a different sign-in provider than the one you were sent to.")
	}
	// S21: the state belongs to the browser that started the login.
	if !s.boundToBrowser(c, ul.Binding) {
		s.auditEvent(c, "refused", "state_not_bound_to_browser", attrs{idp: idp.ID, tenant: idp.Tenant})
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-in response",
			"This sign-in was started in another browser. Start again from the application.")
	}
	var ar authRequest
	if ul.AR != nil { // the request as the upstream login started (pending.go)
		ar = *ul.AR
	} else if err := s.getRequest(ctx, ul.Request, &ar); errors.Is(err, ErrNotFound) { // requestcodec.go
		return s.expired(c)
	} else if err != nil {
		return err
	}
	setPageClient(c, ar.ClientID)
	switch {
	case ar.Test != nil: // a test sign-in: verified and explained, nothing issued (testsignin.go)
		return s.testSignInReturn(c, idp, &ar, &ul, state)
	case idp.Pending: // pendingidp.go
		return s.pendingRefused(c, ar.ClientID, idp)
	}
	lr := providers.LoginRequest{State: state, Nonce: ul.Nonce, CodeVerifier: ul.Verifier,
		CallbackURL: s.CallbackURL(idp.ID), LoginHint: ul.Hint, ForceLogin: ul.Force}
	ident, err := idp.Connector.HandleCallback(ctx, lr, ul.Data, c.Request())
	if err != nil {
		s.log.Warn("upstream callback", "request_id", requestID(c), "idp", idp.ID, "err", err)
		at := attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID}
		switch {
		case errors.Is(err, providers.ErrAccessDenied):
			s.auditEvent(c, "abort", "upstream_access_denied", at)
			return s.authError(c, &ar, oauth.New(oauth.AccessDenied, "the identity provider did not sign the user in"))
		case errors.Is(err, providers.ErrUnavailable):
			s.auditEvent(c, "failure", "upstream_unavailable", at)
			return s.renderErrorf(c, http.StatusBadGateway, "Your organization's sign-in is not responding",
				"%s did not answer in time. Please try again in a few minutes.", idp.Name)
		default:
			s.auditEvent(c, "failure", "upstream_invalid_response", at)
			return s.renderErrorf(c, http.StatusBadRequest, "Sign-in could not be verified",
				"The response from %s failed validation, so you were not signed in.", idp.Name)
		}
	}
	if (s.needsMFA(idp.Tenant, &ar) || (ar.Tenant != "" && s.needsMFA(ar.Tenant, &ar))) && !providers.MFA(ident.AMR) {
		at := attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID}
		if !ul.MFA {
			// Ask the IdP again, this time for multi-factor authentication.
			c.Set(ctxStartReason, "mfa_step_up") // startUpstreamMFA writes the one event (S61)
			return s.startUpstreamMFA(c, ul.Request, &ar, idp, ul.Hint, true)
		}
		s.auditEvent(c, "denied", "mfa_required", at)
		return s.renderErrorf(c, http.StatusForbidden, "Multi-factor sign-in required",
			"Your organization requires multi-factor authentication, and %s did not perform it. Set up a second factor with your IT department, then try again.", idp.Name)
	}
	// S50: the tenant is the one that owns the IdP that authenticated the
	// user; nothing typed or hinted takes part.
	var forcedAt time.Time
	if ul.Force {
		forcedAt = ul.Created
	}
	sess := s.identitySession(idp, ident, forcedAt)
	// The tenant directory's record of the user: found, matched or created.
	u, err := s.signInUser(c, idp, &ident, sess.Subject)
	switch {
	case errors.Is(err, errNotProvisioned):
		s.auditEvent(c, "refused", "user_not_provisioned", attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID, subject: sess.Subject})
		return s.userRefused(c, err)
	case err != nil:
		return err
	case u != nil:
		sess.UID, sess.UGen, sess.user, sess.userRead = u.ID, u.Generation, u, true
		if !u.Active() { // the next sign-in of a deprovisioned user: a clear page
			s.auditEvent(c, "refused", refusal(errUserInactive), attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID, subject: sess.Subject})
			return s.userRefused(c, errUserInactive)
		}
	}
	if cl := s.dir().clients[ar.ClientID]; cl == nil || !cl.ThirdParty {
		sess.Clients = []string{ar.ClientID} // a third-party client is added once allowed (consent.go)
	}
	// The auth request's consumption, the session, its index and the code
	// are one batch (pending.go): a request already consumed (or expired)
	// stops it before anything is written.
	s.beginPending(c, false)
	ctx = c.Request().Context()
	stage(ctx, false, store.Op{Kind: store.OpTake, Key: ul.Request}, stagedLimit{})
	if err := s.newSession(ctx, c, sess); err != nil {
		return err
	}
	s.indexSession(ctx, sess)
	ar.fresh = true
	s.remember(c, idp.ID)
	return s.finish(c, &ar, sess)
}

// subject is the stable, opaque sub for tenant + IdP + upstream subject.
func (s *Server) subject(tenant, idp, upstream string) string {
	h := sha256.New()
	for _, p := range []string{"realmgate-sub-v1", s.cfg.Issuer, tenant, idp, upstream} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:24])
}

// finish runs the tenant's rules for this client, issues a single-use code
// and sends the browser back to the client with code, state and iss.
func (s *Server) finish(c echo.Context, ar *authRequest, sess *session) error {
	if ar.Test != nil { // a test sign-in never gets a code (testsignin.go)
		return s.expired(c)
	}
	ctx := c.Request().Context()
	tenant, handled, err := s.activeTenant(c, ar, sess)
	if handled || err != nil {
		return err
	}
	at := attrs{client: ar.ClientID, tenant: tenant, idp: sess.IdP, subject: sess.Subject}
	if !sess.userRead && sess.UID != "" { // SSO from a session: the record as it is now
		u, err := s.loadUser(ctx, sess)
		if err != nil {
			return err
		}
		sess.user, sess.userRead = u, true
	}
	d := s.dir()
	// Conditional access (conditional.go): the policies' requirements join the
	// request's before the decision below; a deny ends here.
	ac, err := s.evaluateAccess(c, ar, sess, tenant)
	if err != nil {
		return err
	}
	if ac != nil {
		at.risk = ac.sig.Level.String()
		if ac.Deny {
			return s.accessDenied(c, ar, sess, tenant, ac, at)
		}
		applyAccess(ar, ac)
	}
	// The one authorization decision (S66, S67), whichever path got here:
	// a fresh sign-in, SSO from a session, the tenant picker.
	switch err := d.authorizeFor(s.now(), d.clients[ar.ClientID], tenant, sessionSubject(sess), strengthOf(ar, ar.fresh)); {
	case err == nil:
	case errors.Is(err, errNeedsMFA) || errors.Is(err, errNeedsLogin):
		mfa := errors.Is(err, errNeedsMFA)
		if ar.PromptNone {
			if mfa {
				return s.authError(c, ar, oauth.New(oauth.InteractionRequired, "multi-factor authentication is required"))
			}
			return s.authError(c, ar, oauth.New(oauth.LoginRequired, "a fresh sign-in is required"))
		}
		if ar.fresh && !mfa {
			// The IdP has just authenticated the user and still did not
			// meet max_age: asking again would loop.
			s.auditEvent(c, "denied", "max_age_not_met", at)
			return s.authError(c, ar, oauth.New(oauth.LoginRequired, "the identity provider did not authenticate the user recently enough"))
		}
		// The session is too weak or too old for this request: the IdP
		// that authenticated the user is asked again (MFA, fresh sign-in).
		idp, ok := d.idps[sess.IdP]
		if !ok {
			return s.expired(c)
		}
		ar.Tenant = tenant
		if !mfa {
			ar.ForceLogin = true // prompt=login / ForceAuthn, and max_age when asked
		}
		key, err := s.saveRequestKey(c, ar)
		if err != nil {
			return err
		}
		if ac != nil && (ac.MFA || ac.FreshLogin || ac.MaxAge > 0) {
			c.Set(ctxStartReason, "policy_step_up") // the one "started" event says why (S61)
		}
		return s.startUpstreamMFA(c, key, ar, idp, sess.Identity.Email, mfa || s.needsMFA(tenant, ar))
	case errors.Is(err, errUserInactive) || errors.Is(err, errUserRevoked):
		s.auditEvent(c, "refused", refusal(err), at)
		if errors.Is(err, errUserRevoked) && sess.key != "" {
			// The session predates a revocation: end it and sign in again.
			_ = s.store.Delete(ctx, sess.key)
			s.setCookie(c, sessionCookie, "", -1)
		}
		return s.userRefused(c, err)
	default:
		s.auditEvent(c, "refused", refusal(err), at)
		return s.authError(c, ar, oauth.New(oauth.AccessDenied, "the user cannot sign in to this application"))
	}
	claims, err := s.claimsFor(ctx, ar.ClientID, sess, tenant)
	if errors.Is(err, ErrUnavailable) { // a store read (time-bound grants, access.go): 503
		return err
	}
	if err != nil {
		var denied *transform.DeniedError
		if errors.As(err, &denied) {
			s.auditEvent(c, "denied", "rule: "+denied.Rule, at)
			return s.renderError(c, http.StatusForbidden, "Access denied", denied.Message)
		}
		s.log.Error("claims rules", "request_id", requestID(c), "tenant", sess.Tenant, "err", err)
		s.auditEvent(c, "failure", "rule_error", at)
		return s.renderError(c, http.StatusForbidden, "Sign-in could not be completed",
			"Your organization's sign-in rules could not be evaluated, so you were not signed in. Contact your administrator.")
	}
	// A third-party client is asked for first: until the user allows it,
	// the session is not the client's (no logout token, no index entry).
	if handled, err := s.consentGate(c, ar, sess, tenant, at); handled { // consent.go
		return err
	}
	if !slices.Contains(sess.Clients, ar.ClientID) && sess.key != "" {
		sess.Clients = append(sess.Clients, ar.ClientID)
		if err := s.putJSON(ctx, sess.key, sess, s.cfg.SessionLifetime); err != nil {
			return err
		}
		// Deleting this client ends the session (deletion.go); best effort.
		if err := s.addToIndexes(ctx, s.scopeAdds(sess, ar.ClientID)[1:]); err != nil {
			s.log.Warn("index session under its client", "err", err)
		}
	}
	if err := s.recordSubject(ctx, tenant, sess); err != nil {
		return err
	}
	capTTL := s.accessAdmitted(c, ar, sess, tenant, ac, at)
	if ar.SAML != nil {
		return s.samlAssert(c, ar, sess, tenant, claims, at) // samlidp.go
	}
	origin := &session{Tenant: sess.Tenant, IdP: sess.IdP, Subject: sess.Subject, Identity: sess.Identity, AuthTime: sess.AuthTime,
		UID: sess.UID, UGen: sess.UGen}
	g := grant{ClientID: ar.ClientID, RedirectURI: ar.RedirectURI, Challenge: ar.CodeChallenge, Nonce: ar.Nonce,
		Scopes: ar.Scopes, SID: sess.SID, Subject: sess.Subject, Tenant: tenant, IdP: sess.IdP,
		AuthTime: sess.AuthTime, Claims: claims, Origin: origin, Created: s.now(), JKT: ar.DPoPJKT}
	g.TI, g.HI = d.incarnations(tenant, sess.IdP)
	if ac != nil {
		g.ACRS, g.Cap = ac.ACRS, capTTL
		if ta := s.tenantConditional(tenant); ta != nil && ta.RiskClaim {
			g.Risk = ac.sig.Level.String()
		}
	}
	if ar.Device != "" {
		// The session and its indexes go first; the person then confirms
		// the device (device.go).
		if handled, err := s.flush(c); handled {
			return err
		}
		return s.deviceConfirm(c, ar, g, at)
	}
	code, key, rec, err := s.newCode(&g) // redeem.go
	if err != nil {
		return err
	}
	if err := s.putRecord(ctx, false, key, rec, codeTTL); err != nil {
		return err
	}
	if handled, err := s.flush(c); handled { // with the callback's batch (pending.go)
		return err
	}
	s.auditEvent(c, "success", "", at)
	// RFC 9207 §2: iss in every authorization response (S05).
	q := url.Values{"code": {code}, "iss": {s.cfg.Issuer}}
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	return c.Redirect(redirectStatus(c), appendQuery(ar.RedirectURI, q))
}

// claimsFor runs the claims pipeline (claims.Pipeline: standard mapping,
// the active tenant's rules, the email guard) for the client. The email
// guard (S52) uses the home tenant: the IdP vouches only for its own
// tenant's domains. The admin API's dry run and `realmgate rules test` run
// the same pipeline.
func (s *Server) claimsFor(ctx context.Context, clientID string, sess *session, tenant string) (map[string]any, error) {
	out, err := s.ruleClaims(ctx, clientID, sess, tenant)
	if err != nil || s.dir().policies[tenant].Access == nil {
		return out, err
	}
	// Time-bound role grants (access.go) add their roles until they expire.
	roles, err := s.activeRoles(ctx, tenant, sess.Subject)
	if err != nil {
		return nil, err
	}
	addRoles(out, roles)
	return out, nil
}

// ruleClaims is claimsFor without time-bound role grants: the pipeline only.
func (s *Server) ruleClaims(ctx context.Context, clientID string, sess *session, tenant string) (map[string]any, error) {
	d := s.dir()
	var user map[string]any
	if sess.user != nil {
		user = sess.user.RuleView()
	}
	return claims.Pipeline{Rules: d.rules[tenant], Domains: d.resolver}.Apply(ctx, claims.Request{
		Identity: sess.Identity, Home: sess.Tenant, Tenant: tenant, IdP: sess.IdP, Client: clientID, User: user})
}
