package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
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

	startTimeout = 60 * time.Second // generous: CI machines are shared and slow under load
)

// proc is one child process the test started; it is stopped in cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProc starts name with args, collecting its stdout and stderr. The
// process is terminated (SIGTERM, then SIGKILL) when the test ends, and its
// output is logged if the test failed. lines, when not nil, receives stdout
// line by line.
func startProc(t *testing.T, name, dir string, lines chan<- string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: stdout pipe: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if lines != nil {
				select {
				case lines <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(p.out, stdout)
	}()
	go func() {
		reading.Wait() // Wait closes the pipe: read it all first
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, p.out.tail(6000))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, and SIGKILL if it is still there after 3 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// syncBuffer is a goroutine-safe output collector.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.String()
	if len(b) > n {
		b = "..." + b[len(b)-n:]
	}
	return b
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
	p      *proc
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
	for _, line := range strings.Split(op.p.out.tail(1<<20), "\n") {
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
	secret := randomString(t, 24)
	lines := make(chan string, 16)
	p := startProc(t, "oidc-provider", env.nodeDir, lines, env.node, "op.mjs",
		"--client-id", opClientID, "--client-secret="+secret,
		"--redirect-uri", realmgateIssuer+"/callback/"+idpID)
	deadline := time.After(startTimeout)
	for {
		select {
		case line := <-lines:
			var ready struct {
				Issuer string `json:"issuer"`
			}
			if json.Unmarshal([]byte(line), &ready) == nil && ready.Issuer != "" {
				return &upstreamOP{issuer: ready.Issuer, secret: secret, p: p}
			}
		case <-p.done:
			t.Fatalf("oidc-provider exited at start:\n%s", p.out.tail(4000))
		case <-deadline:
			t.Fatalf("oidc-provider did not start within %s:\n%s", startTimeout, p.out.tail(4000))
		}
	}
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
	var b bytes.Buffer
	if err := rgConfigTemplate.Execute(&b, cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "realmgate.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &deployment{cfg: cfg, configPath: path, op: op}
}

// startRealmgate runs `realmgate serve` on addr and waits until /readyz
// answers 200 (the Redis store is reachable and the keys are loaded).
func startRealmgate(t *testing.T, d *deployment, name, addr string) *proc {
	t.Helper()
	p := startProc(t, name, "", nil, env.binary, "serve", "--config", d.configPath, "--listen", addr, "--log-format", "text")
	waitReady(t, p, "http://"+addr+"/readyz")
	return p
}

func waitReady(t *testing.T, p *proc, url string) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if p.exited() {
			t.Fatalf("%s exited at start:\n%s", p.name, p.out.tail(4000))
		}
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s (last: %v):\n%s", p.name, url, startTimeout, err, p.out.tail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
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
