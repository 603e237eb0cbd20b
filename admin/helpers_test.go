package admin_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/internal/dnstest"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/scim"
	"github.com/realmgate/realmgate/transform"
)

// Tokens of the tests: an operator, and admins of tenants alpha and filecorp.
const (
	opToken     = "operator-token-0123456789abcdef0123456789"
	alphaToken  = "alpha-admin-token-0123456789abcdef012345"
	fileToken   = "filecorp-admin-token-0123456789abcdef0123"
	issuer      = "https://login.example.test"
	unreachable = "https://unreachable.example.test"
)

// fakeConn is a connector that is never called: admin tests stop at the directory.
type fakeConn struct{}

func (fakeConn) LoginURL(context.Context, providers.LoginRequest) (string, []byte, error) {
	return "", nil, errors.New("fake")
}

func (fakeConn) HandleCallback(context.Context, providers.LoginRequest, []byte, *http.Request) (providers.Identity, error) {
	return providers.Identity{}, errors.New("fake")
}

// testCompiler stands in for cmd/realmgate's compiler: a file tenant
// "filecorp" (domain file.test), oidc providers only, rules compiled by
// transform, domains checked by realm.New, and an issuer under
// "unreachable" failing the probe.
type testCompiler struct {
	probes atomic.Int64
}

func convert(in []admin.Rule) []transform.Rule {
	var out []transform.Rule
	for _, r := range in {
		tr := transform.Rule{Name: r.Name, If: r.If, Remove: r.Remove, Deny: r.Deny, Stop: r.Stop}
		keys := make([]string, 0, len(r.Set))
		for k := range r.Set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tr.Set = append(tr.Set, transform.Assignment{Claim: k, Expr: r.Set[k]})
		}
		keys = keys[:0]
		for k := range r.Add {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tr.Add = append(tr.Add, transform.Assignment{Claim: k, Expr: r.Add[k]})
		}
		if r.Map != nil {
			tr.Map = &transform.Map{From: r.Map.From, To: r.Map.To, Table: r.Map.Table, Default: r.Map.Default}
		}
		out = append(out, tr)
	}
	return out
}

func (c *testCompiler) Compile(ctx context.Context, st *admin.State, probe bool) (*admin.Compiled, error) {
	tenants := []realm.Tenant{{ID: "filecorp", Name: "File Corp", Domains: []string{"file.test"}, IdPs: []string{"file-idp"}}}
	idps := []broker.IdP{{ID: "file-idp", Tenant: "filecorp", Connector: fakeConn{}}}
	engines := map[string]*transform.Engine{}
	var probs []admin.Problem
	for _, t := range st.Tenants {
		rt := realm.Tenant{ID: t.ID, Name: t.Name, Domains: t.VerifiedDomains(), Subdomain: t.Subdomain}
		for i, p := range t.Providers {
			field := fmt.Sprintf("tenants[%s].providers[%d]", t.ID, i)
			switch {
			case p.Type != "oidc":
				probs = append(probs, admin.Problem{Field: field + ".type", Message: "only oidc here"})
			case p.Issuer == "":
				probs = append(probs, admin.Problem{Field: field + ".issuer", Message: "is required"})
			case probe && strings.HasPrefix(p.Issuer, unreachable):
				c.probes.Add(1)
				probs = append(probs, admin.Problem{Field: field, Message: "discovery failed: connection refused"})
			}
			rt.IdPs = append(rt.IdPs, p.ID)
			idps = append(idps, broker.IdP{ID: p.ID, Tenant: t.ID, Name: p.Name, Connector: fakeConn{}})
		}
		if len(t.Rules) > 0 {
			eng, err := transform.Compile(nil, convert(t.Rules), transform.Options{Tenant: t.ID})
			if err != nil {
				probs = append(probs, admin.Problem{Field: "tenants[" + t.ID + "].rules", Message: err.Error()})
			}
			engines[t.ID] = eng
		}
		tenants = append(tenants, rt)
	}
	var clients []broker.Client
	for _, cl := range st.Clients {
		if len(cl.RedirectURIs) == 0 && cl.SAML == nil {
			probs = append(probs, admin.Problem{Field: "clients[" + cl.ID + "].redirect_uris", Message: "at least one is required"})
		}
		if cl.SAML != nil && len(cl.SAML.ACS) == 0 {
			probs = append(probs, admin.Problem{Field: "clients[" + cl.ID + "].saml.acs", Message: "at least one is required"})
		}
		clients = append(clients, broker.Client{ID: cl.ID, Secret: cl.Secret, RedirectURIs: cl.RedirectURIs, SAML: assemble.SAMLApp(cl.SAML)})
	}
	res, err := realm.New(tenants, realm.Options{BaseDomain: "login.example.test"})
	if err != nil {
		probs = append(probs, admin.Problem{Message: err.Error()})
	}
	if len(probs) > 0 {
		return nil, &admin.ValidationError{Problems: probs}
	}
	return &admin.Compiled{Directory: broker.Directory{Resolver: res, IdPs: idps, Rules: engines}, Clients: clients}, nil
}

func (c *testCompiler) Engine(tenant string, rules []admin.Rule) (*transform.Engine, error) {
	eng, err := transform.Compile(nil, convert(rules), transform.Options{Tenant: tenant})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "rules", Message: err.Error()}}}
	}
	return eng, nil
}

// auditLog collects audit lines.
type auditLog struct{ e2etest.SyncBuffer }

// events returns the audit events written so far.
func (a *auditLog) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(a.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// instance is one realmgate instance's admin API.
type instance struct {
	svc     *admin.Service
	srv     *httptest.Server
	audit   *auditLog
	applied atomic.Int64 // how many times Apply ran
	last    atomic.Pointer[admin.Compiled]
	comp    *testCompiler
	access  *fakeGrants
	consent *fakeConsents
	files   []config.Tenant // Options.FileTenants, which the service keeps without copying
}

type env struct {
	t      *testing.T
	store  broker.Store
	dns    *dnstest.Server
	secret []byte // Options.Secret of the next instance; nil stores secrets in plaintext

	trusted []netip.Prefix // Options.TrustedProxies of the next instance
	poll    time.Duration  // Options.PollInterval of the next instance; zero: 20 ms

	now       func() time.Time // Options.Now of the next instance; nil: time.Now
	logoSweep time.Duration    // Options.LogoSweepInterval of the next instance; zero: off (tests call SweepLogos)
	logoGrace time.Duration    // Options.LogoGrace of the next instance
	logosUsed func() []string  // Options.LogosInUse of the next instance
}

// testServerSecret is the server secret of every instance unless a test changes env.secret.
const testServerSecret = "server-secret-0123456789abcdef0123456789"

func newEnv(t *testing.T) *env {
	return &env{t: t, store: memstore.New(), dns: dnstest.Start(t), secret: []byte(testServerSecret)}
}

// instance starts an admin Service on the shared store, polling every 20 ms.
func (e *env) instance() *instance {
	e.t.Helper()
	in := &instance{audit: &auditLog{}, comp: &testCompiler{}}
	in.files = []config.Tenant{{ID: "filecorp", Name: "File Corp", Domains: []string{"file.test"},
		Providers: []admin.Provider{{ID: "file-idp", Type: "oidc", Issuer: "https://idp.file.test", ClientID: "rg", ClientSecret: "file-secret"}}}}
	dir := in.directory(e.store) // users_test.go
	svc, err := admin.New(admin.Options{
		Store: e.store, Compiler: in.comp, Issuer: issuer,
		Apply: func(c *admin.Compiled) error {
			in.applied.Add(1)
			cc := *c // the Service clears Changes once Apply returns
			in.last.Store(&cc)
			return nil
		},
		Tokens: []admin.Token{{Name: "ops", Token: opToken}, {Name: "alpha-admin", Token: alphaToken, Tenant: "alpha"},
			{Name: "filecorp-admin", Token: fileToken, Tenant: "filecorp"}},
		FileTenants:  in.files,
		FileClients:  []config.Client{{ID: "file-app", Secret: "file-app-secret", RedirectURIs: []string{"https://app.test/cb"}}},
		DNS:          admin.NewDNSResolver(e.dns.Addr()),
		PollInterval: cmp.Or(e.poll, 20*time.Millisecond), PollOnly: e.poll >= time.Hour,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Audit:      slog.New(slog.NewJSONHandler(in.audit, nil)),
		Secret:     e.secret,
		SCIMTokens: scim.NewTokens(e.store, e.secret),

		TrustedProxies:    e.trusted,
		Users:             dir,
		Access:            in.grants(),    // access_test.go
		Risk:              riskAdmin{dir}, // risk_test.go
		GlobalConditional: testGlobalAccess(e.t),
		Consents:          in.consents(), // consents_test.go

		Now:               e.now,
		LogoGrace:         e.logoGrace,
		LogoSweepInterval: cmp.Or(e.logoSweep, -1),
		LogosInUse:        e.logosUsed,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := svc.Load(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	in.svc, in.srv = svc, httptest.NewServer(svc.Handler())
	e.t.Cleanup(func() {
		cancel()
		<-done
		in.srv.Close()
	})
	return in
}

// call makes one API request and decodes a JSON answer into out (when not nil).
func (in *instance) call(t *testing.T, token, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, in.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// must calls and fails the test unless the status is want.
func (in *instance) must(t *testing.T, want int, token, method, path string, body any, out any) {
	t.Helper()
	var raw json.RawMessage
	if got := in.call(t, token, method, path, body, &raw); got != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

// tenantDoc is a tenant with one oidc provider.
func tenantDoc(id string, domains ...string) admin.Tenant {
	t := admin.Tenant{Tenant: config.Tenant{ID: id, Name: strings.ToUpper(id),
		Providers: []admin.Provider{{ID: id + "-idp", Type: "oidc", Issuer: "https://idp." + id + ".test", ClientID: "rg", ClientSecret: id + "-upstream-secret"}}}}
	for _, d := range domains {
		t.Domains = append(t.Domains, admin.Domain{Name: d, Verified: true})
	}
	return t
}

// resolves returns the tenant email resolves to in the instance's applied directory.
func (in *instance) resolves(email string) string {
	c := in.last.Load()
	if c == nil {
		return ""
	}
	r, err := c.Directory.Resolver.Resolve(realm.Request{LoginHint: email})
	if err != nil {
		return ""
	}
	return r.Tenant
}

// pollDeadline bounds a wait for a state change that usually takes a
// fraction of a second: generous, so a busy machine does not fail the test;
// the time it took is logged, not asserted.
const pollDeadline = 15 * time.Second

// waitFor polls cond until it holds or d passes and returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
