package broker

// Single logout with SAML apps (SAML Profiles §4.4), at <issuer>/saml-idp/slo.
//
// Every assertion to a SAML app records the app as a participant of the
// realmgate session (its NameID and SessionIndex). When the session ends
// in the browser, whichever side starts it, the participants are told one
// after another through the browser: realmgate sends each a signed
// LogoutRequest (its registered SLO binding) with a RelayState naming the
// logout chain, the app answers with a LogoutResponse here, and the chain
// moves on. At the end the browser goes where the logout started:
//
//   - an app's LogoutRequest (SP-initiated): the realmgate session ends
//     (OIDC apps get their back-channel logout tokens, logoutSession), the
//     other SAML apps are told, and the app gets its LogoutResponse
//     (Success, or PartialLogout when a participant did not confirm);
//   - realmgate's own logout (/logout, endSession): the SAML apps are told,
//     then the browser continues (to the upstream IdP's logout, the
//     post_logout_redirect_uri, or the signed-out page).
//
// A logout that arrives without the user's browser (an upstream
// back-channel logout) cannot use front-channel logout: the SAML apps that
// registered a SOAP SingleLogoutService are told server to server
// (samlidp_soap.go); the others are not told.

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/samlidp"
)

// samlParticipant is a SAML app that received an assertion in a session.
type samlParticipant struct {
	Client       string `json:"c"`
	NameID       string `json:"n"`
	SessionIndex string `json:"si"`
}

// samlChain is a logout in progress through the session's SAML apps.
type samlChain struct {
	// Remaining are the participants still to tell.
	Remaining []samlParticipant `json:"r,omitempty"`
	// Current is the participant told last and RequestID its LogoutRequest's ID.
	Current   string `json:"cur,omitempty"`
	RequestID string `json:"rid,omitempty"`
	// Partial: a participant did not confirm.
	Partial bool `json:"p,omitempty"`
	// Reply, for an SP-initiated logout: the app that asked, its request's
	// ID and RelayState, to answer at the end.
	Reply      string `json:"to,omitempty"`
	ReplyID    string `json:"tid,omitempty"`
	ReplyRelay string `json:"trs,omitempty"`
	// Target, for realmgate's own logout: where the browser goes at the end.
	Target string `json:"tg,omitempty"`
}

// samlParticipantsKey is the store key of a session's SAML participants.
func (s *Server) samlParticipantsKey(sid string) string { return s.keyer.key("sp", sid) }

// addSAMLParticipant records p in sess and indexes its SessionIndex, so
// an app's LogoutRequest finds the session even without the session
// cookie (a cross-site POST does not carry it).
func (s *Server) addSAMLParticipant(ctx context.Context, sess *session, p samlParticipant) error {
	key := s.samlParticipantsKey(sess.SID)
	var list []samlParticipant
	if err := s.getJSON(ctx, key, &list); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	i := slices.IndexFunc(list, func(x samlParticipant) bool { return x.Client == p.Client })
	if i >= 0 && list[i] == p {
		return nil
	}
	if i >= 0 {
		list[i] = p
	} else {
		list = append(list, p)
	}
	if err := s.putJSON(ctx, key, list, s.cfg.SessionLifetime); err != nil {
		return err
	}
	if sess.key != "" {
		if err := s.store.Put(ctx, s.keyer.key("si", p.SessionIndex), []byte(sess.key), s.cfg.SessionLifetime); err != nil {
			return storeErr("saml session index", err)
		}
	}
	return nil
}

// samlParticipants returns (and forgets) a session's SAML participants.
func (s *Server) samlParticipants(ctx context.Context, sid string) []samlParticipant {
	var list []samlParticipant
	if err := s.takeJSON(ctx, s.samlParticipantsKey(sid), &list); err != nil {
		return nil
	}
	return list
}

// samlAppsLogout starts telling sess's SAML apps that the session ended
// (realmgate's own logout, after logoutSession); at the end the browser
// goes to next ("" for the signed-out page). handled is false when no app
// is to be told.
func (s *Server) samlAppsLogout(c echo.Context, sess *session, next string) (handled bool, err error) {
	parts := s.samlParticipants(c.Request().Context(), sess.SID)
	if len(parts) == 0 {
		return false, nil
	}
	return true, s.samlChainNext(c, randomToken(tokenBytes), &samlChain{Remaining: parts, Target: next})
}

// samlChainNext tells the next participant that has a SingleLogoutService,
// or, when none is left, ends the chain.
func (s *Server) samlChainNext(c echo.Context, state string, ch *samlChain) error {
	ctx := c.Request().Context()
	idp, err := s.samlIdentityProvider(ctx)
	if err != nil {
		return err
	}
	for len(ch.Remaining) > 0 {
		p := ch.Remaining[0]
		ch.Remaining = ch.Remaining[1:]
		cl := s.dir().clients[p.Client]
		if cl == nil || cl.SAML == nil || cl.SAML.SLO == nil {
			continue
		}
		out, err := idp.LogoutRequest(cl.SAML, p.NameID, p.SessionIndex, state)
		if err != nil {
			s.log.Warn("saml idp: logout request", "request_id", requestID(c), "client", cl.ID, "err", err)
			ch.Partial = true
			continue
		}
		ch.Current, ch.RequestID = cl.ID, out.ID
		if err := s.putJSON(ctx, s.keyer.key("lc", state), ch, upstreamLoginTTL); err != nil {
			return err
		}
		return s.sendSAML(c, out)
	}
	if ch.Reply != "" {
		cl := s.dir().clients[ch.Reply]
		if cl != nil && cl.SAML != nil && cl.SAML.SLO != nil {
			status := ""
			if ch.Partial {
				status = samlidp.StatusPartialLogout
			}
			out, err := idp.LogoutResponse(cl.SAML, ch.ReplyID, status, ch.ReplyRelay)
			if err != nil {
				return err
			}
			return s.sendSAML(c, out)
		}
	}
	if ch.Target != "" {
		return c.Redirect(redirectStatus(c), ch.Target)
	}
	return s.signedOut(c)
}

// samlIdPSLO is the IdP's SingleLogoutService: a LogoutRequest from an app
// starts an SP-initiated logout; a LogoutResponse continues a chain.
func (s *Server) samlIdPSLO(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	req := c.Request()
	param := "SAMLRequest"
	if req.Method == http.MethodGet && req.URL.Query().Has("SAMLResponse") ||
		req.Method == http.MethodPost && req.PostFormValue("SAMLResponse") != "" {
		param = "SAMLResponse"
	}
	m, err := samlidp.ReadMessage(req, param)
	if err != nil {
		return s.samlLogoutRefused(c, attrs{}, err)
	}
	cl := s.dir().samlApps[m.Issuer()]
	if cl == nil || cl.SAML.SLO == nil {
		return s.samlLogoutRefused(c, attrs{}, errors.New("logout message from an unknown app or one without SLO: "+m.Issuer()))
	}
	idp, err := s.samlIdentityProvider(req.Context())
	if err != nil {
		return err
	}
	if param == "SAMLResponse" {
		return s.samlLogoutAnswer(c, idp, cl, m)
	}
	return s.samlSPLogout(c, idp, cl, m)
}

// samlLogoutRefused audits and shows a refused logout message.
func (s *Server) samlLogoutRefused(c echo.Context, a attrs, err error) error {
	s.log.Info("saml idp: logout message refused", "request_id", requestID(c), "err", err)
	s.auditEvent(c, "refused", "saml_logout_invalid", a)
	return s.renderError(c, http.StatusBadRequest, "Invalid sign-out request",
		"The application sent a sign-out message this service cannot accept.")
}

// samlSPLogout handles an app's LogoutRequest: verified (signature when
// required or present, issuer, destination, freshness), used once, it ends
// the session it names (its SessionIndex, else this browser's session)
// when the NameID is the one issued to the app in that session.
func (s *Server) samlSPLogout(c echo.Context, idp *samlidp.IdP, cl *client, m *samlidp.Message) error {
	ctx := c.Request().Context()
	at := attrs{client: cl.ID}
	root, err := idp.Verify(m, cl.SAML, "LogoutRequest", idp.SLOURL)
	if err != nil {
		return s.samlLogoutRefused(c, at, err)
	}
	lr, err := idp.ParseLogoutRequest(root)
	if err != nil {
		return s.samlLogoutRefused(c, at, err)
	}
	switch err := s.store.Create(ctx, s.keyer.key("li", cl.SAML.EntityID+"\x00"+lr.ID), []byte{1}, samlidp.ReplayWindow); {
	case errors.Is(err, ErrExists):
		return s.samlLogoutRefused(c, at, errors.New("LogoutRequest "+lr.ID+" was already used"))
	case err != nil:
		return storeErr("saml logout replay", err)
	}
	sess, err := s.samlLogoutSession(c, lr)
	if err != nil {
		return err
	}
	ch := &samlChain{Reply: cl.ID, ReplyID: lr.ID, ReplyRelay: m.RelayState}
	if sess != nil {
		parts := s.samlParticipants(ctx, sess.SID)
		if !slices.ContainsFunc(parts, func(p samlParticipant) bool { return p.Client == cl.ID && p.NameID == lr.NameID }) {
			// Not this app's user in that session: end nothing of it.
			s.auditEvent(c, "refused", "saml_logout_not_participant", at)
			sess, parts = nil, nil
		}
		if sess != nil {
			if err := s.logoutSession(ctx, sess); err != nil {
				return err
			}
			s.auditEvent(c, "logout", "saml_sp_initiated", attrs{client: cl.ID, tenant: sess.Tenant, idp: sess.IdP, subject: sess.Subject})
			for _, p := range parts {
				if p.Client != cl.ID {
					ch.Remaining = append(ch.Remaining, p)
				}
			}
		}
	}
	s.setCookie(c, sessionCookie, "", -1)
	return s.samlChainNext(c, randomToken(tokenBytes), ch)
}

// samlLogoutSession returns the session a LogoutRequest names: by a
// SessionIndex realmgate issued, else this browser's session; nil if none.
func (s *Server) samlLogoutSession(c echo.Context, lr *samlidp.LogoutRequest) (*session, error) {
	ctx := c.Request().Context()
	for _, si := range lr.SessionIndexes {
		key, err := s.store.Get(ctx, s.keyer.key("si", si))
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, storeErr("saml session index", err)
		}
		var sess session
		if err := s.getJSON(ctx, string(key), &sess); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		sess.key = string(key)
		return &sess, nil
	}
	if len(lr.SessionIndexes) > 0 {
		return nil, nil // the sessions named have ended
	}
	return s.currentSession(c)
}

// samlLogoutAnswer continues a logout chain with an app's LogoutResponse:
// the chain (named by the RelayState, used once) must be waiting for this
// app and this request ID; a status other than Success, or an answer that
// does not verify, makes the logout partial but never stops the chain.
func (s *Server) samlLogoutAnswer(c echo.Context, idp *samlidp.IdP, cl *client, m *samlidp.Message) error {
	ctx := c.Request().Context()
	state := m.RelayState
	var ch samlChain
	if state == "" || len(state) > 128 {
		return s.signedOut(c)
	}
	if err := s.takeJSON(ctx, s.keyer.key("lc", state), &ch); errors.Is(err, ErrNotFound) {
		return s.signedOut(c)
	} else if err != nil {
		return err
	}
	if ch.Current != cl.ID {
		return s.samlLogoutRefused(c, attrs{client: cl.ID}, errors.New("LogoutResponse from an app the chain is not waiting for"))
	}
	root, err := idp.Verify(m, cl.SAML, "LogoutResponse", idp.SLOURL)
	var status string
	if err == nil {
		status, err = samlidp.CheckLogoutResponse(root, ch.RequestID)
	}
	if err != nil || status != samlidp.StatusSuccess {
		s.log.Info("saml idp: logout not confirmed", "request_id", requestID(c), "client", cl.ID, "status", status, "err", err)
		s.auditEvent(c, "logout", "saml_logout_unconfirmed", attrs{client: cl.ID})
		ch.Partial = true
	} else {
		s.auditEvent(c, "logout", "saml_logout_confirmed", attrs{client: cl.ID})
	}
	return s.samlChainNext(c, state, &ch)
}
