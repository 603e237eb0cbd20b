package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

// redisEnv is an env whose store is a real redis-server.
func redisEnv(t *testing.T) *env {
	t.Helper()
	srv, err := redistest.StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	e := newEnv(t)
	e.store = rs
	return e
}

func records(e *env) store.RecordStore { return e.store.(store.RecordStore) }

// names lists the records written after version after.
func changedNames(t *testing.T, e *env, after int64) []string {
	t.Helper()
	_, recs, err := records(e).RecordsSince(t.Context(), "admin", after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// TestRecords_DeltaAcrossInstances: on one real Redis, a change through A
// writes only the changed tenant's record (and the meta record), and B
// applies it as a change of that tenant alone, not a whole new state.
func TestRecords_DeltaAcrossInstances(t *testing.T) {
	e := redisEnv(t)
	a, b := e.instance(), e.instance()
	for i := range 20 {
		id := fmt.Sprintf("t%02d", i)
		a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc(id, id+".test"), nil)
	}
	waitFor(t, 5*time.Second, "B at A's version", func() bool { return b.svc.Version() == a.svc.Version() })
	v := a.svc.Version()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("newco", "newco.test"), nil)
	if got, want := changedNames(t, e, v), []string{"meta", "t/newco"}; !slices.Equal(got, want) {
		t.Errorf("one more tenant wrote %v, want %v", got, want)
	}
	waitFor(t, 5*time.Second, "B resolves newco", func() bool { return b.resolves("u@newco.test") == "newco" })
	c := b.last.Load()
	if c.Changes == nil || !slices.Equal(c.Changes.Tenants, []string{"newco"}) || c.Changes.Clients {
		t.Errorf("B applied %+v, want a change of tenant newco alone", c.Changes)
	}
	// A replace of one tenant rewrites that tenant only; a delete deletes it.
	v = a.svc.Version()
	a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/t03", tenantDoc("t03", "t03.test", "t03.example"), nil)
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/t04", nil, nil)
	if got, want := changedNames(t, e, v), []string{"meta", "t/t03", "t/t04"}; !slices.Equal(got, want) {
		t.Errorf("replace and delete wrote %v, want %v", got, want)
	}
	waitFor(t, 5*time.Second, "B follows", func() bool {
		return b.resolves("u@t03.example") == "t03" && b.resolves("u@t04.test") == ""
	})
	if b.resolves("u@t05.test") != "t05" {
		t.Error("B lost an unchanged tenant")
	}
}

// TestRecords_AppliedKeepsNoHistory: the compilation an instance serves
// does not keep the one it replaced (Changes, handed to Apply, is
// cleared after it), so a run of changes does not chain every earlier
// compilation, each with its tables, into the heap.
func TestRecords_AppliedKeepsNoHistory(t *testing.T) {
	e := newEnv(t)
	a, b := e.instance(), e.instance()
	for i := range 3 {
		a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc(fmt.Sprintf("h%d", i), fmt.Sprintf("h%d.test", i)), nil)
	}
	waitFor(t, 5*time.Second, "B at A's version", func() bool { return b.svc.Version() == a.svc.Version() })
	for name, in := range map[string]*instance{"writer": a, "follower": b} {
		if _, c := in.svc.Applied(); c == nil {
			t.Errorf("%s: nothing applied", name)
		} else if c.Changes != nil {
			t.Errorf("%s: applied compilation keeps Changes %+v, want none", name, c.Changes)
		}
	}
}

// TestRecords_FollowerWakesAtCommit: on a store that tells of commits
// (store.RecordWaiter), a follower applies a change at once, not at its
// next poll (here a minute away), on a real Redis and in memory.
func TestRecords_FollowerWakesAtCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(*testing.T) *env
	}{{"memory", newEnv}, {"redis", redisEnv}} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			e.poll = time.Minute
			a, b := e.instance(), e.instance()
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("wake", "wake.test"), nil)
			waitFor(t, pollDeadline, "B resolves the new tenant before its next poll", func() bool { return b.resolves("u@wake.test") == "wake" })
		})
	}
}

// TestRecords_ChangeSharesUnchangedTenants: a new version shares the
// tenants it did not change with the one before (the same *Tenant), on
// the writer and on a follower: a change copies a list of pointers, not
// every tenant.
func TestRecords_ChangeSharesUnchangedTenants(t *testing.T) {
	e := newEnv(t)
	a, b := e.instance(), e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("kept", "kept.test"), nil)
	waitFor(t, 5*time.Second, "B at A's version", func() bool { return b.svc.Version() == a.svc.Version() })
	find := func(st *admin.State, id string) *admin.Tenant {
		for _, x := range st.Tenants {
			if x.ID == id {
				return x
			}
		}
		return nil
	}
	beforeA, _ := a.svc.Applied()
	beforeB, _ := b.svc.Applied()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("added", "added.test"), nil)
	waitFor(t, 5*time.Second, "B at A's version", func() bool { return b.svc.Version() == a.svc.Version() })
	for _, tc := range []struct {
		name   string
		in     *instance
		before *admin.State
	}{{"writer", a, beforeA}, {"follower", b, beforeB}} {
		after, _ := tc.in.svc.Applied()
		old, now := find(tc.before, "kept"), find(after, "kept")
		if old == nil || now == nil || old != now {
			t.Errorf("%s: tenant kept is %p before and %p after a change of another tenant, want the same", tc.name, old, now)
		}
		if find(after, "added") == nil {
			t.Errorf("%s: the added tenant is missing", tc.name)
		}
	}
}

// TestRecords_TrimmedLogResync: an instance that fell further behind than
// the change log reaches reads the whole state again and serves it all;
// one that did not applies the changes one by one.
func TestRecords_TrimmedLogResync(t *testing.T) {
	e := redisEnv(t)
	a := e.instance()
	e.poll = time.Hour // B polls only when told to
	b := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	if err := b.svc.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := b.last.Load(); b.resolves("u@alpha.test") != "alpha" || c.Changes == nil {
		t.Fatalf("B after one change: alpha -> %q, changes %+v; want alpha, applied as a change", b.resolves("u@alpha.test"), c.Changes)
	}
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	// Push beta out of the log: Redis trims whole stream nodes (100
	// entries), so write a few hundred commits with a log of one.
	ctx := context.Background()
	_, meta, err := records(e).RecordsSince(ctx, "admin", a.svc.Version()-1, 10)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(meta, func(r store.Record) bool { return r.Name == "meta" })
	for range 300 {
		if _, err := records(e).CommitRecords(ctx, "admin", store.AnyHead, []store.RecordWrite{{Name: "meta", Value: meta[i].Value, Expect: store.AnyVersion}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	applied := b.applied.Load()
	if err := b.svc.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if b.applied.Load() == applied || b.resolves("u@beta.test") != "beta" || b.resolves("u@alpha.test") != "alpha" {
		t.Fatal("B did not read the whole state after the log was trimmed")
	}
	if c := b.last.Load(); c.Changes != nil {
		t.Errorf("B applied a change list %+v after a trimmed log, want the whole state", c.Changes)
	}
	if head, _ := records(e).RecordsHead(ctx, "admin"); b.svc.Version() != head {
		t.Errorf("B at version %d, want the head %d", b.svc.Version(), head)
	}
}

// TestRecords_ConcurrentWritersOneTenant: two instances changing the same
// tenant at once (each adds domains, read-modify-write) lose no update:
// the loser of each race redoes its change on the winner's version.
func TestRecords_ConcurrentWritersOneTenant(t *testing.T) {
	e := redisEnv(t)
	a, b := e.instance(), e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	waitFor(t, 5*time.Second, "B sees alpha", func() bool { return b.resolves("u@alpha.test") == "alpha" })
	const each = 8
	var wg sync.WaitGroup
	for i, in := range []*instance{a, b} {
		wg.Go(func() {
			for j := range each {
				d := fmt.Sprintf("d%d-%d.alpha.example", i, j)
				if got := in.call(t, opToken, "POST", "/v1/tenants/alpha/domains", map[string]any{"name": d}, nil); got != http.StatusCreated {
					t.Errorf("add domain %s = %d", d, got)
				}
			}
		})
	}
	wg.Wait()
	domains := func(in *instance) []string {
		st, _ := in.svc.Applied()
		var names []string
		if i := slices.IndexFunc(st.Tenants, func(x *admin.Tenant) bool { return x.ID == "alpha" }); i >= 0 {
			for _, d := range st.Tenants[i].Domains {
				names = append(names, d.Name)
			}
		}
		return names
	}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		waitFor(t, 5*time.Second, name+" has every domain", func() bool { return len(domains(in)) == 1+2*each })
	}
	head, err := records(e).RecordsHead(t.Context(), "admin")
	if err != nil || head != 1+2*each {
		t.Errorf("head %d, %v after %d changes, want %d: one version per change", head, err, 1+2*each, 1+2*each)
	}
}

// TestRecords_MigratesLegacyDocument: a store holding the state as one
// document per version (the layout before record sets) is converted on
// first start: every tenant and client is served, a plaintext secret is
// sealed by the next write, and the record set is what later instances read.
func TestRecords_MigratesLegacyDocument(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t)
			if backend == "redis" {
				e = redisEnv(t)
			}
			ctx := context.Background()
			legacy := map[string]any{"version": 7, "updated_by": "ops", "updated_at": time.Now().UTC(),
				"tenants": []any{tenantDoc("alpha", "alpha.test"), tenantDoc("beta", "beta.test")},
				"clients": []any{notesClient()}}
			doc, err := json.Marshal(legacy)
			if err != nil {
				t.Fatal(err)
			}
			// Version 6 is superseded (kept an hour), 7 is the newest; the
			// head lags at 6, as when a writer stopped between its writes.
			for k, v := range map[string][]byte{"admin:head": []byte("6"), "admin:state:6": []byte(`{"version":6,"tenants":[],"clients":[]}`), "admin:state:7": doc} {
				if err := e.store.Put(ctx, k, v, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			a, b := e.instance(), e.instance()
			for _, in := range []*instance{a, b} {
				if in.resolves("u@alpha.test") != "alpha" || in.resolves("u@beta.test") != "beta" {
					t.Fatal("the migrated tenants are not served")
				}
				if up, cl := secretsOf(in, "alpha", "alpha-idp", "notes"); up != alphaUpstream || cl != notesSecret {
					t.Fatalf("migrated secrets read as %q, %q", up, cl)
				}
			}
			if got, want := changedNames(t, e, 0), []string{"c/notes", "meta", "t/alpha", "t/beta"}; !slices.Equal(got, want) {
				t.Fatalf("record set after migration: %v, want %v", got, want)
			}
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("gamma", "gamma.test"), nil)
			_, raw := rawState(t, e)
			if strings.Contains(string(raw), alphaUpstream) || strings.Contains(string(raw), notesSecret) {
				t.Error("a plaintext secret of the legacy document is still stored after the next write")
			}
			waitFor(t, 5*time.Second, "B follows after the migration", func() bool { return b.resolves("u@gamma.test") == "gamma" })
			c := e.instance()
			if c.resolves("u@alpha.test") != "alpha" || c.resolves("u@gamma.test") != "gamma" {
				t.Error("an instance started later does not see migrated and new tenants")
			}
		})
	}
}

// TestRecords_NotReadyWhileMigrating: an instance finding a migration
// under way on another instance is not ready (Ready false, Load fails
// with an unavailable error, writes 503) until it has finished.
func TestRecords_NotReadyWhileMigrating(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	seeding := []byte(`{"state":{"version":0,"tenants":null,"clients":null,"updated_at":"0001-01-01T00:00:00Z"},"seeding":"` + now + `"}`)
	a := mustJSON(t, tenantDoc("alpha", "alpha.test"))
	if _, err := records(e).CommitRecords(ctx, "admin", 0, []store.RecordWrite{{Name: "t/alpha", Value: a}, {Name: "meta", Value: seeding}}, 1000); err != nil {
		t.Fatal(err)
	}
	in := &instance{comp: &testCompiler{}}
	svc, err := admin.New(admin.Options{Store: e.store, Compiler: in.comp, Apply: func(c *admin.Compiled) error { in.last.Store(c); return nil },
		Tokens: []admin.Token{{Name: "ops", Token: opToken}}, Secret: e.secret, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(ctx); err == nil || svc.Ready() {
		t.Fatalf("Load during a migration = %v, Ready %v; want an error and not ready", err, svc.Ready())
	}
	in.svc, in.srv = svc, httpServer(t, svc)
	if got := in.call(t, opToken, "POST", "/v1/tenants", tenantDoc("gamma"), nil); got != http.StatusServiceUnavailable {
		t.Errorf("write during a migration = %d, want 503", got)
	}
	done := []byte(`{"state":{"version":0,"tenants":null,"clients":null,"updated_at":"0001-01-01T00:00:00Z"}}`)
	if _, err := records(e).CommitRecords(ctx, "admin", 1, []store.RecordWrite{{Name: "meta", Value: done, Expect: store.AnyVersion}}, 1000); err != nil {
		t.Fatal(err)
	}
	if err := svc.Poll(ctx); err != nil || !svc.Ready() || in.resolves("u@alpha.test") != "alpha" {
		t.Fatalf("after the migration: Poll = %v, Ready %v, alpha -> %q; want ready, alpha served", err, svc.Ready(), in.resolves("u@alpha.test"))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
