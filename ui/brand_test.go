package ui

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/text/language"

	"github.com/realmgate/realmgate/locale"
)

// brandPage is a page's data with a brand.
type brandPage struct {
	*locale.Printer
	Title, RequestID string
	Brand
}

// plainPage is a page's data without one (the portal's before it brands).
type plainPage struct {
	*locale.Printer
	Title, RequestID string
}

func renderFrame(t *testing.T, data any) string {
	t.Helper()
	tm, err := Templates(fstest.MapFS{"p.html": {Data: []byte(`{{define "p"}}{{template "head" .}}<h1>x</h1>{{template "foot" .}}{{end}}`)}}, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tm.ExecuteTemplate(&b, "p", data); err != nil {
		t.Fatalf("ExecuteTemplate: %v", err)
	}
	return b.String()
}

func TestFrame_Brand(t *testing.T) {
	p := locale.Default().Printer(language.German)
	tests := []struct {
		name    string
		data    any
		want    []string
		notWant []string
	}{
		{"no brand: realmgate's look", plainPage{Printer: p, Title: "Sign in"},
			nil, []string{`class="brand"`, "<img", "Support"}},
		{"zero brand: realmgate's look", brandPage{Printer: p, Title: "Sign in"},
			nil, []string{`class="brand"`, "<img"}},
		{"full brand", brandPage{Printer: p, Title: "Sign in", Brand: Brand{Name: "Acme", Logo: "/branding/ab.png",
			PrimaryColor: "#123456", AccentColor: "#0b5cad", SupportURL: "mailto:it@acme.example"}},
			[]string{`<img src="/branding/ab.png" alt="Acme">`, ":root{--rg-primary:#123456}", ":root{--rg-accent:#0b5cad}",
				`<a href="mailto:it@acme.example">Support kontaktieren</a>`}, nil},
		{"name without logo", brandPage{Printer: p, Title: "Sign in", Brand: Brand{Name: "Acme"}},
			[]string{`<header class="brand"><p>Acme</p></header>`}, []string{"<img"}},
		// S54: a hostile name is text; colours and links that are not
		// what the configuration allows never reach the page.
		{"hostile brand inert", brandPage{Printer: p, Title: "Sign in", Brand: Brand{
			Name: `"><script>alert(1)</script>`, Logo: "/branding/x.png", PrimaryColor: "red;}body{background:url(//evil)",
			AccentColor: "#000000</style><script>", SupportURL: "javascript:alert(1)"}},
			[]string{`alt="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`},
			[]string{"<script>", "evil", "javascript:", "--rg-primary:red", "Support kontaktieren"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := renderFrame(t, tc.data)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("page lacks %q:\n%s", w, out)
				}
			}
			// The style sheet sets the default colours once; a brand
			// overrides them in a second :root rule.
			_, branded := tc.data.(brandPage)
			wantRules := 1
			if branded && brandOf(tc.data) != nil && brandOf(tc.data).PrimaryColor != "" {
				wantRules = 2
			}
			if n := strings.Count(out, "--rg-primary:"); n != wantRules {
				t.Errorf("--rg-primary set %d times, want %d", n, wantRules)
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("page has %q:\n%s", w, out)
				}
			}
		})
	}
}
