package chrome

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/realmgate/realmgate/internal/demoapp"
	"github.com/realmgate/realmgate/internal/dnstest"
	"github.com/realmgate/realmgate/internal/e2etest"
)

// This file runs the setup portal the way a customer's IT admin meets it:
// the realmgate binary (admin API and setup portal on a memory store), a
// DNS server for the domain proof, panva's oidc-provider (e2e/node) as an
// Entra-like OIDC IdP, samlify (e2e/saml/node) as an AD FS-like SAML IdP,
// and the demo app for the end user's sign-in afterwards.

// portalOperatorToken is the admin API's operator token of these tests.
const portalOperatorToken = "portal-operator-token-0123456789abcdef0123"

// portalEnv is the realmgate binary with its admin API, the DNS server it
// asks, and the demo app signed in through it.
type portalEnv struct {
	issuer, admin, app string
	rg                 *e2etest.Proc
	dns                *dnstest.Server
	node               string // the node executable
	dir                string
}

// portalConfig is the binary's configuration: no file tenant (the tests
// create theirs through the API), the demo app as client, loopback IdPs
// allowed, and the test DNS server for domain proofs.
const portalConfig = `# written by e2e/chrome/portal_test.go
issuer: {{.Issuer}}
listen: {{.Listen}}
rate_limits:
  starts_per_ip: "off"
  failures_per_ip: "off"
ops:
  listen: 127.0.0.1:0
store:
  type: memory
keys:
  secret: "{{.Secret}}"
outbound:
  allow_loopback: true
admin_api:
  listen: {{.Admin}}
  dns_resolver: {{.DNS}}
  tokens:
    - name: ops
      token: "{{.Token}}"
clients:
  - id: demo-app
    secret: "{{.AppSecret}}"
    redirect_uris: ["{{.App}}/callback"]
    allowed_tenants: ["*"]
    claims: [roles] # the roles the portal's group table maps, without the roles scope
`

var portalConfigTemplate = template.Must(template.New("portal.yaml").Parse(portalConfig))

// startPortalEnv builds and starts realmgate with its admin API, a DNS
// server and the demo app; they stop when the test ends.
func startPortalEnv(t *testing.T) *portalEnv {
	t.Helper()
	root, err := e2etest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The versions package.json and package-lock.json pin (as e2e/ and e2e/saml/ check them).
	node, err := e2etest.Node(filepath.Join(root, "e2e", "node"), map[string]string{"oidc-provider": "9.13.3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2etest.Node(filepath.Join(root, "e2e", "saml", "node"), map[string]string{"samlify": "2.13.1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "realmgate")
	if err := e2etest.Build(root, "./cmd/realmgate", bin); err != nil {
		t.Fatal(err)
	}
	pe := &portalEnv{node: node, dir: dir, dns: dnstest.Start(t)}
	listen, adminAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	pe.issuer, pe.admin = "http://"+listen, "http://"+adminAddr
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pe.app = "http://" + appLn.Addr().String()
	appSecret := rand.Text() + rand.Text()
	cfg := e2etest.WriteConfig(t, portalConfigTemplate, map[string]string{"Issuer": pe.issuer, "Listen": listen,
		"Secret": rand.Text() + rand.Text(), "Admin": adminAddr, "DNS": pe.dns.Addr(), "Token": portalOperatorToken,
		"AppSecret": appSecret, "App": pe.app})
	pe.rg = e2etest.Start(t, "realmgate", exec.Command(bin, "serve", "--config", cfg, "--log-format", "text"))
	pe.rg.WaitReady(t, pe.issuer+"/readyz")
	app, err := demoapp.New(demoapp.Options{Issuer: pe.issuer, ClientID: "demo-app", ClientSecret: appSecret,
		RedirectURL: pe.app + "/callback"})
	if err != nil {
		appLn.Close()
		t.Fatalf("demoapp: %v", err)
	}
	hs := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(appLn) }()
	t.Cleanup(func() { _ = hs.Close() })
	return pe
}

// call calls the admin API as the operator and decodes the answer into out
// (when not nil); a status other than want fails the test.
func (pe *portalEnv) call(t *testing.T, want int, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, pe.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+portalOperatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// startOIDCProvider runs e2e/node/op.mjs with redirectURI registered for
// client clientID and returns its issuer and the client's secret. Like
// Entra ID with groupMembershipClaims, it sends groups without a groups
// scope (--groups-claim).
func (pe *portalEnv) startOIDCProvider(t *testing.T, clientID, redirectURI string) (issuer, secret string) {
	t.Helper()
	secret = rand.Text()
	root, _ := e2etest.RepoRoot()
	p := e2etest.Start(t, "oidc-provider", e2etest.NodeCommand(pe.node, filepath.Join(root, "e2e", "node"),
		"op.mjs", "--client-id="+clientID, "--client-secret="+secret, "--redirect-uri="+redirectURI, "--groups-claim"))
	var ready struct {
		Issuer string `json:"issuer"`
	}
	p.WaitLine(t, func(line string) bool { return json.Unmarshal([]byte(line), &ready) == nil && ready.Issuer != "" })
	return ready.Issuer, secret
}

// startSAMLIdP runs e2e/saml/node/idp.mjs with one IdP named name whose
// users are at domain and whose SP is realmgate's metadata at spMetadata;
// it returns the IdP's metadata URL.
func (pe *portalEnv) startSAMLIdP(t *testing.T, name, domain, spMetadata string) string {
	t.Helper()
	key, cert := e2etest.WriteKeyPair(t, pe.dir, name+"-idp")
	// samlify wants signed AuthnRequests (its default): realmgate signs them
	// with the pair the portal made for this IdP.
	cfg, _ := json.Marshal([]map[string]any{{"name": name, "key": key, "cert": cert, "spMetadata": spMetadata, "domain": domain}})
	cfgFile := filepath.Join(pe.dir, name+"-idp.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	root, _ := e2etest.RepoRoot()
	p := e2etest.Start(t, "samlify idp.mjs", e2etest.NodeCommand(pe.node, filepath.Join(root, "e2e", "saml", "node"), "idp.mjs", cfgFile))
	var ready struct {
		URL string `json:"url"`
	}
	p.WaitLine(t, func(line string) bool { return json.Unmarshal([]byte(line), &ready) == nil && ready.URL != "" })
	return ready.URL + "/" + name + "/metadata"
}

// Keyboard-only helpers: the walk presses keys, never clicks.

// activeDesc describes the focused element, for messages.
const activeDesc = `(() => { const a = document.activeElement; if (!a) return "(none)";
	return a.tagName.toLowerCase() + (a.id ? "#" + a.id : "") + (a.name ? "[name=" + a.name + "]" : "") + ":" + (a.textContent || a.value || "").trim().slice(0, 40); })()`

// tabTo presses Tab until the focused element a satisfies pred (a
// JavaScript expression over a), at most 60 times.
func tabTo(t *testing.T, ctx context.Context, what, pred string) {
	t.Helper()
	check := `(() => { const a = document.activeElement; return !!a && a !== document.body && !!(` + pred + `); })()`
	for range 60 {
		if eval[bool](t, ctx, check) {
			return
		}
		do(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("Tab never reached %s (%s); focus is on %s; page: %s", what, pred, eval[string](t, ctx, activeDesc), pageState(ctx))
}

// typeKeys types text into the focused element, key by key.
func typeKeys(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	do(t, ctx, "type", chromedp.KeyEvent(text))
}

// clearField empties the focused text field with End and Backspace.
func clearField(t *testing.T, ctx context.Context) {
	t.Helper()
	n := eval[int](t, ctx, `(document.activeElement.value || "").length`)
	do(t, ctx, "end", chromedp.KeyEvent(kb.End))
	for range n {
		do(t, ctx, "backspace", chromedp.KeyEvent(kb.Backspace))
	}
}

// enter presses Enter on the focused element and waits for the next page
// to load (the old document is gone).
func enter(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.__rgOld = true`))
	do(t, ctx, what, chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "the page after "+what, `window.__rgOld !== true`)
}

// upstreamSignIn signs user in at the upstream IdP by keyboard (the
// oidc-provider's login and consent pages, samlify's login form) until
// done holds.
func upstreamSignIn(t *testing.T, ctx context.Context, user, password, done string) {
	t.Helper()
	const (
		opLogin   = `!!document.querySelector("input[name=prompt][value=login]")`
		opConsent = `!!document.querySelector("input[name=prompt][value=consent]")`
		samlLogin = `!!document.querySelector("input[name=username]")`
	)
	for range 6 {
		waitFor(t, ctx, "the IdP's page or the end", done+` || `+opLogin+` || `+opConsent+` || `+samlLogin)
		switch {
		case eval[bool](t, ctx, done):
			return
		case eval[bool](t, ctx, opLogin):
			tabTo(t, ctx, "the login field", `a.name === "login"`)
			clearField(t, ctx)
			typeKeys(t, ctx, user)
			do(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
			typeKeys(t, ctx, password)
			enter(t, ctx, "sign in at oidc-provider")
		case eval[bool](t, ctx, opConsent):
			tabTo(t, ctx, "Continue", `a.tagName === "BUTTON"`)
			enter(t, ctx, "consent at oidc-provider")
		case eval[bool](t, ctx, samlLogin):
			tabTo(t, ctx, "the user name field", `a.name === "username"`)
			typeKeys(t, ctx, user)
			do(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
			typeKeys(t, ctx, password)
			enter(t, ctx, "sign in at samlify")
		}
	}
	waitFor(t, ctx, "the end of the upstream sign-in", done)
}

// portalCase is one walk through the portal.
type portalCase struct {
	kind           string // the portal's IdP kind: entra (oidc-provider) or adfs (samlify)
	tenant, domain string
	user, password string // at the IdP
	email          string // the user's email (in domain)
	group, role    string // a group the user is in, and the role it maps to
	lang           a11yLang
	w, h           int64
}

// TestChrome_PortalWalk: an operator creates a tenant and a setup link
// through the admin API; in Chromium, with the keyboard only, at 1280 px
// and 360 px, in English and German, the customer's IT admin opens the
// link, picks the IdP kind, reads the values to enter at the IdP (the IdP
// is then started with them: oidc-provider as Entra ID, samlify as AD FS),
// connects it, proves the domain by a DNS TXT record, runs a real test
// sign-in (and sees the attributes), maps a group to a role with a dry run,
// and activates. Every portal page passes axe-core and is captured. Then an
// end user of the tenant, in a new private window, signs in at the demo app
// through the discovery page and gets a token of the tenant.
func TestChrome_PortalWalk(t *testing.T) {
	e := need(t)
	axeSource(t)
	pe := startPortalEnv(t)
	en, de := a11yLangs[0], a11yLangs[1]
	cases := []portalCase{
		{kind: "entra", tenant: "contoso", domain: "acme.test", user: "alice", password: "pw", email: "alice@acme.test",
			group: "finance-admins", role: "finance", lang: en, w: 1280, h: 800},
		{kind: "entra", tenant: "northwind", domain: "secure.test", user: "carol", password: "pw", email: "carol@secure.test",
			group: "staff", role: "employee", lang: de, w: 360, h: 740},
		{kind: "adfs", tenant: "fabrikam", domain: "fabrikam.test", user: "alice", password: "wonderland", email: "alice@fabrikam.test",
			group: "Finance-Admins", role: "finance", lang: de, w: 1280, h: 800},
		{kind: "adfs", tenant: "tailspin", domain: "tailspin.test", user: "alice", password: "wonderland", email: "alice@tailspin.test",
			group: "Finance-Admins", role: "finance", lang: en, w: 360, h: 740},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%d", c.kind, c.lang.tag, c.w), func(t *testing.T) {
			pe.walk(t, e, c)
		})
	}
}

// portalCheck checks the portal page on screen: its language, focus on
// load, axe-core, no sideways scroll, a keyboard path to every control;
// and saves its screenshot as portal-<page>-<kind>-<lang>-<width>.png.
func (pe *portalEnv) portalCheck(t *testing.T, ctx context.Context, c portalCase, page, key string) {
	t.Helper()
	for _, msg := range languageProblems(t, ctx, c.lang.tag, key) {
		t.Errorf("portal %s: %s", page, msg)
	}
	if msg := focusOnLoad(t, ctx); msg != "" {
		t.Errorf("portal %s: %s", page, msg)
	}
	if vs := runAxe(t, ctx); len(vs) > 0 {
		t.Errorf("axe-core on the portal's %s page at %d px: %d violations:\n%s", page, c.w, len(vs), describe(vs))
	}
	if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > int(c.w) {
		t.Errorf("portal %s at %d px: scrollWidth = %d (horizontal scroll)", page, c.w, sw)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(artifactsDir(t), fmt.Sprintf("portal-%s-%s-%s-%d.png", page, c.kind, c.lang.tag, c.w)), png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	for _, msg := range keyboardReach(t, ctx) {
		t.Errorf("portal %s: %s", page, msg)
	}
}

// onPortal: a loaded portal page at path (under /setup/) with el.
func (pe *portalEnv) onPortal(path, el string) string {
	return `location.href.split("?")[0] === ` + js(pe.issuer+"/setup/"+path) + ` && !!document.querySelector(` + js(el) + `)`
}

// walk is one walk of TestChrome_PortalWalk: from the link to activation,
// then the end user's sign-in.
func (pe *portalEnv) walk(t *testing.T, e *env, c portalCase) {
	pe.call(t, http.StatusCreated, "POST", "/v1/tenants", map[string]any{"id": c.tenant, "name": strings.ToUpper(c.tenant[:1]) + c.tenant[1:] + " Ltd"}, nil)
	var link struct {
		URL string `json:"url"`
	}
	pe.call(t, http.StatusCreated, "POST", "/v1/tenants/"+c.tenant+"/setup-links", map[string]any{"note": "e2e/chrome"}, &link)

	ctx := e.a11yTab(t, c.lang.header)
	scale := 1.0
	if c.w < 400 {
		scale = 2
	}
	do(t, ctx, "viewport", chromedp.EmulateViewport(c.w, c.h, chromedp.EmulateScale(scale)))

	// The link: the secret leaves the address bar at once.
	do(t, ctx, "open the setup link", chromedp.Navigate(link.URL))
	waitFor(t, ctx, "the portal's overview", pe.onPortal("", "h1"))
	pe.portalCheck(t, ctx, c, "home", "Set up single sign-on")

	// 1. The IdP: its kind, the values to enter there, the connection.
	tabTo(t, ctx, "the identity provider step", `a.getAttribute("href") === "/setup/idp"`)
	enter(t, ctx, "open the identity provider step")
	waitFor(t, ctx, "the IdP kinds", pe.onPortal("idp", "ul a"))
	pe.portalCheck(t, ctx, c, "kinds", "Choose your identity provider")
	tabTo(t, ctx, "the kind "+c.kind, `a.getAttribute("href") === "/setup/idp/`+c.kind+`"`)
	enter(t, ctx, "choose "+c.kind)
	waitFor(t, ctx, "the kind's page", pe.onPortal("idp/"+c.kind, "form"))
	pe.portalCheck(t, ctx, c, "connect", "Connect your identity provider")
	value := func(id string) string {
		v := eval[string](t, ctx, `document.getElementById(`+js(id)+`)?.value ?? ""`)
		if v == "" {
			t.Fatalf("the portal shows no %s: %s", id, pageState(ctx))
		}
		return v
	}
	if c.kind == "entra" {
		redirect := value("v-redirect")
		issuer, secret := pe.startOIDCProvider(t, "realmgate-"+c.tenant, redirect)
		tabTo(t, ctx, "the issuer field", `a.id === "issuer"`)
		typeKeys(t, ctx, issuer)
		tabTo(t, ctx, "the client ID field", `a.id === "client_id"`)
		typeKeys(t, ctx, "realmgate-"+c.tenant)
		tabTo(t, ctx, "the client secret field", `a.id === "client_secret"`)
		typeKeys(t, ctx, secret)
	} else {
		metadata := pe.startSAMLIdP(t, c.tenant, c.domain, value("v-metadata"))
		tabTo(t, ctx, "the metadata URL field", `a.id === "metadata_url"`)
		typeKeys(t, ctx, metadata)
	}
	enter(t, ctx, "save the identity provider")
	waitFor(t, ctx, "the overview after connecting", pe.onPortal("", `a[href="/setup/test"]`))

	// 2. The domain, proved by a TXT record in (test) DNS.
	tabTo(t, ctx, "the domains step", `a.getAttribute("href") === "/setup/domains"`)
	enter(t, ctx, "open the domains step")
	waitFor(t, ctx, "the domains page", pe.onPortal("domains", "#domain"))
	tabTo(t, ctx, "the domain field", `a.id === "domain"`)
	typeKeys(t, ctx, c.domain)
	enter(t, ctx, "add the domain")
	waitFor(t, ctx, "the TXT record to publish", pe.onPortal("domains", "#txt-value-0"))
	pe.portalCheck(t, ctx, c, "domains", "Prove your domains")
	pe.dns.Set(value("txt-name-0"), value("txt-value-0"))
	tabTo(t, ctx, "Check now", `a.tagName === "BUTTON" && a.form && a.form.action.endsWith("/setup/domains/check")`)
	enter(t, ctx, "check the domain")
	waitFor(t, ctx, "the domain verified", pe.onPortal("domains/check", "[role=status]")+` || `+pe.onPortal("domains", "[role=status]"))
	pe.portalCheck(t, ctx, c, "domain-verified", "Verified")
	tabTo(t, ctx, "back to the overview", `a.getAttribute("href") === "/setup/"`)
	enter(t, ctx, "back to the overview")

	// 3. A real test sign-in through the pending IdP.
	tabTo(t, ctx, "the test step", `a.getAttribute("href") === "/setup/test"`)
	enter(t, ctx, "open the test step")
	waitFor(t, ctx, "the test page", pe.onPortal("test", "form button"))
	pe.portalCheck(t, ctx, c, "test", "Start a test sign-in")
	tabTo(t, ctx, "Start a test sign-in", `a.tagName === "BUTTON" && a.form && a.form.action.endsWith("/setup/test")`)
	enter(t, ctx, "start the test sign-in")
	upstreamSignIn(t, ctx, c.user, c.password, pe.onPortal("test", "dl"))
	text := eval[string](t, ctx, `document.body.innerText`)
	for _, want := range []string{c.email, c.group} {
		if !strings.Contains(text, want) {
			t.Errorf("test sign-in result lacks %q: %s", want, trim(text))
		}
	}
	pe.portalCheck(t, ctx, c, "test-result", "Attributes received")
	tabTo(t, ctx, "back to the overview", `a.getAttribute("href") === "/setup/"`)
	enter(t, ctx, "back to the overview")

	// 4. Groups to roles, with a dry run on the test sign-in.
	tabTo(t, ctx, "the roles step", `a.getAttribute("href") === "/setup/roles"`)
	enter(t, ctx, "open the roles step")
	waitFor(t, ctx, "the roles page", pe.onPortal("roles", "#group-0"))
	pe.portalCheck(t, ctx, c, "roles", "Map groups to roles")
	tabTo(t, ctx, "the first group", `a.id === "group-0"`)
	typeKeys(t, ctx, c.group)
	do(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
	typeKeys(t, ctx, c.role)
	tabTo(t, ctx, "the dry run", `a.value === "dryrun"`)
	enter(t, ctx, "dry run")
	waitFor(t, ctx, "the dry run", pe.onPortal("roles", "#dryrun"))
	if got := eval[string](t, ctx, `document.querySelector("#dryrun").parentElement.innerText`); !strings.Contains(got, c.role) {
		t.Errorf("dry run of %s -> %s does not give the role: %s", c.group, c.role, trim(got))
	}
	pe.portalCheck(t, ctx, c, "roles-dryrun", "Dry run")
	tabTo(t, ctx, "Save the mapping", `a.value === "save"`)
	enter(t, ctx, "save the mapping")
	waitFor(t, ctx, "the overview after saving", pe.onPortal("", "h1"))

	// 5. A SCIM token, shown once, that the SCIM endpoint accepts.
	tabTo(t, ctx, "the SCIM step", `a.getAttribute("href") === "/setup/scim"`)
	enter(t, ctx, "open the SCIM step")
	waitFor(t, ctx, "the SCIM page", pe.onPortal("scim", "#scim-url"))
	pe.portalCheck(t, ctx, c, "scim", "Create a SCIM token")
	tabTo(t, ctx, "Create a SCIM token", `a.tagName === "BUTTON" && a.form && a.form.action.endsWith("/setup/scim")`)
	enter(t, ctx, "create a SCIM token")
	waitFor(t, ctx, "the SCIM token", pe.onPortal("scim", "#scim-token"))
	pe.portalCheck(t, ctx, c, "scim-token", "Copy the token now: it is shown only once.")
	req, _ := http.NewRequest(http.MethodGet, value("scim-url")+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+value("scim-token"))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("SCIM with the portal's token: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/Users with the portal's SCIM token = %d, want 200", value("scim-url"), resp.StatusCode)
		}
	}
	tabTo(t, ctx, "back to the overview", `a.getAttribute("href") === "/setup/"`)
	enter(t, ctx, "back to the overview")

	// 6. Activate.
	tabTo(t, ctx, "Activate", `a.getAttribute("href") === "/setup/activate"`)
	enter(t, ctx, "open the activation")
	waitFor(t, ctx, "the activation page", pe.onPortal("activate", "form button"))
	pe.portalCheck(t, ctx, c, "activate", "Activate")
	tabTo(t, ctx, "the Activate button", `a.tagName === "BUTTON"`)
	enter(t, ctx, "activate")
	waitFor(t, ctx, "done", pe.onPortal("activate", "h1")+` && !document.querySelector("form")`)
	pe.portalCheck(t, ctx, c, "done", "Single sign-on is active")

	// The link is used up.
	do(t, ctx, "open the link again", chromedp.Navigate(link.URL))
	waitFor(t, ctx, "the used link's page", `!!document.querySelector("h1")`)
	if eval[bool](t, ctx, `!!document.querySelector("a[href='/setup/idp']")`) {
		t.Errorf("the link opened the portal again after activation")
	}

	// An end user of the tenant signs in through the discovery page, in a
	// new private window, with the keyboard.
	user := e.a11yTab(t, c.lang.header)
	do(t, user, "viewport", chromedp.EmulateViewport(c.w, c.h, chromedp.EmulateScale(scale)))
	do(t, user, "open the app's sign-in", chromedp.Navigate(pe.app+"/login"))
	waitFor(t, user, "realmgate's discovery page", `location.href.startsWith(`+js(pe.issuer+"/")+`) && !!document.getElementById("email")`)
	waitFor(t, user, "focus on the email field (autofocus)", `document.activeElement && document.activeElement.id === "email"`)
	typeKeys(t, user, c.email)
	enter(t, user, "continue with the email")
	upstreamSignIn(t, user, c.user, c.password, `location.href.startsWith(`+js(pe.app+"/callback")+`) && !!document.querySelector("table.claims")`)
	if got := claim(t, user, "tid"); got != c.tenant {
		t.Errorf("end user's tid = %q, want %q", got, c.tenant)
	}
	// Entra sends groups, AD FS its role claim: the table maps both.
	if got := claim(t, user, "roles"); !strings.Contains(got, c.role) {
		t.Errorf("end user's roles = %q, want %q (mapped from %s)", got, c.role, c.group)
	}
}
