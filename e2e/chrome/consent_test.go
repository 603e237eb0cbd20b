package chrome

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/realmgate/realmgate/broker"
)

// printerClient is a third-party client: realmgate shows its consent page.
func printerClient(app string) broker.Client {
	return broker.Client{ID: "printer", Secret: "printer-secret-0123456789", RedirectURIs: []string{app + "/printer-cb"},
		AllowedTenants: []string{"*"}, ClientSettings: broker.ClientSettings{Name: "Photo Printer", ThirdParty: true}}
}

// onConsentPage: realmgate's consent page for the printer.
func (e *env) onConsentPage() string {
	return `location.href.startsWith(` + js(e.broker) + `) && !!document.querySelector("button[value=allow]") && !!document.querySelector("h1") && document.querySelector("h1").textContent.includes("Photo Printer")`
}

// TestChrome_ConsentPage360: a third-party app's consent page at 360 px
// (a phone): after alice signs in at the acme IdP the page names the app
// and what it asks for, fits the viewport, and is captured; Deny sends
// access_denied to the app, Allow (the page shown again from the session)
// a code.
func TestChrome_ConsentPage360(t *testing.T) {
	e := need(t)
	sum := sha256.Sum256([]byte("chrome-consent-verifier-0123456789-abcdefghijklmnop"))
	authorize := e.broker + "/authorize?" + url.Values{"client_id": {"printer"}, "redirect_uri": {e.app + "/printer-cb"},
		"response_type": {"code"}, "scope": {"openid email profile"}, "state": {"s-consent"}, "login_hint": {"alice@acme.test"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
	ctx := e.tab(t)
	do(t, ctx, "emulate 360 px", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)), chromedp.Navigate(authorize))
	waitFor(t, ctx, "acme picker", e.onPicker("acme"))
	do(t, ctx, "pick alice", chromedp.Click(chromedp.CSS(`button.user[value="`+aliceSub+`"]`)))
	waitFor(t, ctx, "the consent page", e.onConsentPage())
	text := eval[string](t, ctx, `document.body.innerText`)
	for _, want := range []string{"Photo Printer", "alice@acme.test", "Your email address", "Your name and basic profile", "Allow", "Deny"} {
		if !strings.Contains(text, want) {
			t.Errorf("consent page lacks %q: %s", want, trim(text))
		}
	}
	if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > 360 {
		t.Errorf("consent page at 360 px: scrollWidth = %d, want <= 360 (horizontal scroll)", sw)
	}
	if bad := eval[string](t, ctx, `[...document.querySelectorAll("button,h1,li")]
		.filter(el => { const r = el.getBoundingClientRect(); return r.left < 0 || r.right > 360; })
		.map(el => el.tagName + ":" + el.textContent.trim()).join(", ")`); bad != "" {
		t.Errorf("consent page at 360 px: elements overflow the viewport: %s", bad)
	}
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		path := filepath.Join(artifactsDir(t), "consent-360.png")
		if err := os.WriteFile(path, png, 0o644); err == nil {
			abs, _ := filepath.Abs(path)
			t.Logf("360 px screenshot of the consent page: %s (%d bytes)", abs, len(png))
		}
	}

	do(t, ctx, "deny", chromedp.Click(chromedp.CSS(`button[value=deny]`)))
	waitFor(t, ctx, "the app's callback", `location.href.startsWith(`+js(e.app+"/printer-cb?")+`)`)
	if q := mustQuery(t, location(t, ctx)); q.Get("error") != "access_denied" || q.Get("state") != "s-consent" || q.Get("code") != "" {
		t.Errorf("after Deny the app got %v, want error=access_denied with its state", q)
	}

	do(t, ctx, "ask again", chromedp.Navigate(authorize))
	waitFor(t, ctx, "the consent page from the session", e.onConsentPage())
	do(t, ctx, "allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	waitFor(t, ctx, "the app's callback", `location.href.startsWith(`+js(e.app+"/printer-cb?")+`)`)
	if q := mustQuery(t, location(t, ctx)); q.Get("code") == "" || q.Get("state") != "s-consent" {
		t.Errorf("after Allow the app got %v, want a code with its state", q)
	}
}

func mustQuery(t *testing.T, loc string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("location %q: %v", loc, err)
	}
	return u.Query()
}
