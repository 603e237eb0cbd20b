package storetest

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestRaceStartsTogether checks the helper behind the concurrency tests:
// every goroutine runs, and none starts before all are launched.
func TestRaceStartsTogether(t *testing.T) {
	var started, maxInFlight, inFlight atomic.Int64
	errs := race(racers, func(int) error {
		started.Add(1)
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		return nil
	})
	if len(errs) != racers || started.Load() != racers {
		t.Fatalf("race ran %d goroutines with %d results, want %d", started.Load(), len(errs), racers)
	}
	if maxInFlight.Load() < 2 {
		t.Fatalf("at most %d goroutines ran at once, want them overlapping", maxInFlight.Load())
	}
}

func TestUniq(t *testing.T) {
	a, b := uniq("k"), uniq("k")
	if a == b {
		t.Fatalf("uniq(%q) returned %q twice, want distinct keys", "k", a)
	}
}
