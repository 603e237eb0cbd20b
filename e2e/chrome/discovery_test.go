package chrome

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestChrome_EmailToUpstreamIdP types an email and checks that realmgate
// sends the browser to the upstream IdP of the email's tenant (or of the
// default tenant for an unknown domain), and that the app gets that tid.
func TestChrome_EmailToUpstreamIdP(t *testing.T) {
	e := need(t)
	tests := []struct {
		name      string
		onPage    bool // type on realmgate's discovery page, not the app's box
		email     string
		wantRealm string
		user      string
		wantTid   string
	}{
		{"app box acme", false, "alice@acme.test", "acme", aliceSub, "acme"},
		{"discovery page globex", true, "carol@globex.test", "globex", carolSub, "globex"},
		{"unknown domain goes to default tenant", true, "sam@gmail.example", "social", samSub, "consumers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.tab(t)
			if tt.onPage {
				do(t, ctx, "open sign-in", chromedp.Navigate(e.app+"/login"))
				waitFor(t, ctx, "discovery page", e.onDiscoveryPage())
				do(t, ctx, "type email",
					chromedp.SendKeys(chromedp.ID("email"), tt.email),
					chromedp.Click(chromedp.CSS(`form:has(#email) button[type=submit]`)))
			} else {
				do(t, ctx, "open app", chromedp.Navigate(e.app+"/"))
				do(t, ctx, "type email",
					chromedp.SendKeys(chromedp.CSS(`input[name=login_hint]`), tt.email),
					chromedp.Click(chromedp.CSS(`form[action="/login"] button`)))
			}
			waitFor(t, ctx, tt.wantRealm+" picker", e.onPicker(tt.wantRealm))
			if got := eval[string](t, ctx, `document.body.innerText`); !strings.Contains(got, "Login hint: "+tt.email) {
				t.Errorf("picker of %s does not show the login hint %q forwarded upstream: %s", tt.wantRealm, tt.email, trim(got))
			}
			if got := e.pickUser(t, ctx, tt.user); got != tt.wantTid {
				t.Errorf("after typing %q: tid = %q, want %q", tt.email, got, tt.wantTid)
			}
		})
	}
}

// TestChrome_S53_RememberedChoice picks the social provider on the discovery
// page, comes back, and is sent straight there next time by the signed
// cookie; a forged cookie is ignored; "Use another account" clears it.
func TestChrome_S53_RememberedChoice(t *testing.T) {
	e := need(t)
	ctx := e.tab(t)

	// 1. No email: the discovery page; pick the provider button.
	do(t, ctx, "open sign-in", chromedp.Navigate(e.app+"/login"))
	waitFor(t, ctx, "discovery page", e.onDiscoveryPage())
	if got := eval[string](t, ctx, `document.querySelector('button.idp[value="social-idp"]')?.textContent ?? ""`); got != "Continue with Social Login" {
		t.Errorf("social provider button text = %q, want %q", got, "Continue with Social Login")
	}
	if c := e.cookie(t, ctx, "rg_idp"); c != nil {
		t.Fatalf("fresh browser already has rg_idp=%q", c.Value)
	}
	do(t, ctx, "click social", chromedp.Click(chromedp.CSS(`button.idp[value="social-idp"]`)))
	waitFor(t, ctx, "social picker", e.onPicker("social"))
	if got := e.pickUser(t, ctx, samSub); got != "consumers" {
		t.Fatalf("social sign-in: tid = %q, want consumers", got)
	}

	// The cookie names the IdP only, is HttpOnly and Lax (S53).
	c := e.cookie(t, ctx, "rg_idp")
	if c == nil {
		t.Fatal("no rg_idp cookie after signing in with a provider")
	}
	idpPart, sig, _ := strings.Cut(c.Value, ".")
	if idpPart != "social-idp" || sig == "" {
		t.Errorf("rg_idp = %q, want social-idp.<mac>", c.Value)
	}
	if strings.Contains(strings.ToLower(c.Value), "sam") || strings.Contains(c.Value, "gmail") {
		t.Errorf("rg_idp = %q holds something about the user", c.Value)
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("rg_idp HttpOnly=%v SameSite=%q, want true and Lax", c.HTTPOnly, c.SameSite)
	}

	// 2. A new sign-in (prompt=login skips the SSO session) goes straight
	// to the remembered IdP: no discovery page.
	do(t, ctx, "sign in again", chromedp.Navigate(e.app+"/login?prompt=login"))
	waitFor(t, ctx, "social picker by cookie", e.onPicker("social"))
	if loc := location(t, ctx); !strings.HasPrefix(loc, e.idp+"/social/authorize?") {
		t.Errorf("remembered choice landed on %s, want %s/social/authorize", loc, e.idp)
	}

	// 3. A forged cookie (another IdP with the social MAC) is ignored.
	forged := "acme-idp." + sig
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "rg_idp", Value: forged,
		URL: e.broker + "/", HTTPOnly: new(true), SameSite: network.CookieSameSiteLax}); err != nil {
		t.Fatalf("set forged cookie: %v", err)
	}
	do(t, ctx, "sign in with forged cookie", chromedp.Navigate(e.app+"/login?prompt=login"))
	waitFor(t, ctx, "discovery page despite forged cookie", e.onDiscoveryPage())
	if eval[bool](t, ctx, `document.body.innerText.includes("Last time")`) {
		t.Errorf("forged rg_idp=%q was honoured: the page offers a remembered choice: %s", forged, trim(pageState(ctx)))
	}
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "rg_idp", Value: c.Value,
		URL: e.broker + "/", HTTPOnly: new(true), SameSite: network.CookieSameSiteLax}); err != nil {
		t.Fatalf("restore cookie: %v", err)
	}

	// 4. prompt=select_account shows the discovery page with the remembered
	// choice and a visible "Use another account"; clicking it clears it.
	do(t, ctx, "select account", chromedp.Navigate(e.app+"/login?prompt=select_account"))
	waitFor(t, ctx, "discovery page with remembered choice", e.onDiscoveryPage()+` && document.body.innerText.includes("Last time you signed in with")`)
	if got := eval[string](t, ctx, `document.querySelector("form button[name=idp]").textContent`); got != "Continue with Social Login" {
		t.Errorf("remembered button = %q, want %q", got, "Continue with Social Login")
	}
	if vis := eval[bool](t, ctx, `(() => { const a = [...document.querySelectorAll("a")].find(a => a.textContent === "Use another account");
		if (!a) return false; const r = a.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(a).visibility === "visible"; })()`); !vis {
		t.Fatalf("no visible \"Use another account\" link: %s", pageState(ctx))
	}
	do(t, ctx, "use another account", chromedp.Click(chromedp.CSS(`a[href*="/login/forget"]`)))
	waitFor(t, ctx, "discovery page without remembered choice", e.onDiscoveryPage()+` && !document.body.innerText.includes("Last time")`)
	if c := e.cookie(t, ctx, "rg_idp"); c != nil {
		t.Errorf("after \"Use another account\" rg_idp = %q, want it deleted", c.Value)
	}

	// 5. The next sign-in shows the discovery page again.
	do(t, ctx, "sign in after forgetting", chromedp.Navigate(e.app+"/login?prompt=login"))
	waitFor(t, ctx, "discovery page after forgetting", e.onDiscoveryPage())
	if loc := location(t, ctx); !strings.HasPrefix(loc, e.broker+"/login?") {
		t.Errorf("after forgetting, sign-in landed on %s, want realmgate's discovery page", loc)
	}
}

// TestChrome_KeyboardOnly completes a sign-in with keys alone: the email
// field has focus first, Tab reaches the submit button then the provider
// button, Enter submits, and on the IdP's picker Enter picks the hinted user.
func TestChrome_KeyboardOnly(t *testing.T) {
	e := need(t)
	ctx := e.tab(t)
	do(t, ctx, "open sign-in", chromedp.Navigate(e.app+"/login"))
	waitFor(t, ctx, "discovery page", e.onDiscoveryPage())

	active := func() string {
		return eval[string](t, ctx, `(() => { const a = document.activeElement; if (!a) return "";
			return a.id ? "#" + a.id : a.tagName.toLowerCase() + ":" + a.textContent.trim(); })()`)
	}
	if got := active(); got != "#email" {
		t.Fatalf("focused on load = %q, want #email (autofocus)", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('label[for="email"]')?.textContent ?? ""`); got == "" {
		t.Errorf("email field has no <label for=email>")
	}
	do(t, ctx, "type email", chromedp.KeyEvent("alice@acme.test"))
	steps := []struct {
		key  string
		mods []chromedp.Modifier
		want string
	}{
		{kb.Tab, nil, "button:Continue with your organization"},
		{kb.Tab, nil, "button:Continue with Social Login"},
		{kb.Tab, []chromedp.Modifier{kb.ModifierShift}, "button:Continue with your organization"},
	}
	for i, s := range steps {
		do(t, ctx, "tab", chromedp.KeyEvent(s.key, chromedp.KeyModifiers(s.mods...)))
		if got := active(); got != s.want {
			t.Fatalf("focus after key %d = %q, want %q", i+1, got, s.want)
		}
	}
	do(t, ctx, "enter", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "acme picker", e.onPicker("acme"))

	// The picker focuses the hinted user; otherwise Tab to it.
	for range 10 {
		if eval[string](t, ctx, `document.activeElement?.value ?? ""`) == aliceSub {
			break
		}
		do(t, ctx, "tab on picker", chromedp.KeyEvent(kb.Tab))
	}
	if got := eval[string](t, ctx, `document.activeElement?.value ?? ""`); got != aliceSub {
		t.Fatalf("could not focus Alice on the picker by keyboard; focused %q", got)
	}
	do(t, ctx, "enter on picker", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "signed in", e.signedIn())
	if got := claim(t, ctx, "tid"); got != "acme" {
		t.Errorf("keyboard sign-in: tid = %q, want acme", got)
	}
}

// TestChrome_Narrow360 renders the discovery page and a tenant's choice page
// in a 360 px wide viewport, saves screenshots as test artifacts and checks
// that nothing scrolls sideways.
func TestChrome_Narrow360(t *testing.T) {
	e := need(t)
	dir := artifactsDir(t)
	tests := []struct {
		name, start, ready, file string
	}{
		{"discovery page", e.app + "/login", e.onDiscoveryPage(), "discovery-360.png"},
		{"tenant choice page", e.app + "/login?login_hint=" + url.QueryEscape("eve@evil.test"),
			e.onChoicePage(), "choice-360.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.tab(t)
			do(t, ctx, "emulate 360 px", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)),
				chromedp.Navigate(tt.start))
			waitFor(t, ctx, tt.name, tt.ready)
			if w := eval[int](t, ctx, `window.innerWidth`); w != 360 {
				t.Fatalf("viewport width = %d, want 360", w)
			}
			if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > 360 {
				t.Errorf("%s at 360 px: scrollWidth = %d, want <= 360 (horizontal scroll)", tt.name, sw)
			}
			// Every control fits in the viewport.
			if bad := eval[string](t, ctx, `[...document.querySelectorAll("input:not([type=hidden]),button,a,h1")]
				.filter(el => { const r = el.getBoundingClientRect(); return r.left < 0 || r.right > 360; })
				.map(el => el.tagName + ":" + el.textContent.trim()).join(", ")`); bad != "" {
				t.Errorf("%s at 360 px: elements overflow the viewport: %s", tt.name, bad)
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatalf("save screenshot: %v", err)
			}
			abs, _ := filepath.Abs(path)
			t.Logf("360 px screenshot of the %s: %s (%d bytes)", tt.name, abs, len(png))
		})
	}
}

// TestChrome_S54_HostileValuesInert renders a hostile tenant name, IdP name,
// login hint and typed email. CSP is bypassed in the tab so that only the
// templates' escaping stands between the values and script execution; a
// control page without escaping proves the detector fires.
func TestChrome_S54_HostileValuesInert(t *testing.T) {
	e := need(t)
	inert := func(t *testing.T, ctx context.Context) {
		t.Helper()
		if got := eval[string](t, ctx, `typeof window.__pwned`); got != "undefined" {
			t.Errorf("window.__pwned is %s: a hostile value ran as script", got)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("img, script, [onerror]").length`); n != 0 {
			t.Errorf("page has %d img/script/[onerror] elements made from hostile values: %s", n,
				trim(eval[string](t, ctx, `document.body.innerHTML`)))
		}
	}
	checkChoicePage := func(t *testing.T, ctx context.Context, wantEmail string) {
		t.Helper()
		waitFor(t, ctx, "hostile tenant's choice page", e.onChoicePage())
		inert(t, ctx)
		if got := eval[string](t, ctx, `document.querySelector("h1").textContent`); got != "Sign in to "+hostileTenant {
			t.Errorf("heading = %q, want the literal %q", got, "Sign in to "+hostileTenant)
		}
		if !eval[bool](t, ctx, `document.body.innerText.includes(`+js(hostileTenant)+`)`) {
			t.Errorf("hostile tenant name not visible as text: %s", trim(pageState(ctx)))
		}
		if got := eval[string](t, ctx, `[...document.querySelectorAll("button.idp")].map(b => b.textContent).join("|")`); got != hostileIdP+"|Evil backup" {
			t.Errorf("IdP buttons = %q, want %q", got, hostileIdP+"|Evil backup")
		}
		if got := eval[string](t, ctx, `document.querySelector("input[name=email]").value`); got != wantEmail {
			t.Errorf("email carried on the choice page = %q, want the literal %q", got, wantEmail)
		}
	}
	bypassCSP := func(t *testing.T, ctx context.Context) {
		t.Helper()
		if _, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
			t.Fatalf("bypass CSP: %v", err)
		}
	}

	t.Run("control: unescaped page runs the payload", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<!doctype html><h1>Sign in to " + hostileTenant + "</h1>"))
		}))
		defer ts.Close()
		ctx := e.tab(t)
		bypassCSP(t, ctx)
		do(t, ctx, "open control page", chromedp.Navigate(ts.URL+"/"))
		waitFor(t, ctx, "payload to run on the unescaped page", `window.__pwned === 1`)
	})

	t.Run("login_hint and tenant name", func(t *testing.T) {
		ctx := e.tab(t)
		bypassCSP(t, ctx)
		do(t, ctx, "sign in with a hint at the hostile tenant", chromedp.Navigate(e.app+"/login?login_hint="+url.QueryEscape(evilEmail)))
		checkChoicePage(t, ctx, evilEmail)
	})

	t.Run("typed email and tenant name", func(t *testing.T) {
		ctx := e.tab(t)
		bypassCSP(t, ctx)
		do(t, ctx, "open sign-in", chromedp.Navigate(e.app+"/login"))
		waitFor(t, ctx, "discovery page", e.onDiscoveryPage())
		// The browser's own type=email check would refuse this address; an
		// attacker's browser would not, so the test turns it off.
		do(t, ctx, "type hostile email",
			chromedp.Evaluate[chromedp.Void](`document.getElementById("email").form.noValidate = true`),
			chromedp.SendKeys(chromedp.ID("email"), evilEmail),
			chromedp.Click(chromedp.CSS(`form:has(#email) button[type=submit]`)))
		checkChoicePage(t, ctx, evilEmail)
	})

	// A hostile address is no addr-spec (S74): it routes nowhere, and the
	// discovery page echoes it as inert text.
	for name, hint := range map[string]string{
		"invalid hint echoed in the email box":         `"><img src=x onerror="window.__pwned=1">`,
		"S74 hostile email refused and echoed inertly": hostileEmail,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := e.tab(t)
			bypassCSP(t, ctx)
			do(t, ctx, "sign in with a hostile hint", chromedp.Navigate(e.app+"/login?login_hint="+url.QueryEscape(hint)))
			// realmgate answers /authorize itself with the discovery page and a message.
			waitFor(t, ctx, "discovery page with an error", `location.href.startsWith(`+js(e.broker)+`) && !!document.getElementById("email") && !!document.getElementById("msg")`)
			inert(t, ctx)
			if got := eval[string](t, ctx, `document.getElementById("email").value`); got != hint {
				t.Errorf("email box value = %q, want the literal %q", got, hint)
			}
		})
	}
}
