package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// The tenant user directory of issue 15, end to end: a user provisioned
// with a group through the admin API signs in (openid-client as the app)
// through an upstream that sends no groups and gets the role mapped from
// the provisioned group; suspending them through the admin API ends their
// refresh token on the OTHER realmgate process within 1 s (both on one
// Redis) and the app's back-channel logout endpoint receives a logout token.

type dirConfig struct {
	Issuer, RedisAddr, Secret, AppSecret, OPIssuer, OPSecret, BackchannelLogout string
	DB                                                                          int
	AdminAddr, AdminToken                                                       string
}

var dirTemplate = template.Must(template.New("directory.yaml").Parse(`# written by e2e/directory_test.go
issuer: {{.Issuer}}
rate_limits:
  starts_per_ip: "off"
  failures_per_ip: "off"
ops:
  listen: 127.0.0.1:0
store:
  type: redis
  redis:
    addrs: ["{{.RedisAddr}}"]
    db: {{.DB}}
keys:
  algorithm: ES256
  secret: "{{.Secret}}"
outbound:
  allow_loopback: true
{{if .AdminAddr}}admin_api:
  listen: {{.AdminAddr}}
  tokens:
    - name: ops
      token: "{{.AdminToken}}"
{{end}}clients:
  - id: ` + rpClientID + `
    secret: "{{.AppSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["acme"]
    claims: [roles]
    backchannel_logout_uri: "{{.BackchannelLogout}}"
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    directory:
      match: user_name
      match_claim: email
      provisioned_only: true
    providers:
      - id: ` + idpID + `
        type: oidc
        issuer: {{.OPIssuer}}
        client_id: ` + opClientID + `
        client_secret: "{{.OPSecret}}"
        scopes: ["openid", "profile", "email"]
    rules:
      - name: provisioned groups to roles
        if: "!has(upstream.groups)"
        map:
          from: user.groups
          to: roles
          table:
            Engineers: dev
`))

func TestE2E_DirectoryProvisionedRoleAndDeprovisioning(t *testing.T) {
	e2etest.Need(t)
	const db = 14
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
	cfgB.AdminAddr = "" // one admin API is enough
	pathB := e2etest.WriteConfig(t, dirTemplate, cfgB)
	rgA := e2etest.Start(t, "realmgate-a", exec.Command(env.binary, "serve", "--config", pathA, "--listen", addrA, "--log-format", "json"))
	rgB := e2etest.Start(t, "realmgate-b", exec.Command(env.binary, "serve", "--config", pathB, "--listen", addrB, "--log-format", "json"))
	rgA.WaitReady(t, issuer+"/readyz")
	rgB.WaitReady(t, "http://"+addrB+"/readyz")

	admin := func(method, path string, body any, out any) int {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, "http://"+adminAddr+path, rd)
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("admin %s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	// Wait for the admin API to listen.
	deadline := time.Now().Add(10 * time.Second)
	for admin("GET", "/v1/status", nil, nil) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the admin API did not answer within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// bob is provisioned (no IdP groups for him: the upstream is not asked for them).
	var user struct {
		ID string `json:"id"`
	}
	if st := admin("POST", "/v1/tenants/acme/users", map[string]any{"userName": "bob@acme.test", "groups": []string{"Engineers"}}, &user); st != http.StatusCreated {
		t.Fatalf("provision bob = %d, want 201", st)
	}

	rp := startNodeRP(t, issuer, rpClientID, cfg.AppSecret)
	b := newBrowser(t, "bob", "bob@acme.test")
	tok := rp.signIn(t, b, "acme")
	roles, _ := tok.AccessJWT.Payload["roles"].([]any)
	if !slices.Equal(roles, []any{"dev"}) {
		t.Fatalf("roles of a provisioned Engineers member = %v (access token %v), want [dev]", roles, tok.AccessJWT.Payload)
	}

	// Before the suspension the refresh works on instance B.
	refreshAtB := func(rt string) (int, map[string]any) { return refreshAt(t, addrB, cfg.AppSecret, rt) }
	st, body := refreshAtB(tok.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("refresh at instance B before suspension = %d %v", st, body)
	}
	rt, _ := body["refresh_token"].(string)

	// Suspend through instance A's admin API.
	if st := admin("POST", "/v1/tenants/acme/users/"+user.ID+"/suspend", nil, nil); st != http.StatusOK {
		t.Fatalf("suspend = %d", st)
	}
	suspended := time.Now()
	// The refresh at instance B fails; poll with a generous deadline and
	// assert the state change (the store is shared, so it holds at once).
	var ended time.Duration
	for {
		st, body = refreshAtB(rt)
		if st == http.StatusBadRequest && body["error"] == "invalid_grant" {
			ended = time.Since(suspended)
			break
		}
		if time.Since(suspended) > 10*time.Second {
			t.Fatalf("refresh at instance B still answers %d %v 10 s after the suspension", st, body)
		}
		if st == http.StatusOK {
			rt, _ = body["refresh_token"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("refresh refused at instance B %v after the suspension", ended)

	lt := logouts.wait(t)
	v := rp.verifyJWT(t, lt, "logout+jwt", rpClientID, "iss", "aud", "iat", "jti", "events", "sub", "sid")
	if v.Payload["sub"] != tok.Claims["sub"] {
		t.Errorf("logout token sub = %v, want the user's %v", v.Payload["sub"], tok.Claims["sub"])
	}
	if ev := findAudit(rgA, map[string]string{"outcome": "revoked", "reason": "user_suspended", "actor": "admin:ops"}); ev == nil {
		t.Error("no audit event of the suspension with its actor")
	}
	// The next sign-in is refused with a page.
	b2 := newBrowser(t, "bob", "bob@acme.test")
	authURL, _ := rp.start(t)
	end := b2.walk(authURL, rpRedirectURI, "acme")
	if end.status != http.StatusForbidden || !strings.Contains(end.body, "suspended or deprovisioned") {
		t.Fatalf("sign-in of a suspended user ended at %s: %d %.300s; want 403 and a clear page", end.url, end.status, end.body)
	}
}

// refreshAt redeems refresh token rt as the RP (rpClientID with secret) at
// the realmgate instance listening on addr, returning the status and body.
func refreshAt(t *testing.T, addr, secret, rt string) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/token", strings.NewReader(v.Encode()))
	req.SetBasicAuth(rpClientID, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}
