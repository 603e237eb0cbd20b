package broker

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
)

const (
	bindingCookie = "rg_bind"
	// bindingCookieCrossSite carries the same value with SameSite=None.
	bindingCookieCrossSite = "rg_bind_x"
	sessionCookie          = "rg_session"
)

// pkceChallenge is the shape of an S256 challenge: base64url of 32 bytes.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// formValues returns the request parameters (query for GET, body for POST)
// and refuses a parameter sent twice (RFC 6749 §3.1).
func formValues(c echo.Context) (url.Values, error) {
	req := c.Request()
	var v url.Values
	if req.Method == http.MethodPost {
		if err := req.ParseForm(); err != nil {
			if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
				return nil, errRequestTooLarge
			}
			return nil, errors.New("the request body could not be read")
		}
		v = req.PostForm
	} else {
		q, err := url.ParseQuery(req.URL.RawQuery)
		if err != nil {
			return nil, errors.New("the query string is malformed")
		}
		v = q
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, errors.New("parameter " + strconv.Quote(k) + " was sent more than once")
		}
	}
	return v, nil
}

// authorize is the OAuth 2.0 authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
func (s *Server) authorize(c echo.Context) error {
	v, err := signInForm(c) // S72: bounded request
	if err != nil {
		return s.formError(c, "Invalid sign-in request", err)
	}
	// The client and redirect_uri are checked before anything else; until
	// both are known good, errors are shown here and never redirected (S01, S02).
	cl := s.dir().clients[v.Get("client_id")]
	if cl == nil {
		s.auditEvent(c, "refused", "unknown_client", attrs{client: v.Get("client_id")})
		return s.renderError(c, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is not registered with this sign-in service.")
	}
	redirectURI := v.Get("redirect_uri")
	if redirectURI == "" || !cl.hasRedirect(redirectURI) {
		s.auditEvent(c, "refused", "redirect_uri_mismatch", attrs{client: cl.ID})
		return s.renderError(c, http.StatusBadRequest, "Invalid redirect address",
			"The application asked to return you to an address it has not registered. Nothing was sent to it.")
	}
	state := v.Get("state")
	fail := func(e *oauth.Error) error {
		s.auditEvent(c, "refused", e.Code, attrs{client: cl.ID})
		return s.redirectError(c, redirectURI, state, e)
	}
	if err := checkSignInParams(v); err != nil { // S72: every stored value is bounded
		if tooLongParam(err) == "state" {
			state = "" // not echoed
		}
		return fail(oauth.New(oauth.InvalidRequest, err.Error()))
	}
	switch {
	case v.Has("request"):
		return fail(oauth.New(oauth.RequestNotSupported, "request objects are not supported"))
	case v.Has("request_uri"):
		return fail(oauth.New(oauth.RequestURINotSupported, "request_uri is not supported"))
	case v.Get("response_type") != "code": // S04: no implicit, no hybrid
		return fail(oauth.New(oauth.UnsupportedResponseType, "only response_type=code is supported"))
	case v.Has("response_mode") && v.Get("response_mode") != "query":
		return fail(oauth.New(oauth.InvalidRequest, "only response_mode=query is supported"))
	}
	scopes := strings.Fields(v.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		return fail(oauth.New(oauth.InvalidScope, "the openid scope is required"))
	}
	// S03: PKCE with S256 for every client, public or confidential.
	if v.Get("code_challenge") == "" {
		return fail(oauth.New(oauth.InvalidRequest, "code_challenge is required (PKCE, RFC 7636)"))
	}
	if v.Get("code_challenge_method") != "S256" {
		return fail(oauth.New(oauth.InvalidRequest, "code_challenge_method must be S256"))
	}
	if !pkceChallenge.MatchString(v.Get("code_challenge")) {
		return fail(oauth.New(oauth.InvalidRequest, "code_challenge is not a base64url SHA-256 value"))
	}
	prompts := strings.Fields(v.Get("prompt"))
	for _, p := range prompts {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, p) {
			return fail(oauth.New(oauth.InvalidRequest, "unsupported prompt value"))
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return fail(oauth.New(oauth.InvalidRequest, "prompt=none cannot be combined with other values"))
	}
	maxAge := -1
	if ma := v.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return fail(oauth.New(oauth.InvalidRequest, "max_age must be a non-negative integer"))
		}
		maxAge = n
	}
	ar := &authRequest{
		ClientID: cl.ID, RedirectURI: redirectURI, State: state, Nonce: v.Get("nonce"),
		Scopes: scopes, CodeChallenge: v.Get("code_challenge"), LoginHint: v.Get("login_hint"),
		ForceLogin: slices.Contains(prompts, "login") || maxAge == 0, Created: s.now(),
		RequireMFA: wantsMFA(v.Get("acr_values")), Tenant: v.Get("tenant"),
		PromptNone: slices.Contains(prompts, "none"),
	}
	if maxAge >= 0 {
		ar.MaxAge = &maxAge
	}

	// SSO: a live session skips the upstream unless the client forces a
	// login or asks the user to pick an account (OIDC Core §3.1.2.1).
	if !ar.ForceLogin && !slices.Contains(prompts, "select_account") {
		sess, err := s.currentSession(c)
		if err != nil {
			return err
		}
		// The one authorization decision (S66, S67): a session the client may
		// not have, or too weak or too old for this request, is not used.
		tenant := sess.tenantFor(ar)
		if sess != nil && s.dir().authorizeFor(s.now(), cl, tenant, sessionSubject(sess), strengthOf(ar, false)) == nil {
			return s.finish(c, ar, sess)
		}
	}
	if slices.Contains(prompts, "none") {
		return fail(oauth.New(oauth.LoginRequired, "the user is not signed in"))
	}

	id, err := s.saveRequest(c, ar)
	if err != nil {
		return err
	}
	req := realm.Request{
		IdPHint:    firstOf(v, "idp_hint", "kc_idp_hint"),
		DomainHint: firstOf(v, "domain_hint", "whr"),
		LoginHint:  ar.LoginHint,
		Host:       c.Request().Host,
		ClientIP:   clientIP(c),
	}
	if !slices.Contains(prompts, "select_account") {
		req.RememberedIdP = s.rememberedIdP(c)
	}
	return s.route(c, id, ar, req)
}

func firstOf(v url.Values, keys ...string) string {
	for _, k := range keys {
		if x := v.Get(k); x != "" {
			return x
		}
	}
	return ""
}

// loadRequest reads the pending auth request named by the form and checks
// that this browser started it.
func (s *Server) loadRequest(c echo.Context, id string) (*authRequest, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrNotFound
	}
	var ar authRequest
	if err := s.getJSON(c.Request().Context(), s.keyer.key("ar", id), &ar); err != nil {
		return nil, err
	}
	if !s.boundToBrowser(c, ar.Binding) {
		return nil, ErrNotFound
	}
	return &ar, nil
}

// boundToBrowser reports whether this request carries the binding cookie
// whose HMAC is binding (S21). The cross-site copy is what arrives on an
// IdP's cross-site POST (SAML HTTP-POST binding), which SameSite=Lax withholds.
func (s *Server) boundToBrowser(c echo.Context, binding []byte) bool {
	for _, name := range []string{bindingCookie, bindingCookieCrossSite} {
		if ck, err := c.Cookie(name); err == nil && hmac.Equal(s.keyer.mac("binding", ck.Value), binding) {
			return true
		}
	}
	return false
}

func (s *Server) expired(c echo.Context) error {
	return s.renderError(c, http.StatusBadRequest, "This sign-in has expired",
		"Go back to the application and start signing in again.")
}

// startUpstream sends the browser to the IdP with fresh state, nonce and
// PKCE verifier kept server-side and bound to this browser (S21, S22).
func (s *Server) startUpstream(c echo.Context, id string, ar *authRequest, idp IdP, hint string) error {
	return s.startUpstreamMFA(c, s.keyer.key("ar", id), ar, idp, hint, s.needsMFA(idp.Tenant, ar))
}

// startUpstreamMFA starts the upstream login, asking the IdP for
// multi-factor authentication when mfa is set. arKey is the store key of
// the pending auth request.
func (s *Server) startUpstreamMFA(c echo.Context, arKey string, ar *authRequest, idp IdP, hint string, mfa bool) error {
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
		return s.renderError(c, http.StatusBadGateway, "Your organization's sign-in is not responding",
			idp.Name+" could not be reached. Please try again in a few minutes.")
	}
	ul := upstreamLogin{Request: arKey, IdP: idp.ID, Nonce: lr.Nonce, Verifier: lr.CodeVerifier, Data: data,
		Binding: ar.Binding, Hint: hint, Force: ar.ForceLogin, MFA: mfa, Created: s.now()}
	if err := s.putJSON(ctx, s.keyer.key("ul", lr.State), ul, upstreamLoginTTL); err != nil {
		return err
	}
	s.auditEvent(c, "started", startReason(c), attrs{client: ar.ClientID, tenant: idp.Tenant, idp: idp.ID})
	return c.Redirect(redirectStatus(c), target)
}

// redirectStatus is 303 after a POST (S06) and 302 otherwise.
func redirectStatus(c echo.Context) int {
	if c.Request().Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// redirectError sends an authorization error response to a redirect_uri
// already checked against the client's registration, with iss (RFC 9207 §2):
// RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6.
func (s *Server) redirectError(c echo.Context, redirectURI, state string, e *oauth.Error) error {
	q := url.Values{"error": {e.Code}, "iss": {s.cfg.Issuer}}
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if state != "" {
		q.Set("state", state)
	}
	return c.Redirect(redirectStatus(c), appendQuery(redirectURI, q))
}

func appendQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

// ensureBinding returns this browser's binding secret, setting the cookie if absent.
func (s *Server) ensureBinding(c echo.Context) string {
	if ck, err := c.Cookie(bindingCookie); err == nil && len(ck.Value) >= 43 && len(ck.Value) <= 64 {
		return ck.Value
	}
	v := randomToken(tokenBytes)
	s.setCookie(c, bindingCookie, v, 0)
	if s.secure {
		// SameSite=None requires Secure; browsers send it on the IdP's
		// cross-site POST back to us. Only set on https issuers.
		c.SetCookie(&http.Cookie{Name: bindingCookieCrossSite, Value: v, Path: s.path("/"), Domain: s.cfg.CookieDomain,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	}
	return v
}

func (s *Server) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: s.path("/"), Domain: s.cfg.CookieDomain, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// currentSession returns the live SSO session of this browser, or nil.
func (s *Server) currentSession(c echo.Context) (*session, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || len(ck.Value) < 43 || len(ck.Value) > 64 {
		return nil, nil
	}
	ctx := c.Request().Context()
	key := s.keyer.key("ss", ck.Value)
	var sess session
	if err := s.getJSON(ctx, key, &sess); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	sess.key = key
	// Sliding lifetime: every use extends the session.
	if err := s.store.Touch(ctx, key, s.cfg.SessionLifetime); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, storeErr("touch session", err)
	}
	return &sess, nil
}

// newSession stores a session and sets its cookie.
func (s *Server) newSession(ctx context.Context, c echo.Context, sess *session) error {
	checkIdentityEmail(&sess.Identity) // S74: an ambiguous upstream email is not kept
	id := randomToken(tokenBytes)
	sess.SID = randomToken(16)
	sess.key = s.keyer.key("ss", id)
	if err := s.putJSON(ctx, sess.key, sess, s.cfg.SessionLifetime); err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, id, 0)
	return nil
}
