package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// browser plays the user's browser: a cookie jar, redirects followed one by
// one (so each hop can be routed and recorded), and the HTML forms of
// realmgate and oidc-provider filled in and submitted.
type browser struct {
	t      *testing.T
	client *http.Client
	// email is typed into the email box of realmgate's discovery page; login and password into
	// oidc-provider's login form.
	email, login, password string
	// route, when set, may rewrite a URL before it is requested (to send a
	// step to a chosen realmgate process).
	route func(u *url.URL)
	// visits records "METHOD host/path" of every request, in order.
	visits []string
	// consent is the answer given on realmgate's consent page: allow
	// (empty) or deny.
	consent string
}

func newBrowser(t *testing.T, login, email string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, email: email, login: login, password: "any password works in devInteractions",
		client: &http.Client{Jar: jar, Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn starts at start and walks the redirects and forms until the
// browser is sent to a URL beginning with stop, which it returns without
// requesting it (that is the downstream app's callback).
func (b *browser) signIn(start, stop string) string {
	b.t.Helper()
	method, target := http.MethodGet, start
	var form url.Values
	for range 30 {
		u, err := url.Parse(target)
		if err != nil {
			b.t.Fatalf("browser: bad URL %q: %v", target, err)
		}
		if b.route != nil {
			b.route(u)
		}
		var req *http.Request
		if method == http.MethodPost {
			req, err = http.NewRequest(method, u.String(), strings.NewReader(form.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequest(method, u.String(), nil)
		}
		if err != nil {
			b.t.Fatalf("browser: request %s %s: %v", method, u, err)
		}
		req.Header.Set("Accept", "text/html")
		b.visits = append(b.visits, method+" "+u.Host+u.Path)
		resp, err := b.client.Do(req)
		if err != nil {
			b.t.Fatalf("browser: %s %s: %v", method, u, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()

		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				b.t.Fatalf("browser: %s %s answered %d without a Location: %v", method, u, resp.StatusCode, err)
			}
			if strings.HasPrefix(loc.String(), stop) {
				return loc.String()
			}
			method, target, form = http.MethodGet, loc.String(), nil
		case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"):
			forms, err := parseForms(string(body))
			if err != nil {
				b.t.Fatalf("browser: %s %s: %v\n%s", method, u, err, body)
			}
			f := b.pick(forms, u, body)
			action, err := u.Parse(f.action)
			if err != nil {
				b.t.Fatalf("browser: form action %q: %v", f.action, err)
			}
			method, target, form = http.MethodPost, action.String(), f.values
		default:
			b.t.Fatalf("browser: %s %s answered %d (%s):\n%s", method, u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	b.t.Fatalf("browser: no callback to %s after 30 steps; visited:\n%s", stop, strings.Join(b.visits, "\n"))
	return ""
}

// pick chooses, among a page's POST forms, the one this browser knows how
// to answer and fills it in.
func (b *browser) pick(forms []*htmlForm, page *url.URL, body []byte) *htmlForm {
	b.t.Helper()
	for _, f := range forms {
		v := f.values
		switch {
		case f.has("login") && v.Get("prompt") == "login": // oidc-provider's login form
			v.Set("login", b.login)
			v.Set("password", b.password)
			return f
		case v.Get("prompt") == "consent": // oidc-provider's consent form
			return f
		case f.has("csrf") && f.has("r") && strings.HasSuffix(f.action, "/consent"): // realmgate's consent page
			v.Set("decision", "allow")
			if b.consent != "" {
				v.Set("decision", b.consent)
			}
			return f
		case f.typed["user_code"]: // realmgate's device page: the code is filled in
			return f
		case f.has("csrf") && strings.HasSuffix(f.action, "/device/confirm"): // realmgate's device confirmation
			v.Set("op", "approve")
			return f
		case f.typed["email"] && f.has("r"): // realmgate's discovery page: the email box
			if b.email == "" {
				b.t.Fatalf("browser: realmgate asked for an email at %s, but this sign-in has none", page)
			}
			v.Set("email", b.email)
			return f
		}
	}
	b.t.Fatalf("browser: no form this browser can answer at %s:\n%s", page, body)
	return nil
}

// htmlForm is one POST form of a page.
type htmlForm struct {
	action string
	values url.Values
	names  map[string]bool
	typed  map[string]bool // inputs a person types into (not hidden)
}

func (f *htmlForm) has(name string) bool { return f.names[name] }

// parseForms returns the page's forms with method=post and their input values.
func parseForms(page string) ([]*htmlForm, error) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse html: %w", err)
	}
	var forms []*htmlForm
	var walk func(n *html.Node, f *htmlForm)
	walk = func(n *html.Node, f *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f = nil
				if strings.EqualFold(attr(n, "method"), "post") {
					f = &htmlForm{action: attr(n, "action"), values: url.Values{}, names: map[string]bool{}, typed: map[string]bool{}}
					forms = append(forms, f)
				}
			case "input":
				if name := attr(n, "name"); f != nil && name != "" {
					f.names[name] = true
					f.values.Set(name, attr(n, "value"))
					if !strings.EqualFold(attr(n, "type"), "hidden") {
						f.typed[name] = true
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	if len(forms) == 0 {
		return nil, fmt.Errorf("no post form on the page")
	}
	return forms, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
