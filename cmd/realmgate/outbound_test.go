package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
)

const (
	testEvilToken  = "evil-admin-token-0123456789abcdef0123456"
	internalAnswer = "INTERNAL-ANSWER-do-not-leak"
)

// TestOutbound_S70_TenantAdminCannotReachInternalServices is the issue's
// attack. A per-tenant admin points an oauth2 provider's userinfo_url at an
// internal service on loopback and adds a rule `set: {leak: upstream.secret}`,
// hoping the ID token carries the internal answer; or points it at their own
// server, which redirects there; or makes the broker fetch an OIDC issuer's
// discovery there at write. The broker's file allows the attacker's server
// (127.0.0.2, standing in for the public internet) but not loopback: every
// attempt fails and the internal service receives no request.
func TestOutbound_S70_TenantAdminCannotReachInternalServices(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	var internalHits atomic.Int64
	lnInternal := listen(t)
	internal := "http://" + lnInternal.Addr().String()
	serve(t, lnInternal, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		internalHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sub": "internal", "secret": %q, "issuer": %q}`, internalAnswer, internal)
	}))

	// The attacker's own IdP: approves at once and issues any access token.
	lnEvil, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address for the attacker's server: %v", err)
	}
	evil := "http://" + lnEvil.Addr().String()
	var tokenHits, userinfoHits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=evil-code&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		tokenHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token": "evil-at", "token_type": "Bearer", "expires_in": 300}`)
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		userinfoHits.Add(1)
		http.Redirect(w, r, internal+"/latest/meta-data", http.StatusFound)
	})
	serve(t, lnEvil, mux)

	lnB := listen(t)
	issuer := "http://" + lnB.Addr().String()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`issuer: %s
store:
  type: memory
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_cidrs: ["127.0.0.2/32"] # the attacker's server; loopback itself is not allowed
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
    - name: evil-admin
      token: %s
      tenant: evil
`, issuer, appSecret, appCallback, testOpToken, testEvilToken)), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, a := startWithAdmin(t, ctx, cancel, cfg, memstore.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	serve(t, lnB, srv.Handler())
	base := "http://" + a.Addr

	// The operator onboards the tenant; its admin does the rest.
	if got := api(t, base, testOpToken, "POST", "/v1/tenants", admin.Tenant{Tenant: config.Tenant{ID: "evil", Name: "Evil"},
		Domains: []admin.Domain{{Name: "evil.test", Verified: true}}}, nil); got != http.StatusCreated {
		t.Fatalf("operator creates tenant evil = %d, want 201", got)
	}
	oauth2 := func(id, userinfo string) admin.Provider {
		return admin.Provider{ID: id, Type: "oauth2", ClientID: "rg", ClientSecret: "evil-secret",
			AuthURL: evil + "/authorize", TokenURL: evil + "/token", UserInfoURL: userinfo}
	}
	for _, p := range []admin.Provider{oauth2("evil-direct", internal+"/latest/meta-data"), oauth2("evil-redirect", evil+"/userinfo")} {
		if got := api(t, base, testEvilToken, "POST", "/v1/tenants/evil/providers", p, nil); got != http.StatusCreated {
			t.Fatalf("tenant admin adds provider %s = %d, want 201", p.ID, got)
		}
	}
	rules := []admin.Rule{{Name: "exfiltrate", Set: map[string]string{"leak": "has(upstream.secret) ? upstream.secret : 'none'"}}}
	if got := api(t, base, testEvilToken, "PUT", "/v1/tenants/evil/rules", map[string]any{"rules": rules}, nil); got != http.StatusOK {
		t.Fatalf("tenant admin sets rules = %d, want 200", got)
	}

	for _, tc := range []struct{ idp, how string }{
		{"evil-direct", "userinfo_url on loopback"},
		{"evil-redirect", "userinfo_url redirecting to loopback"},
	} {
		t.Run(tc.idp, func(t *testing.T) {
			var claims map[string]any
			deadline := time.Now().Add(10 * time.Second)
			for { // the admin API's change reaches the broker shortly after the write
				tokens := tokenHits.Load()
				claims, err = signInWith(issuer, map[string][]string{"login_hint": {"eve@evil.test"}, "idp_hint": {tc.idp}})
				if tokenHits.Load() > tokens { // this attempt reached the callback (a failed one ends on a broker page)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("sign-in through %s never reached the attacker's token endpoint: %v", tc.idp, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err == nil {
				b, _ := json.Marshal(claims)
				t.Fatalf("sign-in through %s (%s) succeeded with claims %s, want it refused", tc.idp, tc.how, b)
			}
			if strings.Contains(err.Error(), internalAnswer) {
				t.Fatalf("sign-in through %s failed with the internal answer in the page: %v", tc.idp, err)
			}
		})
	}
	if userinfoHits.Load() == 0 {
		t.Error("the attacker's redirecting userinfo endpoint was never asked: the redirect case proved nothing")
	}

	// An OIDC issuer on loopback: the broker fetches its discovery document
	// at write, and refuses the write instead of reaching the service.
	var res struct {
		Problems []admin.Problem `json:"problems"`
	}
	got := api(t, base, testEvilToken, "POST", "/v1/tenants/evil/providers",
		admin.Provider{ID: "evil-oidc", Type: "oidc", Issuer: internal + "/realm", ClientID: "rg", ClientSecret: "s"}, &res)
	if got != http.StatusUnprocessableEntity || len(res.Problems) == 0 || !strings.Contains(res.Problems[0].Message, "forbidden address") {
		t.Errorf("tenant admin adds an OIDC issuer on loopback = %d %+v, want 422 naming a forbidden address", got, res.Problems)
	}

	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the internal service received %d requests, want 0", n)
	}
}
