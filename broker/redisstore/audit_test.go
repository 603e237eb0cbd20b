package redisstore_test

import (
	"context"
	"strconv"
	"testing"
)

// topologies are the two servers the audit tests run on.
var topologies = []struct {
	name  string
	addrs func() []string
}{
	{"Standalone", func() []string { return []string{standalone.Addr()} }},
	{"Cluster", func() []string { return cluster.Addrs() }},
}

func TestAudit_StreamsPerTenant(t *testing.T) {
	ctx := context.Background()
	for _, tc := range topologies {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, tc.addrs()...)
			t.Cleanup(func() { // the server is shared: TestNoExtraCopies_S17 scans every key
				for _, tenant := range []string{"acme", "globex"} {
					_ = s.Delete(context.Background(), "audit:"+tenant)
				}
			})
			// MAXLEN ~ trims whole stream nodes (100 entries by default):
			// 250 events with maxLen 100 keep at least 100, and not all.
			for i := range 250 {
				if err := s.AppendAudit(ctx, "acme", []byte(`{"n":`+strconv.Itoa(i)+`}`), 100); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AppendAudit(ctx, "globex", []byte(`{"n":"globex"}`), 100); err != nil {
				t.Fatal(err)
			}
			all, err := s.ReadAudit(ctx, "acme", "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) < 100 || len(all) >= 250 {
				t.Fatalf("acme stream keeps %d of 250 events with maxLen ~100, want 100..249", len(all))
			}
			if last := string(all[len(all)-1].Event); last != `{"n":249}` {
				t.Errorf("newest event = %s, want {\"n\":249}", last)
			}
			page, err := s.ReadAudit(ctx, "acme", all[len(all)-3].ID, 10)
			if err != nil || len(page) != 2 || page[0].ID != all[len(all)-2].ID {
				t.Errorf("ReadAudit after the 3rd newest = %v, %v; want the 2 newest", page, err)
			}
			if g, err := s.ReadAudit(ctx, "globex", "", 10); err != nil || len(g) != 1 || string(g[0].Event) != `{"n":"globex"}` {
				t.Errorf("ReadAudit(globex) = %v, %v; want its one event", g, err)
			}
			if none, err := s.ReadAudit(ctx, "initech", "", 10); err != nil || len(none) != 0 {
				t.Errorf("ReadAudit(initech) = %v, %v; want nothing", none, err)
			}
		})
	}
}

// TestAudit_BatchInOrder: AppendAuditBatch writes a tenant's events in one
// round trip, in the order given, after what was there (Standalone and
// Cluster).
func TestAudit_BatchInOrder(t *testing.T) {
	ctx := context.Background()
	for _, tc := range topologies {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, tc.addrs()...)
			t.Cleanup(func() { _ = s.Delete(context.Background(), "audit:batch") })
			if err := s.AppendAudit(ctx, "batch", []byte(`{"n":0}`), 100); err != nil {
				t.Fatal(err)
			}
			var events [][]byte
			for i := 1; i <= 5; i++ {
				events = append(events, []byte(`{"n":`+strconv.Itoa(i)+`}`))
			}
			if err := s.AppendAuditBatch(ctx, "batch", events, 100); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReadAudit(ctx, "batch", "", 10)
			if err != nil || len(got) != 6 {
				t.Fatalf("ReadAudit(batch) = %d events, %v; want 6", len(got), err)
			}
			for i, r := range got {
				if want := `{"n":` + strconv.Itoa(i) + `}`; string(r.Event) != want {
					t.Errorf("event %d = %s, want %s", i, r.Event, want)
				}
			}
			if err := s.AppendAuditBatch(ctx, "batch", events, 0); err == nil {
				t.Error("AppendAuditBatch with maxLen 0 = nil, want an error")
			}
		})
	}
}
