package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/realmgate/realmgate/internal/redistest"
)

// Fixed identities of the benchmark: the downstream app registered at
// realmgate (and at the baseline), and realmgate's client at the upstream.
const (
	benchClientID    = "bench-app"
	benchM2MID       = "bench-m2m" // the tenant's API client of the client_credentials flow
	benchM2MScope    = "orders.read"
	benchM2MAudience = "orders-api"
	upstreamClient   = "realmgate"
	upstreamSecret   = "bench-upstream-secret-0123456789abcdef"
	upstreamRealm    = "acme"
	benchUserEmail   = "alice@acme.test"
	benchIdPID       = "acme-idp"
	benchTenant      = "acme"
	benchScope       = "openid profile email"
	readyTimeout     = 20 * time.Second
	requestTimeout   = 10 * time.Second
	childStopTimeout = 5 * time.Second
)

// benchRedirectURI is the downstream app's redirect URI. Nothing listens
// there: the load generator stops at the redirect and reads the code.
const benchRedirectURI = "http://127.0.0.1:9/cb"

// proc is a child process the benchmark started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	log  string
	done chan struct{}
	err  error
}

// env is everything running for one benchmark.
type env struct {
	dir          string
	keep         bool
	redis        *redistest.Server
	idp, rg      *proc
	base         *proc
	idpURL       string
	rgURL        string
	baseURL      string
	pprofURL     string
	opsURL       string
	clientSecret string
	transport    *http.Transport
	lastRate     map[string]float64 // realmgate's maximum rate per flow
	redisPid     int
	sink         *otlpSink // -tracing: where realmgate exports its spans
	secret       string    // keys.secret of every realmgate process
	// -ack-compare: a replica of the Redis server, and a second realmgate
	// with replica_ack off beside the first (the default, auto, which
	// waits for the replica).
	replica     *redistest.Server
	rgOff       *proc
	rgOffURL    string
	rgOffOpsURL string
	// conditional: -conditional (conditionalConfig).
	conditional bool
	// alg: -alg, the signing algorithm of realmgate and the baseline.
	alg string
	// -dex: Dex with memory storage and the same upstream (dex.go).
	dex    *proc
	dexURL string
}

// target is one server under test: realmgate, the baseline, or Dex.
type target struct {
	name string
	url  string // the issuer: endpoints are below it
	p    *proc
	// authPath is the authorization endpoint below url ("/authorize" when
	// empty), scope what the client asks for there (benchScope when empty).
	authPath, scope string
}

// targets are the servers flow runs against: realmgate and the baseline,
// realmgate with replica_ack off (-ack-compare), and Dex for the login flow
// (-dex: Dex has no SSO session to mint codes from, and the code exchange
// and refresh rows would compare signatures of different algorithms).
func (e *env) targets(flow string) []*target {
	ts := []*target{{name: "realmgate", url: e.rgURL, p: e.rg}, {name: "baseline", url: e.baseURL, p: e.base}}
	if e.rgOff != nil {
		ts = append(ts, &target{name: ackOffTarget, url: e.rgOffURL, p: e.rgOff})
	}
	if e.dex != nil && flow == "login" {
		ts = append(ts, &target{name: dexTarget, url: e.dexIssuer(), p: e.dex, authPath: "/auth", scope: dexScope})
	}
	return ts
}

// ackOffTarget names the realmgate of -ack-compare that runs with
// store.redis.replica_ack: off.
const ackOffTarget = "realmgate-ack-off"

// startEnv starts redis, the upstream, realmgate and the baseline. On error
// the returned env (if not nil) must still be closed.
func startEnv(ctx context.Context, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "realmgate-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, keep: o.keepDir, conditional: o.conditional, alg: o.alg, lastRate: map[string]float64{}, clientSecret: "bench-client-secret-" + rand.Text(),
		secret: rand.Text() + rand.Text()}
	e.transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	bin := o.realmgate
	if bin == "" {
		if bin, err = buildRealmgate(ctx, dir); err != nil {
			return e, err
		}
	}
	if e.redis, err = redistest.StartProcess(); err != nil {
		return e, err
	}
	if o.ackCompare {
		if e.replica, err = redistest.StartReplicaProcess(e.redis); err != nil {
			return e, err
		}
	}
	ports, err := freePorts(7)
	if err != nil {
		return e, err
	}
	e.rgURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	e.baseURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	e.idpURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	e.opsURL = fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	e.rgOffURL = fmt.Sprintf("http://127.0.0.1:%d", ports[4])
	e.rgOffOpsURL = fmt.Sprintf("http://127.0.0.1:%d", ports[5])
	e.dexURL = fmt.Sprintf("http://127.0.0.1:%d", ports[6])
	self, err := os.Executable()
	if err != nil {
		return e, err
	}
	callbacks := e.rgURL + "/callback/" + benchIdPID + "," + e.baseURL + "/callback," + e.rgOffURL + "/callback/" + benchIdPID +
		"," + e.dexIssuer() + "/callback"
	if e.idp, err = startProc(e.dir, "upstream", self, nil, "-role", "idp", "-addr", hostPort(e.idpURL), "-callbacks", callbacks); err != nil {
		return e, err
	}
	if err := e.waitReady(ctx, e.idp, e.idpURL+"/"+upstreamRealm+"/.well-known/openid-configuration"); err != nil {
		return e, err
	}
	cfg := filepath.Join(dir, "realmgate.yaml")
	if err := os.WriteFile(cfg, []byte(e.realmgateConfig(e.rgURL, e.opsURL, "")), 0o600); err != nil {
		return e, err
	}
	args := []string{"serve", "--config", cfg, "--log-format", "json"}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return e, err
		}
		// pprof on realmgate's own operations listener (serve --pprof).
		e.pprofURL = e.opsURL
		args = append(args, "--pprof")
	}
	rgEnv := o.serverEnv
	switch o.tracing {
	case tracingOTLP:
		if e.sink, err = startOTLPSink(); err != nil {
			return e, err
		}
		rgEnv = append(append([]string(nil), rgEnv...), e.sink.env()...)
	case tracingInProcess:
		rgEnv = append(append([]string(nil), rgEnv...), tracingDiscardEnv+"=discard")
	}
	if e.rg, err = startProc(e.dir, "realmgate", bin, rgEnv, args...); err != nil {
		return e, err
	}
	baseEnv := append([]string{clientSecretEnv + "=" + e.clientSecret, algEnv + "=" + e.alg}, o.serverEnv...)
	if o.conditional {
		baseEnv = append(baseEnv, conditionalEnv+"=1")
	}
	if o.profileDir != "" {
		baseEnv = append(baseEnv, pprofEnv+"=1")
	}
	if e.base, err = startProc(e.dir, "baseline", self, baseEnv, "-role", "baseline", "-addr", hostPort(e.baseURL),
		"-idp", e.idpURL+"/"+upstreamRealm, "-redis", e.redis.Addr()); err != nil {
		return e, err
	}
	if err := e.waitReady(ctx, e.rg, e.rgURL+"/readyz"); err != nil {
		return e, err
	}
	if o.ackCompare {
		cfgOff := filepath.Join(dir, "realmgate-ack-off.yaml")
		if err := os.WriteFile(cfgOff, []byte(e.realmgateConfig(e.rgOffURL, e.rgOffOpsURL, "off")), 0o600); err != nil {
			return e, err
		}
		if e.rgOff, err = startProc(e.dir, ackOffTarget, bin, rgEnv, "serve", "--config", cfgOff, "--log-format", "json"); err != nil {
			return e, err
		}
		if err := e.waitReady(ctx, e.rgOff, e.rgOffURL+"/readyz"); err != nil {
			return e, err
		}
	}
	if err := e.waitReady(ctx, e.base, e.baseURL+"/healthz"); err != nil {
		return e, err
	}
	if o.dex != "" {
		if err := e.startDex(ctx, o.dex); err != nil {
			return e, err
		}
	}
	return e, nil
}

// realmgateConfig is the configuration file realmgate runs with: the Redis
// store, ES256 (or -alg), one client, one tenant with the upstream and one rule. The
// sign-in rate limiter stays on, as in production, with limits no run
// reaches: all the load comes from one address. Its counters cost Redis
// round trips, which the baseline makes too.
func (e *env) realmgateConfig(rgURL, opsURL, replicaAck string) string {
	ack := ""
	if replicaAck != "" {
		ack = "\n    replica_ack: " + replicaAck
	}
	return fmt.Sprintf(`# generated by go run ./bench
issuer: %[1]s
listen: %[2]s
store:
  type: redis
  redis:
    addrs: [%[3]q]%[15]s
keys:
  algorithm: %[16]s
  rotate_every: 24h
  secret: %[4]q
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
ops:
  listen: %[14]s
rate_limits:
  starts_per_ip: 1000000000/1m
  starts_per_tenant: 1000000000/1m
  failures_per_ip: 1000000000/10m
  failures_per_tenant: 1000000000/10m
session:
  lifetime: 8h
tokens:
  access_token_lifetime: 10m
  id_token_lifetime: 10m
  refresh_token_lifetime: 720h
clients:
  - id: %[5]s
    secret: %[6]q
    redirect_uris: [%[7]q]
    allowed_tenants: ["*"]
    claims: [roles]
  - id: `+benchM2MID+`
    tenant: %[8]s
    secret: %[6]q
    grant_types: [client_credentials]
    scopes: [`+benchM2MScope+`]
    audiences: [`+benchM2MAudience+`]
tenants:
  - id: %[8]s
    name: ACME Corporation
    domains: ["acme.test"]
    providers:
      - id: %[9]s
        type: oidc
        issuer: %[10]s/%[11]s
        client_id: %[12]s
        client_secret: %[13]q
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            Finance-Admins: admin
            Finance-Readers: reader
      - name: machine role
        if: client == "`+benchM2MID+`"
        add:
          roles: '"sync"'
`, rgURL, hostPort(rgURL), e.redis.Addr(), e.secret, benchClientID, e.clientSecret,
		benchRedirectURI, benchTenant, benchIdPID, e.idpURL, upstreamRealm, upstreamClient, upstreamSecret, hostPort(opsURL), ack, e.alg) + e.conditionalConfig()
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the benchmark inside the realmgate module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

// buildRealmgate builds ./cmd/realmgate into dir.
func buildRealmgate(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "realmgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/realmgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/realmgate: %w\n%s", err, out)
	}
	return bin, nil
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startProc starts bin with args, its output in dir/<name>.log.
func startProc(dir, name, bin string, extraEnv []string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), extraEnv...)
	// Its own process group: a Ctrl+C in the terminal reaches the benchmark,
	// which stops its children in order; and killed with the benchmark if
	// that dies without cleaning up (Linux).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM and, after a grace period, SIGKILL, to this process only.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(childStopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady polls url until it answers 200 or p exits.
func (e *env) waitReady(ctx context.Context, p *proc, url string) error {
	c := &http.Client{Transport: e.transport, Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready: %v\n%s", p.name, p.err, p.tail())
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s after %v\n%s", p.name, url, readyTimeout, p.tail())
}

// close stops every process in reverse order and removes the work directory.
func (e *env) close() {
	e.dex.stop()
	e.base.stop()
	e.rgOff.stop()
	e.rg.stop()
	e.idp.stop()
	e.sink.close()
	if e.replica != nil {
		_ = e.replica.Stop()
	}
	if e.redis != nil && !e.redis.External() {
		if err := e.redis.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stop redis:", err)
		}
	}
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	if e.keep {
		fmt.Fprintln(os.Stderr, "bench: work directory kept:", e.dir)
		return
	}
	_ = os.RemoveAll(e.dir)
}
