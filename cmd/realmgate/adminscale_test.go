package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/store"
)

// TestAdminScale measures the admin API's state at scale on two instances
// (A writes, B follows) sharing one real Redis: onboarding time in batches
// of 1,000, Redis memory per tenant, bytes one change writes, time until
// one more tenant is live on B, and a restarted instance's time to ready
// and its first write. It runs only when asked, one size per run (memory):
//
//	REALMGATE_ADMIN_SCALE=100000 go test ./cmd/realmgate -run TestAdminScale -v -timeout 30m
//
// REALMGATE_ADMIN_SCALE_PROFILE=<file> writes a CPU profile of onboarding,
// REALMGATE_ADMIN_SCALE_PROFILE_CHANGES=<file> one of the ten changes and
// REALMGATE_ADMIN_SCALE_HEAP=<file> a heap profile at the end. CPU times
// are the test process's (both instances; Redis is another process).
//
// Each tenant has a GitHub IdP (nothing to fetch), every 50th an OIDC one
// whose discovery is fetched and checked at write; two verified domains
// and one rule. Figures are logged, not asserted beyond each write working
// (docs/performance.md records them).
func TestAdminScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REALMGATE_ADMIN_SCALE"))
	if n <= 0 {
		t.Skip("set REALMGATE_ADMIN_SCALE=<tenants> to run")
	}
	c := newCluster(t, "redis")
	rc := redis.NewClient(&redis.Options{Addr: c.redis.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
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
			p = admin.Provider{ID: id + "-idp", Type: "oidc", Issuer: c.devidp + "/newco", ClientID: "realmgate", ClientSecret: "newco-upstream-secret"}
		}
		return admin.Tenant{Tenant: config.Tenant{ID: id, Providers: []admin.Provider{p},
			Rules: []admin.Rule{{Name: "member", Add: map[string]string{"roles": `"member"`}}}},
			Domains: []admin.Domain{{Name: id + ".example", Verified: true}, {Name: "*." + id + ".example", Verified: true}}}
	}
	// CPU profiles of onboarding and of the ten changes (both instances).
	stopProfile := startProfile(t, os.Getenv("REALMGATE_ADMIN_SCALE_PROFILE"))
	before := usedMemory()
	const batchSize = 1000
	start, cpu0 := time.Now(), processCPU()
	var slowest time.Duration
	var res struct{ Version int64 }
	for i := 0; i < n; i += batchSize {
		var batch admin.BatchRequest
		for j := i; j < min(i+batchSize, n); j++ {
			batch.Tenants = append(batch.Tenants, tenant(fmt.Sprintf("corp%06d", j), j%50 == 0))
		}
		t0 := time.Now()
		if got := api(t, c.adminA, testOpToken, "POST", "/v1/batch", batch, &res); got != http.StatusOK {
			t.Fatalf("batch at %d = %d", i, got)
		}
		slowest = max(slowest, time.Since(t0))
	}
	onboard, onboardCPU := time.Since(start), processCPU()-cpu0
	stopProfile()
	within(t, 5*time.Minute, "B applies the last batch", func() error {
		if v := c.b.Service.Version(); v < res.Version {
			return fmt.Errorf("B at %d, want %d", v, res.Version)
		}
		return nil
	})
	behind := time.Since(start) - onboard
	perTenant := float64(usedMemory()-before) / float64(n)
	hashBytes, _ := rc.MemoryUsage(ctx, "rg:rs:{admin}:r").Result()
	logBytes, _ := rc.MemoryUsage(ctx, "rg:rs:{admin}:l").Result()

	// One more tenant, ten times: bytes written, time until B serves it.
	rs := c.a.Service
	var live []time.Duration
	var written []int
	st, _ := openStoreRecords(t, c)
	stopProfile = startProfile(t, os.Getenv("REALMGATE_ADMIN_SCALE_PROFILE_CHANGES"))
	cpu0 = processCPU()
	for k := range 10 {
		id := fmt.Sprintf("extra%02d", k)
		t0 := time.Now()
		if got := api(t, c.adminA, testOpToken, "POST", "/v1/tenants", tenant(id, false), nil); got != http.StatusCreated {
			t.Fatalf("create %s = %d", id, got)
		}
		for {
			_, comp := c.b.Service.Applied()
			if r, err := comp.Directory.Resolver.Resolve(realm.Request{LoginHint: "u@" + id + ".example"}); err == nil && r.Tenant == id {
				break
			}
			if time.Since(t0) > time.Minute {
				t.Fatalf("%s not live on B within a minute", id)
			}
			time.Sleep(2 * time.Millisecond)
		}
		live = append(live, time.Since(t0))
		v := rs.Version()
		_, recs, err := st.RecordsSince(ctx, "admin", v-1, 10)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, r := range recs {
			size += len(r.Name) + len(r.Value)
		}
		written = append(written, size)
	}
	changesCPU := processCPU() - cpu0
	stopProfile()
	slices.Sort(live)
	slices.Sort(written)

	// A restarted instance: time until ready, then its first write.
	runtime.GC()
	t0 := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	logger := c.logger
	if os.Getenv("REALMGATE_ADMIN_SCALE_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	_, restarted := startWithAdmin(t, rctx, cancel, c.cfg, mustOpenStore(t, c), logger)
	ready := time.Since(t0)
	if !restarted.Service.Ready() {
		t.Fatal("restarted instance is not ready after its start")
	}
	t0 = time.Now()
	if got := api(t, "http://"+restarted.Addr, testOpToken, "POST", "/v1/tenants", tenant("afterrestart", true), nil); got != http.StatusCreated {
		t.Fatalf("first write after restart = %d", got)
	}
	firstWrite := time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if f := os.Getenv("REALMGATE_ADMIN_SCALE_HEAP"); f != "" {
		// What the three instances hold (go tool pprof -sample_index=inuse_space).
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(out); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	t.Logf("%d API tenants (%d batches of %d, every 50th IdP probed): onboarding %s, %s of CPU (slowest batch %s), B caught up %s later; load average %.1f %.1f %.1f",
		n, (n+batchSize-1)/batchSize, batchSize, onboard.Round(time.Millisecond), onboardCPU.Round(time.Millisecond), slowest.Round(time.Millisecond), behind.Round(time.Millisecond), load[0], load[1], load[2])
	t.Logf("Redis used: %.0f B per tenant (records hash %d B, change log %d B in all)", perTenant, hashBytes, logBytes)
	t.Logf("one more tenant: writes %d-%d B; live on B after median %s, max %s (%s of CPU for the ten in the test process: both instances, not Redis)",
		written[0], written[len(written)-1], live[len(live)/2].Round(time.Millisecond), live[len(live)-1].Round(time.Millisecond), changesCPU.Round(time.Millisecond))
	t.Logf("restarted instance: ready after %s; its first write (one new OIDC IdP probed, none re-fetched) %s; Go heap of the test process (3 instances) %d MiB",
		ready.Round(time.Millisecond), firstWrite.Round(time.Millisecond), ms.HeapInuse>>20)
}

// startProfile starts a CPU profile into file (none when file is empty)
// and returns what stops it.
func startProfile(t *testing.T, file string) func() {
	if file == "" {
		return func() {}
	}
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }
}

// processCPU is the CPU time (user and system) the test process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mustOpenStore opens another client on the cluster's Redis.
func mustOpenStore(t *testing.T, c *cluster) interface {
	store.Store
	store.RecordStore
} {
	t.Helper()
	st, err := openStore(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.(closer).Close() })
	return st.(interface {
		store.Store
		store.RecordStore
	})
}

// openStoreRecords is the cluster store's record sets.
func openStoreRecords(t *testing.T, c *cluster) (store.RecordStore, error) {
	return mustOpenStore(t, c), nil
}
