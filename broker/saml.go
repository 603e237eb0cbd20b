package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/providers"
)

// The SAML routes: <issuer>/saml/<idp>/acs (the Assertion Consumer Service,
// HTTP-POST binding), <issuer>/saml/<idp>/metadata (the SP metadata a tenant
// admin imports) and <issuer>/saml/<idp>/post (the auto-submitting form of
// the HTTP-POST binding towards the IdP). A SAML connector plugs in through
// the optional capabilities of package providers (MetadataPublisher,
// PostBinder, UnsolicitedHandler, ReplayCacheUser, SingleLogout), found with
// providers.As, so the broker does not import it.

// samlRoutes registers the SAML endpoints and gives every connector that
// wants one the shared replay cache.
func (s *Server) samlRoutes(e *echo.Echo) {
	s.prepareConnectors(s.dir())
	e.POST(s.path("/saml/:idp/acs"), s.samlACS)
	e.GET(s.path("/saml/:idp/metadata"), s.samlMetadata)
	e.GET(s.path("/saml/:idp/post"), s.samlPost)
	e.Match([]string{http.MethodGet, http.MethodPost}, s.path("/saml/:idp/slo"), s.samlSLO) // saml_slo.go
}

// replayCache keeps assertion ids in the shared store until they expire:
// Create on an existing key means the assertion was seen (S43). Keys are
// HMACs like every other record (S17).
type replayCache struct{ s *Server }

var _ providers.ReplayCache = replayCache{}

// Seen records key until the given time and reports whether it was there.
func (rc replayCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	ttl := until.Sub(rc.s.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	err := rc.s.store.Create(ctx, rc.s.keyer.key("sa", key), []byte{1}, ttl)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, ErrExists):
		return true, nil
	}
	return false, storeErr("replay cache", err)
}

// samlIdP returns the IdP named in the path.
func (s *Server) samlIdP(c echo.Context) (IdP, bool) {
	idp, ok := s.dir().idps[c.Param("idp")]
	return idp, ok
}

// samlACS is the Assertion Consumer Service (SAML Profiles §4.1.4): the
// RelayState is the login state; an unknown RelayState is an unsolicited
// response, refused unless the connector allows it (S44).
func (s *Server) samlACS(c echo.Context) error {
	idp, ok := s.samlIdP(c)
	if !ok {
		return s.renderError(c, http.StatusNotFound, "Unknown sign-in provider", "This sign-in address is not configured.")
	}
	req := c.Request()
	if err := req.ParseForm(); err != nil {
		return s.renderError(c, http.StatusRequestEntityTooLarge, "Invalid sign-in response", "The response from your organization's sign-in could not be read.")
	}
	relay := req.PostForm["RelayState"]
	if len(relay) > 1 {
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-in response", "The response carries more than one RelayState.")
	}
	state := ""
	if len(relay) == 1 {
		state = relay[0]
	}
	if u, ok := providers.As[providers.UnsolicitedHandler](idp.Connector); ok && !idp.Pending { // pendingidp.go
		if target, allowed := u.Unsolicited(state); allowed {
			return s.samlUnsolicited(c, idp, u, target)
		}
	}
	return s.upstreamReturn(c, idp, state)
}

// samlUnsolicited completes an IdP-initiated login: the connector validates
// the response (replay cache, short window, no InResponseTo), the broker
// starts an SSO session, and the browser goes to the allow-listed target,
// typically an application's login URL that then runs a normal
// authorization request which the session answers. No code is issued here.
func (s *Server) samlUnsolicited(c echo.Context, idp IdP, u providers.UnsolicitedHandler, target string) error {
	ctx := c.Request().Context()
	at := attrs{tenant: idp.Tenant, idp: idp.ID}
	ident, err := handleUnsolicited(ctx, idp, u, c.Request())
	if err != nil {
		s.log.Warn("unsolicited saml response", "request_id", requestID(c), "idp", idp.ID, "err", err)
		if errors.Is(err, providers.ErrUnavailable) {
			s.auditEvent(c, "failure", "upstream_unavailable", at)
			return s.renderErrorf(c, http.StatusBadGateway, "Your organization's sign-in is not responding",
				"%s did not answer in time. Please try again in a few minutes.", idp.Name)
		}
		s.auditEvent(c, "refused", "unsolicited_invalid", at)
		return s.renderErrorf(c, http.StatusBadRequest, "Sign-in could not be verified",
			"The response from %s failed validation, so you were not signed in.", idp.Name)
	}
	sess := s.identitySession(idp, ident, time.Time{})
	if err := s.newSession(ctx, c, sess); err != nil {
		return err
	}
	s.indexSession(ctx, sess) // so the IdP's LogoutRequest can find it
	at.subject = sess.Subject
	s.auditEvent(c, "success", "idp_initiated", at)
	return c.Redirect(http.StatusSeeOther, target)
}

// samlMetadata serves the SP metadata (SAML Metadata §2.4.4) at a URL that
// never changes, for AD FS relying party trusts and Entra uploads.
func (s *Server) samlMetadata(c echo.Context) error {
	idp, ok := s.samlIdP(c)
	mp, isSAML := providers.As[providers.MetadataPublisher](idp.Connector)
	if !ok || !isSAML {
		return s.renderError(c, http.StatusNotFound, "Unknown sign-in provider", "This sign-in address is not configured.")
	}
	b, err := mp.Metadata(c.Request().Context())
	if err != nil {
		s.log.Error("saml metadata", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return s.renderError(c, http.StatusInternalServerError, "Something went wrong", "The metadata could not be produced.")
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", b)
}

// postPage auto-submits the AuthnRequest to the IdP (SAML Bindings §3.5.4).
// Without JavaScript the visible button does it.
// samlAppPostPage (samlidp.go) sends an application its message the same way.
var postPage = template.Must(template.New("samlpost").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.T .Title}}</title></head>
<body><main><form method="post" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<p>{{.T .Message}}</p>
<button type="submit">{{.T "Continue"}}</button></form></main>
<script>` + postScript + `</script></body></html>`))

// autoPost is the data of postPage: the form and its words.
type autoPost struct {
	*locale.Printer
	// Title and Message are catalog messages.
	Title, Message, Action string
	Fields                 map[string]string
}

const postScript = `document.forms[0].submit()`

// postScriptHash is the CSP hash that lets only that inline script run.
var postScriptHash = func() string {
	h := sha256.Sum256([]byte(postScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}()

// samlPost renders the HTTP-POST binding form for a login this browser
// started: the state must exist, belong to this IdP and to this browser (S21,
// S22). It is read, not consumed: the ACS consumes it.
func (s *Server) samlPost(c echo.Context) error {
	idp, ok := s.samlIdP(c)
	pb, isPost := providers.As[providers.PostBinder](idp.Connector)
	if !ok || !isPost {
		return s.renderError(c, http.StatusNotFound, "Unknown sign-in provider", "This sign-in address is not configured.")
	}
	state := c.QueryParam("s")
	if state == "" || len(state) > 256 {
		return s.expired(c)
	}
	var ul upstreamLogin
	if err := s.getUpstream(c.Request().Context(), state, &ul); errors.Is(err, ErrNotFound) {
		return s.expired(c)
	} else if err != nil {
		return err
	}
	if ul.IdP != idp.ID || !s.boundToBrowser(c, ul.Binding) {
		s.auditEvent(c, "refused", "saml_post_not_bound", attrs{idp: idp.ID, tenant: idp.Tenant})
		return s.expired(c)
	}
	action, fields, err := pb.PostForm(c.Request().Context(), ul.Data, state)
	if err != nil {
		s.log.Error("saml post form", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return s.expired(c)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+postScriptHash+"; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return postPage.Execute(c.Response(), autoPost{Printer: s.printer(c), Title: "Signing in…",
		Message: "Continuing to your organization's sign-in…", Action: action, Fields: fields})
}
