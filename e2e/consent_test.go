package e2e

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// consentClientID is a third-party client with pairwise subjects.
const consentClientID = "e2e-printer"

// consentConfigTemplate: tenant acme at the real oidc-provider as in
// rgConfigTemplate; the first-party client and a third-party one with a
// consent page and a pairwise sub (its sector is 127.0.0.1, the first
// party's too: the sector of a pairwise client differs from the public sub
// whatever the host).
var consentConfigTemplate = template.Must(template.New("realmgate.yaml").Parse(`# written by the e2e tests
` + rgConfigBase + `clients:
  - id: ` + rpClientID + `
    secret: "{{.ClientSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["acme"]
  - id: ` + consentClientID + `
    client_name: Photo Printer
    secret: "{{.ClientSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["acme"]
    third_party: true
    subject_type: pairwise
    access_token_lifetime: 2m
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    providers:
      - id: ` + idpID + `
        type: oidc
        name: ACME sign-in
        issuer: {{.OPIssuer}}
        client_id: ` + opClientID + `
        client_secret: "{{.OPSecret}}"
        scopes: ["openid", "profile", "email", "groups"]
`))

// TestE2E_OpenIDClient_Consent: panva's openid-client as a third-party app
// (third_party, pairwise, its own access token lifetime). Alice signs in at
// oidc-provider and realmgate shows its consent page: denied, the app gets
// access_denied with its state (openid-client reports it); allowed, the
// code is redeemed with every check openid-client makes, and the ID token,
// userinfo and introspection carry one pairwise sub, not the public one the
// first-party app gets. The next request (prompt=none) gets a code without
// the page; one asking for a new scope sees the page again.
func TestE2E_OpenIDClient_Consent(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	flushRedisDB(t, env.redis.Addr(), 5)
	op := startOP(t, issuer)
	cfg := rgConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: 5, Secret: randomString(t, 32),
		Algorithm: "ES256", ClientSecret: randomString(t, 24), OPIssuer: op.issuer, OPSecret: op.secret}
	d := &deployment{cfg: cfg, configPath: e2etest.WriteConfig(t, consentConfigTemplate, cfg), op: op}
	startRealmgate(t, d, "realmgate", addr)

	rp := func(client string, args ...string) (start func(extra ...string) string, common []string) {
		stateFile := filepath.Join(t.TempDir(), client+"-state.json")
		common = []string{"--issuer", issuer, "--client-id", client, "--client-secret=" + cfg.ClientSecret, "--state-file", stateFile}
		return func(extra ...string) string {
			var started struct {
				URL string `json:"url"`
			}
			runNode(t, &started, "rp.mjs", append(append([]string{"start", "--redirect-uri", rpRedirectURI,
				"--login-hint", "alice@acme.test"}, extra...), common...)...)
			return started.URL
		}, common
	}
	visited := func(b *browser, part string) bool {
		return slices.ContainsFunc(b.visits, func(v string) bool { return strings.Contains(v, part) })
	}

	b := newBrowser(t, "alice", "")
	start, common := rp(consentClientID)

	// Deny: access_denied to the redirect URI (RFC 6749 §4.1.2.1).
	b.consent = "deny"
	u := start("--scope", "openid email")
	cb, err := url.Parse(b.signIn(u, rpRedirectURI))
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(u)
	if q := cb.Query(); q.Get("error") != "access_denied" || q.Get("state") != au.Query().Get("state") || q.Get("code") != "" {
		t.Errorf("denied consent: callback %v, want error=access_denied with the state", q)
	}
	if !visited(b, "/consent") {
		t.Errorf("the browser never posted the consent page; visits:\n%v", b.visits)
	}

	// Allow: openid-client redeems the code and checks everything.
	b.consent, b.visits = "allow", nil
	callback := b.signIn(start("--scope", "openid email"), rpRedirectURI)
	if !visited(b, "/consent") {
		t.Errorf("the second request did not show the consent page again after a denial; visits:\n%v", b.visits)
	}
	var res rpResult
	runNode(t, &res, "rp.mjs", append([]string{"finish", "--callback", callback}, common...)...)
	sub, _ := res.IDTokenClaims["sub"].(string)
	checkClaims(t, "ID token", res.IDTokenClaims, map[string]any{"iss": issuer, "aud": consentClientID, "email": "alice@acme.test"})
	checkClaims(t, "userinfo", res.Userinfo, map[string]any{"sub": sub})
	checkClaims(t, "introspection", res.Introspection, map[string]any{"active": true, "sub": sub, "client_id": consentClientID})
	if exp, iat := res.Introspection["exp"].(float64), res.Introspection["iat"].(float64); exp-iat != 120 {
		t.Errorf("access token lifetime = %vs, want the client's 120s", exp-iat)
	}

	// Remembered: prompt=none gets a code without the page.
	b.visits = nil
	noneCB, _ := url.Parse(b.signIn(start("--scope", "openid email", "--prompt", "none"), rpRedirectURI))
	if noneCB.Query().Get("code") == "" || visited(b, "/consent") {
		t.Errorf("remembered consent with prompt=none: callback %v, visits %v; want a code and no consent page", noneCB.Query(), b.visits)
	}
	// A new scope asks again; with prompt=none that is consent_required.
	noneCB, _ = url.Parse(b.signIn(start("--scope", "openid email profile", "--prompt", "none"), rpRedirectURI))
	if noneCB.Query().Get("error") != "consent_required" {
		t.Errorf("new scope with prompt=none: callback %v, want error=consent_required", noneCB.Query())
	}

	// The first-party app gets the public sub, no consent page.
	b.visits = nil
	fpStart, fpCommon := rp(rpClientID)
	fpCB := b.signIn(fpStart("--scope", "openid email"), rpRedirectURI)
	var fp rpResult
	runNode(t, &fp, "rp.mjs", append([]string{"finish", "--callback", fpCB}, fpCommon...)...)
	if visited(b, "/consent") {
		t.Errorf("a first-party client showed the consent page")
	}
	if pub, _ := fp.IDTokenClaims["sub"].(string); pub == "" || pub == sub {
		t.Errorf("first-party sub %q, third-party pairwise sub %q: want two different subjects", pub, sub)
	}
}
