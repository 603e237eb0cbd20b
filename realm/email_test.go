package realm

import (
	"errors"
	"strings"
	"testing"
)

// TestEmail_S74_ParseEmail: only an unambiguous addr-spec is an email; every
// form that some parser reads with another domain is refused.
func TestEmail_S74_ParseEmail(t *testing.T) {
	for _, tc := range []struct{ in, local, domain string }{
		{"alice@acme.test", "alice", "acme.test"},
		{"Alice.Anders@ACME.Test", "Alice.Anders", "acme.test"},
		{"a+tag@sub.acme.test", "a+tag", "sub.acme.test"},
		{"o'brien@acme.test", "o'brien", "acme.test"},
		{"x@acme.test.", "x", "acme.test"},
		{"jörg@müller.test", "jörg", "xn--mller-kva.test"},
		{strings.Repeat("l", 64) + "@acme.test", strings.Repeat("l", 64), "acme.test"},
	} {
		got, err := ParseEmail(tc.in)
		if err != nil || got.Local != tc.local || got.Domain != tc.domain {
			t.Errorf("ParseEmail(%q) = %+v, %v, want %s@%s", tc.in, got, err, tc.local, tc.domain)
		}
	}
	for _, in := range []string{
		"",
		"ceo@acme.test@evil.test",
		`"ceo@acme.test"@evil.test`,
		`"ceo"@acme.test`,
		"ceo@acme.test,x@evil.test",
		"ceo@acme.test;x@evil.test",
		"carol@globex.test@evil.test",
		"ceo@@acme.test",
		"Ceo <ceo@acme.test>",
		"<ceo@acme.test>",
		"ceo@acme.test>",
		"ceo(comment)@acme.test",
		"ceo@acme.test(evil.test)",
		"ceo @acme.test",
		" ceo@acme.test",
		"ceo@acme.test ",
		"ceo@acme .test",
		"ceo\t@acme.test",
		"ceo\n@acme.test",
		"ceo@acme.test\r\nBcc: x@evil.test",
		"ceo\x00@acme.test",
		`ceo\@acme.test@evil.test`,
		`ceo\"@evil.test`,
		"ceo%acme.test@evil.test",
		"acme.test!ceo@evil.test",
		"ceo:x@acme.test",
		"ceo@[127.0.0.1]",
		"ceo@acme.test:443",
		"ceo@",
		"@acme.test",
		"ceo",
		".ceo@acme.test",
		"ceo.@acme.test",
		"c..eo@acme.test",
		"ceo@.acme.test",
		"ceo@acme..test",
		"ceo@acme_test!",
		"ceo\u200b@acme.test",          // zero-width space
		"ceo@acme\u00ad.test",          // soft hyphen
		"ceo\u202e@acme.test",          // right-to-left override
		"ceo\uff20acme.test@evil.test", // fullwidth @ in the local part
		"ceo@evil.test\uff20acme.test", // fullwidth @ in the domain
		"ceo@acme\uff0etest",           // fullwidth full stop
		"ceo@acme.test\x80",
		strings.Repeat("l", 65) + "@acme.test",
		"a@" + strings.Repeat("x", 64) + ".test",
		"a@" + strings.Repeat("abcdefgh.", 28) + "test", // > 254 octets
	} {
		if got, err := ParseEmail(in); !errors.Is(err, ErrBadEmail) || !errors.Is(err, ErrInvalidHint) {
			t.Errorf("ParseEmail(%q) = %+v, %v, want ErrBadEmail", in, got, err)
		}
		if d, err := EmailDomain(in); err == nil {
			t.Errorf("EmailDomain(%q) = %q, want an error", in, d)
		}
	}
}

// TestEmail_S74_NeverRoutes: a hostile login_hint never picks a tenant, and
// a hostile email is never in a verified domain.
func TestEmail_S74_NeverRoutes(t *testing.T) {
	r := testResolver(t, true)
	for _, in := range []string{"ceo@acme.test@evil.test", `"x@evil.test"@acme.test`, "x@evil.test,ceo@acme.test",
		"ceo@evil.test@acme.test", "ceo%evil.test@acme.test"} {
		if res, err := r.Resolve(Request{LoginHint: in}); !errors.Is(err, ErrBadEmail) {
			t.Errorf("Resolve(LoginHint %q) = %+v, %v, want ErrBadEmail", in, res, err)
		}
		for _, tenant := range []string{"acme", "consumers"} {
			if r.DomainVerified(tenant, in) {
				t.Errorf("DomainVerified(%q, %q) = true, want false", tenant, in)
			}
		}
	}
}
