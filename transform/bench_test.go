package transform

import (
	"context"
	"fmt"
	"testing"
)

// benchRules is a realistic 5-rule tenant policy.
func benchRules() []Rule {
	return []Rule{
		{Name: "email from upn", If: `has(upstream.upn)`, Set: set("email", `lower(upstream.upn)`)},
		{Name: "username", Set: set("preferred_username", `mailPrefix(get(upstream, "upn", ""))`)},
		{Name: "groups to roles", Map: &Map{From: "upstream.groups", To: "roles",
			Table: map[string]string{"Finance-Admins": "admin", "Finance-Readers": "reader"}}},
		{Name: "everyone is a member", Add: set("roles", `"member"`)},
		{Name: "employees only", If: `has(upstream.employee_type) && upstream.employee_type != "employee"`, Deny: "only employees"},
	}
}

func benchInput() Input {
	return Input{
		Upstream: map[string]any{
			"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":       "Alice.Smith@contoso.com",
			"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "Alice",
			"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname":   "Smith",
			"groups":        []any{"Finance-Admins", "Domain Users", "VPN-Users"},
			"employee_type": "employee",
		},
		Claims: map[string]any{"name": "Alice Smith", "email_verified": true},
		Tenant: "contoso", IdP: "contoso-adfs", Client: "notes-app",
	}
}

func BenchmarkApply(b *testing.B) {
	e := mustCompile(b, nil, benchRules(), Options{Tenant: "contoso"})
	in := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Apply(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply20 is the 20-rule policy (target <= 20 us per sign-in).
func BenchmarkApply20(b *testing.B) {
	var rules []Rule
	for i := 0; i < 4; i++ {
		for _, r := range benchRules() {
			r.Name = fmt.Sprintf("%s %d", r.Name, i)
			if r.Set != nil {
				r.Set = set(fmt.Sprintf("%s_%d", r.Set[0].Claim, i), r.Set[0].Expr)
			}
			rules = append(rules, r)
		}
	}
	e := mustCompile(b, nil, rules, Options{Tenant: "contoso"})
	in := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Apply(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile is the load-time cost of one tenant's 5-rule policy:
// "shared" when other tenants use the same expressions (the program cache
// hits), "unique" when every expression is new.
func BenchmarkCompile(b *testing.B) {
	b.Run("shared", func(b *testing.B) {
		rules := benchRules()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compile(nil, rules, Options{Tenant: "contoso"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unique", func(b *testing.B) {
		b.ReportAllocs()
		keep := make([]*Engine, 0, 1024)
		i := 0
		for b.Loop() {
			i++
			rules := benchRules()
			for j := range rules {
				if rules[j].If != "" {
					rules[j].If = fmt.Sprintf("%s && %d > 0", rules[j].If, i)
				}
				if rules[j].Set != nil {
					rules[j].Set = set(rules[j].Set[0].Claim, fmt.Sprintf("%s + \"%d\"", rules[j].Set[0].Expr, i))
				}
			}
			e, err := Compile(nil, rules, Options{Tenant: "contoso"})
			if err != nil {
				b.Fatal(err)
			}
			if len(keep) < cap(keep) {
				keep = append(keep, e) // keep some alive, as a running server does
			}
		}
	})
}

// BenchmarkCompile10kTenants is the load-time cost of 10,000 tenants'
// 5-rule policies, as a server start or a full reload pays it: "recipes"
// when tenants differ only in data (map tables, deny messages, which
// recipes they pick), so the program cache compiles each expression once;
// "unique" when every tenant's expressions carry its own literal (its
// domain), so every expression is parsed, checked and planned.
// Run with -benchtime 1x: one op is all 10,000 tenants.
func BenchmarkCompile10kTenants(b *testing.B) {
	const tenants = 10_000
	policy := func(i int, unique bool) []Rule {
		rules := benchRules()
		rules[2].Map.Table = map[string]string{fmt.Sprintf("T%d-Admins", i): "admin", fmt.Sprintf("T%d-Readers", i): "reader"}
		rules[4].Deny = fmt.Sprintf("only employees of tenant %d", i)
		if unique {
			rules[0].If = fmt.Sprintf(`has(upstream.upn) && emailDomain(upstream.upn) == "t%d.example"`, i)
			rules[1].Set = set("preferred_username", fmt.Sprintf(`mailPrefix(get(upstream, "upn", "")) + "@t%d"`, i))
		}
		return rules[:len(rules)-i%2] // half the tenants leave out the last recipe
	}
	for _, tc := range []struct {
		name   string
		unique bool
	}{{"recipes", false}, {"unique", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			run := 0
			for b.Loop() {
				run++
				engines := make([]*Engine, tenants)
				for i := range tenants {
					// A new run number keeps the unique expressions new on every op.
					e, err := Compile(nil, policy(i+run*tenants, tc.unique), Options{Tenant: fmt.Sprintf("t%d", i)})
					if err != nil {
						b.Fatal(err)
					}
					engines[i] = e
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(run*tenants), "µs/tenant")
			}
		})
	}
}
