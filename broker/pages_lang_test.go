package broker_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/locale"
)

// langTransport sends every request with an Accept-Language header.
type langTransport struct{ lang string }

func (l langTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if l.lang != "" {
		r.Header.Set("Accept-Language", l.lang)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// browserIn is a browser whose language preference is lang.
func (e *env) browserIn(lang string) *browser {
	b := e.browser()
	b.c.Transport = langTransport{lang}
	return b
}

// inLanguage reports whether page is in tag: <html lang> says so and the
// translation of want (a catalog message) is on it.
func inLanguage(t *testing.T, page string, tag language.Tag, want string) bool {
	t.Helper()
	tr := locale.Default().Translations(tag)[want]
	if tr == "" {
		t.Fatalf("catalog %s lacks %q", tag, want)
	}
	return strings.Contains(page, `<html lang="`+tag.String()+`"`) && strings.Contains(html.UnescapeString(page), tr)
}

// TestPages_Language: pages follow the browser's Accept-Language, then the
// tenant's default language (tenants[].language), then English.
func TestPages_Language(t *testing.T) {
	e := newEnv(t, func(c *broker.Config) {
		if c.Policies == nil {
			c.Policies = map[string]broker.TenantPolicy{}
		}
		p := c.Policies["initech"]
		p.Language = "fr"
		c.Policies["initech"] = p
	})
	discovery := func(b *browser) (string, string) {
		resp, _ := e.startAt(b, nil, nil)
		_, body := b.getBody(e.issuer + resp.Header.Get("Location"))
		return body, formField(body, "r")
	}
	t.Run("german browser gets German discovery page", func(t *testing.T) {
		body, _ := discovery(e.browserIn("de-DE,de;q=0.9,en;q=0.5"))
		if !inLanguage(t, body, language.German, "Work email") {
			t.Errorf("discovery page with Accept-Language de is not German:\n%s", body)
		}
	})
	t.Run("no preference gets English", func(t *testing.T) {
		body, _ := discovery(e.browserIn(""))
		if !inLanguage(t, body, language.English, "Work email") {
			t.Errorf("discovery page without Accept-Language is not English:\n%s", body)
		}
	})
	for _, tc := range []struct {
		name, accept string
		want         language.Tag
	}{
		{"tenant default when the browser's language is not offered", "pt-BR,pt;q=0.9", language.French},
		{"tenant default with no preference", "", language.French},
		{"browser's language over the tenant default", "ja", language.Japanese},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browserIn(tc.accept)
			_, r := discovery(b)
			_, choose := b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {"peter@initech.test"}})
			if !inLanguage(t, choose, tc.want, "Choose how to sign in:") {
				t.Errorf("initech's choice page with Accept-Language %q is not %s:\n%s", tc.accept, tc.want, choose)
			}
		})
	}
	t.Run("error page in the browser's language", func(t *testing.T) {
		v := authParams(s256(authVerifier))
		v.Set("client_id", "no-such-client")
		_, body := e.browserIn("es").getBody(e.authorizeURL(v))
		if !inLanguage(t, body, language.Spanish, "Unknown application") {
			t.Errorf("error page with Accept-Language es is not Spanish:\n%s", body)
		}
	})
}
