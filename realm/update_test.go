package realm_test

import (
	"net/netip"
	"testing"

	"github.com/realmgate/realmgate/realm"
)

// TestUpdate_SameAsNew: a resolver updated tenant by tenant answers as one
// built from the final tenants, and the one it was updated from does not
// change.
func TestUpdate_SameAsNew(t *testing.T) {
	before := []realm.Tenant{
		{ID: "acme", Domains: []string{"acme.test", "*.acme.test"}, Subdomain: "acme", IdPs: []string{"acme-idp"}, Default: true},
		{ID: "globex", Domains: []string{"globex.test"}, IdPs: []string{"globex-idp"},
			IPRanges: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		{ID: "initech", Domains: []string{"initech.test"}, IdPs: []string{"initech-idp"}},
	}
	old, err := realm.New(before, realm.Options{BaseDomain: "login.test"})
	if err != nil {
		t.Fatal(err)
	}
	// acme removed; globex's domain and range change; umbrella takes acme's domain and subdomain.
	changed := []realm.Tenant{
		{ID: "globex", Domains: []string{"globex.example"}, IdPs: []string{"globex-idp", "globex-saml"},
			IPRanges: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}},
		{ID: "umbrella", Domains: []string{"acme.test"}, Subdomain: "acme", IdPs: []string{"acme-idp"}},
	}
	upd, err := old.Update([]string{"acme"}, changed)
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	want, err := realm.New([]realm.Tenant{before[2], changed[0], changed[1]}, realm.Options{BaseDomain: "login.test"})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []realm.Request{
		{LoginHint: "u@acme.test"}, {LoginHint: "u@eu.acme.test"}, {LoginHint: "u@globex.test"}, {LoginHint: "u@globex.example"},
		{LoginHint: "u@initech.test"}, {Host: "acme.login.test"}, {ClientIP: netip.MustParseAddr("10.1.2.3")},
		{ClientIP: netip.MustParseAddr("10.2.0.9")}, {IdPHint: "globex-saml"}, {IdPHint: "acme-idp"}, {LoginHint: "u@nowhere.test"},
	}
	for _, req := range reqs {
		got, gerr := upd.Resolve(req)
		exp, werr := want.Resolve(req)
		if got.Tenant != exp.Tenant || got.Source != exp.Source || (gerr == nil) != (werr == nil) {
			t.Errorf("Update: Resolve(%+v) = %+v, %v; New: %+v, %v", req, got, gerr, exp, werr)
		}
	}
	if o, _ := old.Resolve(realm.Request{LoginHint: "u@acme.test"}); o.Tenant != "acme" {
		t.Errorf("old resolver changed: acme.test -> %q, want acme", o.Tenant)
	}
	if _, ok := upd.DefaultTenant(); ok {
		t.Error("the default tenant was removed, yet the updated resolver has one")
	}
	for _, bad := range []realm.Tenant{
		{ID: "thief", Domains: []string{"initech.test"}},
		{ID: "thief", IdPs: []string{"initech-idp"}},
		{ID: "thief", Subdomain: "acme"},
	} {
		if _, err := old.Update(nil, []realm.Tenant{bad}); err == nil {
			t.Errorf("Update(add %+v) = nil, want a conflict", bad)
		}
	}
}
