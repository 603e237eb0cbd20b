package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/store"
)

type apiErr struct {
	Error    string          `json:"error"`
	Message  string          `json:"message"`
	Problems []admin.Problem `json:"problems"`
}

// TestAPI_TenantCRUD creates, reads, lists, replaces and deletes a tenant,
// each change a new version applied on this instance at once.
func TestAPI_TenantCRUD(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	var got admin.Tenant
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), &got)
	if got.Source != admin.SourceAPI || len(got.Domains) != 1 || !got.Domains[0].Verified || got.Domains[0].VerifiedBy != "operator:ops" {
		t.Fatalf("created tenant = %+v, want source api and alpha.test verified by the operator", got)
	}
	if v := a.svc.Version(); v != 1 {
		t.Fatalf("Version() = %d after one change, want 1", v)
	}
	if r := a.resolves("u@alpha.test"); r != "alpha" {
		t.Fatalf("alpha.test resolves to %q, want alpha", r)
	}
	a.must(t, http.StatusConflict, opToken, "POST", "/v1/tenants", tenantDoc("alpha"), nil)
	a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &got)
	if got.Providers[0].ClientSecret != "[redacted]" {
		t.Errorf("GET tenant client_secret = %q, want [redacted]", got.Providers[0].ClientSecret)
	}
	var list struct {
		Tenants []admin.Tenant `json:"tenants"`
		Next    string         `json:"next"`
	}
	a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants", nil, &list)
	var ids []string
	for _, x := range list.Tenants {
		ids = append(ids, x.ID+":"+x.Source)
	}
	if want := []string{"alpha:api", "filecorp:file"}; !slices.Equal(ids, want) {
		t.Fatalf("list = %v, want %v", ids, want)
	}
	// Replace: the read-modify-write keeps the secret and the verification.
	got.Name, got.Source = "Alpha Inc.", ""
	a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", got, &got)
	if got.Name != "Alpha Inc." || !got.Domains[0].Verified {
		t.Fatalf("replaced tenant = %+v", got)
	}
	st, _ := a.svc.Applied()
	if s := st.Tenants[0].Providers[0].ClientSecret; s != "alpha-upstream-secret" {
		t.Fatalf("stored secret after PUT with the redaction marker = %q, want it kept", s)
	}
	a.must(t, http.StatusBadRequest, opToken, "PUT", "/v1/tenants/alpha", admin.Tenant{Tenant: config.Tenant{ID: "other"}}, nil)
	a.must(t, http.StatusBadRequest, opToken, "PUT", "/v1/tenants/alpha", `{"id":"alpha","colour":"red"}`, nil)
	a.must(t, http.StatusNotFound, opToken, "PUT", "/v1/tenants/nobody", admin.Tenant{Tenant: config.Tenant{ID: "nobody"}}, nil)
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/alpha", nil, nil)
	if r := a.resolves("u@alpha.test"); r != "" {
		t.Fatalf("after delete alpha.test resolves to %q, want nothing", r)
	}
	a.must(t, http.StatusNotFound, opToken, "GET", "/v1/tenants/alpha", nil, nil)
	if v := a.svc.Version(); v != 3 {
		t.Fatalf("Version() = %d after three changes, want 3", v)
	}
}

// TestAPI_Paging lists tenants page by page across file and API tenants.
func TestAPI_Paging(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	var batch admin.BatchRequest
	for i := range 25 {
		batch.Tenants = append(batch.Tenants, tenantDoc(fmt.Sprintf("t%02d", i)))
	}
	a.must(t, http.StatusOK, opToken, "POST", "/v1/batch", batch, nil)
	var all []string
	after := ""
	for range 10 {
		var page struct {
			Tenants []admin.Tenant `json:"tenants"`
			Next    string         `json:"next"`
		}
		a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants?limit=7&after="+after, nil, &page)
		for _, x := range page.Tenants {
			all = append(all, x.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(all) != 26 || all[0] != "filecorp" || all[1] != "t00" || all[25] != "t24" || !slices.IsSorted(all) {
		t.Fatalf("paged list = %v, want filecorp and t00..t24 sorted", all)
	}
	a.must(t, http.StatusBadRequest, opToken, "GET", "/v1/tenants?limit=0", nil, nil)
}

// route is one endpoint with the path used to call it as tenant alpha's admin.
type route struct {
	method, pattern string
	path            string // with another tenant's (or an operator-only) resource
	body            any
}

// isolationRoutes covers every endpoint: the test fails when a route is
// added without a case here.
func isolationRoutes() []route {
	other := "/v1/tenants/beta"
	return []route{
		{"GET", "/v1/tenants/:tenant", other, nil},
		{"PUT", "/v1/tenants/:tenant", other, tenantDoc("beta")},
		{"DELETE", "/v1/tenants/:tenant", "/v1/tenants/alpha", nil}, // even its own: operators only
		{"POST", "/v1/tenants", "/v1/tenants", tenantDoc("gamma")},
		{"GET", "/v1/tenants/:tenant/domains", other + "/domains", nil},
		{"POST", "/v1/tenants/:tenant/domains", other + "/domains", map[string]any{"name": "x.test"}},
		{"DELETE", "/v1/tenants/:tenant/domains/:domain", other + "/domains/beta.test", nil},
		{"POST", "/v1/tenants/:tenant/domains/:domain/verify", other + "/domains/beta.test/verify", nil},
		{"GET", "/v1/tenants/:tenant/providers", other + "/providers", nil},
		{"POST", "/v1/tenants/:tenant/providers", other + "/providers", tenantDoc("x").Providers[0]},
		{"GET", "/v1/tenants/:tenant/providers/:provider", other + "/providers/beta-idp", nil},
		{"PUT", "/v1/tenants/:tenant/providers/:provider", other + "/providers/beta-idp", tenantDoc("beta").Providers[0]},
		{"DELETE", "/v1/tenants/:tenant/providers/:provider", other + "/providers/beta-idp", nil},
		{"GET", "/v1/tenants/:tenant/providers/:provider/onboarding", other + "/providers/beta-idp/onboarding", nil},
		{"GET", "/v1/tenants/:tenant/rules", other + "/rules", nil},
		{"PUT", "/v1/tenants/:tenant/rules", other + "/rules", map[string]any{"rules": []any{}}},
		{"GET", "/v1/tenants/:tenant/scim/tokens", other + "/scim/tokens", nil},
		{"POST", "/v1/tenants/:tenant/scim/tokens", other + "/scim/tokens", map[string]any{"name": "x"}},
		{"DELETE", "/v1/tenants/:tenant/scim/tokens/:token", other + "/scim/tokens/x", nil},
		{"POST", "/v1/tenants/:tenant/registration-tokens", other + "/registration-tokens", map[string]any{}},
		{"DELETE", "/v1/tenants/:tenant/registration-tokens/:token", other + "/registration-tokens/x", nil},
		{"GET", "/v1/tenants/:tenant/setup-links", other + "/setup-links", nil},
		{"POST", "/v1/tenants/:tenant/setup-links", other + "/setup-links", map[string]any{}},
		{"DELETE", "/v1/tenants/:tenant/setup-links/:link", other + "/setup-links/x", nil},
		{"POST", "/v1/clients", "/v1/clients", admin.Client{Client: config.Client{ID: "c", RedirectURIs: []string{"https://c.test/cb"}}}},
		{"GET", "/v1/clients/:client", "/v1/clients/beta-app", nil},
		{"PUT", "/v1/clients/:client", "/v1/clients/beta-app", admin.Client{Client: config.Client{ID: "beta-app", RedirectURIs: []string{"https://c.test/cb"}}}},
		{"DELETE", "/v1/clients/:client", "/v1/clients/beta-app", nil},
		{"POST", "/v1/batch", "/v1/batch", admin.BatchRequest{Tenants: []admin.Tenant{tenantDoc("alpha")}}},
		{"POST", "/v1/dry-run", "/v1/dry-run", admin.DryRunRequest{Email: "u@beta.test"}},
		{"GET", "/v1/tenants/:tenant/users", other + "/users", nil},
		{"POST", "/v1/tenants/:tenant/users", other + "/users", admin.NewUser{UserName: "x"}},
		{"GET", "/v1/tenants/:tenant/users/:user", other + "/users/u1", nil},
		{"DELETE", "/v1/tenants/:tenant/users/:user", other + "/users/u1", nil},
		{"PUT", "/v1/tenants/:tenant/users/:user/attributes", other + "/users/u1/attributes", map[string]any{"plan": "x"}},
		{"POST", "/v1/tenants/:tenant/users/:user/suspend", other + "/users/u1/suspend", nil},
		{"POST", "/v1/tenants/:tenant/users/:user/activate", other + "/users/u1/activate", nil},
		{"POST", "/v1/tenants/:tenant/users/:user/revoke", other + "/users/u1/revoke", nil},
		{"POST", "/v1/tenants/:tenant/users/:user/confirm-compromised", other + "/users/u1/confirm-compromised", nil},
		{"POST", "/v1/tenants/:tenant/users/:user/dismiss-risk", other + "/users/u1/dismiss-risk", nil},
		{"GET", "/v1/tenants/:tenant/risky-users", other + "/risky-users", nil},
		{"GET", "/v1/tenants/:tenant/access-grants", other + "/access-grants", nil},
		{"POST", "/v1/tenants/:tenant/access-grants", other + "/access-grants", admin.NewAccessGrant{Subject: "s", Role: "db-admin", Duration: "1m", Justification: "x"}},
		{"GET", "/v1/tenants/:tenant/access-grants/:grant", other + "/access-grants/g1", nil},
		{"POST", "/v1/tenants/:tenant/access-grants/:grant/approve", other + "/access-grants/g1/approve", nil},
		{"POST", "/v1/tenants/:tenant/access-grants/:grant/deny", other + "/access-grants/g1/deny", nil},
		{"POST", "/v1/tenants/:tenant/access-grants/:grant/revoke", other + "/access-grants/g1/revoke", nil},
		{"GET", "/v1/tenants/:tenant/consents/:client", other + "/consents/printer?subject=sub-ann", nil},
		{"DELETE", "/v1/tenants/:tenant/consents/:client", other + "/consents/printer?subject=sub-ann", nil},
		{"PUT", "/v1/tenants/:tenant/branding/logo", other + "/branding/logo", "GIF89a"},
		{"PUT", "/v1/clients/:client/branding/logo", "/v1/clients/beta-app/branding/logo", "GIF89a"},
	}
}

// unscopedRoutes are open to every admin (they show only the caller's own data).
var unscopedRoutes = []string{"GET /v1/status", "GET /v1/tenants", "GET /v1/openapi.yaml", "GET /v1/clients"}

// TestAPI_TenantAdminIsolation: alpha's admin gets 403 on every endpoint
// for tenant beta's resources and on every operator-only endpoint, and
// nothing changes; the same calls as an operator are not 403.
func TestAPI_TenantAdminIsolation(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "beta-app", Secret: "s", RedirectURIs: []string{"https://b.test/cb"}}}, nil)

	covered := map[string]bool{}
	for _, r := range isolationRoutes() {
		covered[r.method+" "+r.pattern] = true
	}
	for _, r := range unscopedRoutes {
		covered[r] = true
	}
	for _, r := range a.routes(t) {
		if !covered[r] {
			t.Errorf("route %s has no isolation case", r)
		}
	}
	before := a.svc.Version()
	for _, r := range isolationRoutes() {
		t.Run(r.method+" "+r.pattern, func(t *testing.T) {
			var body apiErr
			if got := a.call(t, alphaToken, r.method, r.path, r.body, &body); got != http.StatusForbidden || body.Error != "forbidden" {
				t.Errorf("%s %s as alpha's admin = %d %q, want 403 forbidden", r.method, r.path, got, body.Error)
			}
			if got := a.call(t, "", r.method, r.path, r.body, nil); got != http.StatusUnauthorized {
				t.Errorf("%s %s without a token = %d, want 401", r.method, r.path, got)
			}
			if got := a.call(t, "not-a-valid-token-0123456789abcdef0123", r.method, r.path, r.body, nil); got != http.StatusUnauthorized {
				t.Errorf("%s %s with an unknown token = %d, want 401", r.method, r.path, got)
			}
		})
	}
	if v := a.svc.Version(); v != before {
		t.Fatalf("version moved from %d to %d through refused calls", before, v)
	}
	denied := 0
	for _, ev := range a.audit.events(t) {
		if ev["event"] == "admin.denied" && ev["actor"] == "alpha-admin" {
			denied++
		}
	}
	if denied != len(isolationRoutes()) {
		t.Errorf("%d admin.denied audit events, want %d (one per refused call)", denied, len(isolationRoutes()))
	}
	// Lists show alpha only; its own tenant is fully usable.
	var list struct {
		Tenants []admin.Tenant `json:"tenants"`
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants", nil, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != "alpha" {
		t.Fatalf("alpha's admin lists %+v, want alpha only", list.Tenants)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha", nil, nil)
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha/rules", map[string]any{"rules": []admin.Rule{{Name: "r", Add: map[string]string{"roles": `"member"`}}}}, nil)
	// A per-tenant admin may not route users by host or address, nor mark domains verified.
	own := tenantDoc("alpha", "alpha.test")
	own.Subdomain = "alpha"
	a.must(t, http.StatusForbidden, alphaToken, "PUT", "/v1/tenants/alpha", own, nil)
	own = tenantDoc("alpha")
	own.IPRanges = []string{"0.0.0.0/0"}
	a.must(t, http.StatusForbidden, alphaToken, "PUT", "/v1/tenants/alpha", own, nil)
	a.must(t, http.StatusUnprocessableEntity, alphaToken, "POST", "/v1/tenants/alpha/domains", map[string]any{"name": "new.test", "verified": true}, nil)
	a.must(t, http.StatusForbidden, alphaToken, "POST", "/v1/tenants/alpha/domains/alpha.test/verify", map[string]any{"override": true}, nil)
	a.must(t, http.StatusForbidden, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "beta"}, nil)
}

// routes returns "METHOD /path" of every registered echo route.
func (in *instance) routes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range echoRoutes(t, in.svc) {
		out = append(out, r[0]+" "+r[1])
	}
	return out
}

// TestAPI_FileTenantsReadOnly: tenants and clients of the configuration
// file are listed, and every write to them is refused with 409.
func TestAPI_FileTenantsReadOnly(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	var ft admin.Tenant
	a.must(t, http.StatusOK, fileToken, "GET", "/v1/tenants/filecorp", nil, &ft)
	if ft.Source != admin.SourceFile || !ft.Domains[0].Verified || ft.Providers[0].ClientSecret != "[redacted]" {
		t.Fatalf("file tenant = %+v, want source file, verified domain, redacted secret", ft)
	}
	// Shown from the file's tenants, which the service keeps as given:
	// redacting what it shows leaves them as they were, GET after GET.
	var list struct{ Tenants []admin.Tenant }
	a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants", nil, &list)
	var again admin.Tenant
	a.must(t, http.StatusOK, fileToken, "GET", "/v1/tenants/filecorp", nil, &again)
	if got := a.files[0]; got.Providers[0].ClientSecret != "file-secret" || !slices.Equal(got.Domains, []string{"file.test"}) {
		t.Errorf("the file's tenant after GETs = %+v, want it unchanged (secret file-secret, domains [file.test])", got)
	}
	if !reflect.DeepEqual(again, ft) || len(list.Tenants) == 0 || !reflect.DeepEqual(list.Tenants[0], ft) {
		t.Errorf("GET again = %+v, listed %+v, want %+v", again, list.Tenants, ft)
	}
	for _, tc := range []struct {
		token, method, path string
		body                any
	}{
		{fileToken, "PUT", "/v1/tenants/filecorp", tenantDoc("filecorp")},
		{opToken, "DELETE", "/v1/tenants/filecorp", nil},
		{opToken, "POST", "/v1/tenants", tenantDoc("filecorp")},
		{fileToken, "POST", "/v1/tenants/filecorp/domains", map[string]any{"name": "more.test"}},
		{fileToken, "DELETE", "/v1/tenants/filecorp/domains/file.test", nil},
		{fileToken, "POST", "/v1/tenants/filecorp/providers", tenantDoc("x").Providers[0]},
		{fileToken, "PUT", "/v1/tenants/filecorp/providers/file-idp", admin.Provider{ID: "file-idp", Type: "oidc", Issuer: "https://x.test", ClientID: "rg"}},
		{fileToken, "DELETE", "/v1/tenants/filecorp/providers/file-idp", nil},
		{fileToken, "PUT", "/v1/tenants/filecorp/rules", map[string]any{"rules": []any{}}},
		{opToken, "PUT", "/v1/clients/file-app", admin.Client{Client: config.Client{ID: "file-app", RedirectURIs: []string{"https://x.test/cb"}}}},
		{opToken, "DELETE", "/v1/clients/file-app", nil},
		{opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "file-app", RedirectURIs: []string{"https://x.test/cb"}}}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			if got := a.call(t, tc.token, tc.method, tc.path, tc.body, nil); got != http.StatusConflict {
				t.Errorf("%s %s = %d, want 409", tc.method, tc.path, got)
			}
		})
	}
	if v := a.svc.Version(); v != 0 {
		t.Fatalf("version = %d, want 0: nothing may change", v)
	}
	var cl admin.Client
	a.must(t, http.StatusOK, opToken, "GET", "/v1/clients/file-app", nil, &cl)
	if cl.Source != admin.SourceFile || cl.Secret != "[redacted]" {
		t.Fatalf("file client = %+v, want source file and a redacted secret", cl)
	}
}

// TestAPI_RefusedWritesChangeNothing: a bad rule, a domain another tenant
// owns, an unreachable IdP, each alone and all at once, are refused with
// every problem listed; the store, the version and the broker stay as they were.
func TestAPI_RefusedWritesChangeNothing(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	badRule := []admin.Rule{{Name: "broken", Set: map[string]string{"email": "lower(upstream.upn"}}}
	unreach := admin.Provider{ID: "new-idp", Type: "oidc", Issuer: unreachable, ClientID: "rg"}
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		body       any
		wantFields []string
	}{
		{"bad rule", "PUT", "/v1/tenants/alpha/rules", map[string]any{"rules": badRule}, []string{"tenants[alpha].rules"}},
		{"domain of a file tenant", "POST", "/v1/tenants", tenantDoc("gamma", "file.test"), []string{"tenants[gamma].domains[0]"}},
		{"domain verified by another tenant, and a bad one", "POST", "/v1/tenants", tenantDoc("delta", "alpha.test", "not a domain"),
			[]string{"tenants[delta].domains[0]", "tenants[delta].domains[1]"}},
		{"unreachable discovery", "POST", "/v1/tenants/alpha/providers", unreach, []string{"tenants[alpha].providers[1]"}},
		{"everything at once", "PUT", "/v1/tenants/alpha", func() admin.Tenant {
			x := tenantDoc("alpha", "alpha.test", "file.test")
			x.Providers = append(x.Providers, unreach)
			x.Rules = badRule
			return x
		}(), []string{"tenants[alpha].domains[1]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.svc.Version()
			applied := a.applied.Load()
			var body apiErr
			if got := a.call(t, opToken, tc.method, tc.path, tc.body, &body); got != http.StatusUnprocessableEntity {
				t.Fatalf("%s %s = %d (%+v), want 422", tc.method, tc.path, got, body)
			}
			fields := map[string]bool{}
			for _, p := range body.Problems {
				fields[p.Field] = true
			}
			for _, f := range tc.wantFields {
				if !fields[f] {
					t.Errorf("problems %+v lack field %s", body.Problems, f)
				}
			}
			if v := a.svc.Version(); v != before {
				t.Errorf("version %d -> %d after a refused write", before, v)
			}
			if n := a.applied.Load(); n != applied {
				t.Errorf("Apply ran after a refused write")
			}
			if head, err := e.store.(store.RecordStore).RecordsHead(context.Background(), "admin"); err != nil || head != before {
				t.Errorf("stored head = %d, %v after a refused write, want %d", head, err, before)
			}
		})
	}
	// Everything at once lists every problem found: the domain early, the rest at compile.
	x := tenantDoc("alpha", "alpha.test")
	x.Providers = append(x.Providers, unreach)
	x.Rules = badRule
	var body apiErr
	if got := a.call(t, opToken, "PUT", "/v1/tenants/alpha", x, &body); got != http.StatusUnprocessableEntity || len(body.Problems) != 2 {
		t.Fatalf("bad rule and unreachable IdP together = %d with problems %+v, want 422 listing both", got, body.Problems)
	}
	if r := a.resolves("u@alpha.test"); r != "alpha" {
		t.Fatalf("alpha.test resolves to %q after refused writes, want alpha still", r)
	}
}

// TestAPI_ClientsCRUD registers, reads, replaces (keeping the secret) and
// deletes a client; the compiled client set follows.
func TestAPI_ClientsCRUD(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	c := admin.Client{Client: config.Client{ID: "notes", Secret: "notes-secret-0123456789", RedirectURIs: []string{"https://notes.test/cb"}, AllowedTenants: []string{"*"}}}
	var got admin.Client
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", c, &got)
	if got.Secret != "[redacted]" || got.Source != admin.SourceAPI {
		t.Fatalf("created client = %+v", got)
	}
	a.must(t, http.StatusUnprocessableEntity, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "bad"}}, nil)
	c.Secret = ""
	c.RedirectURIs = append(c.RedirectURIs, "https://notes.test/cb2")
	a.must(t, http.StatusOK, opToken, "PUT", "/v1/clients/notes", c, nil)
	comp := a.last.Load()
	var found bool
	for _, cl := range comp.Clients {
		if cl.ID == "notes" {
			found = true
			if cl.Secret != "notes-secret-0123456789" || len(cl.RedirectURIs) != 2 {
				t.Fatalf("compiled client = %+v, want the kept secret and two redirect URIs", cl)
			}
		}
	}
	if !found {
		t.Fatal("client notes not compiled")
	}
	var list struct {
		Clients []admin.Client `json:"clients"`
	}
	a.must(t, http.StatusOK, opToken, "GET", "/v1/clients", nil, &list)
	if len(list.Clients) != 2 || list.Clients[0].ID != "file-app" || list.Clients[1].ID != "notes" {
		t.Fatalf("clients = %+v", list.Clients)
	}
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/clients/notes", nil, nil)
	a.must(t, http.StatusNotFound, opToken, "GET", "/v1/clients/notes", nil, nil)
}

// TestAPI_ProvidersAndRules manages one tenant's IdPs and rules.
func TestAPI_ProvidersAndRules(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	p := admin.Provider{ID: "alpha-2", Type: "oidc", Issuer: "https://idp2.alpha.test", ClientID: "rg", ClientSecret: "s2"}
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/providers", p, nil)
	a.must(t, http.StatusConflict, alphaToken, "POST", "/v1/tenants/alpha/providers", p, nil)
	var ps struct {
		Providers []admin.Provider `json:"providers"`
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/providers", nil, &ps)
	if len(ps.Providers) != 2 || ps.Providers[1].ClientSecret != "[redacted]" {
		t.Fatalf("providers = %+v", ps.Providers)
	}
	p.ClientSecret, p.Name = "", "Second"
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha/providers/alpha-2", p, nil)
	st, _ := a.svc.Applied()
	if got := st.Tenants[0].Providers[1]; got.Name != "Second" || got.ClientSecret != "s2" {
		t.Fatalf("replaced provider = %+v, want the name changed and the secret kept", got)
	}
	a.must(t, http.StatusNoContent, alphaToken, "DELETE", "/v1/tenants/alpha/providers/alpha-2", nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "GET", "/v1/tenants/alpha/providers/alpha-2", nil, nil)
	rules := []admin.Rule{{Name: "groups", Map: &admin.MapRule{From: "upstream.groups", To: "roles", Table: map[string]string{"G": "admin"}}}}
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha/rules", map[string]any{"rules": rules}, nil)
	var rl struct {
		Rules []admin.Rule `json:"rules"`
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/rules", nil, &rl)
	if len(rl.Rules) != 1 || rl.Rules[0].Map.Table["G"] != "admin" {
		t.Fatalf("rules = %+v", rl.Rules)
	}
}

// TestPropagation_OtherInstanceWithinOneSecond: a change written on A is
// applied by B (polling the same store), every time; usually well within a
// second: the slowest is logged, and the wait is bounded generously
// (pollDeadline) so that a busy machine does not fail the test.
func TestPropagation_OtherInstanceWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	a, b := e.instance(), e.instance()
	var worst time.Duration
	for i := range 5 {
		id := fmt.Sprintf("t%d", i)
		a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc(id, id+".test"), nil)
		d := waitFor(t, pollDeadline, "B sees "+id, func() bool { return b.resolves("u@"+id+".test") == id })
		worst = max(worst, d)
	}
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/t0", nil, nil)
	waitFor(t, pollDeadline, "B drops t0", func() bool { return b.resolves("u@t0.test") == "" })
	if a.svc.Version() != b.svc.Version() {
		t.Fatalf("versions differ: A %d, B %d", a.svc.Version(), b.svc.Version())
	}
	t.Logf("slowest propagation A -> B: %s", worst)
}

// TestConcurrentWriters: two instances writing at once lose no change: the
// loser of each race for a version redoes its change on the winner's state.
func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t)
	a, b := e.instance(), e.instance()
	var wg sync.WaitGroup
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				id := fmt.Sprintf("w%d-%d", i, j)
				if got := in.call(t, opToken, "POST", "/v1/tenants", tenantDoc(id, id+".test"), nil); got != http.StatusCreated {
					t.Errorf("create %s = %d", id, got)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, pollDeadline, "both at version 10", func() bool { return a.svc.Version() == 10 && b.svc.Version() == 10 })
	st, _ := b.svc.Applied()
	if len(st.Tenants) != 10 {
		t.Fatalf("%d tenants after 10 concurrent creates, want 10", len(st.Tenants))
	}
}

// TestStoreOutage_ReloadsInFull: while B cannot read the store it keeps
// serving what it has; once the store answers it reloads and catches up.
func TestStoreOutage_ReloadsInFull(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.store}
	e.store = flaky
	b := e.instance()
	e.store = flaky.Store
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	waitFor(t, pollDeadline, "B sees alpha", func() bool { return b.resolves("u@alpha.test") == "alpha" })
	flaky.down.Store(true)
	applied := b.applied.Load()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	time.Sleep(100 * time.Millisecond)
	if b.resolves("u@alpha.test") != "alpha" || b.resolves("u@beta.test") != "" {
		t.Fatal("B changed what it serves while the store was down")
	}
	var body apiErr
	if got := b.call(t, opToken, "POST", "/v1/tenants", tenantDoc("gamma"), &body); got != http.StatusServiceUnavailable {
		t.Fatalf("write on B with its store down = %d %+v, want 503", got, body)
	}
	flaky.down.Store(false)
	waitFor(t, pollDeadline, "B catches up", func() bool { return b.resolves("u@beta.test") == "beta" })
	if b.applied.Load() == applied {
		t.Fatal("B did not reload after the outage")
	}
}

// TestStoreLost_WrittenBack: when the store loses the state (a Redis
// without persistence restarted), an instance writes back what it applied
// and later changes build on it.
func TestStoreLost_WrittenBack(t *testing.T) {
	e := newEnv(t)
	lossy := &lossyStore{Store: memstore.New()}
	lossy.lose()
	e.store = lossy
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	lossy.lose()
	waitFor(t, pollDeadline, "state written back", func() bool {
		_, doc := rawState(t, e)
		return strings.Contains(string(doc), `"alpha"`)
	})
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	b := e.instance()
	if b.resolves("u@alpha.test") != "alpha" || b.resolves("u@beta.test") != "beta" {
		t.Fatal("a new instance does not see both tenants")
	}
}

// lossyStore is a memstore whose record sets can be lost at once.
type lossyStore struct {
	*memstore.Store
	rs atomic.Pointer[memstore.Store]
}

// lose replaces the record sets with empty ones.
func (l *lossyStore) lose() { l.rs.Store(memstore.New()) }

func (l *lossyStore) CommitRecords(ctx context.Context, set string, base int64, w []store.RecordWrite, logLen int) (int64, error) {
	return l.rs.Load().CommitRecords(ctx, set, base, w, logLen)
}

func (l *lossyStore) RecordsSince(ctx context.Context, set string, after int64, max int) (int64, []store.Record, error) {
	return l.rs.Load().RecordsSince(ctx, set, after, max)
}

func (l *lossyStore) RecordsHead(ctx context.Context, set string) (int64, error) {
	return l.rs.Load().RecordsHead(ctx, set)
}

func (l *lossyStore) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	return l.rs.Load().ScanRecords(ctx, set, cursor, count)
}

// TestAudit_EveryChange: each change, applied or refused, is one audit
// event naming who, what, before and after, with no secret in it.
func TestAudit_EveryChange(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	upd := tenantDoc("alpha", "alpha.test")
	upd.Providers[0].ClientSecret = "rotated-upstream-secret"
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha", upd, nil)
	a.must(t, http.StatusUnprocessableEntity, alphaToken, "PUT", "/v1/tenants/alpha/rules",
		map[string]any{"rules": []admin.Rule{{Name: "x", If: "((("}}}, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "app", Secret: "app-client-secret", RedirectURIs: []string{"https://a.test/cb"}}}, nil)
	evs := a.audit.events(t)
	if len(evs) != 4 {
		t.Fatalf("%d audit events, want 4:\n%s", len(evs), a.audit)
	}
	for _, tc := range []struct {
		i                      int
		actor, action, outcome string
		before, after          bool
	}{
		{0, "ops", "tenant.create", "applied", false, true},
		{1, "alpha-admin", "tenant.replace", "applied", true, true},
		{2, "alpha-admin", "rules.replace", "refused", true, true},
		{3, "ops", "client.create", "applied", false, true},
	} {
		ev := evs[tc.i]
		if ev["event"] != "admin.change" || ev["actor"] != tc.actor || ev["action"] != tc.action || ev["outcome"] != tc.outcome {
			t.Errorf("event %d = %v, want %s %s %s", tc.i, ev, tc.actor, tc.action, tc.outcome)
		}
		if (ev["before"] != nil) != tc.before || (ev["after"] != nil) != tc.after {
			t.Errorf("event %d before/after = %v / %v", tc.i, ev["before"], ev["after"])
		}
	}
	if _, ok := evs[2]["problems"]; !ok {
		t.Errorf("refused event lacks problems: %v", evs[2])
	}
	log := a.audit.String()
	for _, secret := range []string{"alpha-upstream-secret", "rotated-upstream-secret", "app-client-secret"} {
		if strings.Contains(log, secret) {
			t.Errorf("audit log contains secret %q", secret)
		}
	}
	if !strings.Contains(log, "[redacted]") {
		t.Error("audit log shows no redacted secret")
	}
}

// TestDryRun resolves an email, runs saved and candidate rules, and reports denials.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	alpha := tenantDoc("alpha", "alpha.test")
	alpha.Rules = []admin.Rule{{Name: "groups", Map: &admin.MapRule{From: "upstream.groups", To: "roles", Table: map[string]string{"Admins": "admin"}}}}
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", alpha, nil)
	id := admin.SampleIdentity{Subject: "u1", Email: "u@alpha.test", EmailVerified: true, Claims: map[string]any{"groups": []any{"Admins"}}}
	for _, tc := range []struct {
		name      string
		req       admin.DryRunRequest
		wantRoles string
		denied    string
	}{
		{"saved rules", admin.DryRunRequest{Email: "u@alpha.test", Identity: id}, "admin", ""},
		{"candidate rules", admin.DryRunRequest{Email: "u@alpha.test", Identity: id, Rules: []admin.Rule{{Name: "all", Add: map[string]string{"roles": `"reader"`}}}}, "reader", ""},
		{"deny", admin.DryRunRequest{Tenant: "alpha", Identity: id, Rules: []admin.Rule{{Name: "no", Deny: "nobody today"}}}, "", "nobody today"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out admin.DryRunResult
			a.must(t, http.StatusOK, alphaToken, "POST", "/v1/dry-run", tc.req, &out)
			if out.Tenant != "alpha" || out.IdP != "alpha-idp" || len(out.Trace) != 1 {
				t.Fatalf("dry run = %+v, want tenant alpha, idp alpha-idp, one trace step", out)
			}
			roles, _ := json.Marshal(out.Claims["roles"])
			if tc.wantRoles != "" && !strings.Contains(string(roles), tc.wantRoles) {
				t.Errorf("roles = %s, want %s", roles, tc.wantRoles)
			}
			if out.Denied != tc.denied {
				t.Errorf("denied = %q, want %q", out.Denied, tc.denied)
			}
		})
	}
	a.must(t, http.StatusUnprocessableEntity, opToken, "POST", "/v1/dry-run", admin.DryRunRequest{Email: "u@nowhere.test"}, nil)
	a.must(t, http.StatusUnprocessableEntity, opToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Rules: []admin.Rule{{Name: "x", If: "((("}}}, nil)
	a.must(t, http.StatusForbidden, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Email: "u@file.test"}, nil)
	a.must(t, http.StatusBadRequest, opToken, "POST", "/v1/dry-run", admin.DryRunRequest{}, nil)
}

// TestDryRun_S71_RefusesAmplifyingRule is the reported attack: a tenant
// admin posts a rule nesting regexReplace(x, ".", "$0" * 600) three deep
// (3.7 KB of CEL) to the dry run. It is refused with 422 and a message
// naming the limit, the process allocates a bounded amount (without the
// evaluation budget it allocates about 2 GB and dies), and the API still
// answers afterwards.
func TestDryRun_S71_RefusesAmplifyingRule(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	amp := strings.Repeat("$0", 600)
	expr := "upstream.x"
	for range 3 {
		expr = `regexReplace(` + expr + `, ".", "` + amp + `")`
	}
	id := admin.SampleIdentity{Subject: "u1", Claims: map[string]any{"x": "abcdefghij"}}
	for _, tc := range []struct {
		name string
		rule admin.Rule
	}{
		{"set", admin.Rule{Name: "boom", Set: map[string]string{"nickname": expr}}},
		{"if, error absorbed", admin.Rule{Name: "boom", If: "size(" + expr + ") > 0 || true", Deny: "no"}},
		{"join of a huge list", admin.Rule{Name: "boom", Set: map[string]string{"nickname": `join(split(join(split(upstream.x, ""), "` + amp + `"), ""), "` + amp + `")`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var body apiErr
			got := a.call(t, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Identity: id, Rules: []admin.Rule{tc.rule}}, &body)
			runtime.ReadMemStats(&after)
			if got != http.StatusUnprocessableEntity || body.Error != "rule_limit" || !strings.Contains(body.Message, "evaluation budget") {
				t.Errorf("POST /v1/dry-run = %d %q %q, want 422 rule_limit naming the evaluation budget", got, body.Error, body.Message)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
				t.Errorf("the dry run allocated %d bytes, want at most %d", n, 32<<20)
			}
		})
	}
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Identity: id,
		Rules: []admin.Rule{{Name: "fine", Set: map[string]string{"nickname": `regexReplace(upstream.x, ".", "$0$0")`}}}}, nil)
}

// TestOnboarding gives the values an IdP admin registers.
func TestOnboarding(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha"), nil)
	var o admin.Onboarding
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/providers/alpha-idp/onboarding", nil, &o)
	if o.RedirectURI != issuer+"/callback/alpha-idp" || len(o.Steps) == 0 {
		t.Fatalf("oidc onboarding = %+v, want redirect_uri %s/callback/alpha-idp", o, issuer)
	}
	a.must(t, http.StatusOK, fileToken, "GET", "/v1/tenants/filecorp/providers/file-idp/onboarding", nil, &o)
	if o.RedirectURI != issuer+"/callback/file-idp" {
		t.Fatalf("file provider onboarding = %+v", o)
	}
}

// TestAPI_S68_TenantIncarnation: a tenant keeps its incarnation across
// updates, whatever a writer sends; deleted and created again under the same
// id it gets another, which ends the grants of the earlier one.
func TestAPI_S68_TenantIncarnation(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	var first, updated, again admin.Tenant
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), &first)
	if first.Incarnation == "" {
		t.Fatalf("created tenant has no incarnation: %+v", first)
	}
	a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &updated)
	updated.Name, updated.Source, updated.Incarnation = "Alpha Inc.", "", "forged-by-the-writer"
	a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", updated, &updated)
	if updated.Incarnation != first.Incarnation {
		t.Fatalf("incarnation after PUT = %q, want the created %q", updated.Incarnation, first.Incarnation)
	}
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/alpha", nil, nil)
	doc := tenantDoc("alpha", "alpha.test")
	doc.Incarnation = first.Incarnation // a writer cannot bring the old one back
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", doc, &again)
	if again.Incarnation == "" || again.Incarnation == first.Incarnation {
		t.Fatalf("re-created tenant incarnation = %q, want a new one (was %q)", again.Incarnation, first.Incarnation)
	}
}
