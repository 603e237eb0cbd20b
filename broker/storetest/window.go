package storetest

import (
	"errors"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// Sliding windows (store.Store.SlidingWindow, S60). Every test drives the
// window with its own clock, never by sleeping: windows of one minute whose
// records the store keeps for a minute of real time at least.

var windowTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WindowEdge_S60", testWindowEdge_S60},
	{"WindowOps", testWindowOps},
	{"WindowAnyStretch_S60", testWindowAnyStretch_S60},
	{"WindowConcurrent_S60", testWindowConcurrent_S60},
	{"WindowBad", testWindowBad},
}

// edge is a window edge: a multiple of a minute since the epoch, where a
// fixed one-minute window would start over.
var edge = time.Unix(1_700_000_040, 0)

var perMinute5 = store.Window{Limit: 5, Length: time.Minute}

func slide(t *testing.T, s store.Store, key string, w store.Window, op store.WindowOp, at time.Time) time.Duration {
	t.Helper()
	wait, err := s.SlidingWindow(t.Context(), key, w, op, at)
	if err != nil {
		t.Fatalf("SlidingWindow(%q, %v, %s) = %v", key, op, at.Sub(edge), err)
	}
	return wait
}

// testWindowEdge_S60: a burst just before a window edge and one just after
// it share one limit, and the refusal says when the next event gets in.
func testWindowEdge_S60(t *testing.T, s store.Store) {
	key := uniq("rl-edge")
	before := edge.Add(-time.Second)
	for i := range 5 {
		if wait := slide(t, s, key, perMinute5, store.WindowTake, before); wait != 0 {
			t.Fatalf("take %d of 5 at edge-1s: wait %s, want admitted", i+1, wait)
		}
	}
	for _, tc := range []struct {
		at   time.Time
		want time.Duration
	}{
		{before, 61 * time.Second}, // the bucket of edge-1s (edge-6s..edge) leaves the count at edge+60s
		{edge.Add(time.Second), 59 * time.Second},
		{edge.Add(59 * time.Second), time.Second},
	} {
		if wait := slide(t, s, key, perMinute5, store.WindowTake, tc.at); wait != tc.want {
			t.Errorf("take at edge%+v: wait %s, want %s", tc.at.Sub(edge), wait, tc.want)
		}
	}
	if wait := slide(t, s, key, perMinute5, store.WindowTake, edge.Add(60*time.Second)); wait != 0 {
		t.Errorf("take at edge+60s: wait %s, want admitted (the burst left the window)", wait)
	}
	if wait := slide(t, s, uniq("rl-other"), perMinute5, store.WindowPeek, before); wait != 0 {
		t.Errorf("peek at another key: wait %s, want admitted (windows are independent)", wait)
	}
}

// testWindowOps: peek counts nothing, take counts only what it admits, add
// counts everything.
func testWindowOps(t *testing.T, s store.Store) {
	w := store.Window{Limit: 2, Length: time.Minute}
	at := edge.Add(10 * time.Second)
	peek := uniq("rl-peek")
	for range 5 {
		if wait := slide(t, s, peek, w, store.WindowPeek, at); wait != 0 {
			t.Fatalf("peek: wait %s, want admitted (peeks count nothing)", wait)
		}
	}
	take := uniq("rl-take")
	for i, want := range []bool{true, true, false, false} {
		if got := slide(t, s, take, w, store.WindowTake, at) == 0; got != want {
			t.Fatalf("take %d: admitted %v, want %v", i+1, got, want)
		}
	}
	// The refused takes were not counted: the two admitted ones leave the
	// window together, and then a take gets in.
	if wait := slide(t, s, take, w, store.WindowTake, at.Add(66*time.Second)); wait != 0 {
		t.Errorf("take after the window: wait %s, want admitted (refused takes count nothing)", wait)
	}
	add := uniq("rl-add")
	for i, want := range []bool{true, true, false, false} {
		if got := slide(t, s, add, w, store.WindowAdd, at) == 0; got != want {
			t.Fatalf("add %d: admitted %v, want %v", i+1, got, want)
		}
	}
	if wait := slide(t, s, add, w, store.WindowPeek, at); wait == 0 {
		t.Errorf("peek after 4 adds over a limit of 2: admitted, want refused")
	}
}

// testWindowAnyStretch_S60: takes at random moments over ten minutes, many
// more than the limit allows: no stretch of a window's length holds more
// admitted events than the limit, and a refused event told to wait d gets
// in at d.
func testWindowAnyStretch_S60(t *testing.T, s store.Store) {
	const limit = 20
	w := store.Window{Limit: limit, Length: time.Minute}
	key := uniq("rl-stretch")
	rng := rand.New(rand.NewPCG(1, 2))
	at := edge.Add(-5 * time.Minute)
	var admitted []time.Time
	for at.Before(edge.Add(5 * time.Minute)) {
		at = at.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
		wait := slide(t, s, key, w, store.WindowTake, at)
		if wait == 0 {
			admitted = append(admitted, at)
			continue
		}
		if wait < 0 || wait > w.Length+w.Length/store.WindowBuckets {
			t.Fatalf("take at edge%+v: wait %s, want 0..%s", at.Sub(edge), wait, w.Length+w.Length/store.WindowBuckets)
		}
		if rng.IntN(4) == 0 { // sometimes come back exactly when told
			at = at.Add(wait)
			if wait := slide(t, s, key, w, store.WindowTake, at); wait != 0 {
				t.Fatalf("take at edge%+v, when the refusal said: wait %s, want admitted", at.Sub(edge), wait)
			}
			admitted = append(admitted, at)
		}
	}
	if len(admitted) < 8*limit {
		t.Errorf("%d takes admitted in ten minutes of a %d/min limit, want at least %d", len(admitted), limit, 8*limit)
	}
	sort.Slice(admitted, func(i, j int) bool { return admitted[i].Before(admitted[j]) })
	for i := range admitted {
		// Events in [admitted[i], admitted[i]+Length).
		n := sort.Search(len(admitted), func(j int) bool { return !admitted[j].Before(admitted[i].Add(w.Length)) }) - i
		if n > limit {
			t.Fatalf("%d events admitted in the minute from edge%+v, want at most %d", n, admitted[i].Sub(edge), limit)
		}
	}
}

// testWindowConcurrent_S60: takes racing at one moment admit exactly the
// limit.
func testWindowConcurrent_S60(t *testing.T, s store.Store) {
	const limit = 20
	w := store.Window{Limit: limit, Length: time.Minute}
	key := uniq("rl-race")
	var got atomic.Int64
	errs := race(racers, func(int) error {
		wait, err := s.SlidingWindow(t.Context(), key, w, store.WindowTake, edge)
		if err == nil && wait == 0 {
			got.Add(1)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("take #%d = %v", i, err)
		}
	}
	if got.Load() != limit {
		t.Errorf("%d of %d racing takes admitted, want exactly %d", got.Load(), racers, limit)
	}
}

// testWindowBad: a window that cannot be counted is an error, not a panic
// or a silent pass.
func testWindowBad(t *testing.T, s store.Store) {
	for _, w := range []store.Window{{Limit: 0, Length: time.Minute}, {Limit: 5, Length: 0}, {Limit: 5, Length: time.Millisecond}} {
		if _, err := s.SlidingWindow(t.Context(), uniq("rl-bad"), w, store.WindowTake, edge); !errors.Is(err, store.ErrBadWindow) {
			t.Errorf("SlidingWindow(%+v) = %v, want ErrBadWindow", w, err)
		}
	}
	if _, err := s.SlidingWindow(t.Context(), uniq("rl-bad"), perMinute5, store.WindowOp(7), edge); err == nil {
		t.Errorf("SlidingWindow(op 7) = nil error, want one")
	}
}
