package admin_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/clocktest"
	"github.com/realmgate/realmgate/store"
)

const logoGrace = 6 * time.Hour

// logoEnv is an env on st whose instances run on a fake clock with a
// grace period of logoGrace, sweeping only when the test says.
func logoEnv(e *env) (*env, *clocktest.Clock) {
	clk := clocktest.New(time.Now().UTC())
	e.now, e.logoGrace = clk.Now, logoGrace
	return e, clk
}

// upload uploads body as the logo of path's tenant or client and returns its hash.
func (in *instance) upload(t *testing.T, path, body string) string {
	t.Helper()
	var out admin.LogoUpload
	in.must(t, http.StatusOK, opToken, "PUT", path, body, &out)
	return out.Logo
}

// sweep runs one whole sweep (the set is small: one run reads it all).
func (in *instance) sweep(t *testing.T) branding.SweepResult {
	t.Helper()
	res, err := in.svc.SweepLogos(t.Context())
	if err != nil {
		t.Fatalf("SweepLogos() = %v", err)
	}
	if !res.Wrapped {
		t.Fatalf("SweepLogos() = %+v, want the whole (small) set read", res)
	}
	return res
}

// storedLogos reports which of hashes the store holds.
func storedLogos(t *testing.T, e *env, hashes ...string) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for _, h := range hashes {
		want[h] = true
	}
	got, err := branding.Load(t.Context(), records(e), want)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for h := range got {
		out[h] = true
	}
	return out
}

// hasRecord reports whether the logo set holds a record named name.
func hasRecord(t *testing.T, e *env, name string) bool {
	t.Helper()
	cursor := ""
	for {
		page, next, err := records(e).ScanRecords(t.Context(), branding.RecordSet, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.Name == name {
				return true
			}
		}
		if next == "" {
			return false
		}
		cursor = next
	}
}

// TestLogoSweep: a logo no tenant or client names any more is deleted
// after the grace period and served until then; a logo uploaded again,
// named again or still named by another tenant stays; deleting a tenant
// frees its logo. On the memory store and on a real Redis.
func TestLogoSweep(t *testing.T) {
	for name, newE := range map[string]func(*testing.T) *env{"memory": newEnv, "redis": redisEnv} {
		t.Run(name, func(t *testing.T) {
			e, clk := logoEnv(newE(t))
			a := e.instance()
			for _, id := range []string{"alpha", "beta", "gamma"} {
				a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc(id, id+".test"), nil)
			}
			l1, l2, l3, l4 := pngOf(t, 10, 10), pngOf(t, 20, 10), pngOf(t, 30, 10), pngOf(t, 40, 10)

			// alpha and beta share h1; alpha's is replaced by h2.
			h1 := a.upload(t, "/v1/tenants/alpha/branding/logo", l1)
			if got := a.upload(t, "/v1/tenants/beta/branding/logo", l1); got != h1 {
				t.Fatalf("the same bytes uploaded for beta = %s, want alpha's %s", got, h1)
			}
			h2 := a.upload(t, "/v1/tenants/alpha/branding/logo", l2)
			// gamma's h3 is replaced by h4, and uploaded again within the grace period.
			h3 := a.upload(t, "/v1/tenants/gamma/branding/logo", l3)
			h4 := a.upload(t, "/v1/tenants/gamma/branding/logo", l4)
			if res := a.sweep(t); res.Marked != 1 || res.Deleted != 0 {
				t.Fatalf("first sweep = %+v, want h3 marked", res)
			}
			clk.Advance(logoGrace / 2)
			if got := a.upload(t, "/v1/tenants/gamma/branding/logo", l3); got != h3 {
				t.Fatalf("l3 uploaded again = %s, want %s", got, h3)
			}
			a.sweep(t) // h4 now unnamed: marked

			// beta is deleted: h1 is named by nobody.
			a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/beta", nil, nil)
			a.sweep(t)

			clk.Advance(logoGrace/2 - time.Second)
			a.sweep(t)
			if got := storedLogos(t, e, h1, h2, h3, h4); len(got) != 4 {
				t.Fatalf("within the grace period: stored %v, want all four logos (h1 %s h4 %s)", got, h1[:8], h4[:8])
			}
			clk.Advance(time.Second)
			a.sweep(t) // h3's mark is a grace period old, but h3 is named again
			if got := storedLogos(t, e, h1, h2, h3, h4); !got[h2] || !got[h3] {
				t.Fatalf("stored %v, want h2 (alpha's) and h3 (gamma's, uploaded again)", got)
			}
			clk.Advance(logoGrace / 2)
			a.sweep(t)
			got := storedLogos(t, e, h1, h2, h3, h4)
			tests := []struct {
				name   string
				hash   string
				stored bool
			}{
				{"replaced, named by nobody since", h4, false},
				{"shared, then its last tenant deleted", h1, false},
				{"alpha's current", h2, true},
				{"replaced, then uploaded again within the grace period", h3, true},
			}
			for _, tc := range tests {
				if got[tc.hash] != tc.stored {
					t.Errorf("%s: stored = %v, want %v", tc.name, got[tc.hash], tc.stored)
				}
			}
		})
	}
}

// TestLogoSweep_SharedLogoStays: a logo two tenants name stays while one
// of them still does.
func TestLogoSweep_SharedLogoStays(t *testing.T) {
	e, clk := logoEnv(newEnv(t))
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	h := a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 10, 10))
	a.upload(t, "/v1/tenants/beta/branding/logo", pngOf(t, 10, 10))
	a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 20, 10))
	for range 3 {
		a.sweep(t)
		clk.Advance(logoGrace)
	}
	if !storedLogos(t, e, h)[h] {
		t.Error("a logo beta still names was deleted")
	}
}

// TestLogoSweep_NamedAgainByJSONClaims: a tenant's JSON naming a logo
// that was marked unnamed claims it before the change is committed, so
// no sweep deletes it on the strength of an older state.
func TestLogoSweep_NamedAgainByJSONClaims(t *testing.T) {
	e, _ := logoEnv(newEnv(t))
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	h := a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 10, 10))
	a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 20, 10))
	a.sweep(t)
	if !hasRecord(t, e, "unref/"+h) {
		t.Fatal("the replaced logo was not marked")
	}
	beta := tenantDoc("beta", "beta.test")
	beta.Branding = &config.Branding{Logo: h}
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", beta, nil)
	if hasRecord(t, e, "unref/"+h) {
		t.Error("a logo named again by a tenant's JSON is still marked unnamed")
	}
}

// TestLogoSweep_StaleInstanceDeletesNothing: an instance whose applied
// state is behind the store's marks but deletes nothing.
func TestLogoSweep_StaleInstanceDeletesNothing(t *testing.T) {
	e, clk := logoEnv(newEnv(t))
	e.poll = time.Hour // stepped by hand
	a, b := e.instance(), e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	h := a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 10, 10))
	// b has not applied alpha, nor its logo.
	b.sweep(t)
	clk.Advance(2 * logoGrace)
	if res := b.sweep(t); res.Deleted != 0 || !storedLogos(t, e, h)[h] {
		t.Fatalf("sweep of an instance behind the store = %+v, want nothing deleted", res)
	}
	if err := b.svc.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.sweep(t) // caught up: h is named, its mark dropped
	clk.Advance(2 * logoGrace)
	b.sweep(t)
	if !storedLogos(t, e, h)[h] || hasRecord(t, e, "unref/"+h) {
		t.Error("a named logo was deleted, or is still marked")
	}
}

// failingRecords is a memory store whose logo set fails while fail is set.
type failingRecords struct {
	*memstore.Store
	fail atomic.Bool
}

var errLogoStoreDown = errors.New("logo set unreachable")

func (f *failingRecords) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	if set == branding.RecordSet && f.fail.Load() {
		return nil, "", errLogoStoreDown
	}
	return f.Store.ScanRecords(ctx, set, cursor, count)
}

func (f *failingRecords) CommitRecords(ctx context.Context, set string, base int64, writes []store.RecordWrite, logLen int) (int64, error) {
	if set == branding.RecordSet && f.fail.Load() {
		return 0, errLogoStoreDown
	}
	return f.Store.CommitRecords(ctx, set, base, writes, logLen)
}

// TestLogoSweep_FailingStore: a logo set that cannot be read or written
// fails the sweep (no panic, Run goes on, other changes go through) and
// only delays it; Run's own sweep deletes once the store is back.
func TestLogoSweep_FailingStore(t *testing.T) {
	fs := &failingRecords{Store: memstore.New()}
	e := newEnv(t)
	e.store = fs
	e, clk := logoEnv(e)
	e.logoSweep = 5 * time.Millisecond // Run sweeps on its own
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	h := a.upload(t, "/v1/tenants/alpha/branding/logo", pngOf(t, 10, 10))
	fs.fail.Store(true)
	if _, err := a.svc.SweepLogos(t.Context()); !errors.Is(err, errLogoStoreDown) {
		t.Fatalf("SweepLogos(store down) = %v, want the store's error", err)
	}
	// Naming a logo anew cannot be claimed: refused, not committed.
	beta := tenantDoc("beta", "beta.test")
	beta.Branding = &config.Branding{Logo: h}
	if got := a.call(t, opToken, "POST", "/v1/tenants", beta, nil); got < 500 {
		t.Errorf("POST tenant naming a logo while the logo set is down = %d, want a 5xx", got)
	}
	// A change that names no new logo goes through.
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("gamma", "gamma.test"), nil)
	a.must(t, http.StatusNoContent, opToken, "DELETE", "/v1/tenants/alpha", nil, nil)
	clk.Advance(2 * logoGrace)
	fs.fail.Store(false)
	// Run marks h at the next sweeps; a grace period later it deletes it.
	deadline := time.Now().Add(pollDeadline)
	for !hasRecord(t, e, "unref/"+h) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	clk.Advance(logoGrace)
	for storedLogos(t, e, h)[h] && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if storedLogos(t, e, h)[h] {
		t.Error("the logo of a deleted tenant is still stored after the store came back and a grace period passed")
	}
}

// TestLogoSweep_LogosInUseKept: a logo the broker fetched from a logo_url
// (named by no hash; Options.LogosInUse) stays, an unnamed one goes.
func TestLogoSweep_LogosInUseKept(t *testing.T) {
	e, clk := logoEnv(newEnv(t))
	save := func(w int) string {
		png, err := branding.Sanitize([]byte(pngOf(t, w, 10)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := branding.Save(t.Context(), records(e), png)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	fetched, unnamed := save(10), save(20)
	e.logosUsed = func() []string { return []string{fetched} }
	a := e.instance()
	a.sweep(t)
	clk.Advance(logoGrace)
	a.sweep(t)
	if got := storedLogos(t, e, fetched, unnamed); !got[fetched] || got[unnamed] {
		t.Errorf("stored %v, want the fetched logo kept and the unnamed one deleted", got)
	}
}
