package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// parseBothWays parses data with one decoder and with the tenants decoded
// in three parts at once, and fails unless the second took the parallel
// path.
// parseBothWays parses data with one decoder and with the tenants decoded
// in three parts at once; the lookups each made, in order, must be the same.
func parseBothWays(t *testing.T, data []byte, env map[string]string) (plain, parts *Config, plainErr, partsErr error) {
	t.Helper()
	var looked []string
	lookup := func(k string) (string, bool) { looked = append(looked, k); v, ok := env[k]; return v, ok }
	defer func(m, p int) { parallelDecodeMin, decodeParts = m, p }(parallelDecodeMin, decodeParts)
	parallelDecodeMin = 1 << 30
	plain, plainErr = Parse("t.yaml", data, lookup)
	plainLooked := looked
	looked = nil
	parallelDecodeMin, decodeParts = 4, 3
	parts, partsErr = Parse("t.yaml", data, lookup)
	if !slices.Equal(looked, plainLooked) {
		t.Errorf("lookups in parts = %q, want (one decoder) %q", looked, plainLooked)
	}
	return plain, parts, plainErr, partsErr
}

func tenantsYAML(n int, secret string, extra func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\nclients:\n  - id: app\n    redirect_uris: [\"https://app.example.com/cb\"]\n    allowed_tenants: [\"*\"]\ntenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: t%d\n    domains: [\"corp%d.example\"]\n    providers:\n      - id: idp%d\n        type: oidc\n        issuer: https://idp%d.example\n        client_id: rg\n        client_secret: %s\n%s", i, i, i, i, secret, extra(i))
	}
	b.WriteString("session:\n  lifetime: 15m\n")
	return []byte(b.String())
}

// TestDecodeTenantsParallel_SameAsOneDecoder: decoding a tenants list in
// parts gives what one decoder gives: the same values (durations,
// ${VAR} expansion, defaults), the same line and "given" flag for every
// field path, and the same problems on the same lines in the same order.
func TestDecodeTenantsParallel_SameAsOneDecoder(t *testing.T) {
	env := map[string]string{"SECRET": "s$3cret", "NAME0": "a", "NAME1": "b", "NAME2": "c", "NAME3": "d"}
	tests := []struct {
		name      string
		secret    string
		extra     func(i int) string
		valid     bool
		wantParts bool
	}{
		{"valid", "s$$3cret", func(i int) string {
			if i%3 == 0 {
				return "    name: Tenant $$ 1\n"
			}
			return ""
		}, true, true},
		{"${VAR} in tenants: one decoder looks them up in order", "${SECRET}", func(i int) string {
			return fmt.Sprintf("    name: ${NAME%d}\n", i%4)
		}, true, false},
		{"problems in many tenants", "s", func(i int) string {
			switch i % 7 {
			case 1:
				return "    colour: blue\n"
			case 2:
				return "        clock_skew: fifteen\n"
			case 3:
				return "    domains: [\"corp1.example\"]\n" // defined twice, and a domain of tenant 1
			case 4:
				return "        client_id: ${NOT_SET}\n"
			case 5:
				return "    providers: {}\n"
			}
			return ""
		}, false, false},
		{"merge keys and aliases inside a tenant", "s", func(i int) string {
			return fmt.Sprintf("    base%d: &b%d {x: 1}\n", i, i)
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain, parts, plainErr, partsErr := parseBothWays(t, tenantsYAML(23, tc.secret, tc.extra), env)
			if (plainErr == nil) != tc.valid {
				t.Fatalf("Parse (one decoder) = %v, want valid %v", plainErr, tc.valid)
			}
			if fmt.Sprint(partsErr) != fmt.Sprint(plainErr) {
				t.Fatalf("Parse in parts = %v\nwant (one decoder) %v", partsErr, plainErr)
			}
			if !tc.valid {
				pp, _ := partsErr.(*ValidationError)
				op, _ := plainErr.(*ValidationError)
				if pp == nil || op == nil || !reflect.DeepEqual(pp.Problems, op.Problems) {
					t.Fatalf("problems in parts = %+v\nwant %+v", pp, op)
				}
				return
			}
			if (parts.src.tenantParts != nil) != tc.wantParts {
				t.Fatalf("decoded in parts: %v, want %v", parts.src.tenantParts != nil, tc.wantParts)
			}
			if plain.src.tenantParts != nil {
				t.Fatal("the tenants were decoded in parts with parallel decoding off")
			}
			sameSources(t, "in parts", parts.src, plain.src)
			for _, path := range []string{"tenants[22].providers[0].nope", "tenants[99]", "tenants[x]", "tenants["} {
				if got, want := parts.src.lineOf(path), plain.src.lineOf(path); got != want {
					t.Errorf("lineOf(%q) = %d, want %d", path, got, want)
				}
			}
			plain.src, parts.src = source{}, source{}
			if !reflect.DeepEqual(parts, plain) {
				t.Errorf("config decoded in parts differs from one decoder's")
			}
			if got := parts.Tenants[0].Providers[0].ClientSecret; got != "s$3cret" {
				t.Errorf("client_secret = %q, want s$3cret", got)
			}
		})
	}
}

// TestDecodeTenantsParallel_BudgetAsOneDecoder: a list that exhausts the
// node budget (merge keys multiplying a tenant) is reported as by one
// decoder: the parts give it back.
func TestDecodeTenantsParallel_BudgetAsOneDecoder(t *testing.T) {
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\nm0: &m0 {id: x}\n")
	for i := 1; i < 7; i++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	b.WriteString("tenants:\n")
	for range 8 {
		b.WriteString("  - <<: *m6\n")
	}
	_, _, plainErr, partsErr := parseBothWays(t, []byte(b.String()), nil)
	if plainErr == nil || !strings.Contains(plainErr.Error(), "document too large") {
		t.Fatalf("Parse (one decoder) = %v, want document too large", plainErr)
	}
	if fmt.Sprint(partsErr) != fmt.Sprint(plainErr) {
		t.Errorf("Parse in parts = %v\nwant (one decoder) %v", partsErr, plainErr)
	}
}
