package demoapp

import (
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

	"github.com/realmgate/realmgate/internal/devidp"
)

const hostileName = `<script>alert("x")</script>`

// env is the demo app and a devidp realm standing in for realmgate (to the
// app it is just an OpenID Provider).
type env struct {
	t       *testing.T
	app     *App
	appSrv  *httptest.Server
	idpSrv  *httptest.Server
	idpH    *atomic.Pointer[http.Handler]
	issuer  string
	browser *http.Client // follows redirects, keeps cookies
}

// swap is an http.Handler whose target can be set after the server started.
func swap(p *atomic.Pointer[http.Handler]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.Load()
		if h == nil {
			http.Error(w, "not started", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
}

// newEnv starts both servers; with startIdP false the IdP answers 503 until
// e.startIdP is called.
func newEnv(t *testing.T, startIdP bool) *env {
	t.Helper()
	e := &env{t: t, idpH: new(atomic.Pointer[http.Handler])}
	appH := new(atomic.Pointer[http.Handler])
	e.idpSrv = httptest.NewServer(swap(e.idpH))
	t.Cleanup(e.idpSrv.Close)
	e.appSrv = httptest.NewServer(swap(appH))
	t.Cleanup(e.appSrv.Close)
	e.issuer = e.idpSrv.URL + "/acme"

	app, err := New(Options{
		Issuer: e.issuer, ClientID: "notes", ClientSecret: "notes-secret",
		RedirectURL: e.appSrv.URL + "/callback", HTTPClient: e.idpSrv.Client(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.app = app
	h := app.Handler()
	appH.Store(&h)
	if startIdP {
		e.startIdP()
	}
	jar, _ := cookiejar.New(nil)
	e.browser = &http.Client{Jar: jar, Timeout: 5 * time.Second}
	return e
}

func (e *env) startIdP() {
	e.t.Helper()
	idp, err := devidp.New(devidp.Options{
		BaseURL: e.idpSrv.URL, DevMode: true, Algorithm: "ES256",
		Realms: []devidp.Realm{{
			Name: "acme", DisplayName: "ACME",
			Clients: []devidp.Client{{ID: "notes", Secret: "notes-secret", RedirectURIs: []string{e.appSrv.URL + "/callback"}}},
			Users: []devidp.User{
				{Subject: "u-alice", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders",
					Extra: map[string]any{"tid": "acme", "roles": []string{"admin", "reader"}, "idp": "acme-idp"}},
				{Subject: "u-mallory", Email: "mallory@acme.test", Name: hostileName},
			},
		}},
	})
	if err != nil {
		e.t.Fatalf("devidp.New: %v", err)
	}
	h := idp.Handler()
	e.idpH.Store(&h)
}

func (e *env) do(client *http.Client, method, u string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = client.PostForm(u, form)
	} else {
		resp, err = client.Get(u)
	}
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var requestIDRE = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// signIn goes from the app's /login through the IdP's picker back to the
// app's callback, picking subject; it returns the final page.
func (e *env) signIn(hint, subject string) (*http.Response, string) {
	e.t.Helper()
	resp, body := e.do(e.browser, http.MethodGet, e.appSrv.URL+"/login?login_hint="+url.QueryEscape(hint), nil)
	m := requestIDRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		e.t.Fatalf("login = %d, want the IdP picker: %s", resp.StatusCode, body)
	}
	return e.do(e.browser, http.MethodPost, e.idpSrv.URL+"/acme/select", url.Values{"request_id": {m[1]}, "user": {subject}})
}

func TestRoundTrip_ShowsClaims(t *testing.T) {
	e := newEnv(t, true)
	resp, body := e.signIn("alice@acme.test", "u-alice")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" {
		t.Fatalf("callback = %d at %s, want 200 at /callback: %s", resp.StatusCode, resp.Request.URL, body)
	}
	rows := map[string]string{"tid": "acme", "roles": "admin, reader", "idp": "acme-idp", "sub": "u-alice",
		"email": "alice@acme.test", "name": "Alice Anders", "amr": "pwd"}
	for claim, want := range rows {
		re := regexp.MustCompile(`<th>` + claim + `</th><td class="big">([^<]*)</td>`)
		m := re.FindStringSubmatch(body)
		if m == nil || m[1] != want {
			t.Errorf("claim row %s = %v, want %q", claim, m, want)
		}
	}
	for _, want := range []string{`&#34;alg&#34;: &#34;ES256&#34;`, `&#34;nonce&#34;:`, "Sign in as someone else", e.issuer} {
		if !strings.Contains(body, want) {
			t.Errorf("result page lacks %q", want)
		}
	}
	// The login cookie is single-use: reloading the callback is refused.
	resp, _ = e.do(e.browser, http.MethodGet, resp.Request.URL.String(), nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback replay = %d, want 400", resp.StatusCode)
	}
}

func TestRoundTrip_EscapesClaims(t *testing.T) {
	e := newEnv(t, true)
	resp, body := e.signIn("mallory@acme.test", "u-mallory")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback = %d, want 200: %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("result page contains an unescaped claim")
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("result page does not show the escaped name")
	}
	if !strings.Contains(body, `<th>tid</th><td class="big">(absent)</td>`) {
		t.Errorf("a missing tid is not shown as absent")
	}
}

func TestLogin_AuthorizationRequest(t *testing.T) {
	e := newEnv(t, true)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, query          string
		wantHint, wantPrompt string
	}{
		{"hint", "login_hint=alice%40acme.test", "alice@acme.test", ""},
		{"prompt login", "prompt=login", "", "login"},
		{"unknown prompt dropped", "prompt=none", "", ""},
		{"oversized hint dropped", "login_hint=" + strings.Repeat("a", maxHintLen+1), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := e.do(noFollow, http.MethodGet, e.appSrv.URL+"/login?"+tt.query, nil)
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), e.issuer+"/authorize?") {
				t.Fatalf("login = %d %q, want 302 to the issuer", resp.StatusCode, loc)
			}
			q := loc.Query()
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
				len(q.Get("state")) < 26 || len(q.Get("nonce")) < 26 || q.Get("client_id") != "notes" {
				t.Errorf("authorization request = %v, want PKCE S256, state and nonce", q)
			}
			if q.Get("login_hint") != tt.wantHint || q.Get("prompt") != tt.wantPrompt {
				t.Errorf("login_hint, prompt = %q, %q; want %q, %q", q.Get("login_hint"), q.Get("prompt"), tt.wantHint, tt.wantPrompt)
			}
			var c *http.Cookie
			for _, x := range resp.Cookies() {
				if x.Name == loginCookie {
					c = x
				}
			}
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 || c.Value == q.Get("state") {
				t.Errorf("login cookie = %+v, want HttpOnly, SameSite=Lax, short-lived, not the state", c)
			}
		})
	}
}

// TestCallback_Refusals: answers that do not belong to this browser's sign-in
// get a readable error page, and no token is shown.
func TestCallback_Refusals(t *testing.T) {
	e := newEnv(t, true)
	tests := []struct {
		name       string
		query      func(state string) url.Values
		otherJar   bool
		wantStatus int
		wantText   string
	}{
		{"another browser", func(s string) url.Values { return url.Values{"state": {s}, "code": {"x"}, "iss": {e.issuer}} },
			true, 400, "Sign-in not recognised"},
		{"state mismatch", func(string) url.Values { return url.Values{"state": {"forged"}, "code": {"x"}, "iss": {e.issuer}} },
			false, 400, "State mismatch"},
		{"missing iss (RFC 9207)", func(s string) url.Values { return url.Values{"state": {s}, "code": {"x"}} },
			false, 400, "Issuer mismatch"},
		{"wrong iss (mix-up)", func(s string) url.Values {
			return url.Values{"state": {s}, "code": {"x"}, "iss": {"http://evil.test"}}
		}, false, 400, "Issuer mismatch"},
		{"IdP error escaped", func(s string) url.Values {
			return url.Values{"state": {s}, "iss": {e.issuer}, "error": {"access_denied"}, "error_description": {hostileName}}
		}, false, 400, "&lt;script&gt;"},
		{"no code", func(s string) url.Values { return url.Values{"state": {s}, "iss": {e.issuer}} },
			false, 400, "No code"},
		{"bogus code", func(s string) url.Values { return url.Values{"state": {s}, "code": {"bogus"}, "iss": {e.issuer}} },
			false, 502, "Code exchange failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, _ := e.do(browser, http.MethodGet, e.appSrv.URL+"/login", nil)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			state := loc.Query().Get("state")
			if tt.otherJar {
				jar2, _ := cookiejar.New(nil)
				browser.Jar = jar2
			}
			resp, body := e.do(browser, http.MethodGet, e.appSrv.URL+"/callback?"+tt.query(state).Encode(), nil)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantText) {
				t.Fatalf("callback = %d, want %d with %q: %s", resp.StatusCode, tt.wantStatus, tt.wantText, body)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "Signed in") {
				t.Errorf("error page shows a token or unescaped text")
			}
		})
	}
}

func TestCallback_NonceMismatch(t *testing.T) {
	e := newEnv(t, true)
	resp, body := e.do(e.browser, http.MethodGet, e.appSrv.URL+"/login", nil)
	m := requestIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("login = %d, want the picker", resp.StatusCode)
	}
	e.app.mu.Lock()
	for _, pl := range e.app.pending {
		pl.nonce = "a-nonce-the-token-does-not-carry"
	}
	e.app.mu.Unlock()
	resp, body = e.do(e.browser, http.MethodPost, e.idpSrv.URL+"/acme/select", url.Values{"request_id": {m[1]}, "user": {"u-alice"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Nonce mismatch") {
		t.Fatalf("callback = %d, want 400 Nonce mismatch: %s", resp.StatusCode, body)
	}
}

// TestLogin_LazyDiscovery: the app starts before its issuer and recovers
// once the issuer is up.
func TestLogin_LazyDiscovery(t *testing.T) {
	e := newEnv(t, false)
	resp, body := e.do(e.browser, http.MethodGet, e.appSrv.URL+"/login", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Cannot reach the identity broker") {
		t.Fatalf("login before the issuer = %d, want 502 page: %s", resp.StatusCode, body)
	}
	e.startIdP()
	resp, body = e.signIn("alice@acme.test", "u-alice")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@acme.test") {
		t.Fatalf("sign-in after the issuer started = %d: %s", resp.StatusCode, body)
	}
}

func TestHome(t *testing.T) {
	e := newEnv(t, false)
	resp, body := e.do(e.browser, http.MethodGet, e.appSrv.URL+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{`name="login_hint"`, "Sign in", "alice@acme.test", "carol@globex.test", e.issuer} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q, want frame-ancestors 'none'", csp)
	}
}

func TestNew_Options(t *testing.T) {
	ok := Options{Issuer: "http://127.0.0.1:8080", ClientID: "notes", RedirectURL: "http://127.0.0.1:9000/callback"}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"relative issuer", func(o *Options) { o.Issuer = "/x" }, "issuer"},
		{"no client", func(o *Options) { o.ClientID = "" }, "client id"},
		{"bad redirect", func(o *Options) { o.RedirectURL = "callback" }, "redirect URL"},
		{"redirect on /login", func(o *Options) { o.RedirectURL = "http://127.0.0.1:9000/login" }, "path"},
		{"redirect on /", func(o *Options) { o.RedirectURL = "http://127.0.0.1:9000/" }, "path"},
		{"pattern characters", func(o *Options) { o.RedirectURL = "http://127.0.0.1:9000/{x}" }, "path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
}
