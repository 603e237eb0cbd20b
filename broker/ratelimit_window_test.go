package broker_test

import (
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
)

// frozenClock is a clock that moves only when told: every instance of a
// test reads the same time, however long its requests take.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *frozenClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *frozenClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestRateLimit_S60_SlidingAcrossThreeInstancesOnRedis: a per-IP start
// limit of N admits at most N (the target is 1.1 N) in any 60 s across three
// brokers on one real Redis: a burst just before a minute edge and one just
// after it (where a fixed window starts over and admitted 2 N) share the
// limit, and three minutes of one start every 1.5 s, round robin over the
// instances, never get more than N into a minute, while still getting N
// in about every 66 s. The clock is injected and frozen between steps, so
// the result does not depend on how fast the machine is.
func TestRateLimit_S60_SlidingAcrossThreeInstancesOnRedis(t *testing.T) {
	const n = 12
	srv := redistest.Start(t)
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "rl3-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	// The next minute edge after now: near real time, so cookies and
	// records the brokers date by this clock behave as in production.
	edge := time.Now().Truncate(time.Minute).Add(time.Minute)
	clk := &frozenClock{t: edge.Add(-2 * time.Second)}
	shared := &recordingStore{Store: rs}
	opts := []envOpt{
		withLimits(broker.RateLimits{StartsPerIP: perMinute(n)}, nil),
		func(c *broker.Config) { c.Now = clk.now },
	}
	instances := []*env{newEnvOn(t, shared, opts...), newEnvOn(t, shared, opts...), newEnvOn(t, shared, opts...)}

	const ip = "203.0.113.77"
	var admitted []time.Time
	req := 0
	start := func(at time.Time) bool {
		t.Helper()
		clk.set(at)
		e := instances[req%len(instances)]
		req++
		resp, body := e.startFrom(ip, "alice@acme.test")
		switch resp.StatusCode {
		case http.StatusFound, http.StatusSeeOther:
			wantStarted(t, "start "+strconv.Itoa(req), resp)
			admitted = append(admitted, at)
			return true
		default:
			wantThrottled(t, "start "+strconv.Itoa(req), resp, body, 60)
			return false
		}
	}

	// A burst of N two seconds before the edge, and N more one second after it.
	for i := range n {
		if !start(edge.Add(-2 * time.Second)) {
			t.Fatalf("start %d of the first burst refused, want all %d admitted", i+1, n)
		}
	}
	got := 0
	for range n {
		if start(edge.Add(time.Second)) {
			got++
		}
	}
	if got != 0 {
		t.Errorf("%d of %d starts admitted 1 s after the minute edge, 3 s after a burst of %d; want 0", got, n, n)
	}

	// Three minutes of one start every 1.5 s.
	for at := edge.Add(2 * time.Second); at.Before(edge.Add(3 * time.Minute)); at = at.Add(1500 * time.Millisecond) {
		start(at)
	}

	sort.Slice(admitted, func(i, j int) bool { return admitted[i].Before(admitted[j]) })
	most, from := 0, time.Time{}
	for i := range admitted {
		// Admitted in [admitted[i], admitted[i]+60s).
		k := sort.Search(len(admitted), func(j int) bool { return !admitted[j].Before(admitted[i].Add(time.Minute)) }) - i
		if k > most {
			most, from = k, admitted[i]
		}
	}
	if most*10 > n*11 {
		t.Errorf("%d starts admitted in the 60 s from edge%+v across 3 instances, want at most 1.1 x %d", most, from.Sub(edge), n)
	}
	if most > n {
		t.Errorf("%d starts admitted in the 60 s from edge%+v, want at most %d (a sliding window is exact)", most, from.Sub(edge), n)
	}
	// Liveness: 3 minutes after the first burst left the window (at edge+1m),
	// about 2 windows' worth got in.
	if len(admitted) < 5*n/2 {
		t.Errorf("%d starts admitted in 3 min 2 s of a %d/min limit, want at least %d", len(admitted), n, 5*n/2)
	}
	t.Logf("%d requests, %d admitted, at most %d in any 60 s (limit %d)", req, len(admitted), most, n)
}
