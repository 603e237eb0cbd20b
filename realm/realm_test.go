package realm

import (
	"errors"
	"strings"
	"testing"
)

func testResolver(t *testing.T, def bool) *Resolver {
	t.Helper()
	r, err := New([]Tenant{
		{ID: "acme", Domains: []string{"acme.test", "*.acme.test"}, IdPs: []string{"acme-idp", "acme-saml"}},
		{ID: "eu", Domains: []string{"eu.acme.test"}, IdPs: []string{"eu-idp"}},
		{ID: "consumers", Default: def, IdPs: []string{"github"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve(t *testing.T) {
	r := testResolver(t, true)
	for _, tc := range []struct{ hint, want string }{
		{"alice@acme.test", "acme"},
		{"Alice@ACME.Test.", "acme"},
		{"bob@sales.acme.test", "acme"},
		{"bob@deep.sales.acme.test", "acme"},
		{"carol@eu.acme.test", "eu"}, // exact beats wildcard
		{"dan@x.eu.acme.test", "acme"},
		{"erin@gmail.example", "consumers"},
	} {
		got, err := r.Resolve(Request{LoginHint: tc.hint})
		if err != nil || got.Tenant != tc.want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tc.hint, got.Tenant, err, tc.want)
		}
	}
	if got, _ := r.Resolve(Request{LoginHint: "alice@acme.test"}); len(got.IdPs) != 2 {
		t.Errorf("Resolve(acme).IdPs = %v, want both IdPs", got.IdPs)
	}
}

func TestResolve_Errors(t *testing.T) {
	noDefault := testResolver(t, false)
	for _, tc := range []struct {
		hint string
		want error
	}{
		{"", ErrNoMatch},
		{"not-an-email", ErrInvalidHint},
		{"trailing@", ErrInvalidHint},
		{"@acme.test", ErrInvalidHint},
		{"weird@@acme.test", ErrBadEmail}, // S74: one @ exactly
		{"ceo@acme.test@evil.test", ErrBadEmail},
		{"erin@gmail.example", ErrNoMatch},
		{"x@acme.test.evil.example", ErrNoMatch},
		{"x@notacme.test", ErrNoMatch},
	} {
		if _, err := noDefault.Resolve(Request{LoginHint: tc.hint}); !errors.Is(err, tc.want) {
			t.Errorf("Resolve(%q) error = %v, want %v", tc.hint, err, tc.want)
		}
	}
}

func TestNew_S51_Conflicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tenants []Tenant
	}{
		{"domain in two tenants", []Tenant{{ID: "a", Domains: []string{"x.test"}}, {ID: "b", Domains: []string{"X.test."}}}},
		{"wildcard in two tenants", []Tenant{{ID: "a", Domains: []string{"*.x.test"}}, {ID: "b", Domains: []string{"*.x.test"}}}},
		{"idp in two tenants", []Tenant{{ID: "a", IdPs: []string{"i"}}, {ID: "b", IdPs: []string{"i"}}}},
		{"two defaults", []Tenant{{ID: "a", Default: true}, {ID: "b", Default: true}}},
		{"tenant twice", []Tenant{{ID: "a"}, {ID: "a"}}},
	} {
		if _, err := New(tc.tenants, Options{}); err == nil {
			t.Errorf("New(%s) = nil error, want a conflict", tc.name)
		}
	}
}

func TestTenantOfIdP_S50_DomainVerified_S52(t *testing.T) {
	r := testResolver(t, true)
	if got, ok := r.TenantOfIdP("eu-idp"); !ok || got != "eu" {
		t.Errorf("TenantOfIdP(eu-idp) = %q, %v, want eu", got, ok)
	}
	if _, ok := r.TenantOfIdP("nope"); ok {
		t.Errorf("TenantOfIdP(nope) found a tenant")
	}
	for _, tc := range []struct {
		tenant, email string
		want          bool
	}{
		{"acme", "a@acme.test", true},
		{"acme", "a@x.acme.test", true},
		{"acme", "a@eu.acme.test", false}, // eu's domain
		{"eu", "a@eu.acme.test", true},
		{"consumers", "a@acme.test", false},
		{"acme", "garbage", false},
	} {
		if got := r.DomainVerified(tc.tenant, tc.email); got != tc.want {
			t.Errorf("DomainVerified(%q, %q) = %v, want %v", tc.tenant, tc.email, got, tc.want)
		}
	}
}

// TestEmailDomain_HostileInputs: inputs the fuzzer found must be refused,
// never normalized into a name that is not a host name.
func TestEmailDomain_HostileInputs(t *testing.T) {
	for _, email := range []string{"0@Xn--", "x@..", "alice@acme.test..", "a@" + strings.Repeat("x", 64) + ".example",
		"0@0\xa9", "a@b c.example", "a@exa!mple.com", "a@" + strings.Repeat("a.", 130) + "com"} {
		if d, err := EmailDomain(email); !errors.Is(err, ErrInvalidHint) {
			t.Errorf("EmailDomain(%q) = %q, %v, want ErrInvalidHint", email, d, err)
		}
	}
}
