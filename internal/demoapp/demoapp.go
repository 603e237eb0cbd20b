// Package demoapp is the demo SaaS application of the README: a relying party
// of realmgate built only with go-oidc and x/oauth2, the way any SaaS developer
// would. It starts the authorization code flow with PKCE S256, state and nonce
// (RFC 9700 §2.1), verifies the ID token and shows its claims, so a person can
// see the tenant (tid) and roles realmgate issued.
package demoapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var callbackPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~-][A-Za-z0-9._~/-]*$`)

const (
	loginCookie    = "demoapp_login"
	loginTTL       = 10 * time.Minute
	maxPending     = 10000
	maxHintLen     = 256
	discoveryLimit = 10 * time.Second
	exchangeLimit  = 15 * time.Second
)

// Options configures the demo app.
type Options struct {
	// Issuer is realmgate's issuer URL, such as http://127.0.0.1:8080.
	Issuer string
	// ClientID and ClientSecret are the app's registration at the issuer.
	ClientID     string
	ClientSecret string
	// RedirectURL is the app's callback, such as http://127.0.0.1:9000/callback.
	RedirectURL string
	// HTTPClient is used for discovery, JWKS and the token request
	// (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Scopes requested (default openid, email, profile).
	Scopes []string
}

// App is the demo application. It is safe for concurrent use.
type App struct {
	opts     Options
	client   *http.Client
	secure   bool // cookies get Secure (RedirectURL is https)
	callback string
	now      func() time.Time

	discMu sync.Mutex
	disc   *discovered // nil until the issuer answered once

	mu      sync.Mutex
	pending map[string]*pendingLogin
}

type discovered struct {
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	oauth       *oauth2.Config
	issRequired bool // RFC 9207 §2.4: metadata promises iss in responses
}

type pendingLogin struct {
	state, nonce, verifier string
	expires                time.Time
}

// New checks opts. It does not contact the issuer: discovery happens on the
// first sign-in, so the app may start before realmgate.
func New(opts Options) (*App, error) {
	iss, err := url.Parse(opts.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" {
		return nil, fmt.Errorf("demoapp: issuer %q must be an absolute http(s) URL", opts.Issuer)
	}
	if opts.ClientID == "" {
		return nil, errors.New("demoapp: client id is required")
	}
	cb, err := url.Parse(opts.RedirectURL)
	if err != nil || (cb.Scheme != "http" && cb.Scheme != "https") || cb.Host == "" {
		return nil, fmt.Errorf("demoapp: redirect URL %q must be an absolute http(s) URL", opts.RedirectURL)
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	path := cb.Path
	if !callbackPathRE.MatchString(path) || path == "/login" {
		return nil, fmt.Errorf("demoapp: redirect URL path %q: want a plain path other than / and /login", path)
	}
	return &App{
		opts:     opts,
		client:   client,
		secure:   cb.Scheme == "https",
		callback: path,
		now:      time.Now,
		pending:  make(map[string]*pendingLogin),
	}, nil
}

// Handler serves "/", "/login" and the callback path of RedirectURL.
func (a *App) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", a.handleHome)
	m.HandleFunc("GET /login", a.handleLogin)
	m.HandleFunc("GET "+a.callback, a.handleCallback)
	return m
}

// discover fetches the issuer's metadata once; failures are retried on the
// next sign-in.
func (a *App) discover(ctx context.Context) (*discovered, error) {
	a.discMu.Lock()
	defer a.discMu.Unlock()
	if a.disc != nil {
		return a.disc, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, a.client), discoveryLimit)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.opts.Issuer) // checks the discovered issuer (OIDC Discovery §4.3)
	if err != nil {
		return nil, fmt.Errorf("demoapp: discover %s: %w", a.opts.Issuer, err)
	}
	var md struct {
		ISS bool `json:"authorization_response_iss_parameter_supported"`
	}
	_ = p.Claims(&md) // absent or malformed: not promised
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	a.disc = &discovered{
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: a.opts.ClientID}),
		oauth: &oauth2.Config{
			ClientID: a.opts.ClientID, ClientSecret: a.opts.ClientSecret, Endpoint: ep,
			RedirectURL: a.opts.RedirectURL, Scopes: a.opts.Scopes,
		},
		issRequired: md.ISS,
	}
	return a.disc, nil
}

func (a *App) handleLogin(w http.ResponseWriter, r *http.Request) {
	d, err := a.discover(r.Context())
	if err != nil {
		a.errorPage(w, http.StatusBadGateway, "Cannot reach the identity broker",
			"The demo app could not read the OpenID configuration of "+a.opts.Issuer+
				". Is realmgate running? Details: "+err.Error())
		return
	}
	pl := &pendingLogin{
		state:    rand.Text(),
		nonce:    rand.Text(),
		verifier: oauth2.GenerateVerifier(), // RFC 7636 §4.1, 256 bits
		expires:  a.now().Add(loginTTL),
	}
	id := rand.Text()
	if !a.putPending(id, pl) {
		a.errorPage(w, http.StatusServiceUnavailable, "Too many sign-ins in progress", "Try again in a few minutes.")
		return
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pl.verifier), oidc.Nonce(pl.nonce)}
	if hint := strings.TrimSpace(r.URL.Query().Get("login_hint")); hint != "" && len(hint) <= maxHintLen {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	switch p := r.URL.Query().Get("prompt"); p {
	case "login", "select_account":
		opts = append(opts, oauth2.SetAuthURLParam("prompt", p))
	}
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: id, Path: "/", MaxAge: int(loginTTL / time.Second),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, d.oauth.AuthCodeURL(pl.state, opts...), http.StatusFound)
}

func (a *App) putPending(id string, pl *pendingLogin) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= maxPending/2 {
		for k, v := range a.pending {
			if now.After(v.expires) {
				delete(a.pending, k)
			}
		}
	}
	if len(a.pending) >= maxPending {
		return false
	}
	a.pending[id] = pl
	return true
}

func (a *App) takePending(id string) *pendingLogin {
	a.mu.Lock()
	defer a.mu.Unlock()
	pl, ok := a.pending[id]
	if !ok {
		return nil
	}
	delete(a.pending, id) // single use
	if a.now().After(pl.expires) {
		return nil
	}
	return pl
}

func (a *App) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie(loginCookie)
	var pl *pendingLogin
	if err == nil {
		pl = a.takePending(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	if pl == nil {
		a.errorPage(w, http.StatusBadRequest, "Sign-in not recognised",
			"This browser has no sign-in in progress (it expired, was already completed, or started elsewhere).")
		return
	}
	// The state binds the response to this browser's request (RFC 9700 §4.7).
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pl.state)) != 1 {
		a.errorPage(w, http.StatusBadRequest, "State mismatch", "The response does not belong to this sign-in.")
		return
	}
	d, err := a.discover(r.Context())
	if err != nil {
		a.errorPage(w, http.StatusBadGateway, "Cannot reach the identity broker", err.Error())
		return
	}
	// RFC 9207 §2.4: the iss parameter must name our issuer.
	if iss := q.Get("iss"); (iss == "" && d.issRequired) || (iss != "" && iss != a.opts.Issuer) {
		a.errorPage(w, http.StatusBadRequest, "Issuer mismatch",
			fmt.Sprintf("The response came from issuer %q, not %q.", iss, a.opts.Issuer))
		return
	}
	if e := q.Get("error"); e != "" {
		a.errorPage(w, http.StatusBadRequest, "Sign-in failed: "+e, q.Get("error_description"))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.errorPage(w, http.StatusBadRequest, "No code", "The response carries neither a code nor an error.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), exchangeLimit)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, a.client)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		a.errorPage(w, http.StatusBadGateway, "Code exchange failed", err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		a.errorPage(w, http.StatusBadGateway, "No ID token", "The token response has no id_token.")
		return
	}
	idt, err := d.verifier.Verify(ctx, raw) // signature, iss, aud, exp
	if err != nil {
		a.errorPage(w, http.StatusBadGateway, "ID token refused", err.Error())
		return
	}
	// go-oidc does not check the nonce: OIDC Core 1.0 §3.1.3.7 step 11.
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.nonce)) != 1 {
		a.errorPage(w, http.StatusBadRequest, "Nonce mismatch", "The ID token was not issued for this sign-in.")
		return
	}
	view, err := decodeToken(raw)
	if err != nil {
		a.errorPage(w, http.StatusBadGateway, "Unreadable ID token", err.Error())
		return
	}
	render(w, http.StatusOK, "result", view)
}

// claimRow is one prominent claim on the result page.
type claimRow struct{ Name, Value string }

type tokenView struct {
	Issuer    string
	Claims    []claimRow
	Header    string
	Payload   string
	Signature int // bytes
}

// prominent are the claims a SaaS developer reads first.
var prominent = []string{"tid", "roles", "idp", "sub", "email", "name", "amr"}

// decodeToken splits a verified compact JWS for display.
func decodeToken(raw string) (*tokenView, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("demoapp: ID token is not a compact JWS")
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("demoapp: decode ID token: %w", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("demoapp: ID token payload: %w", err)
	}
	v := &tokenView{Header: indent(header), Payload: indent(payload), Signature: len(sig)}
	if rawIss, ok := claims["iss"]; ok {
		_ = json.Unmarshal(rawIss, &v.Issuer)
	}
	for _, name := range prominent {
		v.Claims = append(v.Claims, claimRow{Name: name, Value: displayValue(claims[name])})
	}
	return v, nil
}

func indent(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// displayValue renders a claim for people: strings bare, arrays joined.
func displayValue(raw json.RawMessage) string {
	if raw == nil {
		return "(absent)"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		items := make([]string, 0, len(list))
		for _, x := range list {
			if str, ok := x.(string); ok {
				items = append(items, str)
			} else {
				b, _ := json.Marshal(x)
				items = append(items, string(b))
			}
		}
		if len(items) == 0 {
			return "(empty)"
		}
		return strings.Join(items, ", ")
	}
	return string(raw)
}
