package chrome

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// phoneWidth is the CSS width of a common phone (iPhone 12 to 15) in portrait.
const phoneWidth = 390

// TestChrome_Narrow390_DemoApp renders the demo app's landing page, the
// development IdP's user picker and the app's signed-in page (the decoded
// ID token, with its long unbroken values) in a 390 px wide viewport, saves
// screenshots and checks that nothing scrolls sideways.
func TestChrome_Narrow390_DemoApp(t *testing.T) {
	e := need(t)
	dir := artifactsDir(t)
	ctx := e.tab(t)
	do(t, ctx, "emulate 390 px", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(e.app+"/"))
	waitFor(t, ctx, "the demo app's landing page", `!!document.querySelector("input[name=login_hint]")`)
	fits(t, ctx, "landing page", filepath.Join(dir, "demo-home-390.png"))

	do(t, ctx, "sign in as alice", chromedp.SendKeys(chromedp.CSS(`input[name=login_hint]`), "alice@acme.test"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)))
	waitFor(t, ctx, "acme picker", e.onPicker("acme"))
	fits(t, ctx, "development IdP's picker", filepath.Join(dir, "devidp-picker-390.png"))

	if got := e.pickUser(t, ctx, aliceSub); got != "acme" {
		t.Fatalf("tid = %q, want acme", got)
	}
	fits(t, ctx, "signed-in page", filepath.Join(dir, "demo-token-390.png"))
}

// fits checks that the page has no horizontal scroll at phoneWidth and that
// no element sticks out of the viewport, and saves a full-page screenshot.
func fits(t *testing.T, ctx context.Context, name, path string) {
	t.Helper()
	if w := eval[int](t, ctx, `window.innerWidth`); w != phoneWidth {
		t.Fatalf("%s: viewport width = %d, want %d", name, w, phoneWidth)
	}
	if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > phoneWidth {
		t.Errorf("%s at %d px: scrollWidth = %d, want <= %d (horizontal scroll)", name, phoneWidth, sw, phoneWidth)
	}
	// Elements wider than the viewport (a pre that scrolls inside itself is fine: its box fits).
	if bad := eval[string](t, ctx, `[...document.body.querySelectorAll("*")]
		.filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && (r.left < 0 || r.right > `+strconv.Itoa(phoneWidth)+`); })
		.map(el => el.tagName + (el.className ? "." + el.className : "") + ":" + el.textContent.trim().slice(0, 40)).join(", ")`); bad != "" {
		t.Errorf("%s at %d px: elements overflow the viewport: %s", name, phoneWidth, bad)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("%d px screenshot of the %s: %s (%d bytes)", phoneWidth, name, abs, len(png))
}
