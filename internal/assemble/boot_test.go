package assemble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/realm"
)

// bootFile is a file of n tenants with what a file tenant may hold: two
// domains, a subdomain, an OIDC IdP, rules, a policy, a member of another
// tenant's IdP; the first is the default tenant.
func bootFile(t *testing.T, n int) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\nbase_domain: login.example.com\n")
	b.WriteString("rules:\n  - name: everyone\n    add: {roles: '\"member\"'}\ntenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: f%d\n    domains: [\"corp%d.example\", \"www.corp%d.example\"]\n    subdomain: s%d\n", i, i, i, i)
		if i == 0 {
			b.WriteString("    default: true\n")
		}
		if i%2 == 1 {
			b.WriteString("    require_mfa: true\n    members:\n      - idp: fidp0\n        email: pat@corp0.example\n")
		}
		fmt.Fprintf(&b, "    rules:\n      - name: grp\n        map: {from: upstream.groups, to: roles, table: {g%d: admin}}\n", i)
		fmt.Fprintf(&b, "    providers:\n      - id: fidp%d\n        type: oidc\n        issuer: https://idp.example\n        client_id: rg\n        client_secret: s\n", i)
	}
	file, err := config.Parse("realmgate.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// TestCompiler_FileTenantsCompiledOnce: with the admin API on, serve
// builds the broker from the file (BrokerConfig) and the admin API's
// compiler starts from what that built (WithBoot): it compiles no file
// tenant, and its directory serves the broker's very connectors, engines
// and realm tenants. Without a boot, or with one built from another
// configuration, the compiler compiles each file tenant itself, as before.
func TestCompiler_FileTenantsCompiledOnce(t *testing.T) {
	const n = 6
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	file := bootFile(t, n)
	var boot Boot
	bc, err := BrokerConfig(file, nil, logger, logger, KeepBoot(&boot))
	if err != nil {
		t.Fatal(err)
	}
	var other Boot
	if _, err := BrokerConfig(bootFile(t, n), nil, logger, logger, KeepBoot(&other)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		opts     []CompilerOption
		compiles int
		same     bool // serves bc's connectors and engines
	}{
		{"with the broker's boot", []CompilerOption{WithBoot(&boot)}, 0, true},
		{"without a boot", nil, n, false},
		{"with another configuration's boot", []CompilerOption{WithBoot(&other)}, n, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac := NewCompiler(file, nil, logger, tc.opts...)
			api := &admin.State{Version: 1, Tenants: []*admin.Tenant{{Tenant: config.Tenant{ID: "apico",
				Providers: []config.Provider{{ID: "aidp", Type: "oidc", Issuer: "https://idp.example", ClientID: "rg"}}},
				Domains: []admin.Domain{{Name: "api.example", Verified: true}}, Revision: "r1"}}}
			for _, st := range []*admin.State{{}, api} { // startup, then a change
				c, err := ac.Compile(context.Background(), st, false)
				if err != nil {
					t.Fatalf("Compile(%d API tenants) = %v", len(st.Tenants), err)
				}
				if ac.fileCompiles != tc.compiles {
					t.Errorf("file tenants compiled by the compiler = %d, want %d", ac.fileCompiles, tc.compiles)
				}
				served := map[string]broker.IdP{}
				for _, p := range c.Directory.IdPs {
					served[p.ID] = p
				}
				for _, p := range bc.IdPs {
					if got := served[p.ID].Connector == p.Connector; got != tc.same {
						t.Errorf("IdP %q: the broker's connector served = %t, want %t", p.ID, got, tc.same)
					}
				}
				for id, eng := range bc.Rules {
					if got := c.Directory.Rules[id] == eng; got != tc.same {
						t.Errorf("tenant %q: the broker's engine served = %t, want %t", id, got, tc.same)
					}
				}
			}
		})
	}
}

// TestCompiler_BootSameAsCompiled: starting from the broker's boot, the
// compiler serves the same directory as compiling the file's tenants
// itself (realm tenants, IdPs but their connectors, policies, members,
// rules) and refuses an API change that conflicts with file tenants with
// the same problems, before and after the first compilation.
func TestCompiler_BootSameAsCompiled(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	file := bootFile(t, 5)
	var boot Boot
	if _, err := BrokerConfig(file, nil, logger, logger, KeepBoot(&boot)); err != nil {
		t.Fatal(err)
	}
	ok := &admin.State{Version: 1, Tenants: []*admin.Tenant{{Tenant: config.Tenant{ID: "apico", Default: false,
		Members:   []config.Member{{IdP: "fidp2", Email: "x@api.example"}},
		Providers: []config.Provider{{ID: "aidp", Type: "oidc", Issuer: "https://idp.example", ClientID: "rg"}}},
		Domains: []admin.Domain{{Name: "api.example", Verified: true}}, Revision: "r1"}}}
	bad := &admin.State{Version: 2, Tenants: []*admin.Tenant{{Tenant: config.Tenant{ID: "f1", Default: true, Subdomain: "s3",
		Providers: []config.Provider{{ID: "fidp4", Type: "oidc", Issuer: "http://idp.example", ClientID: "rg"}}},
		Domains: []admin.Domain{{Name: "corp2.example", Verified: true}}}}}
	type result struct {
		tenants  []realm.Tenant
		idps     []broker.IdP
		policies map[string]broker.TenantPolicy
		members  []broker.Membership
		rules    []string
		problems []admin.Problem
	}
	run := func(opts ...CompilerOption) []result {
		ac := NewCompiler(file, nil, logger, opts...)
		var out []result
		// Only the refused change is validated (probe): its one IdP has
		// no connector (http issuer), so nothing is fetched.
		for _, st := range []*admin.State{bad, {}, bad, ok, bad} {
			c, err := ac.Compile(context.Background(), st, st == bad)
			var r result
			var ve *admin.ValidationError
			switch {
			case errors.As(err, &ve):
				r.problems = ve.Problems
			case err != nil:
				t.Fatalf("Compile = %v", err)
			default:
				d := c.Directory
				r.tenants, r.policies, r.members = d.Resolver.Tenants(), d.Policies, d.Memberships
				for _, p := range d.IdPs {
					p.Connector = nil
					r.idps = append(r.idps, p)
				}
				for id, eng := range d.Rules {
					if eng != nil {
						r.rules = append(r.rules, id)
					}
				}
				slices.Sort(r.rules)
			}
			out = append(out, r)
		}
		return out
	}
	want, got := run(), run(WithBoot(&boot))
	if len(want[0].problems) < 5 {
		t.Fatalf("problems of the conflicting change = %+v, want its id, domain, subdomain, IdP id and default refused", want[0].problems)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("compilation %d from the boot =\n%+v\nwant (compiled here)\n%+v", i, got[i], want[i])
		}
	}
}

// TestCompiler_StoredAPITenantWithoutFileTenants: an API tenant read from
// the store (trusted: not validated again) gets the same defaults as one
// validated beside the file's tenants, and compiling it costs the same
// beside 2,000 file tenants as beside 10: the file's tenants are not
// copied for it (a restart compiles every API tenant).
func TestCompiler_StoredAPITenantWithoutFileTenants(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := admin.Tenant{Tenant: config.Tenant{ID: "apico", Providers: []config.Provider{
		{ID: "aidp", Type: "oidc", Issuer: "https://idp.example", ClientID: "rg"},
		{ID: "agh", Type: "github", ClientID: "a", ClientSecret: "b"}}},
		Domains: []admin.Domain{{Name: "api.example", Verified: true}}, Revision: "r1"}
	allocs := map[int]float64{}
	for _, n := range []int{10, 2000} {
		ac := NewCompiler(bootFile(t, n), nil, logger)
		stored, validated := ac.apiTenant(api, nil, true), ac.apiTenant(api, nil, false)
		if len(validated.problems) > 0 || len(stored.problems) > 0 {
			t.Fatalf("problems = %v, %v, want none", validated.problems, stored.problems)
		}
		if !reflect.DeepEqual(stored.ct, validated.ct) || !reflect.DeepEqual(stored.rt, validated.rt) {
			t.Errorf("%d file tenants: stored tenant =\n%+v\n%+v\nwant (validated)\n%+v\n%+v", n, stored.ct, stored.rt, validated.ct, validated.rt)
		}
		if stored.ct.Name != "apico" || stored.ct.Providers[0].Name == "" || len(stored.ct.Providers[0].Scopes) == 0 {
			t.Errorf("stored tenant = %+v, want the defaults (name, provider name, scopes)", stored.ct)
		}
		allocs[n] = testing.AllocsPerRun(10, func() { ac.apiTenant(api, nil, true) })
	}
	if allocs[2000] > allocs[10]+50 {
		t.Errorf("allocations compiling a stored API tenant: %.0f beside 2,000 file tenants, %.0f beside 10, want about the same", allocs[2000], allocs[10])
	}
}

// TestCompiler_ValidatedAPITenantWithoutFileTenantsOwnChecks: an API
// tenant written through the API is validated beside the file's tenants
// for what concerns tenants together (domains, ids, the default), but the
// file tenants' own checks, done when the file loaded, do not run again
// (config.ValidateTenants): the allocations of the validation grow by a
// few per file tenant (the indexes of ids and domains), not by the
// hundreds of a tenant's own checks. Beside 100k file tenants an admin API
// write took 0.45-0.88 s before, 0.22-0.40 s after (docs/performance.md).
func TestCompiler_ValidatedAPITenantWithoutFileTenantsOwnChecks(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := admin.Tenant{Tenant: config.Tenant{ID: "apico", Providers: []config.Provider{
		{ID: "aidp", Type: "oidc", Issuer: "https://idp.example", ClientID: "rg"}}},
		Domains: []admin.Domain{{Name: "api.example", Verified: true}}, Revision: "r1"}
	allocs := map[int]float64{}
	for _, n := range []int{10, 2000} {
		ac := NewCompiler(bootFile(t, n), nil, logger)
		if e := ac.apiTenant(api, nil, false); len(e.problems) > 0 {
			t.Fatalf("problems = %v, want none", e.problems)
		}
		allocs[n] = testing.AllocsPerRun(5, func() { ac.apiTenant(api, nil, false) })
	}
	per := (allocs[2000] - allocs[10]) / 1990
	t.Logf("allocations validating an API tenant: %.0f beside 2,000 file tenants, %.0f beside 10: %.1f per file tenant", allocs[2000], allocs[10], per)
	if per > 12 {
		t.Errorf("allocations validating an API tenant: %.0f beside 2,000 file tenants, %.0f beside 10: %.1f per file tenant, want at most 12", allocs[2000], allocs[10], per)
	}
}
