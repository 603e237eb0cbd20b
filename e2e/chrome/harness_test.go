package chrome

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/demoapp"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// chromiumPath is Debian's chromium; REALMGATE_CHROMIUM overrides it.
const chromiumPath = "/usr/bin/chromium"

// The hostile values of S54. hostileTenant is a tenant's display name, as a
// careless admin (or an attacker with tenant self-service) could set it.
const (
	hostileTenant = `<img src=x onerror="window.__pwned=1">Evil & Co`
	hostileIdP    = `Evil "SSO" <script>window.__pwned=2</script>`
	hostileEmail  = `"><img src=x onerror="window.__pwned=1">@evil.test`
	// evilEmail is a well-formed address at the hostile tenant's domain.
	evilEmail = `victim@evil.test`
)

// Demo users of the development IdP realms (subjects name the picker buttons).
const (
	aliceSub = "acme-u-1001"
	bobSub   = "acme-u-1002"
	carolSub = "globex-u-2001"
	samSub   = "social-u-1"
	danaSub  = "globex-u-2002" // a member of acme too (a11y_test.go: the tenant picker)
)

// env is everything the tests share: three servers on 127.0.0.1 and one browser.
type env struct {
	app, broker, idp string // base URLs
	browser          context.Context
}

var (
	shared   *env
	setupErr error
	// logs collects the servers' logs; they are printed if a test fails.
	logs e2etest.SyncBuffer
)

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := start(ctx)
	setupErr = err
	defer stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- server logs ---\n%s", logs.String())
	}
	return code
}

// need returns the shared environment, or fails the test with the reason it
// could not be set up (chromium missing: install it, never skip).
func need(t *testing.T) *env {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("browser test environment: %v", setupErr)
	}
	return shared
}

// start serves the development IdP, realmgate and the demo app on ephemeral
// 127.0.0.1 ports and launches one headless chromium.
func start(ctx context.Context) (stop func(), err error) {
	var cleanups []func()
	stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
			stop = func() {}
		}
	}()
	exe := chromiumPath
	if p := os.Getenv("REALMGATE_CHROMIUM"); p != "" {
		exe = p
	}
	if _, err := os.Stat(exe); err != nil {
		return stop, fmt.Errorf("chromium not found at %s (%v): install it with `apt-get install -y chromium` "+
			"(scripts/test.sh does) or set REALMGATE_CHROMIUM", exe, err)
	}
	var lns [3]net.Listener
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return stop, fmt.Errorf("listen: %w", err)
		}
		ln := lns[i]
		cleanups = append(cleanups, func() { ln.Close() })
	}
	e := &env{
		idp:    "http://" + lns[0].Addr().String(),
		broker: "http://" + lns[1].Addr().String(),
		app:    "http://" + lns[2].Addr().String(),
	}
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	idpIDs := []string{"acme-idp", "globex-idp", "social-idp", "evil-idp-1", "evil-idp-2", "lumiere-idp-1", "lumiere-idp-2", "throttled-idp"}
	var redirects []string
	for _, id := range idpIDs {
		redirects = append(redirects, e.broker+"/callback/"+id)
	}
	client := devidp.Client{ID: devidp.DemoClientID, Secret: devidp.DemoClientSecret, RedirectURIs: redirects}
	user := func(sub, name, email string) devidp.User {
		return devidp.User{Subject: sub, Name: name, Email: email, EmailVerified: true}
	}
	approver := func(u devidp.User) devidp.User { u.Groups = []string{"IT-Leads"}; return u } // access_test.go
	idp, err := devidp.New(devidp.Options{BaseURL: e.idp, DevMode: true, Realms: []devidp.Realm{
		{Name: "acme", DisplayName: "ACME Corporation", Clients: []devidp.Client{client},
			Users: []devidp.User{approver(user(aliceSub, "Alice Anders", "alice@acme.test")), user(bobSub, "Bob Berg", "bob@acme.test")}},
		{Name: "globex", DisplayName: "Globex", Clients: []devidp.Client{client},
			Users: []devidp.User{user(carolSub, "Carol Cruz", "carol@globex.test"), user(danaSub, "Dana Diaz", "dana@globex.test")}},
		{Name: "social", DisplayName: "Social (stand-in)", Clients: []devidp.Client{client},
			Users: []devidp.User{user(samSub, "Sam Social", "sam@gmail.example")}},
	}})
	if err != nil {
		return stop, fmt.Errorf("devidp: %w", err)
	}

	conn := func(id, realmName string) (broker.IdP, error) {
		c, err := oidc.New(oidc.Config{ID: id, Issuer: idp.Issuer(realmName), ClientID: devidp.DemoClientID,
			ClientSecret: devidp.DemoClientSecret, Logger: logger})
		return broker.IdP{ID: id, Connector: c}, err
	}
	type idpSpec struct{ id, tenant, name, realm string }
	specs := []idpSpec{
		{"acme-idp", "acme", "ACME SSO", "acme"},
		{"globex-idp", "globex", "Globex SSO", "globex"},
		{"social-idp", "consumers", "Social Login", "social"},
		{"evil-idp-1", "evil", hostileIdP, "acme"},
		{"evil-idp-2", "evil", "Evil backup", "globex"},
		{"lumiere-idp-1", "lumiere", "Lumière Entra ID", "acme"}, // a11y_test.go
		{"lumiere-idp-2", "lumiere", "Lumière Okta", "globex"},
		{"throttled-idp", "throttled", "Throttled SSO", "acme"},
	}
	var idps []broker.IdP
	for _, s := range specs {
		p, err := conn(s.id, s.realm)
		if err != nil {
			return stop, fmt.Errorf("connector %s: %w", s.id, err)
		}
		p.Tenant, p.Name = s.tenant, s.name
		idps = append(idps, p)
	}
	res, err := realm.New([]realm.Tenant{
		{ID: "acme", Name: "ACME Corporation", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}},
		{ID: "globex", Name: "Globex", Domains: []string{"globex.test"}, IdPs: []string{"globex-idp"}},
		{ID: "evil", Name: hostileTenant, Domains: []string{"evil.test"}, IdPs: []string{"evil-idp-1", "evil-idp-2"}},
		{ID: "consumers", Name: "Consumers", Default: true, IdPs: []string{"social-idp"}},
		{ID: "lumiere", Name: "Lumière SA", Domains: []string{"lumiere.test"}, IdPs: []string{"lumiere-idp-1", "lumiere-idp-2"}}, // a11y_test.go
		{ID: "throttled", Name: "Throttled Inc", Domains: []string{"throttled.test"}, IdPs: []string{"throttled-idp"}},
	}, realm.Options{})
	if err != nil {
		return stop, fmt.Errorf("realm: %w", err)
	}
	appSecret := rand.Text()
	store := memstore.New()
	cleanups = append(cleanups, func() { store.Close() })
	conditional, err := conditionalConfig() // conditional_test.go: conditional access for globex
	if err != nil {
		return stop, err
	}
	srv, err := broker.New(ctx, broker.Config{
		Issuer: e.broker,
		Clients: []broker.Client{{ID: "demo-app", Secret: appSecret, RedirectURIs: []string{e.app + "/callback"}, AllowedTenants: []string{"*"}},
			printerClient(e.app), // consent_test.go
			deviceClient},        // a11y_test.go
		IdPs:     idps,
		Resolver: res,
		Logger:   logger,
		// The client IP of a test comes from X-Forwarded-For (conditional_test.go).
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Conditional:    conditional.global,
		Policies:       conditional.with(a11yPolicies(map[string]broker.TenantPolicy{"acme": {Access: accessPolicy}})), // access_test.go, a11y_test.go
		// a11y_test.go: dana of globex may act in acme (the tenant picker).
		Memberships: a11yMemberships,
		Rules:       map[string]*transform.Engine{"acme": accessRules},
	}, store)
	if err != nil {
		return stop, fmt.Errorf("broker: %w", err)
	}
	app, err := demoapp.New(demoapp.Options{Issuer: e.broker, ClientID: "demo-app", ClientSecret: appSecret,
		RedirectURL: e.app + "/callback"})
	if err != nil {
		return stop, fmt.Errorf("demoapp: %w", err)
	}
	for i, h := range []http.Handler{idp.Handler(), srv.Handler(), app.Handler()} {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		ln := lns[i]
		go func() { _ = hs.Serve(ln) }()
		cleanups = append(cleanups, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		})
	}

	dir, err := os.MkdirTemp("", "realmgate-chrome-")
	if err != nil {
		return stop, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1024, 768),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	cleanups = append(cleanups, cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	cleanups = append(cleanups, func() { _ = chromedp.Cancel(browser); cancelBrowser() })
	// The first action starts the browser, which lives as long as the
	// context it ran on (so no timeout here); an empty tab proves it runs.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		return stop, fmt.Errorf("start chromium %s: %w", exe, err)
	}
	e.browser = browser
	shared = e
	return stop, nil
}

// tab opens a tab in a fresh browser context (its own cookie jar, like a
// private window), so tests do not see each other's cookies and sessions.
func (e *env) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 25*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// do runs browser actions and fails the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v (page: %s)", what, err, pageState(ctx))
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v (page: %s)", expr, err, pageState(ctx))
	}
	return v
}

// waitFor polls until expr is true in a fully loaded page. Polling from Go
// (not in the page) survives the navigations and redirects of a sign-in.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	full := `document.readyState === "complete" && !!(` + expr + `)`
	deadline := time.Now().Add(10 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(actx, chromedp.Evaluate[bool](full))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: %s never became true (last error %v); page: %s", what, expr, err, pageState(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageState describes the page for failure messages: its URL and text.
func pageState(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.Canceled) {
		return "(tab closed)"
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(actx, chromedp.Evaluate[string](
		`location.href + "\n" + (document.body ? document.body.innerText.slice(0, 600) : "(no body)")`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// location returns the page's URL.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `location.href`)
}

// cookie returns the browser's cookie name for the broker, or nil.
func (e *env) cookie(t *testing.T, ctx context.Context, name string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.broker + "/"}})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Page predicates, as JavaScript expressions.

// onDiscoveryPage: realmgate's email-first page.
func (e *env) onDiscoveryPage() string {
	return `location.href.startsWith(` + js(e.broker+"/login") + `) && !!document.getElementById("email")`
}

// onChoicePage: realmgate's page listing one tenant's IdPs (it carries the
// email in a hidden field and has no email box).
func (e *env) onChoicePage() string {
	return `location.href.startsWith(` + js(e.broker) + `) && !document.getElementById("email") && !!document.querySelector("input[type=hidden][name=email]") && !!document.querySelector("button.idp")`
}

// onPicker: the development IdP's user picker of realm.
func (e *env) onPicker(realmName string) string {
	return `location.href.startsWith(` + js(e.idp+"/"+realmName+"/authorize") + `) && !!document.querySelector("button.user")`
}

// signedIn: the demo app's result page.
func (e *env) signedIn() string {
	return `location.href.startsWith(` + js(e.app+"/callback") + `) && !!document.querySelector("table.claims")`
}

// claim reads a claim from the demo app's result page.
func claim(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	return eval[string](t, ctx, `(() => { for (const r of document.querySelectorAll("table.claims tr")) {
		if (r.querySelector("th").textContent === `+js(name)+`) return r.querySelector("td").textContent; }
		return "(no row)"; })()`)
}

// pickUser completes a sign-in from the current devidp picker by clicking
// the user's button, and returns the tid the demo app shows.
func (e *env) pickUser(t *testing.T, ctx context.Context, sub string) string {
	t.Helper()
	do(t, ctx, "pick "+sub, chromedp.Click(chromedp.CSS(`button.user[value="`+sub+`"]`)))
	waitFor(t, ctx, "the demo app's signed-in page", e.signedIn())
	return claim(t, ctx, "tid")
}

// artifactsDir is where screenshots go: $REALMGATE_ARTIFACTS_DIR or
// e2e/chrome/artifacts (git-ignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REALMGATE_ARTIFACTS_DIR")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// trim shortens text for messages.
func trim(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
