package broker

// Back-channel single logout of SAML apps (docs/saml-idp.md).
//
// The front-channel chain of samlidp_slo.go needs the user's browser. When
// a session ends without it (an upstream IdP's back-channel logout, or its
// SAML IdP-initiated logout, which returns the browser to that IdP), the
// session's SAML apps are told server to server where they can be: an app
// that registered a SOAP SingleLogoutService (clients[].saml.slo.soap_url)
// gets a signed LogoutRequest over the SOAP binding (SAML Bindings §3.2),
// POSTed through the outbound HTTP client (the loopback and private-address
// policy of internal/outbound), off the request path on the back-channel
// logout queue with its retries. An app with front-channel SLO only is not
// told: its own session there lives until it expires or the user next
// comes through realmgate; the audit records each case.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/samlidp"
)

// errSOAPRetry marks a SOAP delivery worth retrying (transport, 5xx).
var errSOAPRetry = errors.New("saml soap logout: not delivered")

// samlBackchannelLogout tells sess's SAML apps, without the browser, that
// the session ended (after logoutSession). Its participants are taken, so
// no later chain tells them again.
func (s *Server) samlBackchannelLogout(c echo.Context, sess *session) {
	ctx := c.Request().Context()
	parts := s.samlParticipants(ctx, sess.SID)
	if len(parts) == 0 {
		return
	}
	idp, err := s.samlIdentityProvider(ctx)
	if err != nil {
		s.log.Warn("saml idp: back-channel logout: no signing key", "request_id", requestID(c), "err", err)
		return
	}
	for _, p := range parts {
		cl := s.dir().clients[p.Client]
		if cl == nil || cl.SAML == nil {
			continue
		}
		at := attrs{client: cl.ID, tenant: sess.Tenant, idp: sess.IdP, subject: sess.Subject}
		if cl.SAML.SLO == nil || cl.SAML.SLO.SOAPURL == "" {
			// Front-channel logout needs the browser, which is not here.
			s.auditEvent(c, "logout", "saml_app_not_notified", at)
			continue
		}
		body, id, err := idp.SOAPLogoutRequest(cl.SAML, p.NameID, p.SessionIndex)
		if err != nil {
			s.log.Warn("saml idp: SOAP logout request", "request_id", requestID(c), "client", cl.ID, "err", err)
			continue
		}
		sp := cl.SAML
		job := logoutJob{client: cl.ID, uri: sp.SLO.SOAPURL,
			send: func(ctx context.Context, hc *http.Client) error {
				return s.deliverSOAPLogout(ctx, hc, idp, sp, body, id)
			}}
		select {
		case s.logouts.jobs <- job:
			s.auditEvent(c, "logout", "saml_soap_logout_sent", at)
		default:
			s.log.Error("back-channel logout queue full; SAML SOAP logout dropped", "client", cl.ID)
		}
	}
}

// deliverSOAPLogout POSTs one SOAP LogoutRequest (SAML Bindings §3.2.3)
// and reads the LogoutResponse. Only a failure to deliver is retried (the
// same message, within its validity); an answer, confirming or not, ends
// the job and is logged.
func (s *Server) deliverSOAPLogout(ctx context.Context, hc *http.Client, idp *samlidp.IdP, sp *samlidp.SP, body []byte, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sp.SLO.SOAPURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", samlidp.SOAPContentType)
	req.Header.Set("SOAPAction", samlidp.SOAPAction)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", errSOAPRetry, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, samlidp.MaxSOAPResponse+1))
	if err != nil {
		return fmt.Errorf("%w: %w", errSOAPRetry, err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusInternalServerError {
		return fmt.Errorf("%w: status %d", errSOAPRetry, resp.StatusCode)
	}
	// 200, or 500 with a SOAP Fault (SOAP 1.1 §6.2): read the answer.
	status, err := idp.ReadSOAPLogoutResponse(answer, sp, id)
	switch {
	case err != nil:
		s.log.Warn("saml idp: SOAP logout not confirmed", "entity_id", sp.EntityID, "status", resp.StatusCode, "err", err)
	case status != samlidp.StatusSuccess:
		s.log.Warn("saml idp: SOAP logout not confirmed", "entity_id", sp.EntityID, "saml_status", status)
	default:
		s.log.Info("saml idp: SOAP logout confirmed", "entity_id", sp.EntityID)
	}
	return nil
}
