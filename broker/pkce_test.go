package broker

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions isS256Challenge and isCodeVerifier replace: the
// reference they must agree with on every input.
var (
	challengeShape = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	verifierShape  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
)

func TestPKCEShapes_S03(t *testing.T) {
	v43 := strings.Repeat("a", 43)
	for _, tc := range []struct {
		name                string
		in                  string
		challenge, verifier bool
	}{
		{"43 base64url", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", true, true},
		{"42 characters", v43[:42], false, false},
		{"44 characters", v43 + "a", false, true},
		{"128 characters", strings.Repeat("a", 128), false, true},
		{"129 characters", strings.Repeat("a", 129), false, false},
		{"unreserved . and ~", v43[:41] + ".~", false, true},
		{"padding", v43[:42] + "=", false, false},
		{"plus and slash (base64, not base64url)", v43[:41] + "+/", false, false},
		{"space", v43[:42] + " ", false, false},
		{"newline at the end", v43 + "\n", false, false},
		{"a multi-byte character", v43[:41] + "é", false, false},
		{"NUL", v43[:42] + "\x00", false, false},
		{"empty", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isS256Challenge(tc.in); got != tc.challenge {
				t.Errorf("isS256Challenge(%q) = %v, want %v", tc.in, got, tc.challenge)
			}
			if got := isCodeVerifier(tc.in); got != tc.verifier {
				t.Errorf("isCodeVerifier(%q) = %v, want %v", tc.in, got, tc.verifier)
			}
			if got, ref := isS256Challenge(tc.in), challengeShape.MatchString(tc.in); got != ref {
				t.Errorf("isS256Challenge(%q) = %v, the expression says %v", tc.in, got, ref)
			}
			if got, ref := isCodeVerifier(tc.in), verifierShape.MatchString(tc.in); got != ref {
				t.Errorf("isCodeVerifier(%q) = %v, the expression says %v", tc.in, got, ref)
			}
		})
	}
}

// FuzzPKCEShapes checks the byte checks against the regular expressions
// on any input (S03).
func FuzzPKCEShapes(f *testing.F) {
	f.Add("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	f.Add(strings.Repeat("~", 128))
	f.Add(strings.Repeat("a", 42) + "=")
	f.Fuzz(func(t *testing.T, s string) {
		if got, ref := isS256Challenge(s), challengeShape.MatchString(s); got != ref {
			t.Errorf("isS256Challenge(%q) = %v, the expression says %v", s, got, ref)
		}
		if got, ref := isCodeVerifier(s), verifierShape.MatchString(s); got != ref {
			t.Errorf("isCodeVerifier(%q) = %v, the expression says %v", s, got, ref)
		}
	})
}

func BenchmarkPKCEShape(b *testing.B) {
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" + "abcdefghij"
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			if !isCodeVerifier(verifier) || !isS256Challenge(challenge) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			if !verifierShape.MatchString(verifier) || !challengeShape.MatchString(challenge) {
				b.Fatal("refused")
			}
		}
	})
}
