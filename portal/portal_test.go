package portal_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
)

// TestPortal_WholeSetup walks a setup link from its opening to activation:
// the secret leaves the URL, the SAML metadata upload creates the IdP, the
// domain is proven by a live TXT lookup, a test sign-in shows attributes,
// claims and trace, the role table's dry run and save compile to a map
// rule, a SCIM token is shown once, and activation ends the link; every
// change is audited as the link.
func TestPortal_WholeSetup(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	l := e.link("acme", map[string]any{"note": "for pat"})
	if !strings.HasPrefix(l.URL, issuer+"/setup/"+admin.SetupLinkPrefix) || l.State != admin.SetupOpen || len(l.Allow) != 4 {
		t.Fatalf("created link = %+v", l)
	}
	b := &browser{e: e}
	a := b.get(l.URL)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/setup/" || a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("open = %d, Location %q, Referrer-Policy %q", a.status, a.header.Get("Location"), a.header.Get("Referrer-Policy"))
	}
	sc := a.header.Get("Set-Cookie")
	for _, want := range []string{"__Host-rg_setup=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	home := b.get("/setup/")
	if home.status != http.StatusOK || !strings.Contains(home.body, "Acme") {
		t.Fatalf("home = %d: %s", home.status, home.body)
	}
	if csp := home.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q, want script-src 'self' and frame-ancestors 'none' (S06)", csp)
	}

	// Connect: AD FS, metadata uploaded.
	kind := b.get("/setup/idp/adfs")
	for _, want := range []string{issuer + "/saml/acme-adfs/acs", issuer + "/saml/acme-adfs/metadata", `aria-label="Copy `, `src="/setup/portal.js"`} {
		if !strings.Contains(kind.body, want) {
			t.Errorf("AD FS page lacks %q", want)
		}
	}
	a = b.upload("/setup/idp/adfs", nil, "metadata_file", "adfs.xml", readFile(t, "../testdata/saml/adfs-metadata.xml"))
	if a.status != http.StatusSeeOther {
		t.Fatalf("upload metadata = %d: %s", a.status, a.body)
	}
	tn := e.tenantNow("acme")
	if len(tn.Providers) != 1 || tn.Providers[0].ID != "acme-adfs" || tn.Providers[0].Type != "saml" || !tn.Providers[0].Pending {
		t.Fatalf("providers = %+v, want acme-adfs pending", tn.Providers)
	}
	// While pending, connecting again replaces it.
	b.get("/setup/idp/adfs")
	if a = b.upload("/setup/idp/adfs", nil, "metadata_file", "adfs.xml", readFile(t, "../testdata/saml/adfs-metadata.xml")); a.status != http.StatusSeeOther {
		t.Fatalf("upload metadata again = %d: %s", a.status, a.body)
	}

	// Domain: added, checked before and after the TXT record exists.
	b.get("/setup/domains")
	if a = b.post("/setup/domains", url.Values{"domain": {"Acme.TEST"}}); a.status != http.StatusSeeOther {
		t.Fatalf("add domain = %d: %s", a.status, a.body)
	}
	page := b.get("/setup/domains")
	tn = e.tenantNow("acme")
	if len(tn.Domains) != 1 || tn.Domains[0].TXTName != "_realmgate.acme.test" || !strings.Contains(page.body, tn.Domains[0].TXTValue) {
		t.Fatalf("domains = %+v; page shows the TXT value: %v", tn.Domains, strings.Contains(page.body, tn.Domains[0].TXTValue))
	}
	if a = b.post("/setup/domains/check", url.Values{"name": {"acme.test"}}); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `role="alert"`) {
		t.Fatalf("check without the record = %d: %s", a.status, a.body)
	}
	e.dns.set("_realmgate.acme.test.", tn.Domains[0].TXTValue)
	if a = b.post("/setup/domains/check", url.Values{"name": {"acme.test"}}); a.status != http.StatusOK {
		t.Fatalf("check with the record = %d: %s", a.status, a.body)
	}
	if tn = e.tenantNow("acme"); !tn.Domains[0].Verified {
		t.Fatalf("domain not verified: %+v", tn.Domains[0])
	}

	// Test sign-in: started with the link as actor, result shown (escaped).
	b.get("/setup/test")
	a = b.post("/setup/test", nil)
	if a.status != http.StatusSeeOther || len(e.tester.started) != 1 {
		t.Fatalf("start test = %d, %d started", a.status, len(e.tester.started))
	}
	req := e.tester.started[0]
	if req.Tenant != "acme" || req.IdP != "acme-adfs" || req.Actor != "setup-link:"+l.ID || req.Return != issuer+"/setup/test" {
		t.Fatalf("test request = %+v", req)
	}
	res := b.get(a.header.Get("Location"))
	for _, want := range []string{"pat@acme.test", "Engineering", "&lt;b&gt;Ops&lt;/b&gt;", "everyone", "add roles: member"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("test result lacks %q", want)
		}
	}

	// Roles: a dry run over the test's attributes, then saved.
	b.get("/setup/roles")
	dry := b.post("/setup/roles", url.Values{"group": {"Engineering", ""}, "role": {"engineer", ""}, "action": {"dryrun"}})
	if dry.status != http.StatusOK || !strings.Contains(dry.body, "engineer") || !strings.Contains(dry.body, admin.SetupRolesRule) {
		t.Fatalf("dry run = %d: %s", dry.status, dry.body)
	}
	if len(e.tenantNow("acme").Rules) != 0 {
		t.Fatal("the dry run saved the rules")
	}
	if a = b.post("/setup/roles", url.Values{"group": {"Engineering"}, "role": {"engineer"}, "action": {"save"}}); a.status != http.StatusSeeOther {
		t.Fatalf("save roles = %d: %s", a.status, a.body)
	}
	rules := e.tenantNow("acme").Rules
	if len(rules) != 1 || rules[0].Map == nil || rules[0].Map.From != "upstream.groups" || rules[0].Map.Table["Engineering"] != "engineer" {
		t.Fatalf("rules = %+v", rules)
	}

	// SCIM: a token, shown once.
	b.get("/setup/scim")
	a = b.post("/setup/scim", nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, "rgscim_") || !strings.Contains(a.body, issuer+"/scim/v2/acme") {
		t.Fatalf("scim = %d: %s", a.status, a.body)
	}

	// Activate: the link ends, and its session with it.
	b.get("/setup/activate")
	if a = b.post("/setup/activate", nil); a.status != http.StatusOK {
		t.Fatalf("activate = %d: %s", a.status, a.body)
	}
	if ps := e.tenantNow("acme").Providers; len(ps) != 1 || ps[0].Pending {
		t.Fatalf("after activation providers = %+v, want acme-adfs active", ps)
	}
	var list struct{ Links []admin.SetupLink }
	e.call(opToken, "GET", "/v1/tenants/acme/setup-links", nil, &list)
	if len(list.Links) != 1 || list.Links[0].State != admin.SetupActivated {
		t.Fatalf("links = %+v", list.Links)
	}
	var actions []string
	for _, ev := range e.audit.events(t) {
		if ev["actor"] == "setup-link:"+l.ID && ev["outcome"] == "applied" {
			actions = append(actions, ev["action"].(string))
			if ev["ip"] != "127.0.0.1" || ev["actor_tenant"] != "acme" {
				t.Errorf("audit event %v: want ip 127.0.0.1 and actor_tenant acme", ev)
			}
		}
	}
	for _, want := range []string{"provider.setup", "domain.add", "domain.verify", "test_signin.start", "rules.setup", "scim_token.create", "provider.activate", "setup_link.activate"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit actions of the link = %v, lack %q", actions, want)
		}
	}
}
