package resilience

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/redistest"
)

// envSoak sets the number of logins of TestResilience_ThreeInstancesLogins
// (default 1,000): REALMGATE_SOAK=10000 is the documented soak.
const envSoak = "REALMGATE_SOAK"

// loginsWanted is REALMGATE_SOAK or def.
func loginsWanted(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv(envSoak)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number of logins", envSoak, v)
	}
	return n
}

// fullLogin is one user's sign-in through three processes and its first
// refresh and userinfo: authorize on process i, the upstream callback on
// i+1, the code exchange on i+2, the refresh back on i (a different one
// than the exchange's), and userinfo with the refreshed access token on
// i+1. Every step after the first runs on another process than the step
// before it, so only Redis carries the flow.
func (d *deployment) fullLogin(i int, tenant string) error {
	n := len(d.addrs)
	b := newBrowser()
	tok, err := d.login(b, "alice@"+tenant+".test", route{authorize: i % n, callback: (i + 1) % n, token: (i + 2) % n})
	if err != nil {
		return err
	}
	if err := checkClaims(tok.claims, tenant); err != nil {
		return err
	}
	fresh, err := d.refresh(b, i%n, tok.refresh)
	if err != nil {
		return err
	}
	if fresh.claims["sub"] != tok.claims["sub"] || fresh.refresh == tok.refresh {
		return &stepError{step: "refresh", status: 200, detail: fmt.Sprintf("sub %v -> %v, rotated %v", tok.claims["sub"], fresh.claims["sub"], fresh.refresh != tok.refresh)}
	}
	ui, err := d.userinfo(b, (i+1)%n, fresh.access)
	if err != nil {
		return err
	}
	if ui["sub"] != tok.claims["sub"] || ui["tid"] != tenant {
		return &stepError{step: "userinfo", status: 200, detail: fmt.Sprintf("%v, want sub %v tid %s", ui, tok.claims["sub"], tenant)}
	}
	return nil
}

// TestResilience_ThreeInstancesLogins runs 1,000 logins (REALMGATE_SOAK
// overrides) through three realmgate processes started together on one
// Redis, by 8 concurrent users, each login spread over the processes as
// fullLogin describes, alternating two tenants. Every login must succeed
// and no process may panic.
func TestResilience_ThreeInstancesLogins(t *testing.T) {
	n := loginsWanted(t, 1000)
	srv := redistest.Start(t)
	d := deploy(t, 3, storeSpec{addrs: []string{srv.Addr()}})

	const workers = 8
	jobs := make(chan int)
	res := newOutcomes()
	var mu sync.Mutex
	took := make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				err := d.fullLogin(i, []string{"acme", "globex"}[i%2])
				el := time.Since(t0)
				res.add(err)
				mu.Lock()
				took = append(took, el)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(took)
	t.Logf("%d logins (authorize, callback, token, refresh, userinfo over 3 processes) in %s: %.0f logins/s, p50 %s, p99 %s, max %s",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), pct(took, 50), pct(took, 99), took[len(took)-1])
	if ok := res.get("ok"); ok != n {
		t.Errorf("%d of %d logins succeeded, want all; outcomes:\n%s", ok, n, res)
	}
	d.checkHealthy(t)
}

// pct returns the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(time.Microsecond)
}
