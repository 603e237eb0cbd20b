package memstore

import (
	"errors"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/clocktest"
)

func (s *Store) sizes() (entries, families int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), len(s.families)
}

// TestSweepDropsExpired checks the background sweep frees expired records
// that are never read again, and keeps live ones.
func TestSweepDropsExpired(t *testing.T) {
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	s := newStore(clock.Now, 5*time.Millisecond)
	defer s.Close()
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if err := s.Put(ctx, k, []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "live", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, "fam", "t0", []byte("g"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for {
		e, f := s.sizes()
		if e == 1 && f == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after sweep: %d entries, %d families; want 1, 0", e, f)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Get(ctx, "live"); err != nil {
		t.Fatalf(`Get("live") = %v, want the unexpired value`, err)
	}
}

// TestExpiryBoundary checks a record is gone exactly at its deadline.
func TestExpiryBoundary(t *testing.T) {
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	s := newStore(clock.Now, time.Hour)
	defer s.Close()
	ctx := t.Context()
	if err := s.Put(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second - time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get 1ns before the deadline = %v, want the value", err)
	}
	clock.Advance(time.Nanosecond)
	if v, err := s.Get(ctx, "k"); err == nil {
		t.Fatalf("Get at the deadline = %q, want ErrNotFound", v)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s := New()
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d = %v, want nil", i+1, err)
		}
	}
	// The store still serves after Close; only the sweep stopped.
	if err := s.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Put after Close = %v, want nil", err)
	}
}

func TestIncrNotInteger(t *testing.T) {
	s := New()
	defer s.Close()
	if err := s.Put(t.Context(), "k", []byte("abc"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(t.Context(), "k", time.Minute); !errors.Is(err, ErrNotInteger) {
		t.Fatalf("Incr on %q = %d, %v; want ErrNotInteger", "abc", n, err)
	}
}
