package broker

// The shapes of PKCE values (RFC 7636), checked byte by byte: on every
// /authorize and code exchange, where a regular expression cost more than
// the check itself (pkce_test.go compares them with the expressions they
// replace).

// isS256Challenge reports whether s has the shape of an S256
// code_challenge (RFC 7636 §4.2): the base64url form of a SHA-256 value,
// 43 characters. dpop_jkt (RFC 9449 §10), a SHA-256 JWK thumbprint, has
// the same shape.
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !base64URLByte(s[i]) { // keys.go
			return false
		}
	}
	return true
}

// isCodeVerifier reports whether s is a well-formed code_verifier (RFC
// 7636 §4.1): 43 to 128 unreserved characters (S03).
func isCodeVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		// RFC 3986 §2.3 unreserved: base64url's alphabet, '.' and '~'.
		if c := s[i]; !base64URLByte(c) && c != '.' && c != '~' {
			return false
		}
	}
	return true
}
