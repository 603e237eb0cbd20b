package memstore

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestAudit_StreamsPerTenant(t *testing.T) {
	ctx := context.Background()
	fixed := time.Unix(1_700_000_000, 0)
	s := newStore(func() time.Time { return fixed }, time.Hour) // one millisecond for every event
	defer s.Close()
	for i := range 5 {
		if err := s.AppendAudit(ctx, "acme", []byte(`{"n":`+strconv.Itoa(i)+`}`), 3); err != nil {
			t.Fatal(err)
		}
	}
	ev := []byte(`{"n":"globex"}`)
	if err := s.AppendAudit(ctx, "globex", ev, 3); err != nil {
		t.Fatal(err)
	}
	ev[2] = 'X' // the store keeps its own copy

	all, err := s.ReadAudit(ctx, "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range all {
		got = append(got, string(r.Event))
	}
	if want := []string{`{"n":2}`, `{"n":3}`, `{"n":4}`}; len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("ReadAudit(acme) = %q, want the newest 3 %q", got, want)
	}
	for i := 1; i < len(all); i++ {
		a, _ := parseID(all[i-1].ID)
		b, _ := parseID(all[i].ID)
		if !(b[0] > a[0] || (b[0] == a[0] && b[1] > a[1])) {
			t.Errorf("ids not increasing within one millisecond: %s then %s", all[i-1].ID, all[i].ID)
		}
	}
	for _, tc := range []struct {
		name, tenant, after string
		limit, want         int
	}{
		{"after the oldest", "acme", all[0].ID, 10, 2},
		{"after with a limit", "acme", all[0].ID, 1, 1},
		{"after the newest", "acme", all[2].ID, 10, 0},
		{"zero limit", "acme", "", 0, 0},
		{"other tenant", "globex", "", 10, 1},
		{"unknown tenant", "initech", "", 10, 0},
		{"cursor older than every kept event", "acme", "1-0", 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.ReadAudit(ctx, tc.tenant, tc.after, tc.limit)
			if err != nil || len(recs) != tc.want {
				t.Fatalf("ReadAudit(%q, %q, %d) = %d events, %v; want %d", tc.tenant, tc.after, tc.limit, len(recs), err, tc.want)
			}
		})
	}
	if g, _ := s.ReadAudit(ctx, "globex", "", 1); string(g[0].Event) != `{"n":"globex"}` {
		t.Errorf("stored event changed with the caller's slice: %s", g[0].Event)
	}
	if _, err := s.ReadAudit(ctx, "acme", "nope", 1); err == nil {
		t.Error("ReadAudit with a malformed id = nil error")
	}
	if err := s.AppendAudit(ctx, "acme", []byte("{}"), 0); err == nil {
		t.Error("AppendAudit with maxLen 0 = nil error")
	}
}
