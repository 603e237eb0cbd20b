package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	_ "github.com/realmgate/realmgate/idp/builtin" // the IdP types of the build: onboarding values, validation
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/portal"
	"github.com/realmgate/realmgate/scim"
)

const (
	issuer    = "https://login.example.test"
	opToken   = "operator-token-0123456789abcdef0123456789"
	acmeToken = "acme-admin-token-0123456789abcdef01234567"
	secret    = "server-secret-0123456789abcdef0123456789"
)

// file is the configuration file of the test broker: one file tenant; the
// API tenants are created by the tests. The outbound policy is the
// default: no loopback, no private addresses.
const file = `issuer: https://login.example.test
tenants:
  - id: filecorp
    domains: [file.test]
    providers:
      - id: file-gh
        type: github
        client_id: x
        client_secret: y
`

// clock is a settable clock shared by the admin API and the portal.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeDNS answers TXT lookups from a map.
type fakeDNS struct {
	mu  sync.Mutex
	txt map[string][]string
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.txt[name]; ok {
		return v, nil
	}
	return nil, errors.New("no such host")
}

func (f *fakeDNS) set(name string, v ...string) {
	f.mu.Lock()
	f.txt[name] = v
	f.mu.Unlock()
}

// fakeTester stands in for the broker's test sign-in: it redirects back
// at once with a result it made up.
type fakeTester struct {
	mu      sync.Mutex
	refuse  bool // StartTest refuses every request
	started []portal.TestRequest
	results map[string]*portal.TestResult
}

func (f *fakeTester) StartTest(w http.ResponseWriter, r *http.Request, req portal.TestRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, req)
	id := "test-" + string(rune('a'+len(f.started)))
	if f.refuse {
		return fmt.Errorf("%w: not usable", portal.ErrTestRefused)
	}
	f.results[id] = &portal.TestResult{Tenant: req.Tenant, IdP: req.IdP, Actor: req.Actor,
		Attributes: map[string]any{"sub": "u1", "email": "pat@acme.test", "groups": []any{"Engineering", "<b>Ops</b>"}},
		Claims:     map[string]any{"email": "pat@acme.test", "sub": "u1"},
		Trace:      []portal.TraceStep{{Rule: "everyone", Matched: true, Changes: []string{"add roles: member"}}}}
	http.Redirect(w, r, req.Return+"?test="+id, http.StatusSeeOther)
	return nil
}

func (f *fakeTester) TestResult(_ context.Context, id string) (*portal.TestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.results[id]; ok {
		return r, nil
	}
	return nil, errors.New("no such test")
}

type onboarder struct{}

func (onboarder) Onboarding(iss string, p admin.Provider) (admin.Onboarding, bool) {
	return idp.OnboardingFor(iss, &p)
}

// auditLog collects the audit stream.
type auditLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (a *auditLog) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buf.Write(p)
}

func (a *auditLog) events(t *testing.T) []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(a.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// env is a broker's admin API and setup portal on one store.
type env struct {
	t      *testing.T
	svc    *admin.Service
	api    *httptest.Server
	portal *httptest.Server
	clock  *clock
	dns    *fakeDNS
	tester *fakeTester
	audit  *auditLog
}

func newEnv(t *testing.T, opts ...func(*portal.Options)) *env {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(file), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	e := &env{t: t, clock: &clock{t: time.Now()}, dns: &fakeDNS{txt: map[string][]string{}},
		tester: &fakeTester{results: map[string]*portal.TestResult{}}, audit: &auditLog{}}
	svc, err := admin.New(admin.Options{Store: st, Compiler: assemble.NewCompiler(cfg, outbound.New(outbound.Policy{}), logger),
		Apply: func(*admin.Compiled) error { return nil }, Issuer: issuer, Onboarder: onboarder{},
		Tokens:      []admin.Token{{Name: "ops", Token: opToken}, {Name: "acme-admin", Token: acmeToken, Tenant: "acme"}},
		FileTenants: cfg.Tenants, DNS: e.dns, PollInterval: time.Hour, Logger: logger,
		Audit: slog.New(slog.NewJSONHandler(e.audit, nil)), Now: e.clock.now, Secret: []byte(secret),
		SCIMTokens: scim.NewTokens(st, []byte(secret))})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	po := portal.Options{Issuer: issuer, Admin: svc, Store: st, Secret: []byte(secret), Tester: e.tester,
		Logger: logger, Now: e.clock.now, MaxUpload: 64 << 10}
	for _, o := range opts {
		o(&po)
	}
	h, err := portal.New(po)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.api = httptest.NewServer(svc.Handler())
	e.portal = httptest.NewServer(h)
	t.Cleanup(func() { e.api.Close(); e.portal.Close() })
	return e
}

// call makes an admin API request.
func (e *env) call(token, method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// tenant creates API tenant id named name.
func (e *env) tenant(id, name string, domains ...admin.Domain) {
	e.t.Helper()
	tn := admin.Tenant{Tenant: config.Tenant{ID: id, Name: name}, Domains: domains}
	if got := e.call(opToken, "POST", "/v1/tenants", tn, nil); got != http.StatusCreated {
		e.t.Fatalf("create tenant %s = %d", id, got)
	}
}

// createdLink is the admin API's answer to a link's creation.
type createdLink struct {
	admin.SetupLink
	URL string `json:"url"`
}

// link creates a setup link of tenant with body.
func (e *env) link(tenant string, body map[string]any) createdLink {
	e.t.Helper()
	var l createdLink
	if got := e.call(opToken, "POST", "/v1/tenants/"+tenant+"/setup-links", body, &l); got != http.StatusCreated {
		e.t.Fatalf("create setup link = %d", got)
	}
	return l
}

// browser is one person's browser on the portal: it keeps the portal
// cookie (sent over the test's plain HTTP) and the last page's CSRF token.
type browser struct {
	e      *env
	cookie string
	csrf   string
}

type answer struct {
	status int
	body   string
	header http.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) answer {
	b.e.t.Helper()
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			b.cookie = ""
		} else {
			b.cookie = c.Name + "=" + c.Value
		}
	}
	if m := csrfField.FindStringSubmatch(string(data)); m != nil {
		b.csrf = m[1]
	}
	return answer{status: resp.StatusCode, body: string(data), header: resp.Header}
}

// get fetches a portal path (or a full URL of the issuer).
func (b *browser) get(path string) answer {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.portal.URL+strings.TrimPrefix(path, issuer), nil)
	req.Header.Set("Accept-Language", "en")
	return b.do(req)
}

// post submits a form with the browser's CSRF token (unless the form sets csrf).
func (b *browser) post(path string, form url.Values) answer {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.portal.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", issuer)
	return b.do(req)
}

// upload submits a multipart form with a file.
func (b *browser) upload(path string, fields map[string]string, fileField, fileName string, content []byte) answer {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if _, ok := fields["csrf"]; !ok {
		_ = mw.WriteField("csrf", b.csrf)
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if fileField != "" {
		fw, _ := mw.CreateFormFile(fileField, fileName)
		_, _ = fw.Write(content)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", b.e.portal.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", issuer)
	return b.do(req)
}

// open opens a link in a new browser and follows it to the overview.
func (e *env) open(l createdLink) *browser {
	e.t.Helper()
	b := &browser{e: e}
	a := b.get(l.URL)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/setup/" {
		e.t.Fatalf("open link = %d to %q, want 303 to /setup/: %s", a.status, a.header.Get("Location"), a.body)
	}
	if home := b.get("/setup/"); home.status != http.StatusOK {
		e.t.Fatalf("GET /setup/ = %d: %s", home.status, home.body)
	}
	b.get("/setup/activate") // a page with a form: the session's CSRF token
	if b.csrf == "" {
		e.t.Fatal("no CSRF token on the activate page")
	}
	return b
}

// tenantNow returns the API tenant as the admin API shows it.
func (e *env) tenantNow(id string) admin.Tenant {
	e.t.Helper()
	var tn admin.Tenant
	if got := e.call(opToken, "GET", "/v1/tenants/"+id, nil, &tn); got != http.StatusOK {
		e.t.Fatalf("GET tenant %s = %d", id, got)
	}
	return tn
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
