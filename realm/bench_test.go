package realm_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/realmgate/realmgate/realm"
)

// BenchmarkResolve measures one home-realm resolution per source, on a
// resolver of 1,000 tenants (each with two domains, a subdomain, an IP range
// and two IdPs) plus a default tenant: the work /authorize and the login
// page do per request.
func BenchmarkResolve(b *testing.B) {
	var tenants []realm.Tenant
	for i := range 1000 {
		tenants = append(tenants, realm.Tenant{
			ID:        fmt.Sprintf("t%d", i),
			Name:      fmt.Sprintf("Tenant %d", i),
			Domains:   []string{fmt.Sprintf("t%d.example", i), fmt.Sprintf("*.t%d.example", i)},
			Subdomain: fmt.Sprintf("t%d", i),
			IPRanges:  []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)},
			IdPs:      []string{fmt.Sprintf("t%d-oidc", i), fmt.Sprintf("t%d-saml", i)},
		})
	}
	tenants = append(tenants, realm.Tenant{ID: "consumers", Name: "Personal", Default: true, IdPs: []string{"github"}})
	r, err := realm.New(tenants, realm.Options{BaseDomain: "login.example.test"})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  realm.Request
		want string
	}{
		{"idp_hint", realm.Request{IdPHint: "t500-oidc"}, "t500"},
		{"domain_hint", realm.Request{DomainHint: "t500.example"}, "t500"},
		{"login_hint", realm.Request{LoginHint: "alice@t500.example"}, "t500"},
		{"login_hint_wildcard", realm.Request{LoginHint: "bob@eu.t500.example"}, "t500"},
		{"subdomain", realm.Request{Host: "t500.login.example.test:443"}, "t500"},
		{"ip_range", realm.Request{ClientIP: netip.MustParseAddr("10.1.244.7")}, "t500"},
		{"default_tenant", realm.Request{LoginHint: "carol@gmail.example"}, "consumers"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			res, err := r.Resolve(tc.req)
			if err != nil || res.Tenant != tc.want {
				b.Fatalf("Resolve(%+v) = %q, %v; want %q", tc.req, res.Tenant, err, tc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(tc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
