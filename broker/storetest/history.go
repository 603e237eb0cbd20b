package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// historyTests check store.HistoryStore (conditional access history).
var historyTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"HistoryRemember", testHistoryRemember},
}

func testHistoryRemember(t *testing.T, s store.Store) {
	hs, ok := s.(store.HistoryStore)
	if !ok {
		t.Skip("the store does not implement store.HistoryStore")
	}
	key := uniq("hist")
	ctx := t.Context()
	prev, seen, err := hs.Remember(ctx, key, []byte("one"), []string{"cDE", "a3320"}, 3, time.Minute)
	if err != nil || prev != nil || !slices.Equal(seen, []bool{false, false}) {
		t.Fatalf("Remember(first) = %q, %v, %v; want nil, [false false], nil", prev, seen, err)
	}
	prev, seen, err = hs.Remember(ctx, key, []byte("two"), []string{"cDE", "cUS"}, 3, time.Minute)
	if err != nil || string(prev) != "one" || !slices.Equal(seen, []bool{true, false}) {
		t.Fatalf("Remember(second) = %q, %v, %v; want one, [true false], nil", prev, seen, err)
	}
	// The set is full (3): a fourth member is reported new and not kept.
	prev, seen, err = hs.Remember(ctx, key, []byte("three"), []string{"cFR", "cUS"}, 3, time.Minute)
	if err != nil || string(prev) != "two" || !slices.Equal(seen, []bool{false, true}) {
		t.Fatalf("Remember(third) = %q, %v, %v; want two, [false true], nil", prev, seen, err)
	}
	prev, seen, err = hs.Remember(ctx, key, []byte("four"), []string{"cFR"}, 3, time.Minute)
	if err != nil || string(prev) != "three" || !slices.Equal(seen, []bool{false}) {
		t.Fatalf("Remember(fourth) = %q, %v, %v; want three, [false] (bounded), nil", prev, seen, err)
	}
	// No members: only the value.
	prev, seen, err = hs.Remember(ctx, key, []byte("five"), nil, 3, time.Minute)
	if err != nil || string(prev) != "four" || len(seen) != 0 {
		t.Fatalf("Remember(no members) = %q, %v, %v; want four, [], nil", prev, seen, err)
	}
	if _, _, err := hs.Remember(ctx, uniq("hist"), []byte("x"), nil, 3, 0); err == nil {
		t.Fatal("Remember with ttl 0 succeeded, want an error")
	}
}
