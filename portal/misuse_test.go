package portal_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
)

// noInternals fails when a page leaks an internal error or a stack trace.
func noInternals(t *testing.T, what string, a answer) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic", "admin:", "store:", ".go:"} {
		if strings.Contains(a.body, bad) {
			t.Errorf("%s: page shows %q: %s", what, bad, a.body)
		}
	}
	if !strings.Contains(a.body, "<h1") {
		t.Errorf("%s: not a readable page: %s", what, a.body)
	}
}

// TestPortal_LinkMisuse: an expired link is a readable 410, a link used
// to activate a readable "already used" page (its old session too), a
// revoked or unknown link a 404 page, and a revoked link's session ends
// at its next request.
func TestPortal_LinkMisuse(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")

	expiring := e.link("acme", map[string]any{"expires_in": "10m"})
	expSession := e.open(expiring)
	activated := e.link("acme", nil)
	actSession := e.open(activated)
	actSession.get("/setup/activate")
	if a := actSession.post("/setup/activate", nil); a.status != http.StatusOK {
		t.Fatalf("activate = %d: %s", a.status, a.body)
	}
	actOld := &browser{e: e}
	*actOld = *e.open(e.link("acme", nil)) // a second link, to hold a session across the first's end
	revoked := e.link("acme", nil)
	revSession := e.open(revoked)
	if got := e.call(opToken, "DELETE", "/v1/tenants/acme/setup-links/"+revoked.ID, nil, nil); got != http.StatusNoContent {
		t.Fatalf("revoke = %d", got)
	}
	e.clock.add(11 * time.Minute)

	for _, tc := range []struct {
		name string
		b    *browser
		path string
		want int
		text string
	}{
		{"expired link", &browser{e: e}, expiring.URL, http.StatusGone, "expired"},
		{"expired link's session", expSession, "/setup/", http.StatusGone, "expired"},
		{"link reused after activation", &browser{e: e}, activated.URL, http.StatusGone, "already used"},
		{"revoked link", &browser{e: e}, revoked.URL, http.StatusNotFound, "not valid"},
		{"revoked link's session", revSession, "/setup/domains", http.StatusNotFound, "not valid"},
		{"unknown link", &browser{e: e}, "/setup/" + admin.SetupLinkPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusNotFound, "not valid"},
		{"a secret of the wrong form", &browser{e: e}, "/setup/" + admin.SetupLinkPrefix + "%00%ff<script>", http.StatusNotFound, "not valid"},
		{"no session", &browser{e: e}, "/setup/domains", http.StatusNotFound, "not valid"},
		{"forged session cookie", &browser{e: e, cookie: "__Host-rg_setup=forged"}, "/setup/", http.StatusNotFound, "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.b.get(tc.path)
			if a.status != tc.want || !strings.Contains(a.body, tc.text) {
				t.Errorf("GET %s = %d, want %d with %q: %s", tc.path, a.status, tc.want, tc.text, a.body)
			}
			noInternals(t, tc.name, a)
		})
	}
	// The activated link's session was ended with it: a POST after the
	// activation is refused, and the link stays activated.
	if a := actSession.post("/setup/domains", url.Values{"domain": {"late.test"}}); a.status == http.StatusSeeOther || a.status == http.StatusOK {
		t.Fatalf("POST after activation = %d, want refused", a.status)
	}
	if tn := e.tenantNow("acme"); len(tn.Domains) != 0 {
		t.Fatalf("a domain was added after activation: %+v", tn.Domains)
	}
}

// TestPortal_CSRFOnEveryForm: every POST of the portal is refused (403
// page, nothing changed) without the session's token, with a wrong one,
// with another session's, and from another origin.
func TestPortal_CSRFOnEveryForm(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme", admin.Domain{Name: "acme.test"})
	b := e.open(e.link("acme", nil))
	other := e.open(e.link("acme", nil)) // another link's session of the same tenant
	forms := map[string]url.Values{
		"/setup/idp/entra":     {"issuer": {"https://idp.acme.test"}, "client_id": {"c"}, "client_secret": {"s"}},
		"/setup/idp/adfs":      {"metadata_url": {"https://idp.acme.test/md"}},
		"/setup/domains":       {"domain": {"new.acme.test"}},
		"/setup/domains/check": {"name": {"acme.test"}},
		"/setup/test":          {},
		"/setup/roles":         {"group": {"g"}, "role": {"r"}, "action": {"save"}},
		"/setup/scim":          {},
		"/setup/activate":      {},
	}
	before := e.tenantNow("acme")
	// The real token with its first character changed, never to itself.
	wrong := "x" + b.csrf[1:]
	if strings.HasPrefix(b.csrf, "x") {
		wrong = "y" + b.csrf[1:]
	}
	for path, form := range forms {
		for _, tc := range []struct {
			name   string
			csrf   *string
			origin string
		}{
			{"no token", nil, issuer},
			{"wrong token", ptr(wrong), issuer},
			{"another session's token", ptr(other.csrf), issuer},
			{"another origin", ptr(b.csrf), "https://evil.example"},
			{"null origin", ptr(b.csrf), "null"},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				body := f.Encode()
				if tc.csrf != nil {
					f.Set("csrf", *tc.csrf)
					body = f.Encode()
				}
				req, _ := http.NewRequest("POST", e.portal.URL+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", tc.origin)
				a := b.do(req)
				if a.status != http.StatusForbidden {
					t.Errorf("POST %s (%s) = %d, want 403", path, tc.name, a.status)
				}
				noInternals(t, path, a)
			})
		}
	}
	after := e.tenantNow("acme")
	if len(after.Providers) != len(before.Providers) || len(after.Domains) != len(before.Domains) || len(after.Rules) != 0 || len(e.tester.started) != 0 {
		t.Fatalf("a refused form changed something: %+v, %d test sign-ins", after, len(e.tester.started))
	}
	var list struct{ Links []admin.SetupLink }
	e.call(opToken, "GET", "/v1/tenants/acme/setup-links", nil, &list)
	for _, l := range list.Links {
		if l.State != admin.SetupOpen {
			t.Fatalf("a refused activation ended link %s: %s", l.ID, l.State)
		}
	}
	// The same form with the right token and origin goes through.
	if a := b.post("/setup/domains", url.Values{"domain": {"new.acme.test"}}); a.status != http.StatusSeeOther {
		t.Fatalf("POST with the token = %d: %s", a.status, a.body)
	}
}

func ptr(s string) *string { return &s }

// TestPortal_OtherTenantsResources: a link of tenant acme cannot read or
// change tenant beta: beta's domain named in a form is refused, a domain
// beta verified cannot be claimed, and the IdP a link creates is always
// acme's.
func TestPortal_OtherTenantsResources(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	e.tenant("beta", "Beta", admin.Domain{Name: "beta.test", Verified: true}, admin.Domain{Name: "pending.beta.test"})
	b := e.open(e.link("acme", nil))
	b.get("/setup/domains")
	betaToken := ""
	for _, d := range e.tenantNow("beta").Domains {
		if d.Name == "pending.beta.test" {
			betaToken = d.TXTValue
		}
	}
	e.dns.set("_realmgate.pending.beta.test.", betaToken)
	if a := b.post("/setup/domains/check", url.Values{"name": {"pending.beta.test"}}); a.status != http.StatusUnprocessableEntity {
		t.Errorf("check beta's domain = %d, want 422: %s", a.status, a.body)
	}
	for _, d := range e.tenantNow("beta").Domains {
		if d.Name == "pending.beta.test" && d.Verified {
			t.Fatal("acme's link verified beta's domain")
		}
	}
	a := b.post("/setup/domains", url.Values{"domain": {"beta.test"}})
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "already verified by another tenant") || !strings.Contains(a.body, `aria-describedby="err-0"`) {
		t.Errorf("claim beta's domain = %d: %s", a.status, a.body)
	}
	// A form naming beta in any field still acts on acme only.
	b.get("/setup/idp/entra")
	b.post("/setup/idp/entra", url.Values{"issuer": {"https://idp.beta.test"}, "client_id": {"c"}, "client_secret": {"s"}, "tenant": {"beta"}, "id": {"beta-idp"}})
	if ps := e.tenantNow("beta").Providers; len(ps) != 0 {
		t.Fatalf("beta's providers changed: %+v", ps)
	}
	if strings.Contains(b.get("/setup/").body, "Beta") {
		t.Error("acme's portal shows beta")
	}
	// An IdP id beta took already: refused without naming beta.
	tn := e.tenantNow("beta")
	tn.Providers = []admin.Provider{{ID: "acme-saml", Type: "saml", Metadata: string(readFile(t, "../testdata/saml/adfs-metadata.xml"))}}
	if got := e.call(opToken, "PUT", "/v1/tenants/beta", tn, nil); got != http.StatusOK {
		t.Fatalf("give beta acme-saml = %d", got)
	}
	b.get("/setup/idp/saml")
	a = b.upload("/setup/idp/saml", nil, "metadata_file", "adfs.xml", readFile(t, "../testdata/saml/adfs-metadata.xml"))
	if a.status != http.StatusUnprocessableEntity || strings.Contains(a.body, "beta") || !strings.Contains(a.body, "exists already") {
		t.Errorf("connect with an id beta holds = %d: %s", a.status, a.body)
	}
}

// TestPortal_MetadataURLFollowsOutboundPolicy: a metadata URL on loopback
// (or a private address) is refused by the outbound policy, shown as a
// readable problem beside the field; nothing is created.
func TestPortal_MetadataURLFollowsOutboundPolicy(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(readFile(t, "../testdata/saml/adfs-metadata.xml"))
	}))
	defer md.Close()
	b := e.open(e.link("acme", nil))
	for _, u := range []string{md.URL + "/metadata", "http://10.0.0.1/metadata", "http://169.254.169.254/latest/meta-data"} {
		b.get("/setup/idp/saml")
		a := b.post("/setup/idp/saml", url.Values{"metadata_url": {u}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="metadata_url"`) || !strings.Contains(a.body, `aria-invalid="true"`) {
			t.Errorf("metadata URL %s = %d, want 422 beside the field: %s", u, a.status, a.body)
		}
		noInternals(t, u, a)
	}
	if ps := e.tenantNow("acme").Providers; len(ps) != 0 {
		t.Fatalf("providers = %+v, want none", ps)
	}
}

// TestPortal_OversizedUploadRefused: metadata larger than the limit is a
// 413 page; nothing is created.
func TestPortal_OversizedUploadRefused(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	b := e.open(e.link("acme", nil))
	b.get("/setup/idp/adfs")
	big := bytes.Repeat([]byte("<x/>"), 200<<10) // 800 KiB over a 64 KiB limit
	a := b.upload("/setup/idp/adfs", nil, "metadata_file", "big.xml", big)
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "too large") {
		t.Fatalf("upload = %d, want 413: %s", a.status, a.body)
	}
	noInternals(t, "upload", a)
	if ps := e.tenantNow("acme").Providers; len(ps) != 0 {
		t.Fatalf("providers = %+v, want none", ps)
	}
}

// TestPortal_S54_HostileValuesInert: a tenant name with markup and metadata
// XML with a script are shown as text, never as markup.
func TestPortal_S54_HostileValuesInert(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", `<script>alert("t")</script><img src=x onerror=alert(1)>`)
	b := e.open(e.link("acme", nil))
	home := b.get("/setup/")
	if strings.Contains(home.body, "<script>alert") || strings.Contains(home.body, "<img src=x") {
		t.Fatalf("tenant name rendered as markup: %s", home.body)
	}
	if !strings.Contains(home.body, "&lt;script&gt;") {
		t.Fatalf("tenant name not shown escaped: %s", home.body)
	}
	b.get("/setup/idp/saml")
	a := b.upload("/setup/idp/saml", nil, "metadata_file", "x.xml", []byte(`<EntityDescriptor><script>alert(1)</script></EntityDescriptor>`))
	if a.status != http.StatusUnprocessableEntity || strings.Contains(a.body, "<script>alert") {
		t.Fatalf("hostile metadata = %d: %s", a.status, a.body)
	}
	noInternals(t, "hostile metadata", a)
}

// TestPortal_AllowListLimitsSteps: a step the link does not allow is not
// shown and is refused, by GET and by POST.
func TestPortal_AllowListLimitsSteps(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	b := e.open(e.link("acme", map[string]any{"allow": []string{"domains"}}))
	home := b.get("/setup/")
	if strings.Contains(home.body, `href="/setup/idp"`) || strings.Contains(home.body, `href="/setup/scim"`) || !strings.Contains(home.body, `href="/setup/domains"`) {
		t.Fatalf("home shows steps the link lacks: %s", home.body)
	}
	for _, path := range []string{"/setup/idp", "/setup/idp/entra", "/setup/roles", "/setup/scim", "/setup/test"} {
		if a := b.get(path); a.status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, a.status)
		}
	}
	b.get("/setup/")
	for _, path := range []string{"/setup/idp/entra", "/setup/roles", "/setup/scim"} {
		if a := b.post(path, url.Values{"issuer": {"https://x.test"}, "client_id": {"c"}, "client_secret": {"s"}, "action": {"save"}}); a.status != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, a.status)
		}
	}
	if tn := e.tenantNow("acme"); len(tn.Providers) != 0 || len(tn.Rules) != 0 {
		t.Fatalf("a refused step changed the tenant: %+v", tn)
	}
}

// TestPortal_TestResultsStayWithTheirLink: a test sign-in's result is
// shown only to the link that started it, even to another link of the
// same tenant holding its id; a refused test start is a readable page.
func TestPortal_TestResultsStayWithTheirLink(t *testing.T) {
	e := newEnv(t)
	e.tenant("acme", "Acme")
	b := e.open(e.link("acme", nil))
	b.get("/setup/idp/adfs")
	b.upload("/setup/idp/adfs", nil, "metadata_file", "adfs.xml", readFile(t, "../testdata/saml/adfs-metadata.xml"))
	b.get("/setup/test")
	loc := b.post("/setup/test", nil).header.Get("Location")
	if res := b.get(loc); !strings.Contains(res.body, "pat@acme.test") {
		t.Fatalf("own result not shown: %s", res.body)
	}
	other := e.open(e.link("acme", nil))
	if res := other.get(loc); strings.Contains(res.body, "pat@acme.test") || !strings.Contains(res.body, "not available") {
		t.Fatalf("another link sees the result: %s", res.body)
	}
	e.tester.mu.Lock()
	e.tester.refuse = true
	e.tester.mu.Unlock()
	b.get("/setup/test")
	a := b.post("/setup/test", nil)
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "cannot start") {
		t.Fatalf("refused start = %d: %s", a.status, a.body)
	}
	noInternals(t, "refused start", a)
}

// TestPortal_OwnRequestID: the request id in the page, the header and the
// logs is the portal's own, never one the client sent.
func TestPortal_OwnRequestID(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("GET", e.portal.URL+"/setup/", nil)
	req.Header.Set("X-Request-Id", "client-chosen-id")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" || rid == "client-chosen-id" || strings.Contains(string(body), "client-chosen-id") {
		t.Fatalf("X-Request-Id = %q; page mentions the client's id: %v", rid, strings.Contains(string(body), "client-chosen-id"))
	}
	if !strings.Contains(string(body), rid) {
		t.Errorf("the page does not show its request id %q", rid)
	}
}
