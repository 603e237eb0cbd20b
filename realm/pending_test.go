package realm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// pendingResolver has acme with one active and one pending IdP, globex
// with a pending IdP only, and a default tenant whose IdP is pending.
func pendingResolver(t *testing.T) *Resolver {
	t.Helper()
	r, err := New([]Tenant{
		{ID: "acme", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp", "acme-new"}, Pending: []string{"acme-new"}},
		{ID: "globex", Domains: []string{"globex.test"}, Subdomain: "globex", IdPs: []string{"globex-new"}, Pending: []string{"globex-new"}},
		{ID: "consumers", Default: true, IdPs: []string{"social"}, Pending: []string{"social"}},
	}, Options{BaseDomain: "login.test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPendingIdP_Resolve: no source routes to a pending IdP; a tenant whose
// only IdPs are pending resolves with no IdP (no sign-in method yet), and
// the pending IdP still names its tenant (S50).
func TestPendingIdP_Resolve(t *testing.T) {
	r := pendingResolver(t)
	for _, tc := range []struct {
		name       string
		req        Request
		wantTenant string
		wantIdPs   []string
		wantErr    error
	}{
		{"email of a mixed tenant", Request{LoginHint: "a@acme.test"}, "acme", []string{"acme-idp"}, nil},
		{"email of a pending-only tenant", Request{LoginHint: "a@globex.test"}, "globex", nil, nil},
		{"domain_hint of a pending-only tenant", Request{DomainHint: "globex.test"}, "globex", nil, nil},
		{"subdomain of a pending-only tenant", Request{Host: "globex.login.test"}, "globex", nil, nil},
		{"default tenant with a pending IdP", Request{LoginHint: "x@gmail.example"}, "consumers", nil, nil},
		{"idp_hint naming a pending IdP", Request{IdPHint: "acme-new"}, "", nil, ErrNoMatch},
		{"idp_hint naming a pending IdP falls through", Request{IdPHint: "acme-new", LoginHint: "a@acme.test"}, "acme", []string{"acme-idp"}, nil},
		{"remembered pending IdP", Request{RememberedIdP: "globex-new"}, "", nil, ErrNoMatch},
		{"idp_hint naming an active IdP", Request{IdPHint: "acme-idp"}, "acme", []string{"acme-idp"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(tc.req)
			if !errors.Is(err, tc.wantErr) || got.Tenant != tc.wantTenant || !slices.Equal(got.IdPs, tc.wantIdPs) {
				t.Fatalf("Resolve(%+v) = %q %v, %v, want %q %v, %v", tc.req, got.Tenant, got.IdPs, err, tc.wantTenant, tc.wantIdPs, tc.wantErr)
			}
		})
	}
	// A client that may not use the pending IdP: refused, as before.
	noGlobex := func(tenant, idp string) bool { return tenant != "globex" }
	if _, err := r.Resolve(Request{LoginHint: "a@globex.test", Allowed: noGlobex}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Resolve(globex, client without globex) error = %v, want ErrNotAllowed", err)
	}
	if got, err := r.Resolve(Request{LoginHint: "a@acme.test", Allowed: func(string, string) bool { return true }}); err != nil || !slices.Equal(got.IdPs, []string{"acme-idp"}) {
		t.Errorf("Resolve(acme, any client) = %v, %v, want [acme-idp]", got.IdPs, err)
	}
	for idp, want := range map[string]string{"acme-new": "acme", "globex-new": "globex"} {
		if got, ok := r.TenantOfIdP(idp); !ok || got != want {
			t.Errorf("TenantOfIdP(%q) = %q, %v, want %q", idp, got, ok, want)
		}
	}
	if !r.IsPending("acme-new") || r.IsPending("acme-idp") || r.IsPending("unknown") {
		t.Error("IsPending: want acme-new only")
	}
}

// TestPendingIdP_Activation: Update with the IdP no longer pending routes
// users to it; New refuses a pending IdP the tenant does not list.
func TestPendingIdP_Activation(t *testing.T) {
	r := pendingResolver(t)
	r2, err := r.Update(nil, []Tenant{{ID: "globex", Domains: []string{"globex.test"}, IdPs: []string{"globex-new"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r2.Resolve(Request{LoginHint: "a@globex.test"}); err != nil || !slices.Equal(got.IdPs, []string{"globex-new"}) {
		t.Errorf("after activation Resolve(globex) = %v, %v, want [globex-new]", got.IdPs, err)
	}
	if got, _ := r.Resolve(Request{LoginHint: "a@globex.test"}); len(got.IdPs) != 0 {
		t.Errorf("the old resolver changed: %v", got.IdPs)
	}
	_, err = New([]Tenant{{ID: "acme", IdPs: []string{"a"}, Pending: []string{"b"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `pending idp "b"`) {
		t.Errorf("New with a pending IdP outside IdPs: %v, want an error naming it", err)
	}
}
