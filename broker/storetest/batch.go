package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// Batches (store.Batcher) and one-step code redemption (store.CodeRedeemer).

var batchTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"BatchOps", testBatchOps},
	{"BatchStops", testBatchStops},
	{"BatchTakeConcurrent_S07", testBatchTakeConcurrent_S07},
	{"BatchBad", testBatchBad},
	{"RedeemCode_S07", testRedeemCode_S07},
	{"RedeemCodeRevoked", testRedeemCodeRevoked},
	{"RedeemCodeConcurrent_S07", testRedeemCodeConcurrent_S07},
}

func batcher(t *testing.T, s store.Store) store.Batcher {
	t.Helper()
	b, ok := s.(store.Batcher)
	if !ok {
		t.Skip("the store does not implement store.Batcher")
	}
	return b
}

// testBatchOps: every kind of op in one batch does what its method does.
func testBatchOps(t *testing.T, s store.Store) {
	b := batcher(t, s)
	ctx := t.Context()
	taken, gone, written, ix, win := uniq("taken"), uniq("gone"), uniq("written"), uniq("ix"), uniq("win")
	put(t, s, taken, []byte("v1"), longTTL)
	put(t, s, gone, []byte("v2"), longTTL)
	w := store.Window{Limit: 2, Length: time.Minute}
	res, err := b.Batch(ctx, []store.Op{
		{Kind: store.OpWindow, Key: win, Window: w, WindowOp: store.WindowTake, Now: edge},
		{Kind: store.OpTake, Key: taken},
		{Kind: store.OpDelete, Key: gone},
		{Kind: store.OpPut, Key: written, Value: []byte("v3"), TTL: longTTL},
		{Kind: store.OpIndex, Key: ix, Value: []byte("m1"), Max: 4, TTL: longTTL},
	})
	if err != nil || len(res) != 5 {
		t.Fatalf("Batch = %d results, %v; want 5, nil", len(res), err)
	}
	if res[0].Wait != 0 || !bytes.Equal(res[1].Value, []byte("v1")) {
		t.Fatalf("Batch results = %+v; want wait 0 and v1 taken", res)
	}
	wantMissing(t, s, taken)
	wantMissing(t, s, gone)
	wantValue(t, s, written, []byte("v3"))
	if is, ok := s.(store.IndexStore); ok {
		wantMembers(t, is, ix, "m1")
	}
	// The window counted the event: one more is admitted, then none.
	if wait := slide(t, s, win, w, store.WindowTake, edge); wait != 0 {
		t.Fatalf("second event: wait %s, want 0", wait)
	}
	if wait := slide(t, s, win, w, store.WindowPeek, edge); wait == 0 {
		t.Fatal("third event admitted: the batch's window op did not count")
	}
}

// testBatchStops: a take of a missing key and a window that refuses stop
// the batch; nothing after them is written.
func testBatchStops(t *testing.T, s store.Store) {
	b := batcher(t, s)
	ctx := t.Context()
	after := uniq("after")
	res, err := b.Batch(ctx, []store.Op{
		{Kind: store.OpTake, Key: uniq("missing")},
		{Kind: store.OpPut, Key: after, Value: []byte("x"), TTL: longTTL},
	})
	if err != nil || len(res) != 1 || res[0].Value != nil {
		t.Fatalf("Batch(take missing, put) = %+v, %v; want one empty result", res, err)
	}
	wantMissing(t, s, after)

	win := uniq("win")
	w := store.Window{Limit: 1, Length: time.Minute}
	slide(t, s, win, w, store.WindowTake, edge)
	first := uniq("first")
	res, err = b.Batch(ctx, []store.Op{
		{Kind: store.OpPut, Key: first, Value: []byte("x"), TTL: longTTL},
		{Kind: store.OpWindow, Key: win, Window: w, WindowOp: store.WindowTake, Now: edge.Add(time.Second)},
		{Kind: store.OpPut, Key: after, Value: []byte("x"), TTL: longTTL},
	})
	if err != nil || len(res) != 2 || res[1].Wait <= 0 {
		t.Fatalf("Batch(put, refused window, put) = %+v, %v; want 2 results, the second waiting", res, err)
	}
	if want := time.Minute - time.Second + 6*time.Second; res[1].Wait > want {
		t.Fatalf("refused window wait %s, want at most %s", res[1].Wait, want)
	}
	wantValue(t, s, first, []byte("x"))
	wantMissing(t, s, after)
}

// testBatchTakeConcurrent_S07: of concurrent batches taking one key, one
// gets it and runs on; the others stop at the take.
func testBatchTakeConcurrent_S07(t *testing.T, s store.Store) {
	b := batcher(t, s)
	ctx := t.Context()
	k := uniq("code")
	put(t, s, k, []byte("once"), longTTL)
	marks := make([]string, racers)
	for i := range marks {
		marks[i] = uniq("mark")
	}
	got := make([]bool, racers)
	errs := race(racers, func(i int) error {
		res, err := b.Batch(ctx, []store.Op{{Kind: store.OpTake, Key: k}, {Kind: store.OpPut, Key: marks[i], Value: []byte("1"), TTL: longTTL}})
		got[i] = err == nil && len(res) == 2 && string(res[0].Value) == "once"
		return err
	})
	winners := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if got[i] {
			winners++
			wantValue(t, s, marks[i], []byte("1"))
		} else {
			wantMissing(t, s, marks[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d batches took the key, want exactly 1", winners)
	}
}

// testBatchBad: malformed batches are refused before anything runs.
func testBatchBad(t *testing.T, s store.Store) {
	b := batcher(t, s)
	k := uniq("k")
	for _, tc := range []struct {
		name string
		ops  []store.Op
	}{
		{"empty key", []store.Op{{Kind: store.OpDelete}}},
		{"zero ttl", []store.Op{{Kind: store.OpPut, Key: k, Value: []byte("x")}}},
		{"unknown kind", []store.Op{{Kind: 99, Key: k}}},
		{"bad window", []store.Op{{Kind: store.OpWindow, Key: k, Window: store.Window{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := b.Batch(t.Context(), append([]store.Op{{Kind: store.OpPut, Key: k, Value: []byte("x"), TTL: longTTL}}, tc.ops...)); err == nil {
				t.Fatal("Batch = nil error, want a refusal")
			}
			wantMissing(t, s, k)
		})
	}
}

func redeemer(t *testing.T, s store.Store) store.CodeRedeemer {
	t.Helper()
	r, ok := s.(store.CodeRedeemer)
	if !ok {
		t.Skip("the store does not implement store.CodeRedeemer")
	}
	return r
}

// redemption returns the records of one code of session sid, all tagged
// with it as the broker tags them.
func redemption(sid string) store.Redemption {
	return store.Redemption{
		Code: "cd:{" + sid + "}:" + uniq("c"), Used: "cu:{" + sid + "}:" + uniq("u"), UsedTTL: longTTL,
		Marker: "sx:{" + sid + "}", Family: sid + store.FamilySeparator + uniq("f"), Token: uniq("t0"), FamilyTTL: longTTL,
	}
}

// testRedeemCode_S07: one redemption takes the code, marks it used and
// starts the family with the grant part; a second finds the marker.
func testRedeemCode_S07(t *testing.T, s store.Store) {
	cr := redeemer(t, s)
	ctx := t.Context()
	r := redemption(uniq("sid"))
	rec := store.JoinCodeRecord([]byte(`{"grant":1}`), []byte(`{"ru":"x"}`))
	put(t, s, r.Code, rec, longTTL)
	got, err := cr.RedeemCode(ctx, r)
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("RedeemCode = %q, %v; want the record", got, err)
	}
	g, rest, ok := store.SplitCodeRecord(got)
	if !ok || string(g) != `{"grant":1}` || string(rest) != `{"ru":"x"}` {
		t.Fatalf("SplitCodeRecord(%q) = %q, %q, %v", got, g, rest, ok)
	}
	wantMissing(t, s, r.Code)
	wantValue(t, s, r.Used, []byte(r.Family))
	wantGrant(t, s, r.Family, []byte(`{"grant":1}`))
	rotate(t, s, r.Family, r.Token, uniq("t1"), []byte(`{"grant":1}`))

	// A second redemption: not found, with the family the first started.
	again := r
	again.Family = store.SessionOfFamily(r.Family) + store.FamilySeparator + uniq("f2")
	used, err := cr.RedeemCode(ctx, again)
	if !errors.Is(err, store.ErrNotFound) || string(used) != r.Family {
		t.Fatalf("second RedeemCode = %q, %v; want %q, ErrNotFound", used, err, r.Family)
	}
	wantActive(t, s, again.Family, false)

	// Never issued: not found, nothing.
	if got, err := cr.RedeemCode(ctx, redemption(uniq("sid"))); !errors.Is(err, store.ErrNotFound) || got != nil {
		t.Fatalf("RedeemCode of no code = %q, %v; want nil, ErrNotFound", got, err)
	}

	// Not a code record: taken and refused, no family.
	bad := redemption(uniq("sid"))
	put(t, s, bad.Code, []byte("x:garbage"), longTTL)
	if _, err := cr.RedeemCode(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RedeemCode of a malformed record = %v, want ErrNotFound", err)
	}
	wantMissing(t, s, bad.Code)
	wantActive(t, s, bad.Family, false)

	// The family exists: nothing taken.
	dup := redemption(uniq("sid"))
	put(t, s, dup.Code, rec, longTTL)
	createFamily(t, s, dup.Family, uniq("t"), []byte("other"), longTTL)
	if _, err := cr.RedeemCode(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("RedeemCode into an existing family = %v, want ErrExists", err)
	}
	wantValue(t, s, dup.Code, rec)
	wantGrant(t, s, dup.Family, []byte("other"))
}

// testRedeemCodeRevoked: a code of a session logged out (its marker
// written) is taken and refused with ErrRevoked; no family, no use marker.
func testRedeemCodeRevoked(t *testing.T, s store.Store) {
	cr := redeemer(t, s)
	ctx := t.Context()
	r := redemption(uniq("sid"))
	put(t, s, r.Code, store.JoinCodeRecord([]byte("g"), nil), longTTL)
	put(t, s, r.Marker, []byte("1"), longTTL)
	if _, err := cr.RedeemCode(ctx, r); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("RedeemCode after logout = %v, want ErrRevoked", err)
	}
	wantMissing(t, s, r.Code)
	wantMissing(t, s, r.Used)
	wantActive(t, s, r.Family, false)
}

// testRedeemCodeConcurrent_S07: of concurrent redemptions of one code
// (each with its own family), exactly one starts a family.
func testRedeemCodeConcurrent_S07(t *testing.T, s store.Store) {
	cr := redeemer(t, s)
	ctx := t.Context()
	sid := uniq("sid")
	base := redemption(sid)
	put(t, s, base.Code, store.JoinCodeRecord([]byte("g"), []byte("b")), longTTL)
	rs := make([]store.Redemption, racers)
	for i := range rs {
		rs[i] = base
		rs[i].Family = sid + store.FamilySeparator + uniq("f")
	}
	errs := race(racers, func(i int) error {
		_, err := cr.RedeemCode(ctx, rs[i])
		return err
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			wantActive(t, s, rs[i].Family, true)
		case errors.Is(err, store.ErrNotFound):
			wantActive(t, s, rs[i].Family, false)
		default:
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d redemptions started a family, want exactly 1", winners)
	}
}
