package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// SCIM deprovisioning of issue 15, end to end: a user provisioned WITH A
// GROUP through SCIM (as Entra does: POST /Users, then POST /Groups naming
// them a member) signs in (openid-client as the app) through an upstream
// that sends no groups and gets the role mapped from the SCIM group; SCIM
// PATCH active "False" (Entra's "op":"Replace" shape) on instance A ends
// their refresh token on instance B within 1 s (both on one Redis), and
// the app's back-channel logout endpoint receives a logout token.
func TestE2E_SCIMDeprovisioningEndsAccessEverywhere(t *testing.T) {
	e2etest.Need(t)
	const db = 15
	flushRedisDB(t, env.redis.Addr(), db)
	addrA, addrB, adminAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	issuer := "http://" + addrA
	logouts := newLogoutReceiver(t)
	op := startOPWith(t, "--redirect-uri", issuer+"/callback/"+idpID)
	cfg := dirConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: db, Secret: randomString(t, 32),
		AppSecret: randomString(t, 24), OPIssuer: op.issuer, OPSecret: op.secret, BackchannelLogout: logouts.srv.URL + "/bc",
		AdminAddr: adminAddr, AdminToken: randomString(t, 32)}
	pathA := e2etest.WriteConfig(t, dirTemplate, cfg)
	cfgB := cfg
	cfgB.AdminAddr = ""
	pathB := e2etest.WriteConfig(t, dirTemplate, cfgB)
	rgA := e2etest.Start(t, "realmgate-a", exec.Command(env.binary, "serve", "--config", pathA, "--listen", addrA, "--log-format", "json"))
	rgB := e2etest.Start(t, "realmgate-b", exec.Command(env.binary, "serve", "--config", pathB, "--listen", addrB, "--log-format", "json"))
	rgA.WaitReady(t, issuer+"/readyz")
	rgB.WaitReady(t, "http://"+addrB+"/readyz")

	call := func(method, u, token, ctype string, body any, out any) int {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, u, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for call("GET", "http://"+adminAddr+"/v1/status", cfg.AdminToken, "application/json", nil, nil) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the admin API did not answer within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The tenant's SCIM token, made through the admin API (shown once).
	var created struct {
		Token, Endpoint string
	}
	if st := call("POST", "http://"+adminAddr+"/v1/tenants/acme/scim/tokens", cfg.AdminToken, "application/json",
		map[string]string{"name": "entra"}, &created); st != http.StatusCreated || created.Token == "" {
		t.Fatalf("create SCIM token = %d", st)
	}
	scimCall := func(method, path string, body any, out any) int {
		return call(method, created.Endpoint+path, created.Token, "application/scim+json", body, out)
	}
	// Provisioning as Entra does it: the user, then the group with them as member.
	var user struct {
		ID string `json:"id"`
	}
	if st := scimCall("POST", "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "externalId": "0a1b2c3d-bob", "userName": "bob@acme.test",
		"active": true, "displayName": "Bob", "emails": []map[string]any{{"primary": true, "type": "work", "value": "bob@acme.test"}},
	}, &user); st != http.StatusCreated || user.ID == "" {
		t.Fatalf("SCIM POST /Users = %d", st)
	}
	if st := scimCall("POST", "/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Engineers", "externalId": "grp-eng",
		"members": []map[string]any{{"value": user.ID}},
	}, nil); st != http.StatusCreated {
		t.Fatalf("SCIM POST /Groups = %d", st)
	}

	rp := startNodeRP(t, issuer, rpClientID, cfg.AppSecret)
	b := newBrowser(t, "bob", "bob@acme.test")
	tok := rp.signIn(t, b, "acme")
	roles, _ := tok.AccessJWT.Payload["roles"].([]any)
	if !slices.Equal(roles, []any{"dev"}) {
		t.Fatalf("roles of a SCIM-provisioned Engineers member = %v (access token %v), want [dev]", roles, tok.AccessJWT.Payload)
	}
	refreshAtB := func(rt string) (int, map[string]any) { return refreshAt(t, addrB, cfg.AppSecret, rt) }
	st, body := refreshAtB(tok.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("refresh at instance B before deprovisioning = %d %v", st, body)
	}
	rt, _ := body["refresh_token"].(string)

	// Entra's deprovisioning PATCH, on instance A's SCIM endpoint.
	var patched map[string]any
	if st := scimCall("PATCH", "/Users/"+user.ID, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "Replace", "path": "active", "value": "False"}},
	}, &patched); st != http.StatusOK || patched["active"] != false {
		t.Fatalf("SCIM PATCH active False = %d %v", st, patched)
	}
	deprovisioned := time.Now()
	var ended time.Duration
	for {
		st, body = refreshAtB(rt)
		if st == http.StatusBadRequest && body["error"] == "invalid_grant" {
			ended = time.Since(deprovisioned)
			break
		}
		if time.Since(deprovisioned) > 10*time.Second {
			t.Fatalf("refresh at instance B still answers %d %v 10 s after SCIM deprovisioning", st, body)
		}
		if st == http.StatusOK {
			rt, _ = body["refresh_token"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("refresh refused at instance B %v after the SCIM PATCH", ended)

	lt := logouts.wait(t)
	v := rp.verifyJWT(t, lt, "logout+jwt", rpClientID, "iss", "aud", "iat", "jti", "events", "sub", "sid")
	if v.Payload["sub"] != tok.Claims["sub"] {
		t.Errorf("logout token sub = %v, want the user's %v", v.Payload["sub"], tok.Claims["sub"])
	}
	if ev := findAudit(rgA, map[string]string{"outcome": "revoked", "reason": "user_deprovisioned", "actor": "scim:entra"}); ev == nil {
		t.Error("no audit event of the deprovisioning with its SCIM actor")
	}
}
