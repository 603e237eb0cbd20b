// Package storetest is the conformance suite every store.Store must pass,
// with its optional capabilities (store.IndexStore, store.SessionRotator,
// store.AuditStore, store.AuditBatcher) when the store implements them.
// A store package calls Run from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
//	}
//
// Subtests that prove a requirement of SECURITY.md carry its id in their name
// (TakeConcurrent_S07, RotateConcurrent_S09, ...).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// Timings of the expiry tests: short enough to keep the suite fast, with a
// margin wide enough for a loaded two-core machine.
const (
	shortTTL = 300 * time.Millisecond
	longTTL  = time.Minute
	past     = shortTTL + 200*time.Millisecond // sleep until shortTTL is surely over
	racers   = 50                              // goroutines in each concurrency test
)

// Run runs every conformance test as a parallel subtest of t. Each subtest
// calls newStore for a fresh, empty store (it may share a server with the
// others, so newStore must be safe for concurrent use; keys are random so
// subtests cannot collide).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PutGet", testPutGet},
		{"PutOverwrite", testPutOverwrite},
		{"ValueIsCopied", testValueIsCopied},
		{"GetMissing", testGetMissing},
		{"CreateExists", testCreateExists},
		{"Expiry", testExpiry},
		{"TakeOnce", testTakeOnce},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"Touch", testTouch},
		{"RotatedBounded", testRotatedBounded},
		{"Incr", testIncr},
		{"IncrWindowExpires", testIncrWindowExpires},
		{"NonPositiveTTL", testNonPositiveTTL},
		{"CanceledContext", testCanceledContext},
		{"Ping", testPing},
		{"FamilyRotateChain", testFamilyRotateChain},
		{"FamilyReuse_S09", testFamilyReuse_S09},
		{"FamilyReuseFirstToken_S09", testFamilyReuseFirstToken_S09},
		{"FamilyUnknown", testFamilyUnknown},
		{"FamilyRevoke", testFamilyRevoke},
		{"FamilyExpiry", testFamilyExpiry},
		{"FamiliesIndependent", testFamiliesIndependent},
		{"TakeConcurrent_S07", testTakeConcurrent_S07},
		{"RotateConcurrent_S09", testRotateConcurrent_S09},
		{"CreateConcurrent", testCreateConcurrent},
		{"IncrConcurrent", testIncrConcurrent},
		{"IndexMembers", testIndexMembers},
		{"IndexBounded", testIndexBounded},
		{"IndexExpiry", testIndexExpiry},
		{"IndexBatch", testIndexBatch},
		{"RotateUnlessRevoked", testRotateUnlessRevoked},
	}
	tests = append(tests, auditTests...)
	tests = append(tests, dirTests...)
	tests = append(tests, recordTests...)
	tests = append(tests, windowTests...)
	tests = append(tests, batchTests...)
	tests = append(tests, historyTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// uniq returns name with a random suffix, so subtests sharing a server never
// touch each other's keys.
func uniq(name string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return name + ":" + hex.EncodeToString(b)
}

func put(t *testing.T, s store.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Put(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Put(%q) = %v, want nil", key, err)
	}
}

func wantValue(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q) error = %v, want value %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func createFamily(t *testing.T, s store.Store, fam, token string, grant []byte, ttl time.Duration) {
	t.Helper()
	if err := s.CreateFamily(t.Context(), fam, token, grant, ttl); err != nil {
		t.Fatalf("CreateFamily(%q, %q) = %v, want nil", fam, token, err)
	}
}

func rotate(t *testing.T, s store.Store, fam, old, next string, grant []byte) {
	t.Helper()
	got, err := s.Rotate(t.Context(), fam, old, next)
	if err != nil {
		t.Fatalf("Rotate(%q, %q, %q) error = %v, want nil", fam, old, next, err)
	}
	if !bytes.Equal(got, grant) {
		t.Fatalf("Rotate(%q, %q, %q) = %q, want grant %q", fam, old, next, got, grant)
	}
}

func wantRotateErr(t *testing.T, s store.Store, fam, old, next string, want error) {
	t.Helper()
	got, err := s.Rotate(t.Context(), fam, old, next)
	if !errors.Is(err, want) {
		t.Fatalf("Rotate(%q, %q, %q) = %q, %v; want %v", fam, old, next, got, err, want)
	}
}

// wantActive checks FamilyGrant: a grant for an active family, ErrNotFound
// for a revoked, expired or unknown one.
func wantActive(t *testing.T, s store.Store, fam string, want bool) {
	t.Helper()
	got, err := s.FamilyGrant(t.Context(), fam)
	switch {
	case want && err != nil:
		t.Fatalf("FamilyGrant(%q) error = %v, want the grant", fam, err)
	case want && len(got) == 0:
		t.Fatalf("FamilyGrant(%q) = empty grant", fam)
	case !want && !errors.Is(err, store.ErrNotFound):
		t.Fatalf("FamilyGrant(%q) = %q, %v; want ErrNotFound", fam, got, err)
	}
}

// wantGrant checks that FamilyGrant returns exactly grant.
func wantGrant(t *testing.T, s store.Store, fam string, grant []byte) {
	t.Helper()
	got, err := s.FamilyGrant(t.Context(), fam)
	if err != nil || !bytes.Equal(got, grant) {
		t.Fatalf("FamilyGrant(%q) = %q, %v; want %q", fam, got, err, grant)
	}
}

// binary is a value that is not text: NUL, high bytes, CR LF and invalid UTF-8.
var binary = []byte{0x00, 0xff, 0xfe, '\r', '\n', 0x80, 0x00, 'x', 0xc3, 0x28}

func testPutGet(t *testing.T, s store.Store) {
	large := bytes.Repeat([]byte{0x00, 0x01, 0xfe}, 64<<10)
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"text", []byte(`{"sub":"alice"}`)},
		{"binary", binary},
		{"empty", []byte{}},
		{"large", large},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := uniq("putget")
			put(t, s, key, tc.value, longTTL)
			wantValue(t, s, key, tc.value)
		})
	}
}

func testPutOverwrite(t *testing.T, s store.Store) {
	key := uniq("overwrite")
	put(t, s, key, []byte("one"), longTTL)
	put(t, s, key, []byte("two"), longTTL)
	wantValue(t, s, key, []byte("two"))
}

// testValueIsCopied: a caller changing its slices afterwards changes nothing stored.
func testValueIsCopied(t *testing.T, s store.Store) {
	key := uniq("copy")
	v := []byte("original")
	put(t, s, key, v, longTTL)
	copy(v, "XXXXXXXX")
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q) = %v", key, err)
	}
	copy(got, "YYYYYYYY")
	wantValue(t, s, key, []byte("original"))
}

func testGetMissing(t *testing.T, s store.Store) {
	key := uniq("missing")
	wantMissing(t, s, key)
	if got, err := s.Take(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
	if err := s.Touch(t.Context(), key, longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Touch(%q) = %v, want ErrNotFound", key, err)
	}
}

func testCreateExists(t *testing.T, s store.Store) {
	key := uniq("create")
	if err := s.Create(t.Context(), key, []byte("first"), longTTL); err != nil {
		t.Fatalf("Create(%q) = %v, want nil", key, err)
	}
	if err := s.Create(t.Context(), key, []byte("second"), longTTL); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create(%q) = %v, want ErrExists", key, err)
	}
	wantValue(t, s, key, []byte("first"))

	// Put's key is equally taken.
	other := uniq("create-after-put")
	put(t, s, other, []byte("p"), longTTL)
	if err := s.Create(t.Context(), other, []byte("c"), longTTL); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create(%q) after Put = %v, want ErrExists", other, err)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	putKey, createKey, takeKey := uniq("exp-put"), uniq("exp-create"), uniq("exp-take")
	put(t, s, putKey, []byte("v"), shortTTL)
	if err := s.Create(ctx, createKey, []byte("v"), shortTTL); err != nil {
		t.Fatalf("Create(%q) = %v", createKey, err)
	}
	put(t, s, takeKey, []byte("v"), shortTTL)
	wantValue(t, s, putKey, []byte("v"))
	wantValue(t, s, createKey, []byte("v"))

	time.Sleep(past)
	wantMissing(t, s, putKey)
	wantMissing(t, s, createKey)
	if got, err := s.Take(ctx, takeKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take(%q) after expiry = %q, %v; want ErrNotFound", takeKey, got, err)
	}
	// An expired key is absent: Create may claim it again.
	if err := s.Create(ctx, createKey, []byte("again"), longTTL); err != nil {
		t.Fatalf("Create(%q) after expiry = %v, want nil", createKey, err)
	}
	wantValue(t, s, createKey, []byte("again"))
}

func testTakeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("take")
	put(t, s, key, binary, longTTL)
	got, err := s.Take(ctx, key)
	if err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("Take(%q) = %q, %v; want %q, nil", key, got, err, binary)
	}
	if got, err := s.Take(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
	wantMissing(t, s, key)
}

func testDeleteIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("delete")
	put(t, s, key, []byte("v"), longTTL)
	for i := range 2 {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%q) #%d = %v, want nil", key, i+1, err)
		}
		wantMissing(t, s, key)
	}
	never := uniq("never")
	if err := s.Delete(ctx, never); err != nil {
		t.Fatalf("Delete(%q) of a key never written = %v, want nil", never, err)
	}
}

func testTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("touch")
	// Margins are wide (1 s TTL, Touch after 100 ms) so a loaded machine
	// that oversleeps does not expire the key before the Touch.
	put(t, s, key, []byte("session"), time.Second)
	time.Sleep(100 * time.Millisecond)
	if err := s.Touch(ctx, key, 4*time.Second); err != nil {
		t.Fatalf("Touch(%q) = %v, want nil", key, err)
	}
	time.Sleep(1100 * time.Millisecond) // past the original deadline, within the new one
	wantValue(t, s, key, []byte("session"))

	// Touch can also shorten.
	if err := s.Touch(ctx, key, shortTTL/2); err != nil {
		t.Fatalf("Touch(%q) = %v, want nil", key, err)
	}
	time.Sleep(past - shortTTL/2)
	wantMissing(t, s, key)
	if err := s.Touch(ctx, key, longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch(%q) after expiry = %v, want ErrNotFound", key, err)
	}
}

func testIncr(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := uniq("incr-a"), uniq("incr-b")
	for want := int64(1); want <= 3; want++ {
		got, err := s.Incr(ctx, a, longTTL)
		if err != nil || got != want {
			t.Fatalf("Incr(%q) = %d, %v; want %d", a, got, err, want)
		}
	}
	if got, err := s.Incr(ctx, b, longTTL); err != nil || got != 1 {
		t.Fatalf("Incr(%q) = %d, %v; want 1 (counters are independent)", b, got, err)
	}
}

// A lifetime that must NOT have ended when the second step runs, and the
// sleeps around it: the second step has half of it to spare (a loaded
// machine that oversleeps by less never fails the test), and the check
// after it falls between the first deadline and a slid one. Oversleeping
// more can only make the check miss a slide, never fail a correct store.
const (
	slideTTL   = time.Second
	slideStep  = slideTTL / 2
	slideCheck = slideTTL/2 + 200*time.Millisecond // after slideStep: past the first deadline
)

// testIncrWindowExpires: the window starts at the first increment and later
// increments do not extend it (a fixed-window counter).
func testIncrWindowExpires(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("window")
	if got, err := s.Incr(ctx, key, slideTTL); err != nil || got != 1 {
		t.Fatalf("Incr(%q) = %d, %v; want 1", key, got, err)
	}
	time.Sleep(slideStep)
	if got, err := s.Incr(ctx, key, slideTTL); err != nil || got != 2 {
		t.Fatalf("Incr(%q) = %d, %v; want 2", key, got, err)
	}
	time.Sleep(slideCheck) // past the first window, not past a slid one
	if got, err := s.Incr(ctx, key, slideTTL); err != nil || got != 1 {
		t.Fatalf("Incr(%q) after the window = %d, %v; want 1 (a new window)", key, got, err)
	}
}

func testNonPositiveTTL(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("ttl")
	put(t, s, key, []byte("v"), longTTL)
	for _, ttl := range []time.Duration{0, -time.Second} {
		ops := map[string]func() error{
			"Put":          func() error { return s.Put(ctx, uniq("ttl"), []byte("v"), ttl) },
			"Create":       func() error { return s.Create(ctx, uniq("ttl"), []byte("v"), ttl) },
			"Touch":        func() error { return s.Touch(ctx, key, ttl) },
			"Incr":         func() error { _, err := s.Incr(ctx, uniq("ttl"), ttl); return err },
			"CreateFamily": func() error { return s.CreateFamily(ctx, uniq("fam"), uniq("tok"), []byte("g"), ttl) },
		}
		for name, op := range ops {
			if err := op(); err == nil {
				t.Errorf("%s with ttl %s = nil, want an error", name, ttl)
			}
		}
	}
	wantValue(t, s, key, []byte("v")) // the refused Touch left the key alone
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	key := uniq("canceled")
	if err := s.Put(ctx, key, []byte("v"), longTTL); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with canceled context = %v, want context.Canceled", err)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v, want nil", err)
	}
}

func testFamilyRotateChain(t *testing.T, s store.Store) {
	fam, grant := uniq("fam"), append([]byte("grant:"), binary...)
	tokens := []string{uniq("t0"), uniq("t1"), uniq("t2"), uniq("t3"), uniq("t4"), uniq("t5")}
	createFamily(t, s, fam, tokens[0], grant, longTTL)
	if err := s.CreateFamily(t.Context(), fam, uniq("other"), []byte("other"), longTTL); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateFamily(%q) = %v, want ErrExists", fam, err)
	}
	wantGrant(t, s, fam, grant)
	for i := 1; i < len(tokens); i++ {
		rotate(t, s, fam, tokens[i-1], tokens[i], grant)
		wantGrant(t, s, fam, grant)
	}
}

// testFamilyReuse_S09: replaying a rotated-away token revokes the family, so
// the legitimate holder's current token stops working too.
func testFamilyReuse_S09(t *testing.T, s store.Store) {
	fam, grant := uniq("fam"), []byte("grant")
	t0, t1, t2, t3 := uniq("t0"), uniq("t1"), uniq("t2"), uniq("t3")
	createFamily(t, s, fam, t0, grant, longTTL)
	rotate(t, s, fam, t0, t1, grant)
	rotate(t, s, fam, t1, t2, grant)
	rotate(t, s, fam, t2, t3, grant)

	wantRotateErr(t, s, fam, t1, uniq("attacker"), store.ErrReused)
	wantActive(t, s, fam, false)
	wantRotateErr(t, s, fam, t3, uniq("victim"), store.ErrNotFound)
	wantActive(t, s, fam, false)
}

func testFamilyReuseFirstToken_S09(t *testing.T, s store.Store) {
	fam, grant := uniq("fam"), []byte("grant")
	t0, t1 := uniq("t0"), uniq("t1")
	createFamily(t, s, fam, t0, grant, longTTL)
	rotate(t, s, fam, t0, t1, grant)
	wantRotateErr(t, s, fam, t0, uniq("replay"), store.ErrReused)
	wantActive(t, s, fam, false)
	wantRotateErr(t, s, fam, t1, uniq("next"), store.ErrNotFound)
}

// testFamilyUnknown: an unknown family or token is ErrNotFound, and a token
// the family never had does not revoke it (only a rotated-away one does).
func testFamilyUnknown(t *testing.T, s store.Store) {
	fam, grant := uniq("fam"), []byte("grant")
	t0, t1 := uniq("t0"), uniq("t1")
	wantRotateErr(t, s, uniq("nofam"), t0, t1, store.ErrNotFound)
	wantActive(t, s, uniq("nofam"), false)

	createFamily(t, s, fam, t0, grant, longTTL)
	wantRotateErr(t, s, fam, uniq("stranger"), uniq("x"), store.ErrNotFound)
	wantRotateErr(t, s, fam, "", uniq("x"), store.ErrNotFound)
	wantActive(t, s, fam, true)
	rotate(t, s, fam, t0, t1, grant)
}

func testFamilyRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	fam, grant := uniq("fam"), []byte("grant")
	t0, t1 := uniq("t0"), uniq("t1")
	createFamily(t, s, fam, t0, grant, longTTL)
	rotate(t, s, fam, t0, t1, grant)
	for i := range 2 {
		if err := s.RevokeFamily(ctx, fam); err != nil {
			t.Fatalf("RevokeFamily(%q) #%d = %v, want nil", fam, i+1, err)
		}
		wantActive(t, s, fam, false)
		wantRotateErr(t, s, fam, t1, uniq("t2"), store.ErrNotFound)
	}
	if err := s.RevokeFamily(ctx, uniq("nofam")); err != nil {
		t.Fatalf("RevokeFamily of an unknown family = %v, want nil", err)
	}
}

// testFamilyExpiry: a family's lifetime is absolute; rotating does not extend it.
func testFamilyExpiry(t *testing.T, s store.Store) {
	fam, grant := uniq("fam"), []byte("grant")
	t0, t1, t2 := uniq("t0"), uniq("t1"), uniq("t2")
	createFamily(t, s, fam, t0, grant, slideTTL)
	time.Sleep(slideStep)
	rotate(t, s, fam, t0, t1, grant)
	time.Sleep(slideCheck) // past the family's deadline, not past a slid one
	wantActive(t, s, fam, false)
	wantRotateErr(t, s, fam, t1, t2, store.ErrNotFound)
	// An expired family is gone: the id can start a new one.
	createFamily(t, s, fam, t2, []byte("new"), longTTL)
	rotate(t, s, fam, t2, uniq("t3"), []byte("new"))
}

// testFamiliesIndependent: reuse in one family leaves another alone, and
// plain keys do not collide with family ids.
func testFamiliesIndependent(t *testing.T, s store.Store) {
	a, b := uniq("fam-a"), uniq("fam-b")
	a0, a1, b0, b1 := uniq("a0"), uniq("a1"), uniq("b0"), uniq("b1")
	createFamily(t, s, a, a0, []byte("A"), longTTL)
	createFamily(t, s, b, b0, []byte("B"), longTTL)
	put(t, s, a, []byte("plain"), longTTL)
	rotate(t, s, a, a0, a1, []byte("A"))
	wantRotateErr(t, s, a, a0, uniq("x"), store.ErrReused)
	wantActive(t, s, a, false)
	wantActive(t, s, b, true)
	rotate(t, s, b, b0, b1, []byte("B"))
	wantValue(t, s, a, []byte("plain"))
}

// race runs fn in n goroutines released at the same instant and returns
// their errors.
func race(n int, fn func(i int) error) []error {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// testTakeConcurrent_S07: a code redeemed by many requests at once is
// handed out exactly once.
func testTakeConcurrent_S07(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("code")
	put(t, s, key, []byte("code-record"), longTTL)
	var mu sync.Mutex
	var got [][]byte
	errs := race(racers, func(int) error {
		v, err := s.Take(ctx, key)
		if err == nil {
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
		}
		return err
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("Take #%d = %v, want nil or ErrNotFound", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent Takes succeeded %d times, want exactly 1", racers, wins)
	}
	if !bytes.Equal(got[0], []byte("code-record")) {
		t.Fatalf("winning Take = %q, want %q", got[0], "code-record")
	}
	wantMissing(t, s, key)
}

// testRotateConcurrent_S09: a refresh token presented by many requests at
// once rotates exactly once; the others are replays, so the family ends up
// revoked.
func testRotateConcurrent_S09(t *testing.T, s store.Store) {
	ctx := t.Context()
	fam, t0, grant := uniq("fam"), uniq("t0"), []byte("grant")
	createFamily(t, s, fam, t0, grant, longTTL)
	reused := 0
	errs := race(racers, func(i int) error {
		g, err := s.Rotate(ctx, fam, t0, fmt.Sprintf("next-%d", i))
		if err == nil && !bytes.Equal(g, grant) {
			return fmt.Errorf("grant %q, want %q", g, grant)
		}
		return err
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrReused):
			reused++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("Rotate #%d = %v, want nil, ErrReused or ErrNotFound", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent Rotates succeeded %d times, want exactly 1", racers, wins)
	}
	if reused == 0 {
		t.Fatalf("no concurrent Rotate reported ErrReused, want at least 1")
	}
	wantActive(t, s, fam, false)
}

func testCreateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("create")
	errs := race(racers, func(i int) error {
		return s.Create(ctx, key, fmt.Appendf(nil, "writer-%d", i), longTTL)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Create #%d and #%d both succeeded, want exactly one", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("Create #%d = %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no concurrent Create succeeded, want exactly one")
	}
	wantValue(t, s, key, fmt.Appendf(nil, "writer-%d", winner))
}

func testIncrConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := uniq("counter")
	var mu sync.Mutex
	seen := make(map[int64]bool)
	errs := race(racers, func(int) error {
		n, err := s.Incr(ctx, key, longTTL)
		mu.Lock()
		defer mu.Unlock()
		if err == nil && seen[n] {
			return fmt.Errorf("value %d returned twice", n)
		}
		seen[n] = true
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("Incr #%d = %v", i, err)
		}
	}
	for n := int64(1); n <= racers; n++ {
		if !seen[n] {
			t.Errorf("no concurrent Incr returned %d, want each of 1..%d once", n, racers)
		}
	}
}

// testRotatedBounded: a family remembers only the last store.RotatedKept
// rotated-away tokens, so its size is bounded however often it refreshes.
func testRotatedBounded(t *testing.T, s store.Store) {
	ctx := t.Context()
	fam := uniq("famring")
	tok := func(i int) string { return fmt.Sprintf("%s-tok-%d", fam, i) }
	if err := s.CreateFamily(ctx, fam, tok(0), []byte("grant"), longTTL); err != nil {
		t.Fatal(err)
	}
	n := store.RotatedKept + 5
	for i := 0; i < n; i++ {
		if _, err := s.Rotate(ctx, fam, tok(i), tok(i+1)); err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
	}
	// The oldest tokens are forgotten: unknown, and the family survives.
	if _, err := s.Rotate(ctx, fam, tok(0), tok(999)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Rotate with a token older than the ring = %v, want ErrNotFound", err)
	}
	if _, err := s.FamilyGrant(ctx, fam); err != nil {
		t.Fatal("a forgotten old token revoked the family")
	}
	// A recent rotated-away token is still detected as reuse.
	if _, err := s.Rotate(ctx, fam, tok(n-1), tok(1000)); !errors.Is(err, store.ErrReused) {
		t.Fatalf("Rotate with a recently rotated token = %v, want ErrReused", err)
	}
}

// indexStore returns s as a store.IndexStore, skipping the test when the
// store does not implement the optional capability.
func indexStore(t *testing.T, s store.Store) store.IndexStore {
	t.Helper()
	ix, ok := s.(store.IndexStore)
	if !ok {
		t.Skip("the store does not implement store.IndexStore")
	}
	return ix
}

func wantMembers(t *testing.T, ix store.IndexStore, key string, want ...string) {
	t.Helper()
	got, err := ix.IndexMembers(t.Context(), key)
	if err != nil {
		t.Fatalf("IndexMembers(%q) error = %v", key, err)
	}
	if len(got) != len(want) {
		t.Fatalf("IndexMembers(%q) = %q, want %q", key, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("IndexMembers(%q) = %q, want %q (newest first)", key, got, want)
		}
	}
}

func addToIndex(t *testing.T, ix store.IndexStore, key, member string, max int, ttl time.Duration) {
	t.Helper()
	if err := ix.AddToIndex(t.Context(), key, member, max, ttl); err != nil {
		t.Fatalf("AddToIndex(%q, %q) error = %v", key, member, err)
	}
	time.Sleep(2 * time.Millisecond) // distinct insertion times, for the order
}

// testIndexMembers: members come back newest first, a re-added member moves
// to the front once, and a missing index is empty, not an error.
func testIndexMembers(t *testing.T, s store.Store) {
	ix := indexStore(t, s)
	key := uniq("ix")
	wantMembers(t, ix, key)
	for _, m := range []string{"a", "b", "c"} {
		addToIndex(t, ix, key, m, 64, longTTL)
	}
	wantMembers(t, ix, key, "c", "b", "a")
	addToIndex(t, ix, key, "a", 64, longTTL)
	wantMembers(t, ix, key, "a", "c", "b")
	wantMembers(t, ix, uniq("other"))
}

// testIndexBatch: AddToIndexes adds to several indexes at once, each
// bounded like AddToIndex (store.IndexBatcher).
func testIndexBatch(t *testing.T, s store.Store) {
	ix := indexStore(t, s)
	b, ok := s.(store.IndexBatcher)
	if !ok {
		t.Skip("the store does not implement store.IndexBatcher")
	}
	k1, k2 := uniq("ix"), uniq("ix")
	addToIndex(t, ix, k2, "old", 2, longTTL)
	addToIndex(t, ix, k2, "older-but-newer", 2, longTTL)
	if err := b.AddToIndexes(t.Context(), []store.IndexAdd{{Key: k1, Member: "s1", Max: 64, TTL: longTTL},
		{Key: k2, Member: "s1", Max: 2, TTL: longTTL}}); err != nil {
		t.Fatalf("AddToIndexes = %v", err)
	}
	wantMembers(t, ix, k1, "s1")
	wantMembers(t, ix, k2, "s1", "older-but-newer")
	if err := b.AddToIndexes(t.Context(), nil); err != nil {
		t.Fatalf("AddToIndexes(none) = %v", err)
	}
}

// testIndexBounded: an index keeps only its newest max members.
func testIndexBounded(t *testing.T, s store.Store) {
	ix := indexStore(t, s)
	key := uniq("ix")
	for i := range 10 {
		addToIndex(t, ix, key, strconv.Itoa(i), 3, longTTL)
	}
	wantMembers(t, ix, key, "9", "8", "7")
}

// testIndexExpiry: an index lives at least the longest ttl it was given,
// and is gone after it.
func testIndexExpiry(t *testing.T, s store.Store) {
	ix := indexStore(t, s)
	short, long := uniq("short"), uniq("long")
	addToIndex(t, ix, short, "m", 8, shortTTL)
	addToIndex(t, ix, long, "m", 8, longTTL)
	addToIndex(t, ix, long, "n", 8, shortTTL) // does not shorten the index's life
	time.Sleep(past)
	wantMembers(t, ix, short)
	wantMembers(t, ix, long, "n", "m")
}

// testRotateUnlessRevoked: a family of a session ("<sid>~<random>") rotates
// while its session's marker "sx:{<sid>}" is absent; once the marker is
// written the next rotation deletes the family and answers ErrRevoked, in
// one step (on a Cluster both keys share the session's slot).
func testRotateUnlessRevoked(t *testing.T, s store.Store) {
	sr, ok := s.(store.SessionRotator)
	if !ok {
		t.Skip("the store does not implement store.SessionRotator")
	}
	ctx := t.Context()
	sid := uniq("sid")
	fam, other := sid+store.FamilySeparator+uniq("f"), sid+store.FamilySeparator+uniq("g")
	marker := "sx:{" + sid + "}"
	if got := store.SessionOfFamily(fam); got != sid {
		t.Fatalf("SessionOfFamily(%q) = %q, want %q", fam, got, sid)
	}
	t0, t1, t2 := uniq("t0"), uniq("t1"), uniq("t2")
	createFamily(t, s, fam, t0, []byte("grant"), longTTL)
	createFamily(t, s, other, t0, []byte("grant"), longTTL)
	if g, err := sr.RotateUnlessRevoked(ctx, fam, t0, t1, marker); err != nil || string(g) != "grant" {
		t.Fatalf("RotateUnlessRevoked without a marker = %q, %v; want the grant", g, err)
	}
	if err := s.Put(ctx, marker, []byte("1"), longTTL); err != nil {
		t.Fatal(err)
	}
	if _, err := sr.RotateUnlessRevoked(ctx, fam, t1, t2, marker); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("RotateUnlessRevoked with the marker = %v, want ErrRevoked", err)
	}
	wantActive(t, s, fam, false)
	// Plain Rotate ignores markers; a stale token of a revoked session's
	// family is revoked too.
	if _, err := sr.RotateUnlessRevoked(ctx, other, uniq("stale"), t2, marker); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("RotateUnlessRevoked of another family of the session = %v, want ErrRevoked", err)
	}
	wantActive(t, s, other, false)
}
