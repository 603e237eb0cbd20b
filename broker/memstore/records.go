package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/realmgate/realmgate/store"
)

var _ store.RecordStore = (*Store)(nil)

// recordSets are the record sets, under their own lock so admin writes
// never wait for (nor hold up) the sign-in records' lock.
type recordSets struct {
	mu   sync.Mutex
	sets map[string]*recordSet
}

// recordSet is one record set: its records, head and change log.
type recordSet struct {
	head    int64
	records map[string]store.Record
	log     []logEntry    // oldest first
	sorted  []string      // record names in order, for ScanRecords; nil after a change
	wake    chan struct{} // closed at the next commit (WaitRecords); nil when none waits
}

// logEntry names the records one commit wrote.
type logEntry struct {
	version int64
	names   []string
}

func (r *recordSets) set(name string, create bool) *recordSet {
	if r.sets == nil {
		r.sets = map[string]*recordSet{}
	}
	s := r.sets[name]
	if s == nil && create {
		s = &recordSet{records: map[string]store.Record{}}
		r.sets[name] = s
	}
	return s
}

// CommitRecords implements store.RecordStore.
func (s *Store) CommitRecords(ctx context.Context, set string, base int64, writes []store.RecordWrite, logLen int) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckRecordWrites(set, writes); err != nil {
		return 0, err
	}
	if logLen < 1 {
		return 0, fmt.Errorf("memstore: log length must be positive, got %d", logLen)
	}
	r := &s.records
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.set(set, true)
	if base != store.AnyHead && base != rs.head {
		return 0, fmt.Errorf("%w: head is %d, not %d", store.ErrConflict, rs.head, base)
	}
	for _, w := range writes {
		if w.Expect != store.AnyVersion && rs.records[w.Name].Version != w.Expect {
			return 0, fmt.Errorf("%w: record %q is at version %d, not %d", store.ErrConflict, w.Name, rs.records[w.Name].Version, w.Expect)
		}
	}
	rs.head++
	if rs.wake != nil {
		close(rs.wake) // WaitRecords
		rs.wake = nil
	}
	names := make([]string, len(writes))
	for i, w := range writes {
		names[i] = w.Name
		if w.Value == nil {
			delete(rs.records, w.Name)
		} else {
			rs.records[w.Name] = store.Record{Name: w.Name, Value: clone(w.Value), Version: rs.head}
		}
	}
	rs.sorted = nil
	rs.log = append(rs.log, logEntry{version: rs.head, names: names})
	if len(rs.log) > logLen {
		rs.log = slices.Delete(rs.log, 0, len(rs.log)-logLen)
	}
	return rs.head, nil
}

// RecordsSince implements store.RecordStore.
func (s *Store) RecordsSince(ctx context.Context, set string, after int64, max int) (int64, []store.Record, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if err := store.ValidRecordName(set); err != nil {
		return 0, nil, err
	}
	r := &s.records
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.set(set, false)
	if rs == nil {
		return 0, nil, nil
	}
	if after >= rs.head {
		return rs.head, nil, nil
	}
	if rs.head-after > int64(max) || len(rs.log) == 0 || rs.log[0].version > after+1 {
		return rs.head, nil, fmt.Errorf("%w: %d commits since %d, log from %d", store.ErrTrimmed, rs.head-after, after, rs.logStart())
	}
	i, _ := slices.BinarySearchFunc(rs.log, after+1, func(e logEntry, v int64) int { return int(e.version - v) })
	seen := map[string]bool{}
	var out []store.Record
	for _, e := range rs.log[i:] {
		for _, n := range e.names {
			if seen[n] {
				continue
			}
			seen[n] = true
			rec, ok := rs.records[n]
			if !ok {
				rec = store.Record{Name: n}
			} else {
				rec.Value = clone(rec.Value)
			}
			out = append(out, rec)
		}
	}
	return rs.head, out, nil
}

func (rs *recordSet) logStart() int64 {
	if len(rs.log) == 0 {
		return rs.head + 1
	}
	return rs.log[0].version
}

// RecordsHead implements store.RecordStore.
func (s *Store) RecordsHead(ctx context.Context, set string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.ValidRecordName(set); err != nil {
		return 0, err
	}
	r := &s.records
	r.mu.Lock()
	defer r.mu.Unlock()
	if rs := r.set(set, false); rs != nil {
		return rs.head, nil
	}
	return 0, nil
}

// ScanRecords implements store.RecordStore: records in name order, the
// cursor being the last name returned.
func (s *Store) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := store.ValidRecordName(set); err != nil {
		return nil, "", err
	}
	count = max(count, 1)
	r := &s.records
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.set(set, false)
	if rs == nil {
		return nil, "", nil
	}
	if rs.sorted == nil {
		rs.sorted = make([]string, 0, len(rs.records))
		for n := range rs.records {
			rs.sorted = append(rs.sorted, n)
		}
		slices.Sort(rs.sorted)
	}
	after, _ := strings.CutPrefix(cursor, "n:")
	i := 0
	if cursor != "" {
		i, _ = slices.BinarySearch(rs.sorted, after)
		if i < len(rs.sorted) && rs.sorted[i] == after {
			i++
		}
	}
	end := min(i+count, len(rs.sorted))
	out := make([]store.Record, 0, end-i)
	for _, n := range rs.sorted[i:end] {
		rec := rs.records[n]
		rec.Value = clone(rec.Value)
		out = append(out, rec)
	}
	next := ""
	if end < len(rs.sorted) {
		next = "n:" + rs.sorted[end-1]
	}
	return out, next, nil
}
