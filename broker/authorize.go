package broker

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/realm"
)

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
	setPageClient(c, cl.ID) // its brand (brand.go)
	// RFC 9126 §4: a pushed request is replaced by the parameters pushed,
	// which are checked below exactly as if they had come here.
	pushed := v.Has("request_uri")
	if pushed {
		if v, err = s.pushedRequest(c, cl, v); err != nil {
			return err
		}
	}
	redirectURI := v.Get("redirect_uri")
	if redirectURI == "" || !cl.hasRedirect(redirectURI) {
		s.auditEvent(c, "refused", "redirect_uri_mismatch", attrs{client: cl.ID})
		return s.renderError(c, http.StatusBadRequest, "Invalid redirect address",
			"The application asked to return you to an address it has not registered. Nothing was sent to it.")
	}
	if err := s.checkSector(c.Request().Context(), cl, redirectURI); err != nil { // OIDC Registration §5 (pairwise.go)
		s.log.Warn("sector identifier check", "request_id", requestID(c), "client", cl.ID, "err", err)
		s.auditEvent(c, "refused", "sector_identifier_mismatch", attrs{client: cl.ID})
		return s.renderError(c, http.StatusBadRequest, "Application misconfigured",
			"The application's sector identifier document does not list this redirect address, or could not be read. Nothing was sent to it.")
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
	if !pushed && s.requirePAR(cl) { // RFC 9126 §5
		return fail(oauth.New(oauth.InvalidRequest, "this client must push its authorization requests (RFC 9126): use the pushed_authorization_request_endpoint"))
	}
	ar, prompts, e := s.parseAuthorize(cl, v)
	if e != nil {
		return fail(e)
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
		if sess != nil && s.dir().authorizeFor(s.now(), cl, sess.tenantFor(ar), sessionSubject(sess), strengthOf(ar, false)) == nil {
			return s.finish(c, ar, sess)
		}
	}
	if slices.Contains(prompts, "none") {
		return fail(oauth.New(oauth.LoginRequired, "the user is not signed in"))
	}

	s.beginPending(c, true) // counters, request and upstream state: one store round trip
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

// parseAuthorize checks the parameters of an authorization request of cl
// whose redirect_uri is registered and bounded (checkSignInParams), and
// returns the request to save and its prompt values. It is the one check
// of /authorize and of the PAR endpoint (RFC 9126 §2.1).
func (s *Server) parseAuthorize(cl *client, v url.Values) (*authRequest, []string, *oauth.Error) {
	switch {
	case v.Has("request"):
		return nil, nil, oauth.New(oauth.RequestNotSupported, "request objects are not supported")
	case v.Get("response_type") != "code": // S04: no implicit, no hybrid
		return nil, nil, oauth.New(oauth.UnsupportedResponseType, "only response_type=code is supported")
	case v.Has("response_mode") && v.Get("response_mode") != "query":
		return nil, nil, oauth.New(oauth.InvalidRequest, "only response_mode=query is supported")
	}
	scopes := strings.Fields(v.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		return nil, nil, oauth.New(oauth.InvalidScope, "the openid scope is required")
	}
	// S03: PKCE with S256 for every client, public or confidential.
	if v.Get("code_challenge") == "" {
		return nil, nil, oauth.New(oauth.InvalidRequest, "code_challenge is required (PKCE, RFC 7636)")
	}
	if v.Get("code_challenge_method") != "S256" {
		return nil, nil, oauth.New(oauth.InvalidRequest, "code_challenge_method must be S256")
	}
	if !isS256Challenge(v.Get("code_challenge")) {
		return nil, nil, oauth.New(oauth.InvalidRequest, "code_challenge is not a base64url SHA-256 value")
	}
	prompts := strings.Fields(v.Get("prompt"))
	for _, p := range prompts {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, p) {
			return nil, nil, oauth.New(oauth.InvalidRequest, "unsupported prompt value")
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return nil, nil, oauth.New(oauth.InvalidRequest, "prompt=none cannot be combined with other values")
	}
	maxAge := -1
	if ma := v.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return nil, nil, oauth.New(oauth.InvalidRequest, "max_age must be a non-negative integer")
		}
		maxAge = n
	}
	// RFC 9449 §10: dpop_jkt binds the code to a DPoP key.
	if jkt := v.Get("dpop_jkt"); jkt != "" && !isS256Challenge(jkt) {
		return nil, nil, oauth.New(oauth.InvalidRequest, "dpop_jkt is not a base64url SHA-256 JWK thumbprint")
	}
	// OIDC Core §5.5: the claims parameter; only acrs (authentication
	// contexts, conditional.go) is acted on.
	acrs, err := claimsACRS(v.Get("claims"))
	if err != nil {
		return nil, nil, oauth.New(oauth.InvalidRequest, "the claims parameter is not a valid JSON object (OIDC Core §5.5)")
	}
	ar := &authRequest{
		ClientID: cl.ID, RedirectURI: v.Get("redirect_uri"), State: v.Get("state"), Nonce: v.Get("nonce"),
		Scopes: scopes, CodeChallenge: v.Get("code_challenge"), LoginHint: v.Get("login_hint"),
		ForceLogin: slices.Contains(prompts, "login") || maxAge == 0, Created: s.now(),
		RequireMFA: wantsMFA(v.Get("acr_values")), Tenant: v.Get("tenant"),
		PromptNone: slices.Contains(prompts, "none"), DPoPJKT: v.Get("dpop_jkt"), ACRS: acrs,
		PromptConsent: slices.Contains(prompts, "consent"),
	}
	if maxAge >= 0 {
		ar.MaxAge = &maxAge
	}
	return ar, prompts, nil
}

func firstOf(v url.Values, keys ...string) string {
	for _, k := range keys {
		if x := v.Get(k); x != "" {
			return x
		}
	}
	return ""
}
