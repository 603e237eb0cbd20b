package e2e

import (
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// dpopClientID is the public client of the PAR and DPoP test: its
// authorization requests must be pushed and its access tokens DPoP-bound.
const dpopClientID = "e2e-dpop"

// dpopConfigTemplate: tenant acme at the real oidc-provider as in
// rgConfigTemplate, one public client that requires PAR and DPoP, and
// server nonces on.
var dpopConfigTemplate = template.Must(template.New("realmgate.yaml").Parse(`# written by the e2e tests
` + rgConfigBase + `dpop:
  require_nonce: true
clients:
  - id: ` + dpopClientID + `
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["acme"]
    claims: [roles]
    require_pushed_authorization_requests: true
    dpop_bound_access_tokens: true
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
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            finance-admins: admin
            staff: member
`))

// dpopResult is what dpoppar.mjs finish prints.
type dpopResult struct {
	TokenType       string         `json:"token_type"`
	IDTokenClaims   map[string]any `json:"id_token_claims"`
	AccessTokenCnf  map[string]any `json:"access_token_cnf"`
	Userinfo        map[string]any `json:"userinfo"`
	NonceChallenges int            `json:"nonce_challenges"`
	Refresh         struct {
		TokenType       string         `json:"token_type"`
		NewRefreshToken bool           `json:"new_refresh_token"`
		AccessTokenCnf  map[string]any `json:"access_token_cnf"`
		Userinfo        map[string]any `json:"userinfo"`
	} `json:"refresh"`
	Attacks map[string]struct {
		OK              bool   `json:"ok"`
		Status          int    `json:"status"`
		Error           string `json:"error"`
		WWWAuthenticate string `json:"www_authenticate"`
	} `json:"attacks"`
}

// TestE2E_OpenIDClient_PAR_DPoP: panva's openid-client, as a public client
// that realmgate requires to push its requests and bind its tokens, pushes
// the authorization request with a DPoP proof (buildAuthorizationUrlWithPAR)
// and sends the browser with client_id and request_uri only; alice signs in
// at oidc-provider; the code is redeemed with DPoP (token_type DPoP, cnf.jkt),
// the bound token works at /userinfo, is refreshed with the same key and
// works again; server nonces are answered by openid-client's own retry. The
// bound token is refused as a bearer token, with the DPoP scheme and no
// proof, and with a replayed proof; a refresh without a proof or with
// another key is refused, and the key swap ends the family.
func TestE2E_OpenIDClient_PAR_DPoP(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	flushRedisDB(t, env.redis.Addr(), 15)
	op := startOP(t, issuer)
	cfg := rgConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: 15, Secret: randomString(t, 32),
		Algorithm: "ES256", OPIssuer: op.issuer, OPSecret: op.secret}
	d := &deployment{cfg: cfg, configPath: e2etest.WriteConfig(t, dpopConfigTemplate, cfg), op: op}
	startRealmgate(t, d, "realmgate", addr)

	// A plain authorization request of this client is refused (RFC 9126 §5).
	plain := url.Values{"client_id": {dpopClientID}, "redirect_uri": {rpRedirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nc.Get(issuer + "/authorize?" + plain.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("plain authorize = %d Location %q, want a redirect with error=invalid_request", resp.StatusCode, resp.Header.Get("Location"))
	}

	stateFile := filepath.Join(t.TempDir(), "dpop-state.json")
	common := []string{"--issuer", issuer, "--client-id", dpopClientID, "--state-file", stateFile}
	var started struct {
		URL         string `json:"url"`
		PARWithDPoP bool   `json:"par_with_dpop"`
		Metadata    struct {
			PAREndpoint string   `json:"pushed_authorization_request_endpoint"`
			RequirePAR  bool     `json:"require_pushed_authorization_requests"`
			DPoPAlgs    []string `json:"dpop_signing_alg_values_supported"`
		} `json:"metadata"`
	}
	runNode(t, &started, "dpoppar.mjs", append([]string{"start", "--redirect-uri", rpRedirectURI, "--login-hint", "alice@acme.test"}, common...)...)
	if started.Metadata.PAREndpoint != issuer+"/par" || started.Metadata.RequirePAR || !slices.Contains(started.Metadata.DPoPAlgs, "ES256") {
		t.Errorf("discovered metadata = %+v, want the PAR endpoint %s/par, PAR not required server-wide, ES256 for DPoP", started.Metadata, issuer)
	}
	if !started.PARWithDPoP {
		t.Errorf("openid-client sent no DPoP proof with the pushed request")
	}
	au, err := url.Parse(started.URL)
	if err != nil || au.Path != "/authorize" {
		t.Fatalf("start URL = %q, want %s/authorize", started.URL, issuer)
	}
	q := au.Query()
	if len(q) != 2 || q.Get("client_id") != dpopClientID || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("authorization URL query = %v, want client_id and a request_uri only", q)
	}

	callback := newBrowser(t, "alice", "").signIn(started.URL, rpRedirectURI)
	// The request_uri is single use: the same URL again is refused.
	resp, err = nc.Get(started.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("reused request_uri = %d Location %q, want a 400 page", resp.StatusCode, resp.Header.Get("Location"))
	}

	var res dpopResult
	runNode(t, &res, "dpoppar.mjs", append([]string{"finish", "--callback", callback}, common...)...)
	if !strings.EqualFold(res.TokenType, "DPoP") || !strings.EqualFold(res.Refresh.TokenType, "DPoP") {
		t.Errorf("token_type = %q, after refresh %q; want DPoP", res.TokenType, res.Refresh.TokenType)
	}
	jkt, _ := res.AccessTokenCnf["jkt"].(string)
	if len(jkt) != 43 || res.Refresh.AccessTokenCnf["jkt"] != jkt {
		t.Errorf("access token cnf = %v, after refresh %v; want the same jkt", res.AccessTokenCnf, res.Refresh.AccessTokenCnf)
	}
	checkClaims(t, "ID token", res.IDTokenClaims, map[string]any{"iss": issuer, "aud": dpopClientID, "tid": "acme", "email": "alice@acme.test"})
	sub, _ := res.IDTokenClaims["sub"].(string)
	checkClaims(t, "userinfo", res.Userinfo, map[string]any{"sub": sub, "tid": "acme", "email": "alice@acme.test"})
	checkRoles(t, "userinfo", res.Userinfo, "admin", "member")
	checkClaims(t, "userinfo after refresh", res.Refresh.Userinfo, map[string]any{"sub": sub, "email": "alice@acme.test"})
	if !res.Refresh.NewRefreshToken {
		t.Errorf("refresh gave no new refresh token")
	}
	if res.NonceChallenges == 0 {
		t.Errorf("openid-client met no use_dpop_nonce challenge: the server nonce was not exercised")
	}
	for name, want := range map[string]struct {
		status int
		err    string
	}{
		"bearer": {401, "invalid_token"}, "no_proof": {401, "invalid_dpop_proof"}, "replayed_proof": {401, "invalid_dpop_proof"},
	} {
		a := res.Attacks[name]
		if a.Status != want.status || a.Error != want.err || !strings.HasPrefix(a.WWWAuthenticate, "DPoP ") {
			t.Errorf("userinfo attack %s = %+v, want %d %s with a DPoP challenge", name, a, want.status, want.err)
		}
	}
	for name, want := range map[string]string{
		"refresh_without_proof":  "invalid_dpop_proof", // dpop_bound_access_tokens
		"refresh_other_key":      "invalid_grant",      // key swap
		"refresh_after_key_swap": "invalid_grant",      // the family was ended
	} {
		if a := res.Attacks[name]; a.OK || a.Error != want {
			t.Errorf("%s = %+v, want %s", name, a, want)
		}
	}
}
