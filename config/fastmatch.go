package config

// Hand-written matchers for the patterns checked once per tenant, field or
// map key: a 100k-tenant file runs them millions of times, and
// regexp.MatchString cost about 4 % of its load. Each is equal to the
// regular expression in its comment (TestFastMatch_SameAsRegexp).

// isID matches ^[a-z0-9][a-z0-9_-]{0,62}$ (tenant and IdP ids).
func isID(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isLabel matches ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ (a DNS label).
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// isPlainKey matches ^[A-Za-z0-9_-]+$ (a map key written .name in a path).
func isPlainKey(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') }
