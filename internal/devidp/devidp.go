// Package devidp is a small but real OpenID Provider for development, demos,
// tests and load benchmarks. It serves several realms (one issuer each, under
// BaseURL/<realm>), each with its own clients, demo users and signing key.
// Users are picked on an HTML page clearly marked as a development IdP, or
// approved automatically (Options.AutoApprove) for tests and load.
//
// It speaks the authorization code flow only (OIDC Core 1.0 §3.1) with PKCE
// S256 required (RFC 7636) and the iss authorization response parameter
// (RFC 9207). All state is in memory. It refuses to start unless DevMode is set:
// it has no passwords and must never face real users.
package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lifetimes and limits of the in-memory artifacts.
const (
	requestTTL     = 10 * time.Minute // a pending authorization request (user picking)
	codeTTL        = 60 * time.Second // authorization codes (RFC 9700 §4.5 asks for short)
	idTokenTTL     = 10 * time.Minute
	defaultATTTL   = 5 * time.Minute
	sweepEvery     = 15 * time.Second
	maxEntries     = 1 << 20 // per map: beyond it new requests get 503
	maxParamLen    = 2048
	maxFormBytes   = 64 << 10
	browserCookie  = "devidp_browser"
	bannerText     = "DEVELOPMENT IdP — not for production"
	autoApproveAny = "*"
)

// ErrNotDevMode is returned by New when Options.DevMode is false.
var ErrNotDevMode = errors.New("devidp: development IdP refuses to start outside dev mode")

// Options configures a Server.
type Options struct {
	// BaseURL is the external URL the handler is served at, such as
	// http://127.0.0.1:8081. Each realm's issuer is BaseURL + "/" + Realm.Name.
	BaseURL string
	// Realms are the independent issuers this server hosts.
	Realms []Realm
	// DevMode must be true: New refuses to build a server otherwise.
	DevMode bool
	// AutoApprove, when set to a user's email, makes /authorize skip the
	// picker and log that user in at once in every realm that has them (other
	// realms show the picker). The value "*" approves the user named by
	// login_hint, or else the realm's first user. For tests and load.
	AutoApprove string
	// Algorithm is the ID token signing algorithm: "ES256" (default: about 20
	// times cheaper to sign than RS256, which matters in load runs) or "RS256".
	Algorithm string
	// AccessTokenTTL is the lifetime of access tokens (default 5 minutes).
	AccessTokenTTL time.Duration
}

// Realm is one issuer with its clients and users.
type Realm struct {
	// Name is the issuer's path segment (letters, digits, '.', '_', '-').
	Name string
	// DisplayName is shown on the picker page; defaults to Name.
	DisplayName string
	// Clients are the relying parties registered in this realm.
	Clients []Client
	// Users are the demo users offered on the picker page, in this order.
	Users []User
}

// Client is a confidential relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret (client_secret_basic or client_secret_post).
	Secret string
	// RedirectURIs are matched exactly (RFC 9700 §4.1.1).
	RedirectURIs []string
}

// User is a demo user. Its claims go into the ID token and userinfo.
type User struct {
	// Subject is the stable sub claim, unique in the realm.
	Subject string
	// Email, EmailVerified, Name, GivenName and FamilyName are the standard
	// claims of OIDC Core 1.0 §5.1; empty strings are left out.
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	// Groups becomes the groups claim (left out when empty).
	Groups []string
	// Extra claims are added (or override standard user claims such as amr).
	// Protocol claims (iss, sub, aud, exp, iat, nbf, auth_time, nonce, at_hash,
	// azp, jti) cannot be set here.
	Extra map[string]any
}

// Server is the development OpenID Provider. It is safe for concurrent use.
type Server struct {
	realms      map[string]*realm
	autoApprove string
	atTTL       time.Duration
	secure      bool   // cookies get Secure (BaseURL is https)
	prefix      string // path of BaseURL, without trailing slash
	baseURL     string
	now         func() time.Time
	mux         *http.ServeMux

	mu        sync.Mutex
	requests  map[string]*authRequest
	codes     map[string]*codeEntry
	tokens    map[string]*tokenEntry
	lastSweep time.Time
}

type realm struct {
	name      string
	display   string
	issuer    string
	clients   map[string]*Client
	users     []*user
	bySubject map[string]*user
	key       *signer
	discovery []byte
	jwks      []byte
}

type user struct {
	User
	claimsJSON []byte // the full userinfo object
	fragment   []byte // claimsJSON without its braces, for the ID token
	// fragmentMFA is fragment after a multi-factor sign-in: amr
	// ["pwd","otp","mfa"] (unless Extra sets amr).
	fragmentMFA []byte
}

type authRequest struct {
	realm       string
	clientID    string
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scope       string
	loginHint   string
	browser     string
	expires     time.Time
	// mfa: the client asked for multi-factor authentication (acr_values):
	// the development IdP "performs" it and says so in amr.
	mfa bool
}

type codeEntry struct {
	realm       string
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	user        *user
	authTime    time.Time
	expires     time.Time
	mfa         bool
	redeemed    bool
	accessToken string
}

type tokenEntry struct {
	realm    string
	user     *user
	clientID string
	expires  time.Time
}

var (
	realmNameRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	protocolClaims = map[string]bool{
		"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
		"auth_time": true, "nonce": true, "at_hash": true, "azp": true, "jti": true,
	}
)

// New validates opts, generates one signing key per realm with crypto/rand and
// precomputes every static document.
func New(opts Options) (*Server, error) {
	if !opts.DevMode {
		return nil, ErrNotDevMode
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("devidp: base URL %q must be an absolute http(s) URL without query", opts.BaseURL)
	}
	alg := opts.Algorithm
	if alg == "" {
		alg = "ES256"
	}
	if alg != "RS256" && alg != "ES256" {
		return nil, fmt.Errorf("devidp: algorithm %q: want RS256 or ES256", opts.Algorithm)
	}
	if len(opts.Realms) == 0 {
		return nil, errors.New("devidp: no realms")
	}
	s := &Server{
		realms:      make(map[string]*realm, len(opts.Realms)),
		autoApprove: opts.AutoApprove,
		atTTL:       opts.AccessTokenTTL,
		secure:      base.Scheme == "https",
		prefix:      base.Path,
		baseURL:     base.String(),
		now:         time.Now,
		requests:    make(map[string]*authRequest),
		codes:       make(map[string]*codeEntry),
		tokens:      make(map[string]*tokenEntry),
	}
	if s.atTTL <= 0 {
		s.atTTL = defaultATTTL
	}
	autoFound := opts.AutoApprove == "" || opts.AutoApprove == autoApproveAny
	for i := range opts.Realms {
		rm, err := newRealm(s.baseURL, &opts.Realms[i], alg)
		if err != nil {
			return nil, err
		}
		if _, dup := s.realms[rm.name]; dup {
			return nil, fmt.Errorf("devidp: realm %q defined twice", rm.name)
		}
		s.realms[rm.name] = rm
		if rm.userByHint(opts.AutoApprove) != nil {
			autoFound = true
		}
	}
	if !autoFound {
		return nil, fmt.Errorf("devidp: auto-approve user %q is in no realm", opts.AutoApprove)
	}
	s.routes()
	return s, nil
}

func newRealm(baseURL string, r *Realm, alg string) (*realm, error) {
	if !realmNameRE.MatchString(r.Name) || r.Name == ".well-known" || strings.Trim(r.Name, ".") == "" {
		return nil, fmt.Errorf("devidp: realm name %q: want 1-64 of [A-Za-z0-9._-]", r.Name)
	}
	rm := &realm{
		name:      r.Name,
		display:   r.DisplayName,
		issuer:    baseURL + "/" + r.Name,
		clients:   make(map[string]*Client, len(r.Clients)),
		bySubject: make(map[string]*user, len(r.Users)),
	}
	if rm.display == "" {
		rm.display = r.Name
	}
	for i := range r.Clients {
		c := r.Clients[i]
		if c.ID == "" || c.Secret == "" {
			return nil, fmt.Errorf("devidp: realm %q: client %d needs an id and a secret", r.Name, i)
		}
		if _, dup := rm.clients[c.ID]; dup {
			return nil, fmt.Errorf("devidp: realm %q: client %q defined twice", r.Name, c.ID)
		}
		if len(c.RedirectURIs) == 0 {
			return nil, fmt.Errorf("devidp: realm %q: client %q has no redirect URIs", r.Name, c.ID)
		}
		for _, ru := range c.RedirectURIs {
			u, err := url.Parse(ru)
			if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
				return nil, fmt.Errorf("devidp: realm %q: client %q: redirect URI %q must be absolute, without fragment", r.Name, c.ID, ru)
			}
		}
		c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
		rm.clients[c.ID] = &c
	}
	if len(r.Users) == 0 {
		return nil, fmt.Errorf("devidp: realm %q has no users", r.Name)
	}
	for i := range r.Users {
		u, err := newUser(r.Users[i])
		if err != nil {
			return nil, fmt.Errorf("devidp: realm %q: %w", r.Name, err)
		}
		if _, dup := rm.bySubject[u.Subject]; dup {
			return nil, fmt.Errorf("devidp: realm %q: subject %q defined twice", r.Name, u.Subject)
		}
		rm.bySubject[u.Subject] = u
		rm.users = append(rm.users, u)
	}
	key, err := newSigner(alg)
	if err != nil {
		return nil, fmt.Errorf("devidp: realm %q: %w", r.Name, err)
	}
	rm.key = key
	rm.jwks = key.jwks()
	rm.discovery, err = json.Marshal(map[string]any{
		"issuer":                                rm.issuer,
		"authorization_endpoint":                rm.issuer + "/authorize",
		"token_endpoint":                        rm.issuer + "/token",
		"userinfo_endpoint":                     rm.issuer + "/userinfo",
		"jwks_uri":                              rm.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{alg},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
			"email", "email_verified", "name", "given_name", "family_name", "groups", "amr"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"authorization_response_iss_parameter_supported": true, // RFC 9207 §3
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
	})
	if err != nil {
		return nil, fmt.Errorf("devidp: realm %q: discovery: %w", r.Name, err)
	}
	return rm, nil
}

func newUser(u User) (*user, error) {
	if u.Subject == "" {
		return nil, errors.New("a user has no subject")
	}
	claims := map[string]any{"sub": u.Subject, "amr": []string{"pwd"}}
	if u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName} {
		if v != "" {
			claims[k] = v
		}
	}
	if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	for k, v := range u.Extra {
		if protocolClaims[k] {
			return nil, fmt.Errorf("user %q: extra claim %q is a protocol claim", u.Subject, k)
		}
		claims[k] = v
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("user %q: claims: %w", u.Subject, err)
	}
	if _, set := u.Extra["amr"]; !set {
		claims["amr"] = []string{"pwd", "otp", "mfa"}
	}
	mfa, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("user %q: claims: %w", u.Subject, err)
	}
	return &user{User: u, claimsJSON: b, fragment: b[1 : len(b)-1], fragmentMFA: mfa[1 : len(mfa)-1]}, nil
}

// userByHint finds a user by email (case-insensitive) or subject.
func (rm *realm) userByHint(hint string) *user {
	if hint == "" {
		return nil
	}
	for _, u := range rm.users {
		if (u.Email != "" && strings.EqualFold(u.Email, hint)) || u.Subject == hint {
			return u
		}
	}
	return nil
}

// Issuer returns the issuer URL of the named realm ("" if there is none).
func (s *Server) Issuer(realmName string) string {
	if rm, ok := s.realms[realmName]; ok {
		return rm.issuer
	}
	return ""
}

// Handler returns the HTTP handler serving every realm under BaseURL's path.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	p := s.prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+p+"/{$}", s.handleIndex)
	m.HandleFunc("GET "+p+"/{realm}/.well-known/openid-configuration", s.withRealm(s.handleDiscovery))
	m.HandleFunc("GET "+p+"/{realm}/jwks", s.withRealm(s.handleJWKS))
	m.HandleFunc("GET "+p+"/{realm}/authorize", s.withRealm(s.handleAuthorize))
	m.HandleFunc("POST "+p+"/{realm}/authorize", s.withRealm(s.handleAuthorize)) // OIDC Core §3.1.2.1
	m.HandleFunc("POST "+p+"/{realm}/select", s.withRealm(s.handleSelect))
	m.HandleFunc("POST "+p+"/{realm}/token", s.withRealm(s.handleToken))
	m.HandleFunc("GET "+p+"/{realm}/userinfo", s.withRealm(s.handleUserinfo))
	m.HandleFunc("POST "+p+"/{realm}/userinfo", s.withRealm(s.handleUserinfo))
	s.mux = m
}

func (s *Server) withRealm(h func(http.ResponseWriter, *http.Request, *realm)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rm, ok := s.realms[r.PathValue("realm")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h(w, r, rm)
	}
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request, rm *realm) {
	writeStatic(w, rm.discovery)
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request, rm *realm) {
	writeStatic(w, rm.jwks)
}

func writeStatic(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(b)
}

// handleAuthorize implements the authorization endpoint (OIDC Core 1.0 §3.1.2).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, rm *realm) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Malformed request", "The authorization request could not be parsed.")
		return
	}
	q := r.Form
	// RFC 6749 §4.1.2.1: with a bad client_id or redirect_uri, never redirect.
	clientID := q.Get("client_id")
	client, ok := rm.clients[clientID]
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "Unknown client",
			fmt.Sprintf("Realm %s has no client %q.", rm.name, clientID))
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !exactMatch(client.RedirectURIs, redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "Unregistered redirect_uri",
			fmt.Sprintf("Client %q has not registered the redirect_uri %q (exact match required).", clientID, redirectURI))
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		s.redirectError(w, r, rm, redirectURI, state, code, desc, http.StatusFound)
	}
	for _, k := range []string{"state", "nonce", "scope", "login_hint", "code_challenge"} {
		if len(q.Get(k)) > maxParamLen {
			fail("invalid_request", k+" is too long")
			return
		}
	}
	if q.Has("request") || q.Has("request_uri") {
		fail("request_not_supported", "request objects are not supported")
		return
	}
	if rt := q.Get("response_type"); rt != "code" { // only the code flow
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if rmode := q.Get("response_mode"); rmode != "" && rmode != "query" {
		fail("invalid_request", "only response_mode=query is supported")
		return
	}
	scope := q.Get("scope")
	if !hasWord(scope, "openid") {
		fail("invalid_scope", "scope must contain openid")
		return
	}
	// RFC 7636 §4.3: PKCE is required, S256 only.
	challenge := q.Get("code_challenge")
	if q.Get("code_challenge_method") != "S256" || len(challenge) != 43 || !isBase64URL(challenge) {
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	}
	ar := &authRequest{
		realm:       rm.name,
		clientID:    clientID,
		redirectURI: redirectURI,
		state:       state,
		nonce:       q.Get("nonce"),
		challenge:   challenge,
		scope:       scope,
		loginHint:   q.Get("login_hint"),
		mfa:         q.Get("acr_values") != "",
	}
	if u := s.autoUser(rm, ar.loginHint); u != nil {
		s.issueCode(w, r, rm, ar, u, http.StatusFound)
		return
	}
	if hasWord(q.Get("prompt"), "none") { // OIDC Core §3.1.2.6: no session here
		fail("login_required", "the development IdP keeps no session")
		return
	}
	browser := ""
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) == 26 {
		browser = c.Value
	} else {
		browser = rand.Text()
		http.SetCookie(w, &http.Cookie{
			Name: browserCookie, Value: browser, Path: s.prefix + "/", HttpOnly: true,
			Secure: s.secure, SameSite: http.SameSiteLaxMode,
		})
	}
	ar.browser = browser
	now := s.now()
	ar.expires = now.Add(requestTTL)
	id := rand.Text()
	s.mu.Lock()
	s.sweepLocked(now)
	full := len(s.requests) >= maxEntries
	if !full {
		s.requests[id] = ar
	}
	s.mu.Unlock()
	if full {
		fail("temporarily_unavailable", "too many pending logins")
		return
	}
	s.pickerPage(w, rm, ar, id)
}

// autoUser returns the user to approve without the picker, if any.
func (s *Server) autoUser(rm *realm, hint string) *user {
	switch s.autoApprove {
	case "":
		return nil
	case autoApproveAny:
		if u := rm.userByHint(hint); u != nil {
			return u
		}
		return rm.users[0]
	default:
		return rm.userByHint(s.autoApprove)
	}
}

// handleSelect takes the picker's POST and answers with a 303 to the client.
func (s *Server) handleSelect(w http.ResponseWriter, r *http.Request, rm *realm) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Malformed request", "The form could not be parsed.")
		return
	}
	id := r.PostForm.Get("request_id")
	cookie, _ := r.Cookie(browserCookie)
	now := s.now()
	s.mu.Lock()
	ar, ok := s.requests[id]
	if ok {
		delete(s.requests, id) // one decision per request
	}
	s.mu.Unlock()
	if !ok || ar.realm != rm.name || now.After(ar.expires) {
		s.errorPage(w, http.StatusBadRequest, "Login request not found",
			"This login request is unknown, was already used or has expired. Start the sign-in again from the application.")
		return
	}
	// CSRF: the request is bound to the browser that opened the picker.
	if cookie == nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(ar.browser)) != 1 {
		s.errorPage(w, http.StatusForbidden, "Wrong browser",
			"This login request was started in another browser. Start the sign-in again from the application.")
		return
	}
	if r.PostForm.Has("cancel") {
		s.redirectError(w, r, rm, ar.redirectURI, ar.state, "access_denied", "the user cancelled the login", http.StatusSeeOther)
		return
	}
	u, ok := rm.bySubject[r.PostForm.Get("user")]
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "Unknown user", "Pick one of the listed users.")
		return
	}
	s.issueCode(w, r, rm, ar, u, http.StatusSeeOther) // S06: 303 after a POST
}

func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, rm *realm, ar *authRequest, u *user, status int) {
	now := s.now()
	code := rand.Text()
	ce := &codeEntry{
		realm: rm.name, clientID: ar.clientID, redirectURI: ar.redirectURI, challenge: ar.challenge,
		nonce: ar.nonce, scope: ar.scope, user: u, authTime: now, expires: now.Add(codeTTL), mfa: ar.mfa,
	}
	s.mu.Lock()
	s.sweepLocked(now)
	full := len(s.codes) >= maxEntries
	if !full {
		s.codes[code] = ce
	}
	s.mu.Unlock()
	if full {
		s.redirectError(w, r, rm, ar.redirectURI, ar.state, "temporarily_unavailable", "too many pending codes", status)
		return
	}
	params := url.Values{"code": {code}, "iss": {rm.issuer}} // RFC 9207 §2
	if ar.state != "" {
		params.Set("state", ar.state)
	}
	redirectTo(w, r, ar.redirectURI, params, status)
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, rm *realm, redirectURI, state, code, desc string, status int) {
	params := url.Values{"error": {code}, "error_description": {desc}, "iss": {rm.issuer}}
	if state != "" {
		params.Set("state", state)
	}
	redirectTo(w, r, redirectURI, params, status)
}

// redirectTo appends params to the registered redirect URI, keeping its own query.
func redirectTo(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values, status int) {
	u, err := url.Parse(redirectURI)
	if err != nil { // registered URIs were parsed in New; cannot happen
		http.Error(w, "bad redirect_uri", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), status)
}

// handleToken implements the token endpoint (OIDC Core 1.0 §3.1.3, RFC 6749 §4.1.3).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, rm *realm) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	f := r.PostForm
	// Client authentication, RFC 6749 §2.3.1: one method only.
	id, secret, basic := r.BasicAuth()
	if basic {
		if f.Has("client_secret") {
			tokenError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
			return
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "malformed basic credentials")
			return
		}
		if cid := f.Get("client_id"); cid != "" && cid != id {
			tokenError(w, http.StatusBadRequest, "invalid_request", "client_id differs from the authenticated client")
			return
		}
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	client, ok := rm.clients[id]
	want := "\x00no-such-client\x00"
	if ok {
		want = client.Secret
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || !ok {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+rm.name+`"`)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if gt := f.Get("grant_type"); gt != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	code := f.Get("code")
	now := s.now()
	s.mu.Lock()
	ce, ok := s.codes[code]
	reused := false
	if ok {
		if ce.redeemed {
			// RFC 6749 §4.1.2: a reused code revokes what it issued.
			reused = true
			delete(s.tokens, ce.accessToken)
			delete(s.codes, code)
		} else {
			ce.redeemed = true // any attempt uses the code up
		}
	}
	s.mu.Unlock()
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown code")
		return
	}
	if reused {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code already used")
		return
	}
	if err := checkCode(ce, rm, id, f, now); err != "" {
		tokenError(w, http.StatusBadRequest, "invalid_grant", err)
		return
	}
	at := rand.Text()
	atHash := leftHalfHash(at)
	idToken, err := rm.idToken(ce, id, atHash, now)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	s.mu.Lock()
	full := len(s.tokens) >= maxEntries
	live := s.codes[code] == ce // not reused while we were signing
	if !full && live {
		s.tokens[at] = &tokenEntry{realm: rm.name, user: ce.user, clientID: id, expires: now.Add(s.atTTL)}
		ce.accessToken = at
	}
	s.mu.Unlock()
	switch {
	case !live:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code already used")
		return
	case full:
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many tokens")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	b := make([]byte, 0, 160+len(idToken)+len(ce.scope))
	b = append(b, `{"access_token":"`...)
	b = append(b, at...)
	b = append(b, `","token_type":"Bearer","expires_in":`...)
	b = strconv.AppendInt(b, int64(s.atTTL/time.Second), 10)
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, ce.scope)
	b = append(b, `,"id_token":"`...)
	b = append(b, idToken...)
	b = append(b, `"}`...)
	_, _ = w.Write(b)
}

// checkCode verifies the binding of a code to its client, redirect URI, realm,
// lifetime and PKCE challenge; it returns "" when all hold.
func checkCode(ce *codeEntry, rm *realm, clientID string, f url.Values, now time.Time) string {
	switch {
	case ce.realm != rm.name:
		return "code was issued by another realm"
	case now.After(ce.expires):
		return "code expired"
	case ce.clientID != clientID:
		return "code was issued to another client"
	case f.Get("redirect_uri") != ce.redirectURI: // RFC 6749 §4.1.3
		return "redirect_uri differs from the authorization request"
	}
	// RFC 7636 §4.1 and §4.6.
	v := f.Get("code_verifier")
	if !validVerifier(v) {
		return "code_verifier missing or malformed"
	}
	sum := sha256.Sum256([]byte(v))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(ce.challenge)) != 1 {
		return "code_verifier does not match the code_challenge"
	}
	return ""
}

// handleUserinfo implements the UserInfo endpoint (OIDC Core 1.0 §5.3).
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request, rm *realm) {
	auth := r.Header.Get("Authorization")
	tok := ""
	if len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		tok = strings.TrimSpace(auth[7:])
	}
	now := s.now()
	s.mu.Lock()
	te, ok := s.tokens[tok]
	s.mu.Unlock()
	if tok == "" || !ok || te.realm != rm.name || now.After(te.expires) {
		// RFC 6750 §3.
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		tokenError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid or expired")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(te.user.claimsJSON)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b := append([]byte(`{"error":`), appendJSONString(nil, code)...)
	b = append(b, `,"error_description":`...)
	b = appendJSONString(b, desc)
	b = append(b, '}')
	_, _ = w.Write(b)
}

// sweepLocked drops expired entries every sweepEvery; s.mu must be held.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery && len(s.codes) < maxEntries && len(s.tokens) < maxEntries &&
		len(s.requests) < maxEntries {
		return
	}
	s.lastSweep = now
	for k, v := range s.requests {
		if now.After(v.expires) {
			delete(s.requests, k)
		}
	}
	for k, v := range s.codes {
		if now.After(v.expires) {
			delete(s.codes, k)
		}
	}
	for k, v := range s.tokens {
		if now.After(v.expires) {
			delete(s.tokens, k)
		}
	}
}

func exactMatch(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func hasWord(list, w string) bool {
	for _, x := range strings.Fields(list) {
		if x == w {
			return true
		}
	}
	return false
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validVerifier checks RFC 7636 §4.1: 43-128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// leftHalfHash is at_hash for SHA-256 algorithms (OIDC Core 1.0 §3.1.3.6).
func leftHalfHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always marshals
	return append(b, enc...)
}
