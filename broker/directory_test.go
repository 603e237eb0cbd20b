package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// TestReconfigure_TenantsWithoutRestart adds a tenant to a running broker,
// signs a user in through it, changes its rules, then removes it.
func TestReconfigure_TenantsWithoutRestart(t *testing.T) {
	e := newEnv(t)
	umbrella := &fakeIdP{id: "umbrella-idp", ident: providers.Identity{Subject: "jill", Email: "jill@umbrella.test",
		EmailVerified: true, Claims: map[string]any{"groups": []any{"STARS"}}}}
	dir := func(withUmbrella bool, rules []transform.Rule) broker.Directory {
		tenants := []realm.Tenant{
			{ID: "acme", Name: "ACME", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}},
		}
		idps := []broker.IdP{{ID: "acme-idp", Tenant: "acme", Name: "ACME SSO", Connector: e.acme}}
		engines := map[string]*transform.Engine{}
		if withUmbrella {
			tenants = append(tenants, realm.Tenant{ID: "umbrella", Name: "Umbrella", Domains: []string{"umbrella.test"}, IdPs: []string{"umbrella-idp"}})
			idps = append(idps, broker.IdP{ID: "umbrella-idp", Tenant: "umbrella", Name: "Umbrella SSO", Connector: umbrella})
			eng, err := transform.Compile(nil, rules, transform.Options{Tenant: "umbrella"})
			if err != nil {
				t.Fatal(err)
			}
			engines["umbrella"] = eng
		}
		res, err := realm.New(tenants, realm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return broker.Directory{Resolver: res, IdPs: idps, Rules: engines}
	}
	signIn := func() (int, map[string]any) {
		b := e.browser()
		v := authParams(s256(authVerifier))
		v.Set("login_hint", "jill@umbrella.test")
		resp := b.get(e.authorizeURL(v))
		if upstreamOf(resp) != "umbrella-idp" {
			return resp.StatusCode, nil
		}
		state := mustQuery(t, resp.Header.Get("Location")).Get("state")
		q := e.clientRedirect(b.get(e.issuer+"/callback/umbrella-idp?code=x&state="+state), appCB)
		tr := e.exchange(q.Get("code"), authVerifier)
		_, c := claimsOf(t, tr.str("id_token"))
		return http.StatusOK, c
	}
	if st, c := signIn(); c != nil {
		t.Fatalf("umbrella user signed in before the tenant existed: %d", st)
	}
	if err := e.broker.Reconfigure(dir(true, []transform.Rule{{Name: "stars", Map: &transform.Map{From: "upstream.groups", To: "roles", Table: map[string]string{"STARS": "agent"}}}})); err != nil {
		t.Fatal(err)
	}
	_, c := signIn()
	if c == nil || c["tid"] != "umbrella" || !strings.Contains(strings.Join(toStrings(c["roles"]), ","), "agent") {
		t.Fatalf("after adding umbrella: claims %v, want tid umbrella and role agent", c)
	}
	if err := e.broker.Reconfigure(dir(true, []transform.Rule{{Name: "stars", Map: &transform.Map{From: "upstream.groups", To: "roles", Table: map[string]string{"STARS": "captain"}}}})); err != nil {
		t.Fatal(err)
	}
	if _, c := signIn(); c == nil || !strings.Contains(strings.Join(toStrings(c["roles"]), ","), "captain") {
		t.Fatalf("after changing rules: claims %v, want role captain", c)
	}
	if err := e.broker.Reconfigure(dir(false, nil)); err != nil {
		t.Fatal(err)
	}
	if _, c := signIn(); c != nil {
		t.Fatalf("umbrella user signed in after the tenant was removed: %v", c)
	}
	// An invalid directory changes nothing.
	bad := dir(false, nil)
	bad.IdPs = append(bad.IdPs, broker.IdP{ID: "ghost", Tenant: "nowhere", Connector: umbrella})
	if err := e.broker.Reconfigure(bad); err == nil {
		t.Fatal("Reconfigure accepted an IdP of an unknown tenant")
	}
	e.signIn() // acme still works
}

// TestReconfigure_ConcurrentWithSignIns swaps the directory while sign-ins run.
func TestReconfigure_ConcurrentWithSignIns(t *testing.T) {
	e := newEnv(t)
	res, _ := realm.New([]realm.Tenant{{ID: "acme", Name: "ACME", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}}}, realm.Options{})
	d := broker.Directory{Resolver: res, IdPs: []broker.IdP{{ID: "acme-idp", Tenant: "acme", Name: "ACME", Connector: e.acme}}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if err := e.broker.Reconfigure(d); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for range 20 {
		e.signIn()
	}
	close(stop)
	wg.Wait()
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestReconfigure_ClientsLive: a client added by Reconfigure can sign users
// in at once; one removed is unknown at once (S02: no redirect).
func TestReconfigure_ClientsLive(t *testing.T) {
	e := newEnv(t)
	res, _ := realm.New([]realm.Tenant{{ID: "acme", Name: "ACME", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}}}, realm.Options{})
	d := broker.Directory{Resolver: res, IdPs: []broker.IdP{{ID: "acme-idp", Tenant: "acme", Name: "ACME", Connector: e.acme}},
		Clients: []broker.Client{{ID: "new-app", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"*"}}}}
	if err := e.broker.Reconfigure(d); err != nil {
		t.Fatal(err)
	}
	v := authParams(s256(authVerifier))
	v.Set("client_id", "new-app")
	q := e.login(e.browser(), v)
	tr := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {appCB}, "code_verifier": {authVerifier}}, "new-app", secretA)
	if tr.status != http.StatusOK {
		t.Fatalf("token for a client added live = %d %v", tr.status, tr.body)
	}
	v.Set("client_id", "app-a") // not in the new directory
	if resp := e.browser().get(e.authorizeURL(v)); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("removed client app-a = %d %q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}
