package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestFastMatch_SameAsRegexp checks each hand-written matcher against the
// regular expression it replaced, on every string of up to three bytes
// from an alphabet of each character class, and on long ones.
func TestFastMatch_SameAsRegexp(t *testing.T) {
	tests := []struct {
		name string
		re   *regexp.Regexp
		fn   func(string) bool
	}{
		{"isID", regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`), isID},
		{"isLabel", regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`), isLabel},
		{"isPlainKey", regexp.MustCompile(`^[A-Za-z0-9_-]+$`), isPlainKey},
	}
	alphabet := []string{"", "a", "z", "0", "9", "A", "Z", "_", "-", ".", " ", "\n", "é", "$", "`", "{", "/", ":", "@", "["}
	var inputs []string
	for _, a := range alphabet {
		for _, b := range alphabet {
			for _, c := range alphabet {
				inputs = append(inputs, a+b+c)
			}
		}
	}
	for _, n := range []int{61, 62, 63, 64, 65, 200} {
		for _, edge := range []string{"", "-", "_", "A"} {
			inputs = append(inputs, strings.Repeat("a", n)+edge, edge+strings.Repeat("b", n), "a"+strings.Repeat("-", n)+"a")
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range inputs {
				if got, want := tt.fn(s), tt.re.MatchString(s); got != want {
					t.Errorf("%s(%q) = %v, want %v (%s)", tt.name, s, got, want, tt.re)
				}
			}
		})
	}
}
