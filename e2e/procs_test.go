package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

const (
	// rpRedirectURI is where realmgate sends the browser back to the
	// downstream app. Nothing listens there: the test browser stops at it.
	rpRedirectURI = "http://127.0.0.1/e2e/callback"
	rpClientID    = "e2e-app"
	// opClientID is realmgate's client id at the upstream oidc-provider.
	opClientID = "realmgate"
	// idpID is the upstream IdP's id in realmgate's configuration.
	idpID = "acme-op"
)

func randomString(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// upstreamOP is a running oidc-provider.
type upstreamOP struct {
	issuer string
	secret string // realmgate's client secret there
	p      *e2etest.Proc
}

// opEvent is one event line op.mjs prints.
type opEvent struct {
	Event         string   `json:"event"`
	IDTokenClaims []string `json:"id_token_claims"`
	Status        int      `json:"status"`
}

// events returns the token and userinfo events the OP printed so far.
func (op *upstreamOP) events() []opEvent {
	var out []opEvent
	for _, line := range op.p.Lines() {
		var e opEvent
		if json.Unmarshal([]byte(line), &e) == nil && e.Event != "" {
			out = append(out, e)
		}
	}
	return out
}

// checkUserinfoMerged asserts that the upstream's ID tokens carried no email,
// name or groups and that its userinfo endpoint answered realmgate: so any
// of those claims in realmgate's tokens came from merging userinfo.
func checkUserinfoMerged(t *testing.T, op *upstreamOP) {
	t.Helper()
	var tokens, userinfo int
	for _, e := range op.events() {
		switch e.Event {
		case "token":
			tokens++
			for _, c := range []string{"email", "name", "groups"} {
				if slices.Contains(e.IDTokenClaims, c) {
					t.Errorf("upstream ID token carried %q (claims %v): the test no longer proves the userinfo merge", c, e.IDTokenClaims)
				}
			}
		case "userinfo":
			if e.Status == http.StatusOK {
				userinfo++
			}
		}
	}
	if tokens == 0 || userinfo == 0 {
		t.Errorf("upstream served %d token and %d userinfo answers, want at least one of each", tokens, userinfo)
	}
}

// startOP starts e2e/node/op.mjs with realmgate's callback registered as
// the only redirect URI and waits for it to print its issuer.
func startOP(t *testing.T, realmgateIssuer string) *upstreamOP {
	t.Helper()
	return startOPWith(t, "--redirect-uri", realmgateIssuer+"/callback/"+idpID)
}

// rgConfig is what a realmgate configuration file of these tests varies.
type rgConfig struct {
	Issuer       string
	RedisAddr    string
	DB           int
	Secret       string
	Algorithm    string
	ClientSecret string
	OPIssuer     string
	OPSecret     string
}

// rgConfigBase is the part every e2e configuration shares: the issuer, no
// per-IP limits (every request comes from 127.0.0.1), the test's Redis
// database, keys, and outbound calls to the loopback IdPs and receivers.
const rgConfigBase = `issuer: {{.Issuer}}
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
  algorithm: {{.Algorithm}}
  secret: "{{.Secret}}"
outbound:
  allow_loopback: true
`

// rgConfigTemplate: tenant acme (domain acme.test) signs in at the real
// oidc-provider; its rule maps the upstream groups (from userinfo only) to
// roles. Tenant globex exists so that finding acme is a real choice; its
// IdP is never contacted (discovery is lazy).
var rgConfigTemplate = template.Must(template.New("realmgate.yaml").Parse(`# written by the e2e tests
issuer: {{.Issuer}}
# Every request comes from 127.0.0.1 and several processes share a host.
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
  algorithm: {{.Algorithm}}
  secret: "{{.Secret}}"
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
clients:
  - id: ` + rpClientID + `
    secret: "{{.ClientSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["acme"]
    claims: [roles]
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
    conditional_access:
      auth_contexts:
        c1: {fresh_login: true} # a sign-in at the IdP for the request (openidclient_test.go)
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            finance-admins: admin
            staff: member
  - id: globex
    name: Globex Inc.
    domains: ["globex.test"]
    providers:
      - id: globex-op
        type: oidc
        issuer: http://127.0.0.1:9/globex
        client_id: realmgate
        client_secret: never-used
`))

// deployment is an upstream OP and the realmgate configuration that trusts it.
type deployment struct {
	cfg        rgConfig
	configPath string
	op         *upstreamOP
}

// newDeployment starts the upstream OP and writes a realmgate configuration
// for issuer on the shared Redis, database db (flushed first).
func newDeployment(t *testing.T, issuer string, db int, alg string) *deployment {
	t.Helper()
	flushRedisDB(t, env.redis.Addr(), db)
	op := startOP(t, issuer)
	cfg := rgConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: db, Secret: randomString(t, 32),
		Algorithm: alg, ClientSecret: randomString(t, 24), OPIssuer: op.issuer, OPSecret: op.secret}
	return &deployment{cfg: cfg, configPath: e2etest.WriteConfig(t, rgConfigTemplate, cfg), op: op}
}

// startRealmgate runs `realmgate serve` on addr and waits until /readyz
// answers 200 (the Redis store is reachable and the keys are loaded).
func startRealmgate(t *testing.T, d *deployment, name, addr string) *e2etest.Proc {
	t.Helper()
	p := e2etest.Start(t, name, exec.Command(env.binary, "serve", "--config", d.configPath, "--listen", addr, "--log-format", "text"))
	p.WaitReady(t, "http://"+addr+"/readyz")
	return p
}

// runNode runs a node script of e2e/node to completion and decodes the one
// JSON object it prints. A non-zero exit fails the test with that output
// (rp.mjs prints openid-client's error as JSON).
func runNode(t *testing.T, out any, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.node, append([]string{script}, args...)...)
	cmd.Dir = env.nodeDir
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %s: %v\nstdout: %s\nstderr: %s", script, args[0], err, stdout.String(), stderr.String())
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), out); err != nil {
		t.Fatalf("node %s %s: output is not JSON: %v\nstdout: %s\nstderr: %s", script, args[0], err, stdout.String(), stderr.String())
	}
}

// flushRedisDB empties database db so a run never sees an earlier run's keys
// (which matters with an external Redis named by REALMGATE_TEST_REDIS_ADDR).
func flushRedisDB(t *testing.T, addr string, db int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("redis %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	for _, args := range [][]string{{"SELECT", strconv.Itoa(db)}, {"FLUSHDB"}} {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatalf("redis %s %v: %v", addr, args, err)
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("redis %s %v = %q, %v; want +OK", addr, args, line, err)
		}
	}
}
