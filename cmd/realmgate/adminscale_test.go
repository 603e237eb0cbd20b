package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/providers/github"
	"github.com/realmgate/realmgate/store"
)

// TestAdminScale measures the admin API's state at scale the way realmgate
// runs: each instance its own `realmgate serve` process (its own heap and
// GC pacing) on one real redis-server. A writes (its admin API takes the
// changes), B follows. It logs onboarding time in batches of 1,000, Redis
// memory per tenant, the bytes one change writes, the time from A's 201 to
// B's first sign-in routed to the new tenant's IdP (GET /authorize with a
// login_hint, seen from outside), B's RSS and CPU time from /proc, and B
// restarted: time from exec to /readyz 200 and its first write. It runs
// only when asked, one size per run (memory):
//
//	REALMGATE_ADMIN_SCALE=100000 go test ./cmd/realmgate -run TestAdminScale -v -count=1 -timeout 40m
//
// Each tenant has a GitHub IdP (nothing to fetch), every 50th an OIDC one
// whose discovery is fetched and checked at write; two verified domains
// and one rule. Timings are logged, not asserted (docs/performance.md
// records them); the test fails on a wrong result: a write refused, a
// tenant not routed, a restarted instance ready without its tenants.
func TestAdminScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REALMGATE_ADMIN_SCALE"))
	if n <= 0 {
		t.Skip("set REALMGATE_ADMIN_SCALE=<tenants> to run")
	}
	bin := os.Getenv(e2etest.EnvBinary)
	if bin == "" {
		root, err := e2etest.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(t.TempDir(), "realmgate")
		if err := e2etest.Build(root, "./cmd/realmgate", bin); err != nil {
			t.Fatal(err)
		}
	}
	rds := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()

	// The OIDC IdPs' upstream: A fetches its discovery at each write.
	lnIdP := listen(t)
	idpURL := "http://" + lnIdP.Addr().String()
	addrA, addrB := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	issuer := "http://" + addrB
	idp, err := devidp.New(devidp.Options{BaseURL: idpURL, DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{{Name: "newco", Clients: []devidp.Client{{ID: "realmgate", Secret: "newco-upstream-secret",
			RedirectURIs: []string{issuer + "/callback/newco-idp"}}},
			Users: []devidp.User{{Subject: "n-1", Email: "nina@newco.test", EmailVerified: true, Name: "Nina N"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lnIdP, idp.Handler())

	// One configuration per process: they differ by the admin listener.
	writeConfig := func(name, adminAddr string) (string, *config.Config) {
		yaml := fmt.Sprintf(`issuer: %s
rate_limits: # every request of the test comes from 127.0.0.1
  starts_per_ip: "off"
  starts_per_tenant: "off"
  failures_per_ip: "off"
ops:
  listen: "off"
store:
  type: redis
  redis:
    addrs: [%q]
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_loopback: true # the development IdP is on loopback
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
admin_api:
  listen: %s
  tokens:
    - name: ops
      token: %s
`, issuer, rds.Addr(), appSecret, appCallback, adminAddr, testOpToken)
		cfg, err := config.Parse(name+".yaml", []byte(yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, cfg
	}
	adminAddrA, adminAddrB := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	cfgPathA, cfg := writeConfig("a", adminAddrA)
	cfgPathB, _ := writeConfig("b", adminAddrB)
	// start runs `realmgate serve` and returns it with the time from exec
	// to /readyz 200 (polled every 10 ms).
	start := func(name, cfgPath, addr string) (*e2etest.Proc, time.Duration) {
		t0 := time.Now()
		p := e2etest.Start(t, name, exec.Command(bin, "serve", "--config", cfgPath, "--listen", addr, "--log-format", "text"),
			e2etest.OmitFromDump(func(line string) bool { return strings.Contains(line, "msg=request") }))
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			if p.Exited() {
				t.Fatalf("%s exited at start:\n%s", name, p.Out.Tail(4000))
			}
			if resp, err := hc.Get("http://" + addr + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return p, time.Since(t0)
				}
			}
			if time.Since(t0) > 5*time.Minute {
				t.Fatalf("%s not ready within 5 minutes:\n%s", name, p.Out.Tail(4000))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	procA, _ := start("A", cfgPathA, addrA)
	procB, _ := start("B", cfgPathB, addrB)
	adminA, adminB := "http://"+adminAddrA, "http://"+adminAddrB

	usedMemory := func() int64 {
		info, err := rc.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory in INFO")
		return 0
	}
	tenant := func(id string, oidc bool) admin.Tenant {
		p := admin.Provider{ID: id + "-idp", Type: "github", ClientID: "gh-" + id, ClientSecret: "gh-secret-" + id}
		if oidc {
			p = admin.Provider{ID: id + "-idp", Type: "oidc", Issuer: idpURL + "/newco", ClientID: "realmgate", ClientSecret: "newco-upstream-secret"}
		}
		return admin.Tenant{Tenant: config.Tenant{ID: id, Providers: []admin.Provider{p},
			Rules: []admin.Rule{{Name: "member", Add: map[string]string{"roles": `"member"`}}}},
			Domains: []admin.Domain{{Name: id + ".example", Verified: true}, {Name: "*." + id + ".example", Verified: true}}}
	}
	// wantAt is where /authorize sends a user of tenant id: a GitHub
	// tenant to GitHub with its own client id, an OIDC tenant to the devidp.
	wantAt := func(id string, oidc bool) redirect {
		if oidc {
			return redirect{prefix: idpURL + "/newco/", clientID: "realmgate"}
		}
		return redirect{prefix: github.DefaultAuthURL, clientID: "gh-" + id}
	}

	before := usedMemory()
	const batchSize = 1000
	start0, cpuA0, cpuB0 := time.Now(), procCPU(t, procA), procCPU(t, procB)
	var slowest time.Duration
	var res struct{ Version int64 }
	for i := 0; i < n; i += batchSize {
		var batch admin.BatchRequest
		for j := i; j < min(i+batchSize, n); j++ {
			batch.Tenants = append(batch.Tenants, tenant(fmt.Sprintf("corp%06d", j), j%50 == 0))
		}
		t0 := time.Now()
		if got := api(t, adminA, testOpToken, "POST", "/v1/batch", batch, &res); got != http.StatusOK {
			t.Fatalf("batch at %d = %d", i, got)
		}
		slowest = max(slowest, time.Since(t0))
	}
	onboard := time.Since(start0)
	onboardCPUA := procCPU(t, procA) - cpuA0
	last := fmt.Sprintf("corp%06d", n-1)
	within(t, 5*time.Minute, "B routes the last tenant onboarded", func() error {
		return routes(issuer, last, wantAt(last, (n-1)%50 == 0))
	})
	behind := time.Since(start0) - onboard
	onboardCPUB := procCPU(t, procB) - cpuB0
	perTenant := float64(usedMemory()-before) / float64(n)
	hashBytes, _ := rc.MemoryUsage(ctx, "rg:rs:{admin}:r").Result()
	logBytes, _ := rc.MemoryUsage(ctx, "rg:rs:{admin}:l").Result()
	rssB0 := procRSS(t, procB)

	// One more tenant, ten times: bytes written, time from A's 201 until
	// B's /authorize sends the new tenant's user to its IdP.
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.(closer).Close() })
	rs := st.(store.RecordStore)
	// Routed on B: from A's 201, and from the POST's start; A's answer.
	var live, fromPost, written1 []time.Duration
	var written []int
	cpuA0, cpuB0 = procCPU(t, procA), procCPU(t, procB)
	for k := range 10 {
		id := fmt.Sprintf("extra%02d", k)
		if err := routes(issuer, id, wantAt(id, false)); err != errNotRouted {
			t.Fatalf("%s before its creation: %v, want the discovery page", id, err)
		}
		tPost := time.Now()
		if got := api(t, adminA, testOpToken, "POST", "/v1/tenants", tenant(id, false), nil); got != http.StatusCreated {
			t.Fatalf("create %s = %d", id, got)
		}
		t0 := time.Now()
		written1 = append(written1, t0.Sub(tPost))
		for {
			err := routes(issuer, id, wantAt(id, false))
			if err == nil {
				break
			}
			if err != errNotRouted {
				t.Fatalf("sign-in for %s on B: %v", id, err)
			}
			if time.Since(t0) > time.Minute {
				t.Fatalf("%s not routed on B within a minute after A's 201", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
		live = append(live, time.Since(t0))
		fromPost = append(fromPost, time.Since(tPost))
		v, err := rs.RecordsHead(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		_, recs, err := rs.RecordsSince(ctx, "admin", v-1, 10)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, r := range recs {
			size += len(r.Name) + len(r.Value)
		}
		written = append(written, size)
	}
	changesCPUA, changesCPUB := procCPU(t, procA)-cpuA0, procCPU(t, procB)-cpuB0
	rssA, rssB, hwmB := procRSS(t, procA), procRSS(t, procB), procHWM(t, procB)
	slices.Sort(live)
	slices.Sort(written)
	slices.Sort(written1)
	slices.Sort(fromPost)

	// B restarted: time from exec until ready; ready means its tenants are
	// loaded, so it routes the first and the last at once. Then its first
	// write (a new OIDC IdP probed, none re-fetched), which A serves too.
	procB.Stop()
	procB, ready := start("B restarted", cfgPathB, addrB)
	for _, c := range []struct {
		id   string
		oidc bool
	}{{"corp000000", true}, {last, (n-1)%50 == 0}, {"extra09", false}} {
		if err := routes(issuer, c.id, wantAt(c.id, c.oidc)); err != nil {
			t.Fatalf("restarted B is ready but does not route %s: %v", c.id, err)
		}
	}
	t0 := time.Now()
	if got := api(t, adminB, testOpToken, "POST", "/v1/tenants", tenant("afterrestart", true), nil); got != http.StatusCreated {
		t.Fatalf("first write after restart = %d", got)
	}
	firstWrite := time.Since(t0)
	within(t, time.Minute, "A routes the tenant B wrote", func() error {
		return routes("http://"+addrA, "afterrestart", wantAt("afterrestart", true))
	})
	rssB2 := procRSS(t, procB)

	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	t.Logf("%d API tenants (%d batches of %d, every 50th IdP probed): onboarding %s (slowest batch %s), CPU A %s, B %s; B routed the last %s later; load average %.1f %.1f %.1f",
		n, (n+batchSize-1)/batchSize, batchSize, onboard.Round(time.Millisecond), slowest.Round(time.Millisecond),
		onboardCPUA.Round(time.Millisecond), onboardCPUB.Round(time.Millisecond), behind.Round(time.Millisecond), load[0], load[1], load[2])
	t.Logf("Redis used: %.0f B per tenant (records hash %d B, change log %d B in all)", perTenant, hashBytes, logBytes)
	t.Logf("one more tenant: writes %d-%d B; routed by B's /authorize after median %s, max %s (all: %v); CPU for the ten: A %s, B %s",
		written[0], written[len(written)-1], live[len(live)/2].Round(time.Millisecond), live[len(live)-1].Round(time.Millisecond),
		roundAll(live), changesCPUA.Round(time.Millisecond), changesCPUB.Round(time.Millisecond))
	t.Logf("A answered each of the ten POSTs (201) after median %s, max %s; routed on B counted from the POST's start: median %s, max %s",
		written1[len(written1)/2].Round(time.Millisecond), written1[len(written1)-1].Round(time.Millisecond),
		fromPost[len(fromPost)/2].Round(time.Millisecond), fromPost[len(fromPost)-1].Round(time.Millisecond))
	t.Logf("RSS: B %d MiB after onboarding, %d MiB after the changes (peak %d MiB); A %d MiB",
		rssB0>>20, rssB>>20, hwmB>>20, rssA>>20)
	t.Logf("B restarted: ready (tenants loaded) %s after exec; its first write (one new OIDC IdP probed, none re-fetched) %s; RSS %d MiB",
		ready.Round(time.Millisecond), firstWrite.Round(time.Millisecond), rssB2>>20)
}

// redirect is where a sign-in should be sent: a URL starting with prefix
// whose client_id is clientID.
type redirect struct{ prefix, clientID string }

// routes asks base's /authorize for a sign-in of a user at tenant id's
// domain and wants a redirect to want: nil when it does, errNotRouted when
// base shows its discovery page saying no tenant has the domain, another
// error for anything else.
func routes(base, id string, want redirect) error {
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	q := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {appCallback},
		"scope": {"openid"}, "state": {"st-0123456789"}, "nonce": {"n-0123456789"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		"login_hint": {"user@" + id + ".example"}}
	resp, err := hc.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	u, _ := url.Parse(loc)
	switch {
	case resp.StatusCode/100 == 3 && strings.HasPrefix(loc, want.prefix) && u != nil && u.Query().Get("client_id") == want.clientID:
		return nil
	case loc == "" && strings.Contains(string(body), "not set up for sign-in here"):
		return errNotRouted // broker/discovery.go: the discovery page, no tenant has the domain
	}
	return fmt.Errorf("/authorize for %s = %d, Location %q, want a redirect to %s with client_id %s: %.300s", id, resp.StatusCode, loc, want.prefix, want.clientID, body)
}

// procCPU is the CPU time (user and system) p has used so far, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 10 ms).
func procCPU(t *testing.T, p *e2etest.Proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// procRSS is p's resident set size now (VmRSS of /proc/<pid>/status).
func procRSS(t *testing.T, p *e2etest.Proc) int64 { return procStatus(t, p, "VmRSS:") }

// procHWM is p's largest resident set size so far (VmHWM).
func procHWM(t *testing.T, p *e2etest.Proc) int64 { return procStatus(t, p, "VmHWM:") }

// procStatus is a kB field of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, p *e2etest.Proc, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("%s: no %s in /proc/%d/status", p.Name, field, p.Cmd.Process.Pid)
	return 0
}

// roundAll rounds each duration to the millisecond, for the log.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
