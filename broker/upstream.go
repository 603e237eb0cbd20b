package broker

// This file holds the start of the upstream leg: state, nonce and PKCE
// kept server-side, the rate limits of a start (S60), and the redirect to
// the IdP.

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
)

// startUpstream sends the browser to the IdP with fresh state, nonce and
// PKCE verifier kept server-side and bound to this browser (S21, S22).
func (s *Server) startUpstream(c echo.Context, id string, ar *authRequest, idp IdP, hint string) error {
	return s.startUpstreamMFA(c, s.keyer.key("ar", id), ar, idp, hint, s.needsMFA(idp.Tenant, ar))
}

// startUpstreamMFA starts the upstream login, asking the IdP for
// multi-factor authentication when mfa is set. arKey is the store key of
// the pending auth request.
func (s *Server) startUpstreamMFA(c echo.Context, arKey string, ar *authRequest, idp IdP, hint string, mfa bool) error {
	if idp.Pending && ar.Test == nil { // pendingidp.go: test sign-ins only
		return s.pendingRefused(c, ar.ClientID, idp)
	}
	ctx := c.Request().Context()
	lr := providers.LoginRequest{
		State: randomToken(tokenBytes), Nonce: randomToken(tokenBytes), CodeVerifier: randomToken(tokenBytes),
		CallbackURL: s.CallbackURL(idp.ID), LoginHint: hint, ForceLogin: ar.ForceLogin,
	}
	if ar.MaxAge != nil && *ar.MaxAge > 0 {
		lr.MaxAge = time.Duration(*ar.MaxAge) * time.Second // S67: max_age goes upstream
	}
	if mfa {
		lr.ACRValues = idp.mfaACRValues()
	}
	if err := s.limitStart(c, ar.ClientID, idp.Tenant, idp.ID); err != nil { // S60
		return err
	}
	target, data, err := idp.Connector.LoginURL(ctx, lr)
	if err != nil {
		s.log.Error("upstream login url", "request_id", requestID(c), "idp", idp.ID, "err", err)
		s.auditEvent(c, "failure", "upstream_unavailable", attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID})
		return s.renderErrorf(c, http.StatusBadGateway, "Your organization's sign-in is not responding",
			"%s could not be reached. Please try again in a few minutes.", idp.Name)
	}
	ul := upstreamLogin{Request: arKey, IdP: idp.ID, Nonce: lr.Nonce, Verifier: lr.CodeVerifier, Data: data,
		Binding: ar.Binding, Hint: hint, Force: ar.ForceLogin, MFA: mfa, Created: s.now(), AR: ar}
	b := encodeUpstream(&ul) // upstreamcodec.go
	if s.cfg.JSONRecords {   // the form earlier releases read (store.record_format: json)
		var err error
		if b, err = json.Marshal(&ul); err != nil {
			return err
		}
	}
	if err := s.putRecord(ctx, true, s.keyer.key("ul", lr.State), b, upstreamLoginTTL); err != nil {
		return err
	}
	if handled, err := s.flush(c); handled { // the step's counters and records (pending.go)
		return err
	}
	if ar.Test != nil { // testsignin.go
		s.auditEvent(c, auditTestStarted, "", attrs{tenant: idp.Tenant, idp: idp.ID, actor: ar.Test.Actor})
	} else {
		s.auditEvent(c, "started", startReason(c), attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID})
	}
	return c.Redirect(redirectStatus(c), target)
}
