package broker

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
)

// SAML Single Logout (SAML Profiles §4.4) at <issuer>/saml/<idp>/slo.
//
// SP-initiated: when a user signs out of realmgate and the IdP opted in
// (IdP.UpstreamLogout), upstreamLogout sends the browser to the IdP with a
// LogoutRequest whose RelayState is a fresh state; the state's record keeps
// the request ID and the final target. The IdP's LogoutResponse comes back
// here, is validated against that request ID (once), and the browser goes on.
//
// IdP-initiated: a LogoutRequest from the IdP (signed, fresh, never seen
// before) ends the broker sessions it names, by SessionIndex (the upstream
// sid index) or else by NameID (the upstream subject index), with the same
// back-channel notifications as any logout, and the browser goes back to
// the IdP with a Success LogoutResponse, even when no session matched
// (SAML Core §3.7.3.2: the principal is logged out of this SP either way).

// samlLogoutState is what an SP-initiated SAML logout keeps with its state.
type samlLogoutState struct {
	IdP       string `json:"idp"`
	RequestID string `json:"rid"`
	Target    string `json:"to,omitempty"`
}

// maxRelayState bounds the RelayState we read (SAML Bindings §3.4.3: 80 bytes
// is all an IdP must keep; ours are 43).
const maxRelayState = 256

// samlUpstreamLogout starts an SP-initiated SAML logout, returning the IdP
// URL to send the browser to; false when the IdP has no SLO or it failed
// (the user is signed out of realmgate either way).
func (s *Server) samlUpstreamLogout(c echo.Context, idp IdP, sl providers.SingleLogout, sess *session, target string) (string, bool) {
	ctx := c.Request().Context()
	state := randomToken(tokenBytes)
	to, reqID, err := sl.LogoutRequestURL(ctx, sess.Identity, state)
	if err != nil || to == "" {
		if err != nil {
			s.log.Warn("saml upstream logout unavailable", "request_id", requestID(c), "idp", idp.ID, "err", err)
		}
		return "", false
	}
	rec := samlLogoutState{IdP: idp.ID, RequestID: reqID, Target: target}
	if err := s.putJSON(ctx, s.keyer.key("sl", state), rec, upstreamLoginTTL); err != nil {
		s.log.Warn("saml upstream logout state", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return "", false
	}
	return to, true
}

// samlSLO is the Single Logout endpoint (GET: HTTP-Redirect binding, POST:
// HTTP-POST binding): a SAMLResponse finishes an SP-initiated logout, a
// SAMLRequest starts an IdP-initiated one.
func (s *Server) samlSLO(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	idp, ok := s.samlIdP(c)
	var sl providers.SingleLogout
	if ok {
		sl, ok = providers.As[providers.SingleLogout](idp.Connector)
	}
	if !ok {
		return s.renderError(c, http.StatusNotFound, "Unknown sign-in provider", "This sign-out address is not configured.")
	}
	req := c.Request()
	v := req.URL.Query()
	if req.Method == http.MethodPost {
		if err := req.ParseForm(); err != nil {
			return s.renderError(c, http.StatusBadRequest, "Invalid sign-out message", "The message from your organization's sign-in could not be read.")
		}
		v = req.PostForm
	}
	relay := v.Get("RelayState")
	if len(v["RelayState"]) > 1 || len(relay) > maxRelayState {
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-out message", "The message carries an invalid RelayState.")
	}
	switch {
	case v.Has("SAMLResponse") && !v.Has("SAMLRequest"):
		return s.samlLogoutResponse(c, idp, sl, relay)
	case v.Has("SAMLRequest") && !v.Has("SAMLResponse"):
		return s.samlLogoutRequest(c, idp, sl, relay)
	}
	return s.renderError(c, http.StatusBadRequest, "Invalid sign-out message", "The message carries neither a SAML request nor a SAML response.")
}

// samlLogoutResponse finishes an SP-initiated logout: the state is consumed
// once, must belong to this IdP, and the response must answer its request.
func (s *Server) samlLogoutResponse(c echo.Context, idp IdP, sl providers.SingleLogout, relay string) error {
	ctx := c.Request().Context()
	at := attrs{tenant: idp.Tenant, idp: idp.ID}
	if relay == "" {
		return s.signedOut(c)
	}
	var rec samlLogoutState
	if err := s.takeJSON(ctx, s.keyer.key("sl", relay), &rec); errors.Is(err, ErrNotFound) {
		return s.signedOut(c) // already used or expired: nothing to continue to
	} else if err != nil {
		return err
	}
	if rec.IdP != idp.ID {
		s.auditEvent(c, "refused", "saml_logout_response_wrong_idp", at)
		return s.renderError(c, http.StatusBadRequest, "Sign-out could not be confirmed",
			"The sign-out answer came from another identity provider. You are signed out of this service.")
	}
	if err := sl.HandleLogoutResponse(ctx, c.Request(), rec.RequestID); err != nil {
		s.log.Warn("saml logout response refused", "request_id", requestID(c), "idp", idp.ID, "err", err)
		s.auditEvent(c, "refused", "saml_logout_response_invalid", at)
		return s.renderErrorf(c, http.StatusBadRequest, "Sign-out could not be confirmed",
			"%s did not confirm the sign-out. You are signed out of this service; close your browser to end the session at %s.", idp.Name, idp.Name)
	}
	if rec.Target == "" {
		return s.signedOut(c)
	}
	return c.Redirect(redirectStatus(c), rec.Target)
}

// samlLogoutRequest handles an IdP-initiated logout.
func (s *Server) samlLogoutRequest(c echo.Context, idp IdP, sl providers.SingleLogout, relay string) error {
	ctx := c.Request().Context()
	at := attrs{tenant: idp.Tenant, idp: idp.ID}
	lc, err := sl.HandleLogoutRequest(ctx, c.Request())
	if err != nil {
		s.log.Warn("saml logout request refused", "request_id", requestID(c), "idp", idp.ID, "err", err)
		if errors.Is(err, providers.ErrUnavailable) {
			return s.renderError(c, http.StatusServiceUnavailable, "Try again", "The sign-out could not be processed right now.")
		}
		s.auditEvent(c, "refused", "saml_logout_request_invalid", at)
		return s.renderErrorf(c, http.StatusBadRequest, "Invalid sign-out request",
			"The sign-out request from %s failed validation.", idp.Name)
	}
	if err := s.endUpstreamSessions(c, idp, lc.Subject, lc.SID, "saml_idp_initiated"); err != nil {
		return err
	}
	// The browser that brings the request is the user's: drop its cookie too.
	s.setCookie(c, sessionCookie, "", -1)
	to, err := sl.LogoutResponseURL(ctx, lc.JTI, relay)
	if err != nil {
		s.log.Warn("saml logout response", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return s.signedOut(c)
	}
	return c.Redirect(redirectStatus(c), to)
}

// endUpstreamSessions ends the broker session of the upstream session sid
// at idp, or, when no sid names one, every session of the upstream subject
// sub (upstreamSessionKeys); the back-channel endpoint and SAML single
// logout both use it.
func (s *Server) endUpstreamSessions(c echo.Context, idp IdP, sub, sid, reason string) error {
	ctx := c.Request().Context()
	keys, indexes, err := s.upstreamSessionKeys(ctx, idp.ID, sub, sid)
	if err != nil {
		return err
	}
	for _, key := range keys {
		var sess session
		if err := s.getJSON(ctx, key, &sess); errors.Is(err, ErrNotFound) {
			continue // ended or expired meanwhile
		} else if err != nil {
			return err
		}
		sess.key = key
		if err := s.logoutSession(ctx, &sess); err != nil {
			return err
		}
		s.auditEvent(c, "logout", reason, attrs{tenant: sess.Tenant, idp: idp.ID, subject: sess.Subject})
		s.samlBackchannelLogout(c, &sess) // the session's SAML apps, without the browser (samlidp_soap.go)
	}
	for _, k := range indexes {
		_ = s.store.Delete(ctx, k)
	}
	return nil
}
