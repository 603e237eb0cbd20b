package broker_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/transform"
)

func TestImpersonation_ActAndAudit(t *testing.T) {
	audit := &e2etest.SyncBuffer{}
	e := newEnv(t, allowExchange("app-a", "app-b"), func(c *broker.Config) {
		c.Audit = slog.New(slog.NewJSONHandler(audit, nil))
		c.Policies = map[string]broker.TenantPolicy{"acme": {Impersonation: &broker.ImpersonationPolicy{
			OperatorRoles: []string{"support"}, OperatorTenants: []string{"globex"}}}}
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "support staff", If: `upstream.sub == "carol"`,
			Add: []transform.Assignment{{Claim: "roles", Expr: `"support"`}}}}, transform.Options{Tenant: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		c.Rules = map[string]*transform.Engine{"globex": eng}
	})
	// The user to impersonate (alice, acme) and the operator (carol, globex).
	alice, _ := e.signIn()
	_, ac := claimsOf(t, alice.str("id_token"))
	e.globex.ident.Claims = map[string]any{"sub": "carol"}
	v := authParams(s256(authVerifier))
	v.Set("login_hint", "carol@globex.test")
	q := e.login(e.browser(), v)
	operator := e.exchange(q.Get("code"), authVerifier)
	_, oc := claimsOf(t, operator.str("access_token"))
	req := func(subject, actorToken string) tokenResp {
		return e.post("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {subject}, "subject_token_type": {"urn:realmgate:params:oauth:token-type:user"},
			"actor_token": {actorToken}, "actor_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"audience": {"app-b"}}, "app-a", secretA)
	}
	r := req("acme/"+ac["sub"].(string), operator.str("access_token"))
	if r.status != http.StatusOK {
		t.Fatalf("impersonation = %d %v", r.status, r.body)
	}
	_, c := claimsOf(t, r.str("access_token"))
	act, _ := c["act"].(map[string]any)
	if c["sub"] != ac["sub"] || c["tid"] != "acme" || c["aud"] != "app-b" || act["sub"] != oc["sub"] || act["tid"] != "globex" {
		t.Fatalf("impersonation token %v, want alice's sub in acme with act naming carol", c)
	}
	if ttl := c["exp"].(float64) - c["iat"].(float64); ttl > 15*60 {
		t.Errorf("impersonation token lives %vs, want <= 15 min", ttl)
	}
	if r.body["refresh_token"] != nil {
		t.Errorf("impersonation issued a refresh token")
	}
	if in := e.post("/introspect", url.Values{"token": {r.str("access_token")}}, "app-b", secretB); in.body["active"] != true {
		t.Errorf("impersonation token not introspectable: %v", in.body)
	}
	logged := audit.String()
	if !strings.Contains(logged, `"outcome":"impersonation"`) || !strings.Contains(logged, `"actor":"globex/`+oc["sub"].(string)) ||
		!strings.Contains(logged, `"subject":"`+ac["sub"].(string)) {
		t.Errorf("audit lacks an impersonation event naming both ids:\n%s", logged)
	}
	t.Run("operator without the role refused", func(t *testing.T) {
		if r := req("acme/x", alice.str("access_token")); r.str("error") != "invalid_grant" {
			t.Fatalf("alice impersonating = %v, want invalid_grant", r.body)
		}
	})
	t.Run("tenant without policy refused", func(t *testing.T) {
		if r := req("initech/x", operator.str("access_token")); r.str("error") != "invalid_grant" {
			t.Fatalf("impersonation in initech = %v, want invalid_grant", r.body)
		}
	})
	t.Run("audience outside policy refused", func(t *testing.T) {
		v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {"acme/x"}, "subject_token_type": {"urn:realmgate:params:oauth:token-type:user"},
			"actor_token": {operator.str("access_token")}, "actor_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"audience": {"pub"}}
		if r := e.post("/token", v, "app-a", secretA); r.str("error") != "invalid_target" {
			t.Fatalf("impersonation for pub = %v, want invalid_target", r.body)
		}
	})
}
