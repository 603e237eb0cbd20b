package realm

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadEmail means a string is not one plain email address (SECURITY
// S74). It wraps ErrInvalidHint, so discovery treats it as an unusable hint.
var ErrBadEmail = fmt.Errorf("%w: not a plain email address", ErrInvalidHint)

// Length limits of an address (RFC 5321 §4.5.3.1.1 and §4.5.3.1.3: a
// forward-path holds at most 256 octets including the angle brackets).
const (
	MaxEmailLen      = 254
	maxEmailLocalLen = 64
)

// Email is an address ParseEmail accepted.
type Email struct {
	// Local is the local part, as given (its case is kept: only the
	// domain's owner may interpret it).
	Local string
	// Domain is the domain part, normalized as NormalizeDomain does.
	Domain string
}

// String returns the address with its normalized domain.
func (e Email) String() string { return e.Local + "@" + e.Domain }

// ParseEmail accepts only an unambiguous addr-spec (SECURITY S74): a
// dot-atom local part (RFC 5322 §3.4.1, with the UTF-8 letters of RFC 6531
// §3.3), exactly one "@", and a domain that is a host name (RFC 1035
// §2.3.4, IDNA names in their ASCII form), at most MaxEmailLen octets.
//
// Everything the grammar allows but parsers read differently is refused:
// quoted local parts, comments (parentheses), display names and angle
// brackets, lists (commas, semicolons), spaces, backslashes, control and
// invisible format characters, a second "@", address literals ([...]), and
// the source-route characters "%" and "!" ("ceo%acme.test@evil.test"). So
// `ceo@acme.test@evil.test`, `"ceo@acme.test"@evil.test` and
// `ceo@acme.test,x@evil.test` each fail, where one parser would read the
// domain evil.test and another acme.test.
func ParseEmail(s string) (Email, error) {
	bad := func(why string) (Email, error) {
		return Email{}, fmt.Errorf("%w: %s", ErrBadEmail, why)
	}
	switch {
	case s == "":
		return bad("empty")
	case len(s) > MaxEmailLen:
		return bad(fmt.Sprintf("longer than %d octets", MaxEmailLen))
	case !utf8.ValidString(s):
		return bad("not UTF-8")
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return bad("no @")
	case strings.Contains(domain, "@"):
		return bad("more than one @")
	case local == "":
		return bad("empty local part")
	case domain == "":
		return bad("empty domain")
	case len(local) > maxEmailLocalLen:
		return bad(fmt.Sprintf("local part longer than %d octets", maxEmailLocalLen))
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return bad("local part is not a dot-atom")
	}
	for _, r := range local {
		if !atext(r) && r != '.' {
			return bad(fmt.Sprintf("character %q in the local part", r))
		}
	}
	for _, r := range domain {
		// NormalizeDomain does the host-name check; it must not see what it
		// would trim or what IDNA mapping would fold away (U+FF20, U+FE6B
		// and U+FF0E are "@" and "." in other widths, refused as such).
		if r <= ' ' || r == 0x7f || !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) || strings.ContainsRune("@\"(),:;<>[\\]%!", r) ||
			(r >= 0x80 && !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r))) {
			return bad(fmt.Sprintf("character %q in the domain", r))
		}
	}
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Email{}, fmt.Errorf("%w: domain: %w", ErrBadEmail, err)
	}
	return Email{Local: local, Domain: d}, nil
}

// atext reports whether r may appear in a dot-atom (RFC 5322 §3.2.3), less
// the source-route characters "%" and "!", plus the UTF-8 letters, digits
// and combining marks of RFC 6531 §3.3.
func atext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r < 0x80:
		return strings.ContainsRune("#$&'*+-/=?^_`{|}~", r)
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
}
