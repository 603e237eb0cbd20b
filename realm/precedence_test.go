package realm

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// precedenceResolver has one tenant per source so every pair can be told apart.
func precedenceResolver(t testing.TB) *Resolver {
	t.Helper()
	r, err := New([]Tenant{
		{ID: "by-idp", IdPs: []string{"idp-hinted"}},
		{ID: "by-domain-hint", Domains: []string{"hinted.example"}, IdPs: []string{"idp-dh"}},
		{ID: "by-email", Domains: []string{"mail.example"}, IdPs: []string{"idp-email"}},
		{ID: "by-host", Subdomain: "hosty", IdPs: []string{"idp-host"}},
		{ID: "by-ip", IPRanges: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}, IdPs: []string{"idp-ip"}},
		{ID: "by-cookie", IdPs: []string{"idp-cookie"}},
		{ID: "consumers", Default: true, IdPs: []string{"github", "google"}},
	}, Options{BaseDomain: "login.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sources lists each source with the request field that triggers it and the
// tenant it leads to, in precedence order.
var sources = []struct {
	src    Source
	set    func(*Request)
	tenant string
}{
	{SourceIdPHint, func(r *Request) { r.IdPHint = "idp-hinted" }, "by-idp"},
	{SourceDomainHint, func(r *Request) { r.DomainHint = "HINTED.example." }, "by-domain-hint"},
	{SourceLoginHint, func(r *Request) { r.LoginHint = "alice@mail.example" }, "by-email"},
	{SourceSubdomain, func(r *Request) { r.Host = "hosty.login.example.test:8443" }, "by-host"},
	{SourceIP, func(r *Request) { r.ClientIP = netip.MustParseAddr("203.0.113.77") }, "by-ip"},
	{SourceCookie, func(r *Request) { r.RememberedIdP = "idp-cookie" }, "by-cookie"},
}

func TestResolve_EachSource(t *testing.T) {
	r := precedenceResolver(t)
	for _, s := range sources {
		t.Run(string(s.src), func(t *testing.T) {
			var req Request
			s.set(&req)
			got, err := r.Resolve(req)
			if err != nil || got.Tenant != s.tenant || got.Source != s.src {
				t.Fatalf("Resolve(%+v) = %+v, %v, want tenant %q from %s", req, got, err, s.tenant, s.src)
			}
		})
	}
	t.Run("ipv6 range", func(t *testing.T) {
		got, _ := r.Resolve(Request{ClientIP: netip.MustParseAddr("2001:db8::1")})
		if got.Tenant != "by-ip" {
			t.Fatalf("Resolve(2001:db8::1) = %q, want by-ip", got.Tenant)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		if _, err := r.Resolve(Request{Host: "login.example.test", ClientIP: netip.MustParseAddr("198.51.100.1")}); !errors.Is(err, ErrNoMatch) {
			t.Fatalf("Resolve(no source) error = %v, want ErrNoMatch", err)
		}
	})
}

// TestResolve_PairwisePrecedence checks every pair of sources: the one
// earlier in the documented order wins.
func TestResolve_PairwisePrecedence(t *testing.T) {
	r := precedenceResolver(t)
	for i, hi := range sources {
		for _, lo := range sources[i+1:] {
			t.Run(fmt.Sprintf("%s>%s", hi.src, lo.src), func(t *testing.T) {
				var req Request
				hi.set(&req)
				lo.set(&req)
				got, err := r.Resolve(req)
				if err != nil || got.Tenant != hi.tenant {
					t.Fatalf("Resolve(%s and %s) = %q, %v, want %q", hi.src, lo.src, got.Tenant, err, hi.tenant)
				}
			})
		}
	}
}

// TestResolve_AllowedFiltersEverySource: a source naming a tenant or IdP the
// client may not use is skipped and the next source decides; a hint never
// reaches a forbidden IdP.
func TestResolve_AllowedFiltersEverySource(t *testing.T) {
	r := precedenceResolver(t)
	for i, hi := range sources {
		for _, lo := range sources[i+1:] {
			t.Run(fmt.Sprintf("forbid %s, fall to %s", hi.src, lo.src), func(t *testing.T) {
				req := Request{Allowed: func(tenant, idp string) bool { return tenant != hi.tenant }}
				hi.set(&req)
				lo.set(&req)
				got, err := r.Resolve(req)
				if err != nil || got.Tenant != lo.tenant {
					t.Fatalf("Resolve = %q, %v, want fallback %q", got.Tenant, err, lo.tenant)
				}
			})
		}
	}
	t.Run("idp hint to a forbidden idp of an allowed tenant", func(t *testing.T) {
		req := Request{IdPHint: "google", Allowed: func(tenant, idp string) bool { return idp != "google" }}
		if got, err := r.Resolve(req); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Resolve(forbidden idp_hint) = %+v, %v, want ErrNotAllowed", got, err)
		}
	})
	t.Run("tenant idps filtered", func(t *testing.T) {
		req := Request{LoginHint: "x@gmail.example", Allowed: func(tenant, idp string) bool { return idp == "github" }}
		got, err := r.Resolve(req)
		if err != nil || len(got.IdPs) != 1 || got.IdPs[0] != "github" {
			t.Fatalf("Resolve = %+v, %v, want only github", got, err)
		}
	})
	t.Run("forbidden cookie falls through silently", func(t *testing.T) {
		req := Request{RememberedIdP: "idp-cookie", Allowed: func(tenant, idp string) bool { return tenant != "by-cookie" }}
		if _, err := r.Resolve(req); !errors.Is(err, ErrNoMatch) {
			t.Fatalf("Resolve(forbidden cookie) error = %v, want ErrNoMatch", err)
		}
	})
}

func TestDomains_Normalization(t *testing.T) {
	r, err := New([]Tenant{
		{ID: "muenchen", Domains: []string{"münchen.example"}, IdPs: []string{"m"}},
		{ID: "wild", Domains: []string{"*.wild.example"}, IdPs: []string{"w"}},
		{ID: "apex", Domains: []string{"wild.example"}, IdPs: []string{"a"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ email, want string }{
		{"a@MÜNCHEN.example", "muenchen"},
		{"a@xn--mnchen-3ya.example", "muenchen"},
		{"a@xn--mnchen-3ya.example.", "muenchen"},
		{"a@wild.example", "apex"},     // "*." matches true subdomains only
		{"a@x.wild.example", "wild"},   // ...and this is one
		{"a@x.y.wild.example", "wild"}, // at any depth
	} {
		got, err := r.Resolve(Request{LoginHint: tc.email})
		if err != nil || got.Tenant != tc.want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tc.email, got.Tenant, err, tc.want)
		}
	}
	if _, err := New([]Tenant{{ID: "a", Domains: []string{"MÜNCHEN.example"}}, {ID: "b", Domains: []string{"xn--mnchen-3ya.example"}}}, Options{}); err == nil {
		t.Errorf("New accepted one IDN domain in two tenants (unicode and punycode forms)")
	}
}

func TestSubdomain_OnlyOneLabel(t *testing.T) {
	r := precedenceResolver(t)
	for _, host := range []string{"x.hosty.login.example.test", "hosty.login.example.test.evil.example", "hosty.example.test", "HOSTY.login.example.test"} {
		got, err := r.Resolve(Request{Host: host})
		want := host == "HOSTY.login.example.test"
		if (err == nil && got.Tenant == "by-host") != want {
			t.Errorf("Resolve(Host %q) = %q, %v; want match %v", host, got.Tenant, err, want)
		}
	}
}
