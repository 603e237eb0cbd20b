package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
)

// fakeIdP is an upstream connector under the test's control.
type fakeIdP struct {
	id string
	mu sync.Mutex
	// ident is returned by HandleCallback.
	ident providers.Identity
	err   error
	last  providers.LoginRequest
	// now, when set, stamps an identity without AuthTime with the time of
	// the callback; nil leaves the authentication time unknown.
	now func() time.Time
}

func (f *fakeIdP) LoginURL(_ context.Context, req providers.LoginRequest) (string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = req
	return "https://idp.example/" + f.id + "/authorize?state=" + url.QueryEscape(req.State), []byte("data-" + f.id), nil
}

func (f *fakeIdP) HandleCallback(_ context.Context, req providers.LoginRequest, data []byte, r *http.Request) (providers.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if string(data) != "data-"+f.id {
		return providers.Identity{}, errors.New("connector data lost")
	}
	if r.FormValue("error") == "access_denied" {
		return providers.Identity{}, providers.ErrAccessDenied
	}
	if f.err != nil {
		return providers.Identity{}, f.err
	}
	id := f.ident
	if id.AuthTime.IsZero() && f.now != nil {
		id.AuthTime = f.now() // as a real IdP states auth_time
	}
	return id, nil
}

// recordingStore wraps a Store, records every key and value written, and can
// be switched off to simulate an outage.
type recordingStore struct {
	broker.Store
	mu     sync.Mutex
	writes []string
	down   atomic.Bool
	// batches counts the Batch calls of a batchingRecorder, redeems its
	// RedeemCode calls, calls the calls of one record (count).
	batches, redeems, calls int
}

func (r *recordingStore) rec(parts ...string) {
	r.mu.Lock()
	r.writes = append(r.writes, parts...)
	r.mu.Unlock()
}

// count counts a call of one record (Put, Create, Get, Take, CreateFamily).
func (r *recordingStore) count() {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
}

func (r *recordingStore) fail() error {
	if r.down.Load() {
		return broker.ErrUnavailable
	}
	return nil
}

func (r *recordingStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	r.count()
	if err := r.fail(); err != nil {
		return err
	}
	r.rec(k, string(v))
	return r.Store.Put(ctx, k, v, ttl)
}
func (r *recordingStore) Create(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	r.count()
	if err := r.fail(); err != nil {
		return err
	}
	r.rec(k, string(v))
	return r.Store.Create(ctx, k, v, ttl)
}
func (r *recordingStore) Get(ctx context.Context, k string) ([]byte, error) {
	r.count()
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Store.Get(ctx, k)
}
func (r *recordingStore) Take(ctx context.Context, k string) ([]byte, error) {
	r.count()
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Store.Take(ctx, k)
}
func (r *recordingStore) Touch(ctx context.Context, k string, ttl time.Duration) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Store.Touch(ctx, k, ttl)
}
func (r *recordingStore) CreateFamily(ctx context.Context, f, tok string, g []byte, ttl time.Duration) error {
	r.count()
	if err := r.fail(); err != nil {
		return err
	}
	r.rec(f, tok, string(g))
	return r.Store.CreateFamily(ctx, f, tok, g, ttl)
}
func (r *recordingStore) Rotate(ctx context.Context, f, old, next string) ([]byte, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	r.rec(f, old, next)
	return r.Store.Rotate(ctx, f, old, next)
}
func (r *recordingStore) FamilyGrant(ctx context.Context, f string) ([]byte, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	return r.Store.FamilyGrant(ctx, f)
}
func (r *recordingStore) Ping(ctx context.Context) error {
	if err := r.fail(); err != nil {
		return err
	}
	return r.Store.Ping(ctx)
}

// env is a broker under test with two tenants and three clients.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	broker *broker.Server
	store  *recordingStore
	acme   *fakeIdP
	globex *fakeIdP
	// initechA and initechB are the two IdPs of tenant initech; social is
	// the default tenant's IdP.
	initechA, initechB, social *fakeIdP
	clock                      *clock
	issuer                     string
}

type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

const (
	secretA = "secret-for-app-a-0123456789"
	secretB = "secret-for-app-b-0123456789"
	appCB   = "https://app-a.example/callback"
)

type envOpt func(*broker.Config)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	return newEnvOn(t, &recordingStore{Store: ms}, opts...)
}

func newEnvOn(t *testing.T, store *recordingStore, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, store: store, clock: &clock{},
		acme: &fakeIdP{id: "acme-idp", ident: providers.Identity{Issuer: "https://acme.idp", Subject: "alice-upstream",
			Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders", GivenName: "Alice", FamilyName: "Anders",
			AMR: []string{"pwd", "mfa"}, Claims: map[string]any{"sub": "alice-upstream", "groups": []any{"Finance-Admins"}}}},
		globex: &fakeIdP{id: "globex-idp", ident: providers.Identity{Issuer: "https://globex.idp", Subject: "carol",
			Email: "carol@globex.test", EmailVerified: true, Name: "Carol"}},
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	e.initechA, e.initechB = &fakeIdP{id: "initech-a", ident: providers.Identity{Subject: "peter", Email: "peter@initech.test", EmailVerified: true}},
		&fakeIdP{id: "initech-b", ident: providers.Identity{Subject: "peter-b", Email: "peter@initech.test", EmailVerified: true}}
	e.social = &fakeIdP{id: "social", ident: providers.Identity{Subject: "gh-1", Email: "someone@gmail.example", EmailVerified: true}}
	res, err := realm.New(harnessTenants(), realm.Options{BaseDomain: "login.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fakeIdP{e.acme, e.globex, e.initechA, e.initechB, e.social} {
		f.now = e.clock.now
	}
	cfg := broker.Config{
		Issuer: e.issuer, Secret: []byte("test-secret-0123456789abcdef0123"),
		Clients: []broker.Client{
			{ID: "app-a", Secret: secretA, RedirectURIs: []string{appCB, "http://127.0.0.1:9000/cb"}, AllowedTenants: []string{"*"},
				Claims: []string{"roles"}},
			{ID: "app-b", Secret: secretB, RedirectURIs: []string{"https://app-b.example/callback"}, AllowedTenants: []string{"*"},
				PostLogoutRedirectURIs: []string{"https://app-b.example/bye"}, Claims: []string{"roles"}},
			{ID: "pub", RedirectURIs: []string{"http://127.0.0.1:7000/cb"}, AllowedTenants: []string{"*"}},
			{ID: "acme-only", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"acme"}},
			{ID: "no-social", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"*"},
				AllowedIdPs: []string{"acme-idp", "globex-idp", "initech-a"}},
		},
		IdPs:     e.harnessIdPs(),
		Resolver: res,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      e.clock.now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	// An option may replace the resolver with fewer tenants: keep only the
	// IdPs it still knows.
	known := cfg.IdPs[:0:0]
	for _, p := range cfg.IdPs {
		if owner, ok := cfg.Resolver.TenantOfIdP(p.ID); ok && owner == p.Tenant {
			known = append(known, p)
		}
	}
	cfg.IdPs = known
	var st broker.Store = store
	if batchingRecorderFor(store) {
		st = batchingRecorder{store} // the sign-in steps as batches (broker/pending.go, redeem.go)
	}
	b, err := broker.New(context.Background(), cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	e.broker = b
	mux.Handle("/", b.Handler())
	return e
}

// harnessTenants are the tenants of every env.
func harnessTenants() []realm.Tenant {
	return []realm.Tenant{
		{ID: "acme", Name: "ACME <Corp>", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}},
		{ID: "globex", Name: "Globex", Domains: []string{"globex.test", "*.globex.test"}, IdPs: []string{"globex-idp"}},
		{ID: "initech", Name: `<img src=x onerror=alert(1)> Initech`, Domains: []string{"initech.test"}, Subdomain: "initech",
			IPRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, IdPs: []string{"initech-a", "initech-b"}},
		{ID: "consumers", Name: "Personal accounts", Default: true, IdPs: []string{"social"}},
	}
}

// harnessIdPs are the IdPs of every env, on its fake connectors.
func (e *env) harnessIdPs() []broker.IdP {
	return []broker.IdP{
		{ID: "acme-idp", Tenant: "acme", Name: "ACME SSO", Connector: e.acme},
		{ID: "globex-idp", Tenant: "globex", Name: "Globex SSO", Connector: e.globex},
		{ID: "initech-a", Tenant: "initech", Name: "Initech Entra", Connector: e.initechA},
		{ID: "initech-b", Tenant: "initech", Name: `Initech "AD FS" <b>`, Connector: e.initechB},
		{ID: "social", Tenant: "consumers", Name: "GitHub", Connector: e.social},
	}
}

// browser is a cookie-keeping user agent that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) get(u string) *http.Response {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp
}

func (b *browser) getBody(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) postForm(u string, v url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(u, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := strings.Repeat("v", 10) + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()+"0123456789abcdefghij"))
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams returns a valid authorization request for app-a.
func authParams(challenge string) url.Values {
	return url.Values{"client_id": {"app-a"}, "redirect_uri": {appCB}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {"st-123"}, "nonce": {"n-0S6_WzA2Mj"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "login_hint": {"alice@acme.test"}}
}

func (e *env) authorizeURL(v url.Values) string { return e.issuer + "/authorize?" + v.Encode() }

// upstreamState follows /authorize to the fake IdP and returns its state.
func (e *env) upstreamState(b *browser, v url.Values) (string, string) {
	e.t.Helper()
	resp := b.get(e.authorizeURL(v))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://idp.example/") {
		e.t.Fatalf("authorize = %d %q, want 302 to the upstream IdP", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	return strings.Split(u.Path, "/")[1], u.Query().Get("state")
}

// login runs a whole sign-in and returns the client's redirect query.
func (e *env) login(b *browser, v url.Values) url.Values {
	e.t.Helper()
	idp, state := e.upstreamState(b, v)
	resp := b.get(e.issuer + "/callback/" + idp + "?code=upstream-code&state=" + url.QueryEscape(state))
	return e.clientRedirect(resp, v.Get("redirect_uri"))
}

func (e *env) clientRedirect(resp *http.Response, redirectURI string) url.Values {
	e.t.Helper()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, redirectURI+"?") {
		e.t.Fatalf("response = %d Location %q, want a redirect to %s", resp.StatusCode, loc, redirectURI)
	}
	u, _ := url.Parse(loc)
	return u.Query()
}

type tokenResp struct {
	status int
	body   map[string]any
	header http.Header
}

func (t tokenResp) str(k string) string { s, _ := t.body[k].(string); return s }

func (e *env) post(path string, v url.Values, user, pass string) tokenResp {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out := tokenResp{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (e *env) exchange(code, verifier string) tokenResp {
	return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appCB}, "code_verifier": {verifier}}, "app-a", secretA)
}

func (e *env) refresh(rt, client, secret string) tokenResp {
	return e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, client, secret)
}

func (e *env) userinfo(token string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// signIn runs the default flow for app-a and returns the token response.
func (e *env) signIn() (tokenResp, *browser) {
	e.t.Helper()
	b := e.browser()
	verifier, challenge := pkce()
	q := e.login(b, authParams(challenge))
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK {
		e.t.Fatalf("token exchange = %d %v", tr.status, tr.body)
	}
	return tr, b
}

// claimsOf decodes a JWT payload without verifying (verification is tested separately).
func claimsOf(t *testing.T, jwt string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	var h, c map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	return h, c
}

// VerifyLogoutToken accepts test logout tokens "logout|sub|sid|jti".
func (f *fakeIdP) VerifyLogoutToken(_ context.Context, raw string) (providers.LogoutClaims, error) {
	parts := strings.Split(raw, "|")
	if len(parts) != 4 || parts[0] != "logout" {
		return providers.LogoutClaims{}, providers.ErrInvalidResponse
	}
	return providers.LogoutClaims{Subject: parts[1], SID: parts[2], JTI: parts[3], Expiry: time.Now().Add(2 * time.Minute)}, nil
}

// EndSessionURL makes the fake IdP support upstream logout.
func (f *fakeIdP) EndSessionURL(_ context.Context, postLogout, state string) (string, bool, error) {
	return "https://idp.example/" + f.id + "/logout?" + url.Values{"post_logout_redirect_uri": {postLogout}, "state": {state}}.Encode(), true, nil
}
