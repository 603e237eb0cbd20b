package locale_test

import (
	"slices"
	"testing"

	"golang.org/x/text/language"

	"github.com/realmgate/realmgate/locale"
)

// TestCatalog_EveryMessageInEveryLanguage: each supported language has a
// catalog with every English message, no other, translated (not empty)
// and with the same fmt verbs in the same order.
func TestCatalog_EveryMessageInEveryLanguage(t *testing.T) {
	cat, err := locale.Load()
	if err != nil {
		t.Fatal(err)
	}
	keys := cat.Keys()
	if len(keys) == 0 {
		t.Fatal("the English catalog has no messages")
	}
	for _, tag := range locale.Supported {
		t.Run(tag.String(), func(t *testing.T) {
			tr := cat.Translations(tag)
			if tr == nil {
				t.Fatalf("no catalog for %s (locale/catalog/%s.json)", tag, tag)
			}
			for _, k := range keys {
				v, ok := tr[k]
				switch {
				case !ok:
					t.Errorf("%s lacks %q", tag, k)
				case v == "":
					t.Errorf("%s: %q is empty", tag, k)
				case !slices.Equal(locale.Verbs(v), locale.Verbs(k)):
					t.Errorf("%s: %q has verbs %v, want %v (%q)", tag, k, locale.Verbs(v), locale.Verbs(k), v)
				}
			}
			for k := range tr {
				if !cat.Has(k) {
					t.Errorf("%s has %q, which English does not", tag, k)
				}
			}
		})
	}
}

func TestNegotiator_Match(t *testing.T) {
	var n locale.Negotiator
	for _, tc := range []struct {
		name, accept, fallback string
		want                   language.Tag
	}{
		{"german browser", "de-DE,de;q=0.9,en;q=0.8", "", language.German},
		{"swiss german", "de-CH", "", language.German},
		{"japanese", "ja", "fr", language.Japanese},
		{"quality order", "fr;q=0.5, es;q=0.9", "", language.Spanish},
		{"unsupported falls to tenant default", "pt-BR,pt;q=0.9", "de", language.German},
		{"unsupported, no default", "pt-BR", "", language.English},
		{"no header uses tenant default", "", "es", language.Spanish},
		{"no header, no default", "", "", language.English},
		{"garbage header", ";;;q=,,", "fr", language.French},
		{"wildcard", "*", "ja", language.Japanese},
		{"unknown tenant default ignored", "", "xx", language.English},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.Match(tc.accept, tc.fallback); got != tc.want {
				t.Errorf("Match(%q, %q) = %s, want %s", tc.accept, tc.fallback, got, tc.want)
			}
		})
	}
}

func TestPrinter_TranslatesAndFormats(t *testing.T) {
	cat := locale.Default()
	de := cat.Printer(language.German)
	if got := de.T("Sign in"); got == "Sign in" || got == "" {
		t.Errorf("German T(%q) = %q, want a translation", "Sign in", got)
	}
	if got, want := de.Lang(), "de"; got != want {
		t.Errorf("Lang() = %q, want %q", got, want)
	}
	// Text that is not a message (from configuration) is shown as it is,
	// never formatted: a % in it stays.
	if got, want := de.T("100% of %s"), "100% of %s"; got != want {
		t.Errorf("T(%q) = %q, want %q", "100% of %s", got, want)
	}
	en := cat.Printer(language.English)
	if got, want := en.Tf("Sign in to %s", "Acme"), "Sign in to Acme"; got != want {
		t.Errorf("Tf = %q, want %q", got, want)
	}
}

func TestVerbs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Sign in to %s", []string{"%s"}},
		{"%d seconds, 100%% sure, %v", []string{"%d", "%v"}},
		{"no verbs", nil},
	} {
		if got := locale.Verbs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Verbs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
