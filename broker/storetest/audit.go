package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/realmgate/realmgate/store"
)

// auditTrimSlack is how many events beyond maxLen a trimmed stream may
// keep: Redis trims whole stream nodes (stream-node-max-entries, 100 by
// default), so "about maxLen" is at most maxLen plus one node.
const auditTrimSlack = 128

// auditTests are the subtests of the store.AuditStore contract (SECURITY
// S61: the per-tenant audit stream); Run runs them on a store that
// implements it.
var auditTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AuditAppendRead", testAuditAppendRead},
	{"AuditPaging", testAuditPaging},
	{"AuditTenantsIndependent", testAuditTenantsIndependent},
	{"AuditTrim", testAuditTrim},
	{"AuditMaxLenPositive", testAuditMaxLenPositive},
	{"AuditEventIsCopied", testAuditEventIsCopied},
	{"AuditAppendConcurrent_S61", testAuditAppendConcurrent_S61},
	{"AuditCanceledContext", testAuditCanceledContext},
	{"AuditBatch", testAuditBatch},
}

// auditStore returns s as a store.AuditStore, skipping the test when the
// store does not implement the optional capability.
func auditStore(t *testing.T, s store.Store) store.AuditStore {
	t.Helper()
	as, ok := s.(store.AuditStore)
	if !ok {
		t.Skip("the store does not implement store.AuditStore")
	}
	return as
}

// event is the i-th test event: JSON, distinct for every i.
func event(i int) []byte { return fmt.Appendf(nil, `{"n":%d,"outcome":"success"}`, i) }

func appendAudit(t *testing.T, as store.AuditStore, tenant string, ev []byte, maxLen int64) {
	t.Helper()
	if err := as.AppendAudit(t.Context(), tenant, ev, maxLen); err != nil {
		t.Fatalf("AppendAudit(%q, %s, %d) = %v, want nil", tenant, ev, maxLen, err)
	}
}

func readAudit(t *testing.T, as store.AuditStore, tenant, after string, limit int) []store.AuditRecord {
	t.Helper()
	recs, err := as.ReadAudit(t.Context(), tenant, after, limit)
	if err != nil {
		t.Fatalf("ReadAudit(%q, %q, %d) error = %v, want nil", tenant, after, limit, err)
	}
	return recs
}

// wantEvents checks that recs hold exactly the events want, in order, under
// well-formed, strictly increasing ids.
func wantEvents(t *testing.T, what string, recs []store.AuditRecord, want ...[]byte) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("%s = %d events, want %d", what, len(recs), len(want))
	}
	var prevMS, prevSeq uint64
	for i, r := range recs {
		if !bytes.Equal(r.Event, want[i]) {
			t.Fatalf("%s event %d = %s, want %s", what, i, r.Event, want[i])
		}
		ms, seq, ok := store.ParseAuditID(r.ID)
		if !ok {
			t.Fatalf("%s event %d has id %q, want \"<unix ms>-<sequence>\"", what, i, r.ID)
		}
		if i > 0 && (ms < prevMS || ms == prevMS && seq <= prevSeq) {
			t.Fatalf("%s ids %q then %q, want strictly increasing", what, recs[i-1].ID, r.ID)
		}
		prevMS, prevSeq = ms, seq
	}
}

// events returns event(from) .. event(to-1).
func events(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, event(i))
	}
	return out
}

// testAuditAppendRead: events come back as appended, oldest first, under
// increasing ids even when appended within one millisecond.
func testAuditAppendRead(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	for i := range 20 {
		appendAudit(t, as, tenant, event(i), 1000)
	}
	wantEvents(t, "ReadAudit(all)", readAudit(t, as, tenant, "", 100), events(0, 20)...)
}

// testAuditPaging: after resumes behind an id, limit bounds a page, and a
// well-formed cursor older than every event reads from the oldest.
func testAuditPaging(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	for i := range 5 {
		appendAudit(t, as, tenant, event(i), 1000)
	}
	all := readAudit(t, as, tenant, "", 100)
	wantEvents(t, "ReadAudit(all)", all, events(0, 5)...)
	for _, tc := range []struct {
		name, after string
		limit       int
		want        [][]byte
	}{
		{"from the oldest, limited", "", 2, events(0, 2)},
		{"after the oldest", all[0].ID, 10, events(1, 5)},
		{"after the oldest, limited", all[0].ID, 1, events(1, 2)},
		{"after the 3rd newest", all[2].ID, 10, events(3, 5)},
		{"after the newest", all[4].ID, 10, nil},
		{"zero limit", "", 0, nil},
		{"negative limit", "", -1, nil},
		{"cursor older than every event", "1-0", 10, events(0, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readAudit(t, as, tenant, tc.after, tc.limit)
			wantEvents(t, fmt.Sprintf("ReadAudit(%q, %d)", tc.after, tc.limit), got, tc.want...)
		})
	}
	// Paging through the stream a page at a time reads every event once
	// (bounded: a store that repeats the cursor's event must not loop).
	var paged []store.AuditRecord
	for after, pages := "", 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("paging 5 events 2 at a time took more than 5 pages: %d events so far", len(paged))
		}
		page := readAudit(t, as, tenant, after, 2)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	wantEvents(t, "ReadAudit in pages of 2", paged, events(0, 5)...)
}

// testAuditTenantsIndependent: each tenant reads its own stream only; an
// unknown tenant has an empty one.
func testAuditTenantsIndependent(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	acme, globex := uniq("acme"), uniq("globex")
	appendAudit(t, as, acme, event(1), 1000)
	appendAudit(t, as, globex, event(2), 1000)
	appendAudit(t, as, acme, event(3), 1000)
	wantEvents(t, "ReadAudit(acme)", readAudit(t, as, acme, "", 100), event(1), event(3))
	wantEvents(t, "ReadAudit(globex)", readAudit(t, as, globex, "", 100), event(2))
	wantEvents(t, "ReadAudit(unknown tenant)", readAudit(t, as, uniq("initech"), "", 100))
}

// wantTrimmed checks a stream that was given n events with maxLen: it keeps
// the newest maxLen at least, at most auditTrimSlack more, and nothing but
// the newest, in order.
func wantTrimmed(t *testing.T, what string, recs []store.AuditRecord, n, maxLen int) {
	t.Helper()
	if len(recs) < maxLen || len(recs) > maxLen+auditTrimSlack {
		t.Fatalf("%s keeps %d of %d events with maxLen %d, want %d..%d", what, len(recs), n, maxLen, maxLen, maxLen+auditTrimSlack)
	}
	wantEvents(t, what, recs, events(n-len(recs), n)...)
}

// testAuditTrim: a stream is bounded by about maxLen however many events a
// tenant writes (S61: bounded retention); the oldest go first.
func testAuditTrim(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	const n, maxLen = 300, 10
	for i := range n {
		appendAudit(t, as, tenant, event(i), maxLen)
	}
	wantTrimmed(t, "ReadAudit(after 300 appends)", readAudit(t, as, tenant, "", 1000), n, maxLen)
}

// testAuditMaxLenPositive: a maxLen below 1 is refused and stores nothing.
func testAuditMaxLenPositive(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	for _, maxLen := range []int64{0, -1} {
		if err := as.AppendAudit(t.Context(), tenant, event(0), maxLen); err == nil {
			t.Errorf("AppendAudit with maxLen %d = nil, want an error", maxLen)
		}
	}
	wantEvents(t, "ReadAudit(after refused appends)", readAudit(t, as, tenant, "", 100))
}

// testAuditEventIsCopied: changing the appended slice or a read event
// afterwards changes nothing stored.
func testAuditEventIsCopied(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	ev := event(1)
	appendAudit(t, as, tenant, ev, 1000)
	copy(ev, "XXXXXX")
	got := readAudit(t, as, tenant, "", 10)
	if len(got) == 1 {
		copy(got[0].Event, "YYYYYY")
	}
	wantEvents(t, "ReadAudit(after changing the slices)", readAudit(t, as, tenant, "", 10), event(1))
}

// testAuditAppendConcurrent_S61: concurrent appends to one stream are all
// kept, each under its own id: no sign-in loses its stored event (S61).
func testAuditAppendConcurrent_S61(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	errs := race(racers, func(i int) error {
		return as.AppendAudit(t.Context(), tenant, event(i), 1000)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("AppendAudit #%d = %v, want nil", i, err)
		}
	}
	recs := readAudit(t, as, tenant, "", 1000)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r.Event)] = true
	}
	for i := range racers {
		if !seen[string(event(i))] {
			t.Errorf("event %s of %d concurrent appends is missing", event(i), racers)
		}
	}
	if len(recs) != racers {
		t.Fatalf("ReadAudit after %d concurrent appends = %d events, want %d", racers, len(recs), racers)
	}
	// Order among concurrent appends is the store's, but ids must be
	// unique and increasing.
	sorted := make([][]byte, len(recs))
	for i, r := range recs {
		sorted[i] = r.Event
	}
	wantEvents(t, "ReadAudit after concurrent appends", recs, sorted...)
}

// testAuditCanceledContext: a canceled caller's append stores nothing and
// both methods report the cancellation.
func testAuditCanceledContext(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	tenant := uniq("acme")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := as.AppendAudit(ctx, tenant, event(0), 1000); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendAudit with canceled context = %v, want context.Canceled", err)
	}
	if _, err := as.ReadAudit(ctx, tenant, "", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAudit with canceled context = %v, want context.Canceled", err)
	}
	wantEvents(t, "ReadAudit(after a canceled append)", readAudit(t, as, tenant, "", 10))
}

// testAuditBatch: a store.AuditBatcher appends a batch after what the
// stream holds, in the order given, and trims as AppendAudit does.
func testAuditBatch(t *testing.T, s store.Store) {
	as := auditStore(t, s)
	b, ok := s.(store.AuditBatcher)
	if !ok {
		t.Skip("the store does not implement store.AuditBatcher")
	}
	ctx := t.Context()
	tenant := uniq("acme")
	appendAudit(t, as, tenant, event(0), 1000)
	if err := b.AppendAuditBatch(ctx, tenant, events(1, 6), 1000); err != nil {
		t.Fatalf("AppendAuditBatch(5 events) = %v, want nil", err)
	}
	wantEvents(t, "ReadAudit(after a batch)", readAudit(t, as, tenant, "", 100), events(0, 6)...)
	for _, maxLen := range []int64{0, -1} {
		if err := b.AppendAuditBatch(ctx, tenant, events(6, 8), maxLen); err == nil {
			t.Errorf("AppendAuditBatch with maxLen %d = nil, want an error", maxLen)
		}
	}
	wantEvents(t, "ReadAudit(after refused batches)", readAudit(t, as, tenant, "", 100), events(0, 6)...)

	trimmed := uniq("trim")
	const n, maxLen = 300, 10
	for i := 0; i < n; i += 50 {
		if err := b.AppendAuditBatch(ctx, trimmed, events(i, i+50), maxLen); err != nil {
			t.Fatalf("AppendAuditBatch(%d..%d) = %v, want nil", i, i+50, err)
		}
	}
	wantTrimmed(t, "ReadAudit(after 300 batched appends)", readAudit(t, as, trimmed, "", 1000), n, maxLen)
}
