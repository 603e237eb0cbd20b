package branding_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/clocktest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

// recordStores are the stores a sweep is tested on: the embedded memory
// store and a real redis-server.
func recordStores(t *testing.T) map[string]func(t *testing.T) store.RecordStore {
	return map[string]func(t *testing.T) store.RecordStore{
		"memory": func(*testing.T) store.RecordStore { return memstore.New() },
		"redis": func(t *testing.T) store.RecordStore {
			srv := redistest.Start(t)
			rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			return rs
		},
	}
}

func newClock() *clocktest.Clock { return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

const grace = time.Hour

// logos saves n distinct logos and returns their hashes.
func logos(t *testing.T, rs store.RecordStore, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		png, err := branding.Sanitize(encodePNG(t, picture(i+1, 3)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := branding.Save(t.Context(), rs, png)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// stored reports which of hashes are stored.
func stored(t *testing.T, rs store.RecordStore, hashes ...string) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, h := range hashes {
		want[h] = true
	}
	got, err := branding.Load(t.Context(), rs, want)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for h := range got {
		out[h] = true
	}
	return out
}

// sweepAll sweeps until the sweep wraps around the set.
func sweepAll(t *testing.T, sw *branding.Sweeper, named map[string]bool, mayDelete bool) branding.SweepResult {
	t.Helper()
	var total branding.SweepResult
	for range 100 {
		res, err := sw.Sweep(t.Context(), func(h string) bool { return named[h] }, mayDelete)
		if err != nil {
			t.Fatalf("Sweep() = %v", err)
		}
		total.Marked += res.Marked
		total.Deleted += res.Deleted
		total.Unmarked += res.Unmarked
		if res.Wrapped {
			return total
		}
	}
	t.Fatal("Sweep() never wrapped around the set")
	return total
}

// setSize counts the records of the logo set (logos and marks).
func setSize(t *testing.T, rs store.RecordStore) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		page, next, err := rs.ScanRecords(t.Context(), branding.RecordSet, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
		if next == "" {
			return n
		}
		cursor = next
	}
}

func TestSweep(t *testing.T) {
	for storeName, open := range recordStores(t) {
		t.Run(storeName, func(t *testing.T) {
			t.Run("unnamed logo deleted after the grace period, kept within it", func(t *testing.T) {
				rs, clk := open(t), newClock()
				h := logos(t, rs, 2)
				old, cur := h[0], h[1]
				sw := branding.NewSweeper(rs, branding.SweepOptions{Grace: grace, Now: clk.Now})
				named := map[string]bool{cur: true}
				if res := sweepAll(t, sw, named, true); res.Marked != 1 || res.Deleted != 0 {
					t.Fatalf("first sweep = %+v, want 1 marked, 0 deleted", res)
				}
				clk.Advance(grace - time.Second)
				sweepAll(t, sw, named, true)
				if got := stored(t, rs, old, cur); !got[old] || !got[cur] {
					t.Fatalf("within the grace period: stored %v, want both logos", got)
				}
				clk.Advance(time.Second)
				if res := sweepAll(t, sw, named, true); res.Deleted != 1 {
					t.Fatalf("sweep after the grace period = %+v, want 1 deleted", res)
				}
				if got := stored(t, rs, old, cur); got[old] || !got[cur] {
					t.Errorf("after the grace period: stored %v, want only the named logo", got)
				}
				if n := setSize(t, rs); n != 1 {
					t.Errorf("the set holds %d records, want 1 (the named logo, no mark left)", n)
				}
			})
			t.Run("saved again during the grace period: kept", func(t *testing.T) {
				rs, clk := open(t), newClock()
				h := logos(t, rs, 1)[0]
				sw := branding.NewSweeper(rs, branding.SweepOptions{Grace: grace, Now: clk.Now})
				none := map[string]bool{}
				sweepAll(t, sw, none, true) // marked
				clk.Advance(grace / 2)
				logos(t, rs, 1) // the same bytes uploaded again: a new version of the record
				clk.Advance(grace / 2)
				// A sweep whose view still names nothing (the change naming it
				// has not reached this instance) deletes nothing: the mark is
				// of the previous version.
				if res := sweepAll(t, sw, none, true); res.Deleted != 0 {
					t.Fatalf("sweep = %+v, want nothing deleted", res)
				}
				if !stored(t, rs, h)[h] {
					t.Fatal("the logo saved again was deleted")
				}
				// Still unnamed a whole grace period later: deleted.
				sweepAll(t, sw, none, true)
				clk.Advance(grace)
				sweepAll(t, sw, none, true)
				if stored(t, rs, h)[h] {
					t.Error("a logo unnamed for a grace period after its last save is still stored")
				}
			})
			t.Run("claimed during the grace period: kept", func(t *testing.T) {
				rs, clk := open(t), newClock()
				h := logos(t, rs, 1)[0]
				sw := branding.NewSweeper(rs, branding.SweepOptions{Grace: grace, Now: clk.Now})
				none := map[string]bool{}
				sweepAll(t, sw, none, true)
				clk.Advance(grace / 2)
				if err := branding.Claim(t.Context(), rs, []string{h, h, "not-a-hash"}); err != nil {
					t.Fatalf("Claim() = %v", err)
				}
				clk.Advance(grace / 2)
				sweepAll(t, sw, none, true) // a stale view: marks afresh, deletes nothing
				if !stored(t, rs, h)[h] {
					t.Fatal("a claimed logo was deleted")
				}
				sweepAll(t, sw, map[string]bool{h: true}, true) // the view caught up
				clk.Advance(2 * grace)
				sweepAll(t, sw, map[string]bool{h: true}, true)
				if !stored(t, rs, h)[h] {
					t.Error("a named logo was deleted")
				}
				if n := setSize(t, rs); n != 1 {
					t.Errorf("the set holds %d records, want 1 (the logo, its mark dropped)", n)
				}
			})
			t.Run("mayDelete unset deletes nothing", func(t *testing.T) {
				rs, clk := open(t), newClock()
				h := logos(t, rs, 1)[0]
				sw := branding.NewSweeper(rs, branding.SweepOptions{Grace: grace, Now: clk.Now})
				sweepAll(t, sw, nil, false)
				clk.Advance(2 * grace)
				if res := sweepAll(t, sw, nil, false); res.Deleted != 0 || !stored(t, rs, h)[h] {
					t.Errorf("sweep = %+v, want nothing deleted", res)
				}
			})
			t.Run("bounded work per sweep", func(t *testing.T) {
				rs, clk := open(t), newClock()
				logos(t, rs, 7)
				sw := branding.NewSweeper(rs, branding.SweepOptions{Grace: grace, Now: clk.Now, Page: 2, Pages: 1})
				sweeps, marked := 0, 0
				for sweeps < 20 {
					res, err := sw.Sweep(t.Context(), func(string) bool { return false }, true)
					if err != nil {
						t.Fatal(err)
					}
					sweeps++
					// A store returns "about" a page (Redis HSCAN's COUNT is a hint).
					if res.Marked > 4 {
						t.Fatalf("one sweep of one page of about 2 marked %d logos", res.Marked)
					}
					marked += res.Marked
					if res.Wrapped {
						break
					}
				}
				if marked != 7 || sweeps < 2 {
					t.Errorf("%d sweeps marked %d logos, want 7 marked in several sweeps", sweeps, marked)
				}
			})
		})
	}
}

// failingStore fails every call while fail is set.
type failingStore struct {
	store.RecordStore
	fail atomic.Bool
}

var errDown = errors.New("store down")

func (f *failingStore) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	if f.fail.Load() {
		return nil, "", errDown
	}
	return f.RecordStore.ScanRecords(ctx, set, cursor, count)
}

func (f *failingStore) CommitRecords(ctx context.Context, set string, base int64, writes []store.RecordWrite, logLen int) (int64, error) {
	if f.fail.Load() {
		return 0, errDown
	}
	return f.RecordStore.CommitRecords(ctx, set, base, writes, logLen)
}

func TestSweep_FailingStoreOnlyDelays(t *testing.T) {
	fs := &failingStore{RecordStore: memstore.New()}
	clk := newClock()
	h := logos(t, fs, 1)[0]
	sw := branding.NewSweeper(fs, branding.SweepOptions{Grace: grace, Now: clk.Now})
	sweepAll(t, sw, nil, true)
	clk.Advance(grace)
	fs.fail.Store(true)
	for range 3 {
		if _, err := sw.Sweep(t.Context(), func(string) bool { return false }, true); !errors.Is(err, errDown) {
			t.Fatalf("Sweep(store down) = %v, want the store's error", err)
		}
	}
	if err := branding.Claim(t.Context(), fs, []string{h}); !errors.Is(err, errDown) {
		t.Errorf("Claim(store down) = %v, want the store's error", err)
	}
	fs.fail.Store(false)
	if !stored(t, fs, h)[h] {
		t.Fatal("logo gone while the store was down")
	}
	if res := sweepAll(t, sw, nil, true); res.Deleted != 1 {
		t.Errorf("sweep after the store is back = %+v, want the logo deleted", res)
	}
}
