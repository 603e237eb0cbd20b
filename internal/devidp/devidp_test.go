package devidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClient   = "app"
	testSecret   = "app-secret"
	testRedirect = "http://127.0.0.1:1/cb"
)

// env is a devidp behind an httptest server, with a browser-like client that
// keeps cookies and does not follow redirects.
type env struct {
	t       *testing.T
	idp     *Server
	srv     *httptest.Server
	browser *http.Client
	clock   *atomic.Int64 // offset added to time.Now, in nanoseconds
}

func testOptions() Options {
	return Options{
		DevMode:   true,
		Algorithm: "ES256",
		Realms: []Realm{
			{
				Name:        "acme",
				DisplayName: "ACME Test",
				Clients: []Client{
					{ID: testClient, Secret: testSecret, RedirectURIs: []string{testRedirect, "http://127.0.0.1:1/other?x=1"}},
					{ID: "other-app", Secret: "other-secret", RedirectURIs: []string{testRedirect}},
				},
				Users: []User{
					{Subject: "u-alice", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders",
						GivenName: "Alice", FamilyName: "Anders", Groups: []string{"Finance-Admins"},
						Extra: map[string]any{"employee_type": "employee"}},
					{Subject: "u-bob", Email: "bob@acme.test", Name: "Bob Berg", Groups: []string{"Finance-Readers"}},
				},
			},
			{
				Name:    "globex",
				Clients: []Client{{ID: testClient, Secret: testSecret, RedirectURIs: []string{testRedirect}}},
				Users:   []User{{Subject: "u-carol", Email: "carol@globex.test", Name: "Carol Castro"}},
			},
		},
	}
}

func newEnv(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: new(atomic.Int64)}
	var h http.Handler = http.NotFoundHandler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	opts := testOptions()
	opts.BaseURL = e.srv.URL
	if mutate != nil {
		mutate(&opts)
	}
	idp, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	idp.now = func() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) }
	e.idp, h = idp, idp.Handler()
	e.browser = newBrowser(t)
	return e
}

func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) issuer(realm string) string { return e.srv.URL + "/" + realm }

// authParams returns a valid authorization request and the PKCE verifier.
func authParams(extra ...string) (url.Values, string) {
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{
		"client_id": {testClient}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v, verifier
}

func (e *env) get(client *http.Client, u string) (*http.Response, string) {
	e.t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) post(client *http.Client, u string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	resp, err := client.PostForm(u, form)
	if err != nil {
		e.t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var requestIDRE = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// pick opens the picker for params and picks subject; it returns the redirect.
func (e *env) pick(realm string, params url.Values, subject string) *url.URL {
	e.t.Helper()
	resp, body := e.get(e.browser, e.issuer(realm)+"/authorize?"+params.Encode())
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /authorize = %d, want 200: %s", resp.StatusCode, body)
	}
	m := requestIDRE.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("picker page has no request_id: %s", body)
	}
	resp, body = e.post(e.browser, e.issuer(realm)+"/select", url.Values{"request_id": {m[1]}, "user": {subject}})
	if resp.StatusCode != http.StatusSeeOther { // S06: 303 after POST
		e.t.Fatalf("POST /select = %d, want 303: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatalf("Location: %v", err)
	}
	return loc
}

// code runs the picker flow and returns a fresh code and its verifier.
func (e *env) code(extra ...string) (code, verifier string) {
	e.t.Helper()
	params, verifier := authParams(extra...)
	loc := e.pick("acme", params, "u-alice")
	code = loc.Query().Get("code")
	if code == "" {
		e.t.Fatalf("redirect %s has no code", loc)
	}
	return code, verifier
}

type tokenResp struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
	Status      int    `json:"-"`
	WWWAuth     string `json:"-"`
}

func (e *env) token(form url.Values, basicID, basicSecret string) tokenResp {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer("acme")+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST /token: %v", err)
	}
	defer resp.Body.Close()
	var tr tokenResp
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		e.t.Fatalf("token response: %v", err)
	}
	tr.Status, tr.WWWAuth = resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	return tr
}

func redeemForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
		"code_verifier": {verifier}}
}

func (e *env) userinfo(realm, accessToken string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer(realm)+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET /userinfo: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestNew_Options(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"dev mode off", func(o *Options) { o.DevMode = false }, "refuses to start outside dev mode"},
		{"relative base URL", func(o *Options) { o.BaseURL = "/idp" }, "base URL"},
		{"algorithm", func(o *Options) { o.Algorithm = "HS256" }, "algorithm"},
		{"no realms", func(o *Options) { o.Realms = nil }, "no realms"},
		{"bad realm name", func(o *Options) { o.Realms[0].Name = "a/b" }, "realm name"},
		{"duplicate realm", func(o *Options) { o.Realms[1].Name = "acme" }, "defined twice"},
		{"protocol claim in extra", func(o *Options) { o.Realms[0].Users[0].Extra = map[string]any{"iss": "x"} }, "protocol claim"},
		{"redirect with fragment", func(o *Options) { o.Realms[0].Clients[0].RedirectURIs = []string{"http://a/cb#f"} }, "redirect URI"},
		{"auto-approve unknown", func(o *Options) { o.AutoApprove = "nobody@nowhere.test" }, "auto-approve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.BaseURL = "http://127.0.0.1:8081"
			tt.mutate(&opts)
			s, err := New(opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() = %v, %v; want error containing %q", s, err, tt.want)
			}
		})
	}
	t.Run("dev mode sentinel", func(t *testing.T) {
		_, err := New(Options{BaseURL: "http://127.0.0.1:8081"})
		if !errors.Is(err, ErrNotDevMode) {
			t.Fatalf("New(DevMode false) = %v, want ErrNotDevMode", err)
		}
	})
}

// TestRoundTrip_GoOIDC drives the whole flow with go-oidc and x/oauth2 as the
// relying party (S05, S11, S13 as seen from an RP).
func TestRoundTrip_GoOIDC(t *testing.T) {
	tests := []struct {
		alg   string
		style oauth2.AuthStyle
	}{
		{"RS256", oauth2.AuthStyleInHeader},
		{"ES256", oauth2.AuthStyleInParams},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Algorithm = tt.alg })
			ctx := oidc.ClientContext(context.Background(), e.srv.Client())
			provider, err := oidc.NewProvider(ctx, e.issuer("acme"))
			if err != nil {
				t.Fatalf("NewProvider: %v", err)
			}
			ep := provider.Endpoint()
			ep.AuthStyle = tt.style
			conf := oauth2.Config{ClientID: testClient, ClientSecret: testSecret, Endpoint: ep,
				RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
			verifier := oauth2.GenerateVerifier()
			authURL := conf.AuthCodeURL("state-xyz", oauth2.S256ChallengeOption(verifier),
				oidc.Nonce("nonce-abc"), oauth2.SetAuthURLParam("login_hint", "BOB@acme.test"))

			resp, body := e.get(e.browser, authURL)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("authorize = %d, want 200", resp.StatusCode)
			}
			for _, want := range []string{bannerText, "Alice Anders", "Bob Berg", "ACME Test"} {
				if !strings.Contains(body, want) {
					t.Errorf("picker page lacks %q", want)
				}
			}
			if !regexp.MustCompile(`class="user hint"[^>]*value="u-bob"[^>]*autofocus`).MatchString(body) {
				t.Errorf("picker does not preselect the login_hint user: %s", body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP = %q, want frame-ancestors 'none' (S06)", csp)
			}
			m := requestIDRE.FindStringSubmatch(body)
			if m == nil {
				t.Fatal("no request_id on the picker")
			}
			resp, _ = e.post(e.browser, e.issuer("acme")+"/select", url.Values{"request_id": {m[1]}, "user": {"u-alice"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("select = %d, want 303 (S06)", resp.StatusCode)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			q := loc.Query()
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
				t.Errorf("redirect = %q, want %q", got, testRedirect)
			}
			if q.Get("state") != "state-xyz" || q.Get("iss") != e.issuer("acme") {
				t.Errorf("redirect query = %v, want state and iss %q (S05)", q, e.issuer("acme"))
			}

			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: testClient}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if idt.Nonce != "nonce-abc" {
				t.Errorf("nonce = %q, want nonce-abc", idt.Nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var c struct {
				Sub, Email, Name string
				EmailVerified    bool     `json:"email_verified"`
				Groups           []string `json:"groups"`
				AMRs             []string `json:"amr"`
				AuthTime         int64    `json:"auth_time"`
				EmployeeType     string   `json:"employee_type"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c.Sub != "u-alice" || c.Email != "alice@acme.test" || !c.EmailVerified || c.Name != "Alice Anders" ||
				len(c.Groups) != 1 || c.Groups[0] != "Finance-Admins" || len(c.AMRs) != 1 || c.AMRs[0] != "pwd" ||
				c.AuthTime == 0 || c.EmployeeType != "employee" {
				t.Errorf("ID token claims = %+v", c)
			}
			if got := idt.Expiry.Sub(idt.IssuedAt); got != idTokenTTL {
				t.Errorf("exp - iat = %v, want %v", got, idTokenTTL)
			}

			ui, err := provider.UserInfo(ctx, conf.TokenSource(ctx, tok))
			if err != nil {
				t.Fatalf("UserInfo: %v", err)
			}
			if ui.Subject != idt.Subject || ui.Email != "alice@acme.test" {
				t.Errorf("userinfo = %+v, want sub %q", ui, idt.Subject)
			}
		})
	}
}

func TestDiscovery_S05_S13_Metadata(t *testing.T) {
	e := newEnv(t, nil)
	for _, realm := range []string{"acme", "globex"} {
		_, body := e.get(e.srv.Client(), e.issuer(realm)+"/.well-known/openid-configuration")
		var md map[string]any
		if err := json.Unmarshal([]byte(body), &md); err != nil {
			t.Fatalf("discovery: %v", err)
		}
		checks := map[string]any{
			"issuer":         e.issuer(realm),
			"token_endpoint": e.issuer(realm) + "/token",
			"jwks_uri":       e.issuer(realm) + "/jwks",
			"authorization_response_iss_parameter_supported": true,
		}
		for k, want := range checks {
			if md[k] != want {
				t.Errorf("%s: %s = %v, want %v", realm, k, md[k], want)
			}
		}
		for k, want := range map[string]string{"code_challenge_methods_supported": "[S256]",
			"response_types_supported": "[code]", "id_token_signing_alg_values_supported": "[ES256]"} {
			if got := strings.ReplaceAll(strings.ReplaceAll(string(mustJSON(md[k])), `"`, ""), ",", " "); got != want {
				t.Errorf("%s: %s = %s, want %s", realm, k, got, want)
			}
		}
		_, jwks := e.get(e.srv.Client(), e.issuer(realm)+"/jwks")
		var set struct{ Keys []map[string]string }
		if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] == "" ||
			set.Keys[0]["alg"] != "ES256" {
			t.Errorf("%s: jwks = %s (%v), want one ES256 key with a kid", realm, jwks, err)
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// TestAuthorize_S01_S02_NoRedirectOnBadClientOrRedirectURI: a bad client or
// redirect_uri is answered on the IdP's own page, never by redirect.
func TestAuthorize_S01_S02_NoRedirectOnBadClientOrRedirectURI(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct{ name, key, value string }{
		{"unknown client", "client_id", "evil"},
		{"missing client", "client_id", ""},
		{"other path", "redirect_uri", "http://127.0.0.1:1/cb2"},
		{"trailing slash", "redirect_uri", "http://127.0.0.1:1/cb/"},
		{"extra query", "redirect_uri", "http://127.0.0.1:1/cb?x=1"},
		{"fragment", "redirect_uri", "http://127.0.0.1:1/cb#x"},
		{"port", "redirect_uri", "http://127.0.0.1:2/cb"},
		{"case", "redirect_uri", "http://127.0.0.1:1/CB"},
		{"other host", "redirect_uri", "http://evil.test/cb"},
		{"missing", "redirect_uri", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params, _ := authParams(tt.key, tt.value)
			resp, body := e.get(e.browser, e.issuer("acme")+"/authorize?"+params.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("authorize(%s=%q) = %d Location %q, want 400 and no redirect",
					tt.key, tt.value, resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, bannerText) {
				t.Errorf("error page lacks the development banner")
			}
		})
	}
}

// TestAuthorize_S03_S04_ErrorsRedirectWithIss: once client and redirect_uri
// are trusted, protocol errors go back to the client with state and iss.
func TestAuthorize_S03_S04_ErrorsRedirectWithIss(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"no PKCE", []string{"code_challenge", "", "code_challenge_method", ""}, "invalid_request"},
		{"plain PKCE", []string{"code_challenge_method", "plain"}, "invalid_request"},
		{"short challenge", []string{"code_challenge", "abc"}, "invalid_request"},
		{"implicit", []string{"response_type", "id_token"}, "unsupported_response_type"},
		{"hybrid", []string{"response_type", "code id_token"}, "unsupported_response_type"},
		{"no openid scope", []string{"scope", "email"}, "invalid_scope"},
		{"prompt none", []string{"prompt", "none"}, "login_required"},
		{"request object", []string{"request", "eyJ..."}, "request_not_supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params, _ := authParams(tt.extra...)
			resp, _ := e.get(e.browser, e.issuer("acme")+"/authorize?"+params.Encode())
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("authorize = %d, want 302", resp.StatusCode)
			}
			q := loc.Query()
			if q.Get("error") != tt.want || q.Get("state") != "st-123" || q.Get("iss") != e.issuer("acme") || q.Has("code") {
				t.Errorf("redirect query = %v, want error=%s with state and iss", q, tt.want)
			}
		})
	}
}

func TestAuthorize_S54_EscapesHostileValues(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	e := newEnv(t, func(o *Options) {
		o.Realms[0].DisplayName = evil
		o.Realms[0].Users[0].Name = evil
		o.Realms[0].Users[0].Groups = []string{evil}
	})
	params, _ := authParams("login_hint", `"><img src=x onerror=alert(1)>`)
	_, body := e.get(e.browser, e.issuer("acme")+"/authorize?"+params.Encode())
	for _, raw := range []string{"<script>", "<img"} {
		if strings.Contains(body, raw) {
			t.Errorf("picker page contains unescaped %q", raw)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("picker page does not show the escaped name")
	}
}

// TestSelect_CSRF_BoundToBrowser: a request id only works in the browser that
// opened the picker, and only once.
func TestSelect_CSRF_BoundToBrowser(t *testing.T) {
	e := newEnv(t, nil)
	params, _ := authParams()
	_, body := e.get(e.browser, e.issuer("acme")+"/authorize?"+params.Encode())
	id := requestIDRE.FindStringSubmatch(body)[1]
	form := url.Values{"request_id": {id}, "user": {"u-alice"}}

	attacker := newBrowser(t)
	if resp, _ := e.post(attacker, e.issuer("acme")+"/select", form); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("Location") != "" {
		t.Fatalf("select from another browser = %d, want 403 and no redirect", resp.StatusCode)
	}
	// The attempt consumed the request: the victim must start again.
	if resp, _ := e.post(e.browser, e.issuer("acme")+"/select", form); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("select after a refused attempt = %d, want 400", resp.StatusCode)
	}
	// Replay in the right browser.
	params, _ = authParams()
	loc := e.pick("acme", params, "u-alice")
	if loc.Query().Get("code") == "" {
		t.Fatalf("pick = %s, want a code", loc)
	}
	// The request id of that pick is gone; a made-up one is refused too.
	if resp, _ := e.post(e.browser, e.issuer("acme")+"/select", url.Values{"request_id": {"NOPE"}, "user": {"u-alice"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("select with unknown request id = %d, want 400", resp.StatusCode)
	}
}

func TestSelect_Cancel(t *testing.T) {
	e := newEnv(t, nil)
	params, _ := authParams()
	_, body := e.get(e.browser, e.issuer("acme")+"/authorize?"+params.Encode())
	id := requestIDRE.FindStringSubmatch(body)[1]
	resp, _ := e.post(e.browser, e.issuer("acme")+"/select", url.Values{"request_id": {id}, "cancel": {"1"}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-123" {
		t.Fatalf("cancel = %d %s, want 303 with error=access_denied and state", resp.StatusCode, loc)
	}
}

func TestToken_S03_PKCE(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name     string
		verifier func(good string) string
	}{
		{"wrong verifier", func(string) string { return oauth2.GenerateVerifier() }},
		{"missing verifier", func(string) string { return "" }},
		{"too short", func(g string) string { return g[:42] }},
		{"bad characters", func(g string) string { return g[:42] + "+" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, good := e.code()
			if tr := e.token(redeemForm(code, tt.verifier(good)), testClient, testSecret); tr.Status != http.StatusBadRequest || tr.Error != "invalid_grant" {
				t.Fatalf("token = %d %q, want 400 invalid_grant", tr.Status, tr.Error)
			}
			// A failed attempt uses the code up: the right verifier is too late.
			if tr := e.token(redeemForm(code, good), testClient, testSecret); tr.Error != "invalid_grant" {
				t.Fatalf("token after a failed attempt = %q, want invalid_grant", tr.Error)
			}
		})
	}
}

func TestToken_S07_CodeReuse(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.code()
	first := e.token(redeemForm(code, verifier), testClient, testSecret)
	if first.Status != http.StatusOK || first.AccessToken == "" || first.IDToken == "" {
		t.Fatalf("first redemption = %d %q, want 200 with tokens", first.Status, first.Error)
	}
	if got := e.userinfo("acme", first.AccessToken); got != http.StatusOK {
		t.Fatalf("userinfo = %d, want 200", got)
	}
	second := e.token(redeemForm(code, verifier), testClient, testSecret)
	if second.Status != http.StatusBadRequest || second.Error != "invalid_grant" {
		t.Fatalf("second redemption = %d %q, want 400 invalid_grant", second.Status, second.Error)
	}
	if got := e.userinfo("acme", first.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("userinfo after code reuse = %d, want 401 (token revoked)", got)
	}
}

func TestToken_S08_CodeBinding(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name           string
		id, secret     string
		redirect       string
		advance        time.Duration
		wantStatus     int
		wantErrorField string
	}{
		{"ok", testClient, testSecret, testRedirect, 0, http.StatusOK, ""},
		{"other client", "other-app", "other-secret", testRedirect, 0, http.StatusBadRequest, "invalid_grant"},
		{"other redirect_uri", testClient, testSecret, "http://127.0.0.1:1/other?x=1", 0, http.StatusBadRequest, "invalid_grant"},
		{"expired", testClient, testSecret, testRedirect, codeTTL + time.Second, http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := e.code()
			e.clock.Store(int64(tt.advance))
			defer e.clock.Store(0)
			form := redeemForm(code, verifier)
			form.Set("redirect_uri", tt.redirect)
			if tr := e.token(form, tt.id, tt.secret); tr.Status != tt.wantStatus || tr.Error != tt.wantErrorField {
				t.Fatalf("token = %d %q, want %d %q", tr.Status, tr.Error, tt.wantStatus, tt.wantErrorField)
			}
		})
	}
}

func TestToken_ClientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name               string
		basicID, basicPass string
		form               url.Values
		wantStatus         int
		wantError          string
		wantChallenge      bool
	}{
		{"basic ok", testClient, testSecret, nil, 200, "", false},
		{"post ok", "", "", url.Values{"client_id": {testClient}, "client_secret": {testSecret}}, 200, "", false},
		{"basic wrong secret", testClient, "nope", nil, 401, "invalid_client", true},
		{"post wrong secret", "", "", url.Values{"client_id": {testClient}, "client_secret": {"nope"}}, 401, "invalid_client", false},
		{"unknown client", "ghost", testSecret, nil, 401, "invalid_client", true},
		{"no authentication", "", "", url.Values{"client_id": {testClient}}, 401, "invalid_client", false},
		{"two methods", testClient, testSecret, url.Values{"client_secret": {testSecret}}, 400, "invalid_request", false},
		{"password grant", testClient, testSecret, url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := e.code()
			form := redeemForm(code, verifier)
			for k, v := range tt.form {
				form[k] = v
			}
			tr := e.token(form, tt.basicID, tt.basicPass)
			if tr.Status != tt.wantStatus || tr.Error != tt.wantError || (tr.WWWAuth != "") != tt.wantChallenge {
				t.Fatalf("token = %d %q (WWW-Authenticate %q), want %d %q", tr.Status, tr.Error, tr.WWWAuth, tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestUserinfo_RefusesBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.code()
	tr := e.token(redeemForm(code, verifier), testClient, testSecret)
	tests := []struct {
		name, realm, token string
		advance            time.Duration
		want               int
	}{
		{"valid", "acme", tr.AccessToken, 0, 200},
		{"garbage", "acme", "garbage", 0, 401},
		{"empty", "acme", "", 0, 401},
		{"other realm", "globex", tr.AccessToken, 0, 401},
		{"expired", "acme", tr.AccessToken, defaultATTTL + time.Second, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Store(int64(tt.advance))
			defer e.clock.Store(0)
			if got := e.userinfo(tt.realm, tt.token); got != tt.want {
				t.Fatalf("userinfo(%s) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestAutoApprove(t *testing.T) {
	tests := []struct {
		name, auto, realm, hint string
		wantSub                 string // "" means the picker is shown
	}{
		{"fixed user", "bob@acme.test", "acme", "", "u-bob"},
		{"fixed user ignores hint", "bob@acme.test", "acme", "alice@acme.test", "u-bob"},
		{"fixed user absent from realm", "bob@acme.test", "globex", "", ""},
		{"any follows hint", "*", "acme", "alice@acme.test", "u-alice"},
		{"any without hint", "*", "globex", "", "u-carol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.AutoApprove = tt.auto })
			params, verifier := authParams("login_hint", tt.hint)
			resp, _ := e.get(e.browser, e.issuer(tt.realm)+"/authorize?"+params.Encode())
			if tt.wantSub == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("authorize = %d, want the picker (200)", resp.StatusCode)
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
				t.Fatalf("authorize = %d %s, want 302 with a code", resp.StatusCode, loc)
			}
			form := redeemForm(loc.Query().Get("code"), verifier)
			req, _ := http.NewRequest(http.MethodPost, e.issuer(tt.realm)+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(testClient, testSecret)
			r2, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Body.Close()
			var tr tokenResp
			_ = json.NewDecoder(r2.Body).Decode(&tr)
			parts := strings.Split(tr.IDToken, ".")
			if len(parts) != 3 {
				t.Fatalf("id_token = %q (%s)", tr.IDToken, tr.Error)
			}
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var c struct{ Sub, Iss string }
			_ = json.Unmarshal(payload, &c)
			if c.Sub != tt.wantSub || c.Iss != e.issuer(tt.realm) {
				t.Errorf("id_token sub, iss = %q, %q; want %q, %q", c.Sub, c.Iss, tt.wantSub, e.issuer(tt.realm))
			}
		})
	}
}

func TestDefaultDemo(t *testing.T) {
	opts := DefaultDemo("http://127.0.0.1:8081")
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New(DefaultDemo) = %v", err)
	}
	for realm, want := range map[string]string{"acme": "http://127.0.0.1:8081/acme", "globex": "http://127.0.0.1:8081/globex"} {
		if got := s.Issuer(realm); got != want {
			t.Errorf("Issuer(%q) = %q, want %q", realm, got, want)
		}
	}
	alice := s.realms["acme"].userByHint("alice@acme.test")
	if alice == nil || alice.Name != "Alice Anders" || len(alice.Groups) != 1 || alice.Groups[0] != "Finance-Admins" {
		t.Errorf("acme alice = %+v", alice)
	}
	for _, email := range []string{"bob@acme.test"} {
		if s.realms["acme"].userByHint(email) == nil {
			t.Errorf("acme lacks %s", email)
		}
	}
	for _, email := range []string{"carol@globex.test", "dave@globex.test"} {
		if s.realms["globex"].userByHint(email) == nil {
			t.Errorf("globex lacks %s", email)
		}
	}
	c := s.realms["globex"].clients[DemoClientID]
	if c == nil || c.Secret != DemoClientSecret || !exactMatch(c.RedirectURIs, "http://127.0.0.1:8080/callback/globex-idp") {
		t.Errorf("globex client = %+v", c)
	}
}

// BenchmarkLogin measures one auto-approved authorize + token round trip in
// process, the cost the dev IdP adds as an upstream in load tests.
func BenchmarkLogin(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			opts := testOptions()
			opts.BaseURL, opts.Algorithm, opts.AutoApprove = "http://idp.test", alg, "*"
			s, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			h := s.Handler()
			params, verifier := authParams()
			authURL := "/acme/authorize?" + params.Encode()
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, authURL, nil))
				loc, _ := url.Parse(rec.Header().Get("Location"))
				form := redeemForm(loc.Query().Get("code"), verifier)
				req := httptest.NewRequest(http.MethodPost, "/acme/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(testClient, testSecret)
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("token = %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
