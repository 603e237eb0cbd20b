package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// problemsOf returns err's problems (none for nil).
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	return ve.Problems
}

// TestValidateTenants_OwnChecksOfTheNamedTenantsOnly: validating a file's
// tenants with one more (an admin API change), ValidateTenants reports
// what Validate reports except the own problems of the tenants it was not
// asked about: the new tenant's own problems, and every problem across
// tenants (a domain, a subdomain, an IdP id, the default tenant claimed
// twice, with the line of the file's claim), are the same.
func TestValidateTenants_OwnChecksOfTheNamedTenantsOnly(t *testing.T) {
	data := tenantsYAML(6, "s", func(i int) string {
		if i == 2 {
			return "    subdomain: two\n    default: true\n"
		}
		return ""
	})
	file, err := Parse("t.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An own problem of a file tenant (a file that loaded cannot have one:
	// made here, as a check that ValidateTenants does not look for it).
	file.Tenants[1].Language = "klingon"
	file.Tenants[1].Domains = append(file.Tenants[1].Domains, "bad domain")
	for _, tc := range []struct {
		name  string
		add   Tenant
		wants []string // fields of the new tenant's problems
	}{
		{"valid", Tenant{ID: "n1", Domains: []string{"n1.example"},
			Providers: []Provider{{ID: "n1-idp", Type: "github", ClientID: "c", ClientSecret: "s"}}}, nil},
		{"own problems", Tenant{ID: "n2", Language: "xx", Domains: []string{"bad domain"},
			Providers: []Provider{{ID: "n2-idp", Type: "oidc", Issuer: "http://idp.example", ClientID: "c"}}},
			[]string{"tenants[6].domains[0]", "tenants[6].language", "tenants[6].providers[0].issuer"}},
		{"claims across tenants", Tenant{ID: "t3", Subdomain: "two", Default: true, Domains: []string{"corp4.example"},
			Providers: []Provider{{ID: "idp5", Type: "github", ClientID: "c", ClientSecret: "s"}}},
			[]string{"tenants[6].default", "tenants[6].domains[0]", "tenants[6].id", "tenants[6].providers[0].id", "tenants[6].subdomain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *file
			c.Tenants = append(slices.Clip(file.Tenants), tc.add)
			c.ApplyDefaults()
			all := problemsOf(t, c.Validate())
			got := problemsOf(t, c.ValidateTenants(len(c.Tenants)-1))
			var want []Problem
			for _, p := range all {
				if p.Field != "tenants[1].language" && p.Field != "tenants[1].domains[1]" {
					want = append(want, p)
				}
			}
			if len(want) != len(all)-2 {
				t.Fatalf("Validate = %v, want the file tenant's own problems (tenants[1].language, .domains[1]) among them", all)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ValidateTenants(6) = %v\nwant %v", got, want)
			}
			var fields []string
			for _, p := range got {
				if strings.HasPrefix(p.Field, "tenants[6]") && !slices.Contains(fields, cutIndexTail(p.Field)) {
					fields = append(fields, cutIndexTail(p.Field))
				}
			}
			slices.Sort(fields)
			if !slices.Equal(fields, tc.wants) {
				t.Errorf("ValidateTenants(6) problems at %v, want at %v (all: %v)", fields, tc.wants, got)
			}
			if tc.name == "claims across tenants" && !strings.Contains(problemText(got), "(line ") {
				t.Errorf("ValidateTenants(6) = %v, want the domain claim to name the file's line", got)
			}
		})
	}
}

// cutIndexTail drops what follows the field a problem names, past its
// first element (tenants[6].rules[0].if stays; a deeper path is cut to it).
func cutIndexTail(f string) string {
	parts := strings.SplitN(f, ".", 4)
	if len(parts) > 3 {
		parts = parts[:3]
	}
	return strings.Join(parts, ".")
}

func problemText(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Message + "\n")
	}
	return b.String()
}

func TestValidHostname(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"example.com", true},
		{"corp7.example.", true},
		{"a.b1", true},
		{"xn--bcher-kva.example", true},
		{"10.0.0.1", false}, // an IPv4 address
		{"example.123", false},
		{"example.00000000000000000000000000000001", false}, // all digits, too long for an int
		{"localhost", true},
		{"single", false},
		{"bad domain.example", false},
		{"", false},
	} {
		if got := validHostname(tc.in); got != tc.want {
			t.Errorf("validHostname(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
