package broker

// realmgate as a SAML 2.0 identity provider for SAML-only applications
// (docs/saml-idp.md). Package samlidp reads and writes the messages; this
// file drives the flow, so a SAML app's sign-in is an ordinary pending
// authorization request (authRequest with SAML set: RedirectURI is the ACS,
// State the RelayState) that shares everything with OIDC apps: the SSO
// session, home-realm discovery (route), the one authorization decision
// (authorizeFor, in finish), the claims pipeline (claimsFor), rate limits
// and the audit. Only the last step differs: finish calls samlAssert, which
// posts a signed SAML Response to the ACS instead of redirecting with a
// code; and errors go back as SAML error Responses (authError).
//
// Routes, under the issuer:
//
//	/saml-idp/metadata     the IdP metadata SPs import (a stable URL)
//	/saml-idp/sso          SingleSignOnService: HTTP-Redirect (GET) and HTTP-POST
//	/saml-idp/slo          SingleLogoutService (samlidp_slo.go)
//	/saml-idp/launch/<id>  IdP-initiated sign-in to the SAML app with client id <id>
//
// They sit beside, not under, the SP routes /saml/<provider id>/..., so no
// provider id can collide with them.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/samlidp"
)

// samlPending is what a pending sign-in for a SAML app keeps beyond the
// authRequest fields it shares with OIDC.
type samlPending struct {
	// RequestID is the AuthnRequest's ID (the Response's InResponseTo);
	// empty for an IdP-initiated sign-in.
	RequestID string `json:"id,omitempty"`
}

// samlContinueTTL bounds the hop from a cross-site POST to the same request
// read with this browser's cookies (samlSSO).
const samlContinueTTL = 2 * time.Minute

// samlAppIndex indexes the SAML apps among clients by entity ID.
func samlAppIndex(clients map[string]*client) map[string]*client {
	out := map[string]*client{}
	for _, cl := range clients {
		if cl.SAML != nil {
			out[cl.SAML.EntityID] = cl
		}
	}
	return out
}

// samlIdPRoutes registers the IdP endpoints.
func (s *Server) samlIdPRoutes(e *echo.Echo) {
	e.GET(s.path("/saml-idp/metadata"), s.samlIdPMetadata)
	e.Match([]string{http.MethodGet, http.MethodPost}, s.path("/saml-idp/sso"), s.samlSSO)
	e.Match([]string{http.MethodGet, http.MethodPost}, s.path("/saml-idp/slo"), s.samlIdPSLO) // samlidp_slo.go
	e.GET(s.path("/saml-idp/launch/:app"), s.samlLaunch)
}

// samlIdentityProvider returns realmgate as IdP for one request, with the
// shared signing key.
func (s *Server) samlIdentityProvider(ctx context.Context) (*samlidp.IdP, error) {
	k, err := s.samlSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	return &samlidp.IdP{EntityID: s.url("/saml-idp/metadata"), SSOURL: s.url("/saml-idp/sso"),
		SLOURL: s.url("/saml-idp/slo"), Key: k.key, Cert: k.cert, Now: s.now}, nil
}

// samlIdPMetadata serves the IdP metadata (SAML Metadata §2.4.3) at a URL
// that never changes. With ?app=<client id> it is that SAML app's view of
// it: the same entity, key and endpoints, plus WantAuthnRequestsSigned as
// the app is registered.
func (s *Server) samlIdPMetadata(c echo.Context) error {
	var sp *samlidp.SP
	if c.QueryParams().Has("app") {
		cl := s.dir().clients[c.QueryParam("app")]
		if cl == nil || cl.SAML == nil {
			return s.renderError(c, http.StatusNotFound, "Unknown application", "No SAML application is registered with this id.")
		}
		sp = cl.SAML
	}
	idp, err := s.samlIdentityProvider(c.Request().Context())
	if err != nil {
		return err
	}
	b, err := idp.Metadata(sp)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", b)
}

// samlRefuse audits a refused SAML message and shows a page: nothing is
// sent to an endpoint that is not known good (S01).
func (s *Server) samlRefuse(c echo.Context, reason string, a attrs, err error) error {
	s.log.Info("saml idp: message refused", "request_id", requestID(c), "reason", reason, "err", err)
	s.auditEvent(c, "refused", reason, a)
	return s.renderError(c, http.StatusBadRequest, "Invalid sign-in request",
		"The application sent a sign-in request this service cannot accept. Nothing was sent back to it.")
}

// samlSSO is the SingleSignOnService (SAML Profiles §4.1.4.1): it reads
// the AuthnRequest (either binding), finds the app by its Issuer, verifies
// the signature with the app's certificate, refuses a request ID seen
// before (replay, in the shared store), resolves the ACS exactly as
// registered, and starts the sign-in.
func (s *Server) samlSSO(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	if req.Method == http.MethodGet && c.QueryParam("c") != "" && !c.QueryParams().Has("SAMLRequest") {
		return s.samlContinue(c, c.QueryParam("c"))
	}
	idp, err := s.samlIdentityProvider(ctx)
	if err != nil {
		return err
	}
	m, err := samlidp.ReadMessage(req, "SAMLRequest")
	if err != nil {
		return s.samlRefuse(c, "saml_request_invalid", attrs{}, err)
	}
	if m.Root() != "AuthnRequest" {
		return s.samlRefuse(c, "saml_request_invalid", attrs{}, errors.New("not an AuthnRequest: "+m.Root()))
	}
	cl := s.dir().samlApps[m.Issuer()]
	if cl == nil {
		s.auditEvent(c, "refused", "unknown_client", attrs{client: clip(m.Issuer(), maxAuditField)})
		return s.renderError(c, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is not registered with this sign-in service.")
	}
	at := attrs{client: cl.ID}
	root, err := idp.Verify(m, cl.SAML, "AuthnRequest", idp.SSOURL)
	if errors.Is(err, samlidp.ErrUnsigned) {
		return s.samlRefuse(c, "saml_request_unsigned", at, err)
	} else if err != nil {
		return s.samlRefuse(c, "saml_request_invalid", at, err)
	}
	areq, err := samlidp.ParseAuthnRequest(root, cl.SAML)
	if err != nil {
		return s.samlRefuse(c, "saml_request_invalid", at, err)
	}
	// S43-like: an AuthnRequest ID is accepted once per app, remembered
	// as long as the request could still be accepted.
	switch err := s.store.Create(ctx, s.keyer.key("ai", cl.SAML.EntityID+"\x00"+areq.ID), []byte{1}, samlidp.ReplayWindow); {
	case errors.Is(err, ErrExists):
		return s.samlRefuse(c, "saml_request_replayed", at, errors.New("AuthnRequest "+areq.ID+" was already used"))
	case err != nil:
		return storeErr("saml request replay", err)
	}
	ar := &authRequest{ClientID: cl.ID, RedirectURI: areq.ACS, State: m.RelayState, Created: s.now(),
		ForceLogin: areq.ForceAuthn, PromptNone: areq.IsPassive, RequireMFA: areq.MFA,
		SAML: &samlPending{RequestID: areq.ID}}
	if areq.NameIDPolicyErr != nil {
		s.auditEvent(c, "refused", "saml_name_id_policy", at)
		return s.samlErrorResponse(c, ar, samlidp.StatusRequester, samlidp.StatusInvalidNameIDPolicy, "the requested NameID format is not available")
	}
	if req.Method == http.MethodPost {
		// A cross-site POST carries no SameSite=Lax cookie: continue with a
		// GET of our own, which does, so SSO and the browser binding work.
		id := randomToken(tokenBytes)
		if err := s.putJSON(ctx, s.keyer.key("sq", id), ar, samlContinueTTL); err != nil {
			return err
		}
		q := url.Values{"c": {id}}
		for _, k := range []string{"login_hint", "idp_hint", "domain_hint", "whr"} {
			if v := c.QueryParam(k); v != "" && len(v) <= maxParamLen {
				q.Set(k, v) // hints on the SSO URL travel with the request
			}
		}
		return c.Redirect(http.StatusSeeOther, s.path("/saml-idp/sso")+"?"+q.Encode())
	}
	return s.samlBegin(c, ar, c.QueryParams())
}

// samlContinue resumes a POSTed AuthnRequest (once).
func (s *Server) samlContinue(c echo.Context, id string) error {
	if len(id) > 128 {
		return s.expired(c)
	}
	var ar authRequest
	if err := s.takeJSON(c.Request().Context(), s.keyer.key("sq", id), &ar); errors.Is(err, ErrNotFound) {
		return s.expired(c)
	} else if err != nil {
		return err
	}
	return s.samlBegin(c, &ar, c.QueryParams())
}

// samlBegin signs the user in for a SAML app exactly as authorize does for
// an OIDC client: the SSO session when the one authorization decision
// allows it, else home-realm discovery. hints are the SSO URL's query
// (idp_hint, domain_hint or whr, login_hint), which SPs can add to it.
func (s *Server) samlBegin(c echo.Context, ar *authRequest, hints url.Values) error {
	cl := s.dir().clients[ar.ClientID]
	if cl == nil || cl.SAML == nil {
		return s.expired(c)
	}
	if !ar.ForceLogin {
		sess, err := s.currentSession(c)
		if err != nil {
			return err
		}
		if sess != nil && s.dir().authorizeFor(s.now(), cl, sess.tenantFor(ar), sessionSubject(sess), strengthOf(ar, false)) == nil {
			return s.finish(c, ar, sess)
		}
	}
	if ar.PromptNone {
		return s.authError(c, ar, oauth.New(oauth.LoginRequired, "the user is not signed in"))
	}
	if hints == nil {
		hints = url.Values{}
	}
	for _, k := range []string{"login_hint", "idp_hint", "domain_hint", "whr"} {
		if len(hints.Get(k)) > maxParamLen {
			hints.Del(k)
		}
	}
	ar.LoginHint = hints.Get("login_hint")
	id, err := s.saveRequest(c, ar)
	if err != nil {
		return err
	}
	return s.route(c, id, ar, realm.Request{
		IdPHint: hints.Get("idp_hint"), DomainHint: firstOf(hints, "domain_hint", "whr"),
		LoginHint: ar.LoginHint, Host: c.Request().Host, ClientIP: clientIP(c), RememberedIdP: s.rememberedIdP(c),
	})
}

// maxParamLen bounds a hint taken from the SSO URL's query.
const maxParamLen = 256

// samlLaunch is the app-launch URL of IdP-initiated SSO (SAML Profiles
// §4.1.5): for an app registered with idp_initiated, the user signs in
// (or is already) and an unsolicited Response goes to the default ACS
// with the app's default RelayState; no RelayState is taken from the
// request (it would be an open redirect at many SPs).
func (s *Server) samlLaunch(c echo.Context) error {
	cl := s.dir().clients[c.Param("app")]
	if cl == nil || cl.SAML == nil || !cl.SAML.IdPInitiated {
		return s.renderError(c, http.StatusNotFound, "Unknown application", "This application cannot be started from here.")
	}
	acs, ok := cl.SAML.DefaultACS()
	if !ok {
		return s.expired(c)
	}
	ar := &authRequest{ClientID: cl.ID, RedirectURI: acs.URL, State: cl.SAML.DefaultRelayState, Created: s.now(),
		SAML: &samlPending{}}
	return s.samlBegin(c, ar, c.QueryParams())
}

// samlAssert answers a SAML app's sign-in, once finish has made the
// authorization decision and run the claims pipeline: the NameID and the
// attributes come from those claims (plus sub, tid and idp, as the ID token
// carries them); the app is recorded as a participant of the session for
// single logout; a signed Response is posted to the ACS.
func (s *Server) samlAssert(c echo.Context, ar *authRequest, sess *session, tenant string, claims map[string]any, at attrs) error {
	ctx := c.Request().Context()
	cl := s.dir().clients[ar.ClientID]
	if cl == nil || cl.SAML == nil {
		return s.expired(c)
	}
	idp, err := s.samlIdentityProvider(ctx)
	if err != nil {
		return err
	}
	all := make(map[string]any, len(claims)+3)
	for k, v := range claims {
		all[k] = v
	}
	all["sub"], all["tid"], all["idp"] = sess.Subject, tenant, sess.IdP
	nameID, err := samlidp.NameID(cl.SAML, all)
	if err != nil {
		s.log.Warn("saml idp: no NameID", "request_id", requestID(c), "client", cl.ID, "err", err)
		s.auditEvent(c, "failure", "saml_no_name_id", at)
		return s.samlErrorResponse(c, ar, samlidp.StatusResponder, samlidp.StatusInvalidNameIDPolicy, "the user has no value for the NameID")
	}
	si := s.samlSessionIndex(sess.SID, cl.ID)
	if err := s.addSAMLParticipant(ctx, sess, samlParticipant{Client: cl.ID, NameID: nameID, SessionIndex: si}); err != nil {
		return err
	}
	out, err := idp.Response(samlidp.Assertion{SP: cl.SAML, ACS: ar.RedirectURI, InResponseTo: ar.SAML.RequestID,
		Claims: all, SessionIndex: si, AuthnInstant: sess.AuthTime, MFA: providers.MFA(sess.Identity.AMR)}, nameID, ar.State)
	if err != nil {
		return err
	}
	reason := "saml"
	if ar.SAML.RequestID == "" {
		reason = "saml_idp_initiated"
	}
	s.auditEvent(c, "success", reason, at)
	return s.sendSAML(c, out)
}

// samlAuthError answers a SAML app's pending sign-in with an error Response
// (SAML Core §3.2.2.2) in place of an OIDC error redirect.
func (s *Server) samlAuthError(c echo.Context, ar *authRequest, e *oauth.Error) error {
	second := samlidp.StatusAuthnFailed
	switch e.Code {
	case oauth.AccessDenied:
		second = samlidp.StatusRequestDenied
	case oauth.LoginRequired, oauth.InteractionRequired, oauth.AccountSelectionRequired:
		second = samlidp.StatusNoPassive
	}
	return s.samlErrorResponse(c, ar, samlidp.StatusResponder, second, e.Description)
}

// samlErrorResponse posts an error Response to the pending request's ACS,
// which was checked against the registration when the request arrived.
func (s *Server) samlErrorResponse(c echo.Context, ar *authRequest, top, second, msg string) error {
	cl := s.dir().clients[ar.ClientID]
	if cl == nil || cl.SAML == nil || ar.SAML == nil || !slices.ContainsFunc(cl.SAML.ACS, func(e samlidp.Endpoint) bool { return e.URL == ar.RedirectURI }) {
		return s.expired(c)
	}
	idp, err := s.samlIdentityProvider(c.Request().Context())
	if err != nil {
		return err
	}
	out, err := idp.ErrorResponse(cl.SAML, ar.RedirectURI, ar.SAML.RequestID, top, second, msg, ar.State)
	if err != nil {
		return err
	}
	return s.sendSAML(c, out)
}

// samlSessionIndex is the SessionIndex of the session sid at the app: the
// same for every assertion of that session to that app, different across
// apps, and revealing nothing of sid.
func (s *Server) samlSessionIndex(sid, clientID string) string {
	return "_" + base64.RawURLEncoding.EncodeToString(s.keyer.mac("saml-session-index", sid+"\x00"+clientID)[:24])
}

// sendSAML delivers a message through the browser: a redirect, or the
// auto-submitting form of the HTTP-POST binding (SAML Bindings §3.5.4).
func (s *Server) sendSAML(c echo.Context, out *samlidp.Outgoing) error {
	if !out.Post {
		return c.Redirect(redirectStatus(c), out.URL)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+postScriptHash+"; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return postPage.Execute(c.Response(), autoPost{Printer: s.printer(c), Title: "Continuing…",
		Message: "Continuing to the application…", Action: out.URL, Fields: out.Fields})
}
