package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// deviceClientID is the public CLI client of the device flow test.
const deviceClientID = "e2e-cli"

// deviceConfigTemplate: tenant acme at the real oidc-provider as in
// rgConfigTemplate, one public client registered for the device grant only
// (no redirect URI), polling every second.
var deviceConfigTemplate = template.Must(template.New("realmgate.yaml").Parse(`# written by the e2e tests
` + rgConfigBase + `device_authorization:
  interval: 1s
clients:
  - id: ` + deviceClientID + `
    allowed_tenants: ["acme"]
    grant_types: [urn:ietf:params:oauth:grant-type:device_code, refresh_token]
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    providers:
      - id: ` + idpID + `
        type: oidc
        name: ACME sign-in
        issuer: {{.OPIssuer}}
        client_id: ` + opClientID + `
        client_secret: "{{.OPSecret}}"
        scopes: ["openid", "profile", "email", "groups"]
`))

// TestE2E_OpenIDClient_DeviceFlow: panva's openid-client, as a public CLI
// client, asks realmgate for a device code and polls; the test, as the
// person on another screen, opens verification_uri_complete, submits the
// user code, is sent through realmgate's home-realm discovery (email box)
// to oidc-provider, signs in as alice, and approves the device on
// realmgate's confirmation page. openid-client gets authorization_pending
// while the person is busy, then tokens for alice of acme (it checks the ID
// token); the same device code again is refused with invalid_grant.
func TestE2E_OpenIDClient_DeviceFlow(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	flushRedisDB(t, env.redis.Addr(), 14)
	op := startOP(t, issuer)
	cfg := rgConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: 14, Secret: randomString(t, 32),
		Algorithm: "ES256", OPIssuer: op.issuer, OPSecret: op.secret}
	d := &deployment{cfg: cfg, configPath: e2etest.WriteConfig(t, deviceConfigTemplate, cfg), op: op}
	startRealmgate(t, d, "realmgate", addr)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.node, "device.mjs", "--issuer", issuer, "--client-id", deviceClientID)
	cmd.Dir = env.nodeDir
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			_ = cmd.Wait()
			t.Fatalf("device.mjs ended early: %v\nstderr: %s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil || strings.Contains(lines.Text(), `"error":`) && !strings.Contains(lines.Text(), `"reuse"`) {
			t.Fatalf("device.mjs: %s (%v)\nstderr: %s", lines.Text(), err, stderr.String())
		}
	}
	var started struct {
		Device struct {
			UserCode                string `json:"user_code"`
			VerificationURI         string `json:"verification_uri"`
			VerificationURIComplete string `json:"verification_uri_complete"`
			Interval                int    `json:"interval"`
		} `json:"device"`
		Metadata struct {
			Endpoint   string   `json:"device_authorization_endpoint"`
			GrantTypes []string `json:"grant_types_supported"`
		} `json:"metadata"`
	}
	next(&started)
	if started.Metadata.Endpoint != issuer+"/device_authorization" ||
		!slices.Contains(started.Metadata.GrantTypes, "urn:ietf:params:oauth:grant-type:device_code") {
		t.Errorf("discovered metadata = %+v, want the device endpoint and grant", started.Metadata)
	}
	if started.Device.VerificationURI != issuer+"/device" || started.Device.Interval != 1 || len(started.Device.UserCode) != 9 {
		t.Errorf("device authorization = %+v", started.Device)
	}
	// Let openid-client poll while nobody has answered yet.
	time.Sleep(2500 * time.Millisecond)

	// The person: the code is filled in from the complete URI; the browser
	// submits it, types alice's email into realmgate's discovery page, signs
	// in at oidc-provider and approves on the confirmation page.
	b := newBrowser(t, "alice", "alice@acme.test")
	b.signIn(started.Device.VerificationURIComplete, issuer+"/device/done?result=approved")
	if !b.visited("/device/confirm") || !b.visited("/login") {
		t.Errorf("the browser went %v, want the discovery page and the confirmation", b.visits)
	}

	var res struct {
		Response      map[string]any `json:"response"`
		IDTokenClaims map[string]any `json:"id_token_claims"`
		Pending       int            `json:"pending"`
		Reuse         struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"reuse"`
	}
	next(&res)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device.mjs: %v\nstderr: %s", err, stderr.String())
	}
	checkClaims(t, "ID token", res.IDTokenClaims, map[string]any{"iss": issuer, "aud": deviceClientID, "tid": "acme", "email": "alice@acme.test"})
	if rt, _ := res.Response["refresh_token"].(string); rt == "" {
		t.Errorf("no refresh token in %v", res.Response)
	}
	if res.Pending == 0 {
		t.Errorf("openid-client never saw authorization_pending")
	}
	if res.Reuse.OK || res.Reuse.Error != "invalid_grant" {
		t.Errorf("reused device code = %+v, want invalid_grant", res.Reuse)
	}
}
