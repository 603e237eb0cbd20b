package realm

import (
	"fmt"
	"runtime"
	"testing"
)

// scaleTenants makes n tenants with two domains each (one exact, one
// wildcard) and one IdP, like a SaaS with n enterprise customers.
func scaleTenants(n int) []Tenant {
	ts := make([]Tenant, n)
	for i := range ts {
		ts[i] = Tenant{ID: fmt.Sprintf("t%d", i), Domains: []string{fmt.Sprintf("corp%d.example", i), fmt.Sprintf("*.corp%d.example", i)},
			IdPs: []string{fmt.Sprintf("idp%d", i)}, Subdomain: fmt.Sprintf("corp%d", i)}
	}
	return ts
}

// BenchmarkResolveTenants measures resolve cost at 10, 1k and 100k tenants
// (200k domains); the index is hash maps, so cost stays flat.
func BenchmarkResolveTenants(b *testing.B) {
	for _, n := range []int{10, 1_000, 100_000} {
		r, err := New(scaleTenants(n), Options{BaseDomain: "login.example.test"})
		if err != nil {
			b.Fatal(err)
		}
		for _, kind := range []struct{ name, format string }{
			{"exact", "user@corp%d.example"},        // the tenant's own domain: one lookup
			{"wildcard", "user@sub.corp%d.example"}, // a subdomain under "*.": two lookups
		} {
			emails := make([]string, 1024)
			for i := range emails {
				emails[i] = fmt.Sprintf(kind.format, (i*7919)%n)
			}
			b.Run(fmt.Sprintf("%s/tenants=%d", kind.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := r.Resolve(Request{LoginHint: emails[i&1023]}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBuildIndex measures building the index for 100k tenants and
// reports its heap bytes per domain.
func BenchmarkBuildIndex(b *testing.B) {
	ts := scaleTenants(100_000)
	var r *Resolver
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		if r, err = New(ts, Options{}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/200_000, "heapB/domain")
	}
	runtime.KeepAlive(r)
}

func TestResolve_Scale100k(t *testing.T) {
	r, err := New(scaleTenants(100_000), Options{BaseDomain: "login.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{LoginHint: "a@corp99999.example"}, "t99999"},
		{Request{LoginHint: "a@x.y.corp4242.example"}, "t4242"},
		{Request{Host: "corp31337.login.example.test"}, "t31337"},
	} {
		got, err := r.Resolve(tc.req)
		if err != nil || got.Tenant != tc.want {
			t.Errorf("Resolve(%+v) = %q, %v, want %q", tc.req, got.Tenant, err, tc.want)
		}
	}
}

// TestUpdate_CostDoesNotGrow: replacing one tenant among 100k allocates
// about what it does among 1k: the other tenants' entries are shared
// with the previous Resolver, not copied (a copy of the 100k-entry tables
// would be hundreds of allocations more).
func TestUpdate_CostDoesNotGrow(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{1_000, 100_000} {
		r, err := New(scaleTenants(n), Options{BaseDomain: "login.example.test"})
		if err != nil {
			t.Fatal(err)
		}
		changed := scaleTenants(1)[0]
		changed.Domains = append(changed.Domains, "new.example")
		allocs[n] = testing.AllocsPerRun(10, func() {
			if _, err := r.Update(nil, []Tenant{changed}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Logf("allocations of one tenant's Update: %v among 1k, %v among 100k", allocs[1_000], allocs[100_000])
	if allocs[100_000] > 2*allocs[1_000]+10 {
		t.Errorf("Update of one tenant: %v allocations among 100k tenants, %v among 1k: it copies the others", allocs[100_000], allocs[1_000])
	}
}
