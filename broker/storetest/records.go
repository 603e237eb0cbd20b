package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/realmgate/realmgate/store"
)

// recordTests are the subtests of the store.RecordStore contract (the
// admin API's state: one record per tenant and client, and a change log);
// Run runs them on a store that implements it.
var recordTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"RecordsCommitAndFollow", testRecordsCommitAndFollow},
	{"RecordsConflictOnHead", testRecordsConflictOnHead},
	{"RecordsConflictOnRecordVersion", testRecordsConflictOnRecordVersion},
	{"RecordsConcurrentWritersOneWins", testRecordsConcurrentWritersOneWins},
	{"RecordsLogTrimmed", testRecordsLogTrimmed},
	{"RecordsScanPages", testRecordsScanPages},
	{"RecordsBadInput", testRecordsBadInput},
	{"RecordsWaitWakesAtCommit", testRecordsWaitWakesAtCommit}, // recordwait.go
}

// recordStore returns s as a store.RecordStore, skipping the test when the
// store does not implement the optional capability.
func recordStore(t *testing.T, s store.Store) store.RecordStore {
	t.Helper()
	rs, ok := s.(store.RecordStore)
	if !ok {
		t.Skip("the store does not implement store.RecordStore")
	}
	return rs
}

func commit(t *testing.T, rs store.RecordStore, set string, base int64, writes ...store.RecordWrite) int64 {
	t.Helper()
	v, err := rs.CommitRecords(t.Context(), set, base, writes, 100)
	if err != nil {
		t.Fatalf("CommitRecords(%q, %d, %d writes) = %v, want nil", set, base, len(writes), err)
	}
	return v
}

func rput(name, value string, expect int64) store.RecordWrite {
	return store.RecordWrite{Name: name, Value: []byte(value), Expect: expect}
}

// recordMap is records as "name=value@version", sorted, for comparisons.
func recordMap(recs []store.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		if r.Value == nil {
			out = append(out, r.Name+" deleted")
			continue
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Name, r.Value, r.Version))
	}
	slices.Sort(out)
	return out
}

func since(t *testing.T, rs store.RecordStore, set string, after int64) (int64, []string) {
	t.Helper()
	head, recs, err := rs.RecordsSince(t.Context(), set, after, 1000)
	if err != nil {
		t.Fatalf("RecordsSince(%q, %d) = %v, want nil", set, after, err)
	}
	return head, recordMap(recs)
}

func testRecordsCommitAndFollow(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	if head, err := rs.RecordsHead(t.Context(), set); err != nil || head != 0 {
		t.Fatalf("RecordsHead(new set) = %d, %v, want 0, nil", head, err)
	}
	if head, recs := since(t, rs, set, 0); head != 0 || len(recs) != 0 {
		t.Fatalf("RecordsSince(new set, 0) = %d, %v, want 0 and none", head, recs)
	}
	if v := commit(t, rs, set, 0, rput("t/a", "A1", 0), rput("t/b", "B1", 0)); v != 1 {
		t.Fatalf("first commit = version %d, want 1", v)
	}
	commit(t, rs, set, 1, rput("t/a", "A2", 1))
	commit(t, rs, set, 2, store.RecordWrite{Name: "t/b", Expect: 1}, rput("t/c", "C3", 0)) // delete b
	head, recs := since(t, rs, set, 0)
	if want := []string{"t/a=A2@2", "t/b deleted", "t/c=C3@3"}; head != 3 || !slices.Equal(recs, want) {
		t.Errorf("RecordsSince(0) = %d, %v, want 3, %v", head, recs, want)
	}
	head, recs = since(t, rs, set, 2)
	if want := []string{"t/b deleted", "t/c=C3@3"}; head != 3 || !slices.Equal(recs, want) {
		t.Errorf("RecordsSince(2) = %d, %v, want 3, %v", head, recs, want)
	}
	if head, recs = since(t, rs, set, 3); head != 3 || len(recs) != 0 {
		t.Errorf("RecordsSince(head) = %d, %v, want 3 and none", head, recs)
	}
	if head, err := rs.RecordsHead(t.Context(), set); err != nil || head != 3 {
		t.Errorf("RecordsHead = %d, %v, want 3, nil", head, err)
	}
	// Another set is another head.
	if head, recs := since(t, rs, uniq("other"), 0); head != 0 || len(recs) != 0 {
		t.Errorf("RecordsSince(other set) = %d, %v, want 0 and none", head, recs)
	}
}

func testRecordsConflictOnHead(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	commit(t, rs, set, 0, rput("t/a", "A1", store.AnyVersion))
	if _, err := rs.CommitRecords(t.Context(), set, 0, []store.RecordWrite{rput("t/b", "B", 0)}, 100); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CommitRecords(stale base 0) = %v, want ErrConflict", err)
	}
	commit(t, rs, set, store.AnyHead, rput("t/b", "B", 0))
	if _, recs := since(t, rs, set, 0); !slices.Equal(recs, []string{"t/a=A1@1", "t/b=B@2"}) {
		t.Errorf("after a refused commit: %v, want t/a and t/b only", recs)
	}
}

func testRecordsConflictOnRecordVersion(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	commit(t, rs, set, store.AnyHead, rput("t/a", "A1", 0))
	commit(t, rs, set, store.AnyHead, rput("t/a", "A2", 1))
	for _, w := range []store.RecordWrite{rput("t/a", "A3", 1), rput("t/a", "A3", 0), {Name: "t/a", Expect: 1}, rput("t/x", "X", 2)} {
		_, err := rs.CommitRecords(t.Context(), set, store.AnyHead, []store.RecordWrite{rput("t/z", "Z", 0), w}, 100)
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CommitRecords(%s expecting %d) = %v, want ErrConflict", w.Name, w.Expect, err)
		}
	}
	if head, recs := since(t, rs, set, 0); head != 2 || !slices.Equal(recs, []string{"t/a=A2@2"}) {
		t.Errorf("after refused commits: %d, %v, want 2, [t/a=A2@2] (nothing of them written)", head, recs)
	}
}

func testRecordsConcurrentWritersOneWins(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	commit(t, rs, set, 0, rput("t/a", "A0", 0))
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Each writer read version 1 of t/a and writes its own change.
			_, errs[i] = rs.CommitRecords(t.Context(), set, store.AnyHead, []store.RecordWrite{rput("t/a", fmt.Sprint("A", i), 1)}, 100)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("concurrent CommitRecords = %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d writers of one record version won, want exactly 1", won, n)
	}
	if head, _ := since(t, rs, set, 0); head != 2 {
		t.Errorf("head = %d after one winning commit, want 2", head)
	}
}

func testRecordsLogTrimmed(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	// Redis trims whole stream nodes (100 entries by default): 300
	// commits with a log of 1 leave at most a node or two.
	for i := range 300 {
		if _, err := rs.CommitRecords(t.Context(), set, store.AnyHead, []store.RecordWrite{rput(fmt.Sprint("t/", i%7), fmt.Sprint(i), store.AnyVersion)}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := rs.RecordsSince(t.Context(), set, 1, 1000); !errors.Is(err, store.ErrTrimmed) {
		t.Errorf("RecordsSince(1) after the log was trimmed = %v, want ErrTrimmed", err)
	}
	if _, _, err := rs.RecordsSince(t.Context(), set, 299, 1000); err != nil {
		t.Errorf("RecordsSince(299) = %v, want the newest commit", err)
	}
	// More commits than the caller wants one by one: trimmed for it too.
	if _, _, err := rs.RecordsSince(t.Context(), set, 297, 2); !errors.Is(err, store.ErrTrimmed) {
		t.Errorf("RecordsSince(297, max 2) = %v, want ErrTrimmed (3 commits since)", err)
	}
}

func testRecordsScanPages(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	const n = 250
	var want []string
	for i := 0; i < n; i += 50 {
		var ws []store.RecordWrite
		for j := i; j < i+50; j++ {
			ws = append(ws, rput(fmt.Sprintf("t/%03d", j), fmt.Sprint("v", j), 0))
		}
		v := commit(t, rs, set, store.AnyHead, ws...)
		for j := i; j < i+50; j++ {
			want = append(want, fmt.Sprintf("t/%03d=v%d@%d", j, j, v))
		}
	}
	slices.Sort(want)
	seen := map[string]store.Record{}
	cursor, pages := "", 0
	for {
		page, next, err := rs.ScanRecords(t.Context(), set, cursor, 40)
		if err != nil {
			t.Fatalf("ScanRecords(%q) = %v", cursor, err)
		}
		for _, r := range page {
			seen[r.Name] = r
		}
		pages++
		if next == "" {
			break
		}
		if pages > n {
			t.Fatal("ScanRecords does not end")
		}
		cursor = next
	}
	var got []store.Record
	for _, r := range seen {
		got = append(got, r)
	}
	if g := recordMap(got); !slices.Equal(g, want) {
		t.Errorf("ScanRecords found %d records, want %d (first %v)", len(g), len(want), g[:min(3, len(g))])
	}
	if page, next, err := rs.ScanRecords(t.Context(), uniq("empty"), "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("ScanRecords(empty set) = %d records, %q, %v, want none", len(page), next, err)
	}
}

func testRecordsBadInput(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	set := uniq("set")
	for name, writes := range map[string][]store.RecordWrite{
		"no writes":    nil,
		"empty name":   {rput("", "x", 0)},
		"space":        {rput("t/a b", "x", 0)},
		"newline":      {rput("t/a\nb", "x", 0)},
		"brace":        {rput("t/{a}", "x", 0)},
		"twice":        {rput("t/a", "x", 0), rput("t/a", "y", 0)},
		"bad expected": {rput("t/a", "x", -2)},
	} {
		if _, err := rs.CommitRecords(t.Context(), set, store.AnyHead, writes, 100); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("CommitRecords(%s) = %v, want an input error", name, err)
		}
	}
	if _, err := rs.CommitRecords(t.Context(), set, store.AnyHead, []store.RecordWrite{rput("t/a", "x", 0)}, 0); err == nil {
		t.Error("CommitRecords(log length 0) = nil, want an error")
	}
	if head, recs := since(t, rs, set, 0); head != 0 || len(recs) != 0 {
		t.Errorf("after refused input: head %d, %v, want nothing written", head, recs)
	}
	if _, err := rs.RecordsHead(t.Context(), "a{b}"); err == nil {
		t.Error("RecordsHead(set with braces) = nil, want an error")
	}
}
