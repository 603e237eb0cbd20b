package ui

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// luminance is the relative luminance of "#rrggbb" (WCAG 2.2, definition
// of relative luminance).
func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	if len(hex) != 7 || hex[0] != '#' {
		t.Fatalf("colour %q: want #rrggbb", hex)
	}
	var l [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c := float64(v) / 255
		if c <= 0.04045 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// TestFrame_FocusRingContrast: WCAG 2.2 §1.4.11 (non-text contrast, 3:1)
// for the focus outline of every control, against the page's white card
// and grey background; the style sheet uses FocusRing for every :focus.
func TestFrame_FocusRingContrast(t *testing.T) {
	raw, err := os.ReadFile("templates/base.html")
	if err != nil {
		t.Fatal(err)
	}
	css := string(raw)
	rings := regexp.MustCompile(`:focus(?:-visible)?[^{]*\{[^}]*outline:\s*\d+px solid (#[0-9a-fA-F]{6})`).FindAllStringSubmatch(css, -1)
	if len(rings) == 0 {
		t.Fatal("no focus outline in the frame's style sheet")
	}
	for _, m := range rings {
		if !strings.EqualFold(m[1], FocusRing) {
			t.Errorf("focus outline %s, want FocusRing %s", m[1], FocusRing)
		}
	}
	for _, bg := range []string{"#ffffff", "#f4f5f7"} {
		if c := contrast(t, FocusRing, bg); c < 3 {
			t.Errorf("contrast(%s, %s) = %.2f, want >= 3", FocusRing, bg, c)
		}
	}
	// The ring the frame had before (#f5a623) fails: the check can fail.
	if c := contrast(t, "#f5a623", "#ffffff"); c >= 3 {
		t.Errorf("contrast(#f5a623, white) = %.2f; the check would pass anything", c)
	}
	// Text colours on white: 4.5:1 (§1.4.3).
	for _, fg := range []string{"#1d2330", "#5b6475", "#2f5bd3", "#a4161a"} {
		if c := contrast(t, fg, "#ffffff"); c < 4.5 {
			t.Errorf("contrast(%s, white) = %.2f, want >= 4.5", fg, c)
		}
		if !strings.Contains(css, fg) {
			t.Errorf("%s is not used by the style sheet any more; update this list", fg)
		}
	}
}

func TestTemplates_AddsPagesToFrame(t *testing.T) {
	fsys := fstest.MapFS{"p.html": {Data: []byte(`{{define "p"}}{{template "head" .}}<h1>x</h1>{{template "foot" .}}{{end}}`)}}
	tm, err := Templates(fsys, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	if tm.Lookup("p") == nil || tm.Lookup("head") == nil || tm.Lookup("foot") == nil {
		t.Fatalf("Templates: missing p, head or foot: %s", tm.DefinedTemplates())
	}
	if _, err := Templates(fstest.MapFS{"bad.html": {Data: []byte(`{{define "x"}}{{end`)}}, "*.html"); err == nil {
		t.Error("Templates(bad template) = nil error")
	}
}
