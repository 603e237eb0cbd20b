package portal_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/portal"
	"github.com/realmgate/realmgate/ui"
)

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// checkPage holds a page to the portal's accessibility rules (WCAG 2.2):
// a language; every field labelled; every error announced (role=alert)
// and linked from its field (aria-describedby naming existing ids); one
// autofocus, on the first field or, on a page without one, on the h1
// (tabindex=-1); every button named; no inline script.
func checkPage(t *testing.T, name, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ids, labels := map[string]bool{}, map[string]bool{}
	var nodes []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			nodes = append(nodes, n)
			if id, ok := attr(n, "id"); ok {
				if ids[id] {
					t.Errorf("%s: id %q twice", name, id)
				}
				ids[id] = true
			}
			if n.Data == "label" {
				if f, ok := attr(n, "for"); ok {
					labels[f] = true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	var focus []*html.Node
	fields := 0
	for _, n := range nodes {
		if _, ok := attr(n, "autofocus"); ok {
			focus = append(focus, n)
		}
		switch n.Data {
		case "html":
			if l, _ := attr(n, "lang"); l == "" {
				t.Errorf("%s: <html> without lang", name)
			}
		case "input", "select", "textarea":
			if typ, _ := attr(n, "type"); typ == "hidden" {
				continue
			}
			fields++
			id, _ := attr(n, "id")
			_, aria := attr(n, "aria-label")
			if !labels[id] && !aria {
				t.Errorf("%s: field %q has no label", name, id)
			}
		case "button":
			if l, _ := attr(n, "aria-label"); l == "" && text(n) == "" {
				t.Errorf("%s: a button without a name", name)
			}
		case "script":
			if _, ok := attr(n, "src"); !ok {
				t.Errorf("%s: inline script", name)
			}
		}
		if d, ok := attr(n, "aria-describedby"); ok {
			for _, id := range strings.Fields(d) {
				if !ids[id] {
					t.Errorf("%s: aria-describedby names %q, which is not on the page", name, id)
				}
			}
		}
		if c, _ := attr(n, "class"); c == "err" {
			if r, _ := attr(n, "role"); r != "alert" {
				t.Errorf("%s: error %q not announced (role=alert)", name, text(n))
			}
		}
	}
	if len(focus) != 1 {
		t.Errorf("%s: %d elements with autofocus, want 1", name, len(focus))
		return
	}
	f := focus[0]
	if fields == 0 || f.Data == "h1" {
		if ti, _ := attr(f, "tabindex"); f.Data != "h1" || ti != "-1" {
			if fields == 0 {
				t.Errorf("%s: a page without fields focuses <%s>, want the h1 with tabindex=-1", name, f.Data)
			}
		}
	}
}

// TestPortal_EveryPageAccessible walks every portal page, with and
// without errors, and holds each to checkPage.
func TestPortal_EveryPageAccessible(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	l := e.link("acme", nil)
	b := e.open(l)
	pages := map[string]answer{}
	get := func(path string) {
		pages["GET "+path] = b.get(path)
	}
	get("/setup/")
	get("/setup/idp")
	for _, k := range []string{"entra", "adfs", "okta", "google", "onelogin", "ping", "saml", "oidc"} {
		get("/setup/idp/" + k)
	}
	pages["POST /setup/idp/entra (empty)"] = b.post("/setup/idp/entra", url.Values{})
	pages["POST /setup/idp/adfs (empty)"] = b.post("/setup/idp/adfs", url.Values{})
	b.upload("/setup/idp/adfs", nil, "metadata_file", "adfs.xml", readFile(t, "../testdata/saml/adfs-metadata.xml"))
	get("/setup/domains")
	pages["POST /setup/domains (bad)"] = b.post("/setup/domains", url.Values{"domain": {"not a domain"}})
	b.post("/setup/domains", url.Values{"domain": {"acme.test"}})
	get("/setup/domains")
	pages["POST /setup/domains/check (no record)"] = b.post("/setup/domains/check", url.Values{"name": {"acme.test"}})
	get("/setup/test")
	a := b.post("/setup/test", nil)
	get(a.header.Get("Location"))
	get("/setup/roles")
	pages["POST /setup/roles (half row)"] = b.post("/setup/roles", url.Values{"group": {"g"}, "role": {""}, "action": {"save"}})
	pages["POST /setup/roles (dry run)"] = b.post("/setup/roles", url.Values{"group": {"Engineering"}, "role": {"eng"}, "action": {"dryrun"}})
	get("/setup/scim")
	pages["POST /setup/scim"] = b.post("/setup/scim", nil)
	get("/setup/activate")
	pages["POST /setup/activate"] = b.post("/setup/activate", nil)
	pages["410 used link"] = (&browser{e: e}).get(l.URL)
	pages["404 unknown"] = (&browser{e: e}).get("/setup/nothing")
	b2 := e.open(e.link("acme", nil))
	pages["403 csrf"] = b2.post("/setup/scim", url.Values{"csrf": {"wrong"}})
	pages["413 upload"] = b2.upload("/setup/idp/adfs", nil, "metadata_file", "big.xml", bytes.Repeat([]byte("x"), 100<<10))
	for name, a := range pages {
		t.Run(name, func(t *testing.T) { checkPage(t, name, a.body) })
	}
}

// TestPortal_Language: a German Accept-Language gets German pages; without
// one, the tenant's default language.
func TestPortal_Language(t *testing.T) {
	e := newEnv(t)
	tn := admin.Tenant{}
	tn.ID, tn.Name, tn.Language = "acme", "Acme", "fr"
	if got := e.call(opToken, "POST", "/v1/tenants", tn, nil); got != http.StatusCreated {
		t.Fatalf("create tenant = %d", got)
	}
	b := e.open(e.link("acme", nil))
	for _, tc := range []struct{ accept, want string }{{"de-DE,de;q=0.9,en;q=0.5", "de"}, {"", "fr"}, {"ja", "ja"}} {
		req, _ := http.NewRequest("GET", e.portal.URL+"/setup/", nil)
		req.Header.Set("Accept-Language", tc.accept)
		a := b.do(req)
		if !strings.Contains(a.body, `<html lang="`+tc.want+`">`) {
			t.Errorf("Accept-Language %q: page language is not %q: %.200s", tc.accept, tc.want, a.body)
		}
	}
}

// TestPortal_TenantBrand: the portal's pages carry the tenant's brand (name,
// colour, support link) the broker gives, escaped like every value (S54).
func TestPortal_TenantBrand(t *testing.T) {
	var asked []string
	e := newEnv(t, func(o *portal.Options) {
		o.Brand = func(tenant string) ui.Brand {
			asked = append(asked, tenant)
			return ui.Brand{Name: `Acme <b>Corp</b>`, PrimaryColor: "#123456", SupportURL: "https://help.acme.example/sso"}
		}
	})
	tn := admin.Tenant{}
	tn.ID, tn.Name = "acme", "Acme"
	if got := e.call(opToken, "POST", "/v1/tenants", tn, nil); got != http.StatusCreated {
		t.Fatalf("create tenant = %d", got)
	}
	b := e.open(e.link("acme", nil))
	req, _ := http.NewRequest("GET", e.portal.URL+"/setup/", nil)
	a := b.do(req)
	for _, want := range []string{"#123456", `href="https://help.acme.example/sso"`, "Acme &lt;b&gt;Corp&lt;/b&gt;"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("portal page lacks %q: %.400s", want, a.body)
		}
	}
	if strings.Contains(a.body, "<b>Corp") {
		t.Error("brand name rendered unescaped")
	}
	if len(asked) == 0 || asked[len(asked)-1] != "acme" {
		t.Errorf("Brand asked for %q, want acme", asked)
	}
}
