package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/portal"
)

// TestSetupPortal_ServedBesideBrokerWhenAdminAPIRuns: with the admin API
// on, <issuer>/setup/<secret> opens a setup link the API created and every
// other path reaches the broker; without it, nothing is added.
func TestSetupPortal_ServedBesideBrokerWhenAdminAPIRuns(t *testing.T) {
	c := newCluster(t, "memory")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if api(t, c.adminB, testOpToken, "POST", "/v1/tenants", c.newcoTenant(), nil) != http.StatusCreated {
		t.Fatal("create tenant newco")
	}
	var link struct {
		URL string `json:"url"`
	}
	if got := api(t, c.adminB, testNewcoToken, "POST", "/v1/tenants/newco/setup-links", map[string]any{"expires_in": "1h"}, &link); got != http.StatusCreated {
		t.Fatalf("create setup link = %d", got)
	}
	broker := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(withSetupPortal(broker, c.cfg, memstore.New(), nil, c.b, logger))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + strings.TrimPrefix(link.URL, c.issuer))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/setup/" {
		t.Fatalf("open %s = %d to %q, want 303 to /setup/", link.URL, resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]int{"/setup/" + admin.SetupLinkPrefix + "unknown": http.StatusNotFound, "/authorize": http.StatusTeapot} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	if h := withSetupPortal(broker, c.cfg, memstore.New(), nil, nil, logger); h == nil || func() bool { _, ok := h.(http.HandlerFunc); return !ok }() {
		t.Error("without the admin API the handler is not the broker's")
	}
}

// TestSetupTester_BrokerRefusalsAreReadable: the adapter of the broker's
// test sign-in refuses an IdP of another tenant as portal.ErrTestRefused
// (a readable page, not a failure) and knows no result it did not make.
func TestSetupTester_BrokerRefusalsAreReadable(t *testing.T) {
	c := newCluster(t, "memory")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := buildBroker(ctx, c.cfg, memstore.New(), c.logger, c.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tester := setupTester(srv)
	if setupTester(nil) != nil {
		t.Error("setupTester(nil) is not nil: the portal would show a test step it cannot run")
	}
	req := httptest.NewRequest("POST", c.issuer+"/setup/test", nil)
	err = tester.StartTest(httptest.NewRecorder(), req, portal.TestRequest{Tenant: "newco", IdP: "file-idp",
		Return: c.issuer + "/setup/test", Actor: "setup-link:x"})
	if !errors.Is(err, portal.ErrTestRefused) {
		t.Errorf("StartTest(another tenant's IdP) = %v, want ErrTestRefused", err)
	}
	if _, err := tester.TestResult(ctx, "nosuch"); err == nil {
		t.Error("TestResult(nosuch) = nil error")
	}
}

// TestSetupPortal_OIDCSetupThenEndUserSignsIn walks the portal against a
// real broker and OIDC IdP (the development IdP): the link's admin connects
// the IdP (pending: end users are not routed to it), runs a real test
// sign-in through the broker and sees the IdP's attributes and the claims,
// maps its group to a role with a dry run, saves, activates; then an end
// user of the tenant signs in through discovery and gets the role.
func TestSetupPortal_OIDCSetupThenEndUserSignsIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, lnIdP := listen(t), listen(t)
	issuer, idpBase := "http://"+ln.Addr().String(), "http://"+lnIdP.Addr().String()
	idp, err := devidp.New(devidp.Options{BaseURL: idpBase, DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{{Name: "acme", Clients: []devidp.Client{{ID: "realmgate", Secret: "acme-upstream-secret",
			RedirectURIs: []string{issuer + "/callback/acme-oidc"}}},
			Users: []devidp.User{{Subject: "a-1", Email: "pat@acme.test", EmailVerified: true, Name: "Pat A", Groups: []string{"Eng"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lnIdP, idp.Handler())
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`issuer: %s
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_loopback: true # the development IdP is on loopback
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: filecorp
    domains: [file.test]
    providers:
      - id: file-gh
        type: github
        client_id: x
        client_secret: y
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
`, issuer, appSecret, appCallback, testOpToken)), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	srv, a := startWithAdmin(t, ctx, cancel, cfg, st, logger)
	serve(t, ln, withSetupPortal(srv.Handler(), cfg, st, srv, a, logger))
	adminURL := "http://" + a.Addr
	acme := admin.Tenant{Tenant: config.Tenant{ID: "acme", Name: "Acme"}, Domains: []admin.Domain{{Name: "acme.test", Verified: true}}}
	if got := api(t, adminURL, testOpToken, "POST", "/v1/tenants", acme, nil); got != http.StatusCreated {
		t.Fatalf("create tenant = %d", got)
	}
	var link struct {
		URL string `json:"url"`
	}
	if got := api(t, adminURL, testOpToken, "POST", "/v1/tenants/acme/setup-links", map[string]any{}, &link); got != http.StatusCreated {
		t.Fatalf("create link = %d", got)
	}

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	var token string
	page := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			form.Set("csrf", token)
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, issuer+strings.TrimPrefix(path, issuer), body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", issuer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if m := csrf.FindSubmatch(raw); m != nil {
			token = string(m[1])
		}
		return resp.StatusCode, string(raw)
	}
	if code, body := page("GET", link.URL, nil); code != http.StatusOK || !strings.Contains(body, "Acme") {
		t.Fatalf("open link = %d: %s", code, body)
	}
	page("GET", "/setup/idp/oidc", nil)
	if code, body := page("POST", "/setup/idp/oidc", url.Values{"issuer": {idpBase + "/acme"}, "client_id": {"realmgate"},
		"client_secret": {"acme-upstream-secret"}}); code != http.StatusOK || !strings.Contains(body, "waiting for activation") {
		t.Fatalf("connect = %d: %s", code, body)
	}
	if _, err := signIn(issuer, "pat@acme.test"); err == nil {
		t.Fatal("an end user signed in through the pending IdP")
	}
	page("GET", "/setup/test", nil)
	code, body := page("POST", "/setup/test", url.Values{})
	if code != http.StatusOK || !strings.Contains(body, "pat@acme.test") || !strings.Contains(body, "Eng") || !strings.Contains(body, "a-1") {
		t.Fatalf("test sign-in = %d: %s", code, body)
	}
	page("GET", "/setup/roles", nil)
	if code, body := page("POST", "/setup/roles", url.Values{"group": {"Eng"}, "role": {"engineer"}, "action": {"dryrun"}}); code != http.StatusOK || !strings.Contains(body, "engineer") {
		t.Fatalf("dry run = %d: %s", code, body)
	}
	page("POST", "/setup/roles", url.Values{"group": {"Eng"}, "role": {"engineer"}, "action": {"save"}})
	page("GET", "/setup/activate", nil)
	if code, body := page("POST", "/setup/activate", url.Values{}); code != http.StatusOK || !strings.Contains(body, "Single sign-on is active") {
		t.Fatalf("activate = %d: %s", code, body)
	}
	within(t, pollDeadline, "the end user signs in with the role", func() error {
		claims, err := signIn(issuer, "pat@acme.test")
		if err != nil {
			return err
		}
		if roles := fmt.Sprint(claims["roles"]); !strings.Contains(roles, "engineer") || claims["tid"] != "acme" {
			return fmt.Errorf("claims %v: want tid acme and role engineer", claims)
		}
		return nil
	})
}
