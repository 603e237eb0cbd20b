package broker_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/ui"
)

// logoPNG is a w×h single-colour PNG.
func logoPNG(t *testing.T, w, h int, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// brandEnv is a broker on a store with record sets (the logos'), the
// harness's tenants and IdPs, tenant initech branded with an uploaded
// logo and client app-b branded with a logo_url on logoHost.
type brandEnv struct {
	issuer   string
	broker   *broker.Server
	uploaded string // the hash of initech's uploaded logo
	fetched  []byte // app-b's logo as sanitized
	cfg      broker.Config
	hits     *atomic.Int32 // requests to the logo host
}

func newBrandEnv(t *testing.T, hc *http.Client, tenantName string) *brandEnv {
	t.Helper()
	ctx := context.Background()
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	up, err := branding.Sanitize(logoPNG(t, 600, 300, color.NRGBA{R: 200, A: 255}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := branding.Save(ctx, ms, up) // uploaded through the admin API, maybe on another instance
	if err != nil {
		t.Fatal(err)
	}
	raw := logoPNG(t, 32, 32, color.NRGBA{B: 200, A: 255})
	hits := &atomic.Int32{}
	logoHost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(logoHost.Close)
	fetched, _ := branding.Sanitize(raw)

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	res, err := realm.New(harnessTenants(), realm.Options{BaseDomain: "login.test"})
	if err != nil {
		t.Fatal(err)
	}
	var idps []broker.IdP
	for _, p := range []struct{ id, tenant string }{{"acme-idp", "acme"}, {"globex-idp", "globex"}, {"initech-a", "initech"},
		{"initech-b", "initech"}, {"social", "consumers"}} {
		idps = append(idps, broker.IdP{ID: p.id, Tenant: p.tenant, Name: p.id, Connector: &fakeIdP{id: p.id}})
	}
	cfg := broker.Config{
		Issuer: srv.URL, Secret: []byte("test-secret-0123456789abcdef0123"), Resolver: res, IdPs: idps,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HTTPClient: hc,
		Clients: []broker.Client{
			{ID: "app-a", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"*"}},
			{ID: "app-b", Secret: secretB, RedirectURIs: []string{"https://app-b.example/callback"}, AllowedTenants: []string{"*"},
				Branding: &broker.Branding{DisplayName: "App B", LogoURL: logoHost.URL + "/b.png", PrimaryColor: "#7a1f5c",
					SupportURL: "mailto:help@app-b.example"}},
		},
		Policies: map[string]broker.TenantPolicy{"initech": {Branding: &broker.Branding{DisplayName: tenantName, Logo: h,
			PrimaryColor: "#0b5cad", AccentColor: "#8a3b00", SupportURL: "https://initech.example/it-help"}}},
	}
	b, err := broker.New(ctx, cfg, ms)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	mux.Handle("/", b.Handler())
	return &brandEnv{issuer: srv.URL, broker: b, uploaded: h, fetched: fetched, cfg: cfg, hits: hits}
}

// page GETs the page /authorize shows for client and login_hint.
func (e *brandEnv) page(t *testing.T, client, redirectURI, hint string) string {
	t.Helper()
	v := url.Values{"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	if hint != "" {
		v.Set("login_hint", hint)
	}
	jar := &cookieJar{}
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.issuer) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(e.issuer + "/authorize?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("authorize(%s, %s) = %d %s, want a page", client, hint, resp.StatusCode, ct)
	}
	return string(body)
}

// cookieJar keeps every cookie (the test server is http on loopback).
type cookieJar struct{ cookies []*http.Cookie }

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) { j.cookies = append(j.cookies, cs...) }
func (j *cookieJar) Cookies(*url.URL) []*http.Cookie          { return j.cookies }

// waitFetched waits until app-b's logo_url was fetched (in the
// background, once, when the configuration was applied).
func (e *brandEnv) waitFetched(t *testing.T) ui.Brand {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := e.broker.Brand("", "app-b")
		if b.Logo != "" || time.Now().After(deadline) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBrand_PagesShowTenantAndClientBrand(t *testing.T) {
	e := newBrandEnv(t, outbound.New(outbound.Policy{AllowLoopback: true}), "Initech IT")
	fetchedPath := "/branding/" + branding.Hash(e.fetched) + ".png"
	if b := e.waitFetched(t); b.Logo != fetchedPath {
		t.Fatalf("Brand(app-b).Logo = %q, want %q (logo_url fetched at apply)", b.Logo, fetchedPath)
	}
	// The fetched logo is named by no hash: the logo sweep learns of it here.
	if got := e.broker.LogosInUse(); !slices.Equal(got, []string{branding.Hash(e.fetched)}) {
		t.Errorf("LogosInUse() = %q, want the fetched logo's hash", got)
	}
	tenantLook := []string{`<img src="/branding/` + e.uploaded + `.png" alt="Initech IT">`, ":root{--rg-primary:#0b5cad}",
		":root{--rg-accent:#8a3b00}", `<a href="https://initech.example/it-help">Contact support</a>`}
	clientLook := []string{`<img src="` + fetchedPath + `" alt="App B">`, ":root{--rg-primary:#7a1f5c}",
		`<a href="mailto:help@app-b.example">Contact support</a>`}
	tests := []struct {
		name, client, redirect, hint string
		want, notWant                []string
	}{
		// The choice page of a tenant with two IdPs knows the tenant.
		{"choose page, unbranded client: tenant's brand", "app-a", appCB, "peter@initech.test", tenantLook, clientLook},
		// The client's brand wins over the tenant's.
		{"choose page, branded client: client's brand", "app-b", "https://app-b.example/callback", "peter@initech.test", clientLook, tenantLook},
		// The discovery page knows the client only.
		{"discovery page, branded client", "app-b", "https://app-b.example/callback", "", clientLook, tenantLook},
		{"discovery page, unbranded client: default look", "app-a", appCB, "", nil, append(append([]string{`class="brand"`, "Contact support"}, tenantLook...), clientLook...)},
		// An error page shows what the request knows: here the client.
		{"error page of a branded client", "app-b", "https://evil.example/cb", "", clientLook, nil},
		{"error page of an unknown client: default look", "nobody", appCB, "", nil, []string{`class="brand"`, "Contact support"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := e.page(t, tc.client, tc.redirect, tc.hint)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

// TestBrand_S54_HostileDisplayNameInert: a display name is text, in the
// logo's alt attribute as anywhere else.
func TestBrand_S54_HostileDisplayNameInert(t *testing.T) {
	e := newBrandEnv(t, nil, `"><script>alert(1)</script><img src=x onerror=alert(2)>`)
	body := e.page(t, "app-a", appCB, "peter@initech.test")
	if !strings.Contains(body, `alt="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"`) {
		t.Errorf("the hostile name is not escaped in the logo's alt text:\n%s", body)
	}
	for _, bad := range []string{"<script>alert(1)", "<img src=x"} {
		if strings.Contains(body, bad) {
			t.Errorf("page carries %q", bad)
		}
	}
}

// TestBrand_LogoURLThroughOutboundPolicy: logo_url is fetched with the
// broker's outbound client; the default policy refuses loopback (S70),
// so the page shows the name and no logo.
func TestBrand_LogoURLThroughOutboundPolicy(t *testing.T) {
	e := newBrandEnv(t, nil, "Initech IT") // nil: the production policy
	e.broker.Close()                       // waits for the fetch to end
	if b := e.broker.Brand("", "app-b"); b.Logo != "" || b.Name != "App B" {
		t.Errorf("Brand(app-b) = %+v, want the name and no logo (loopback refused)", b)
	}
	resp, err := http.Get(e.issuer + "/branding/" + branding.Hash(e.fetched) + ".png")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the refused logo = %d, want 404", resp.StatusCode)
	}
}

func TestBrand_ServedLogo(t *testing.T) {
	e := newBrandEnv(t, outbound.New(outbound.Policy{AllowLoopback: true}), "Initech IT")
	e.waitFetched(t)
	other, _ := branding.Sanitize(logoPNG(t, 5, 5, color.NRGBA{G: 9, A: 255}))
	tests := []struct {
		name, path string
		want       int
		body       []byte
	}{
		{"uploaded logo (read from the record set)", "/branding/" + e.uploaded + ".png", http.StatusOK, nil},
		{"fetched logo", "/branding/" + branding.Hash(e.fetched) + ".png", http.StatusOK, e.fetched},
		{"a hash no brand names", "/branding/" + branding.Hash(other) + ".png", http.StatusNotFound, nil},
		{"not a hash", "/branding/..%2f..%2fetc.png", http.StatusNotFound, nil},
		{"not png", "/branding/" + e.uploaded + ".svg", http.StatusNotFound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(e.issuer + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			h := resp.Header
			for k, v := range map[string]string{"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
				"Cache-Control": "public, max-age=31536000, immutable"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if branding.Hash(body) != strings.TrimSuffix(strings.TrimPrefix(tc.path, "/branding/"), ".png") {
				t.Error("the body is not the logo its name hashes")
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(body))
			if err != nil || cfg.Width > branding.LogoSide || cfg.Height > branding.LogoSide {
				t.Errorf("served logo %dx%d, %v; want a PNG of at most 256x256", cfg.Width, cfg.Height, err)
			}
		})
	}
}

// TestBrand_ConsentPage: the consent page knows the client and the
// tenant; the client's brand wins, and without one the tenant's shows.
func TestBrand_ConsentPage(t *testing.T) {
	acmeLook := &broker.Branding{DisplayName: "ACME Identity", PrimaryColor: "#14532d", SupportURL: "https://acme.example/help"}
	for _, tc := range []struct {
		name   string
		client *broker.Branding
		want   []string
	}{
		{"client branded", &broker.Branding{DisplayName: "Photo Printer Inc", AccentColor: "#5b21b6"},
			[]string{`<header class="brand"><p>Photo Printer Inc</p></header>`, ":root{--rg-accent:#5b21b6}"}},
		{"tenant's brand", nil,
			[]string{`<header class="brand"><p>ACME Identity</p></header>`, ":root{--rg-primary:#14532d}", `<a href="https://acme.example/help">Contact support</a>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withClients(broker.Client{ID: "third", Secret: secretA, RedirectURIs: []string{thirdCB}, AllowedTenants: []string{"*"},
				ClientSettings: broker.ClientSettings{Name: "Photo Printer", ThirdParty: true}, Branding: tc.client}),
				func(c *broker.Config) { c.Policies = map[string]broker.TenantPolicy{"acme": {Branding: acmeLook}} })
			v, _ := thirdParams("openid email", "")
			resp, body := e.toConsent(e.browser(), v)
			if !isConsentPage(resp, body) {
				t.Fatalf("got %d, want the consent page:\n%s", resp.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("consent page lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

// TestBrand_LogoFetchedOnceAtApply: a logo_url is fetched when the
// configuration is applied, once, not on page requests nor again when
// another configuration names the same URL; a change of one tenant
// (ReconfigureTenants) fetches its new logo, once too.
func TestBrand_LogoFetchedOnceAtApply(t *testing.T) {
	e := newBrandEnv(t, outbound.New(outbound.Policy{AllowLoopback: true}), "Initech IT")
	e.waitFetched(t)
	for range 3 {
		e.page(t, "app-b", "https://app-b.example/callback", "")
	}
	d := broker.Directory{Resolver: e.cfg.Resolver, IdPs: e.cfg.IdPs, Clients: e.cfg.Clients, Policies: e.cfg.Policies}
	if err := e.broker.Reconfigure(d); err != nil {
		t.Fatal(err)
	}
	// globex gets a logo_url of its own through a one-tenant change: fetched
	// then, once.
	pol := map[string]broker.TenantPolicy{"globex": {Branding: &broker.Branding{DisplayName: "Globex", LogoURL: e.cfg.Clients[1].Branding.LogoURL + "?globex"}}}
	for k, v := range e.cfg.Policies {
		pol[k] = v
	}
	d.Policies = pol
	if err := e.broker.ReconfigureTenants(e.cfg.Resolver, d, []string{"globex"}, false); err != nil {
		t.Fatal(err)
	}
	if err := e.broker.ReconfigureTenants(e.cfg.Resolver, d, []string{"globex"}, false); err != nil {
		t.Fatal(err)
	}
	e.broker.Close() // waits for fetches in flight
	if n := e.hits.Load(); n != 2 {
		t.Errorf("logo host got %d requests, want 2 (app-b's logo and globex's, each once)", n)
	}
	if got, want := e.broker.Brand("globex", "").Logo, "/branding/"+branding.Hash(e.fetched)+".png"; got != want {
		t.Errorf("Brand(globex).Logo = %q, want %q", got, want)
	}
}
