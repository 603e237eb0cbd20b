package e2e

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// rpResult is what rp.mjs finish prints.
type rpResult struct {
	ServerIssuer  string         `json:"server_issuer"`
	TokenType     string         `json:"token_type"`
	Scope         string         `json:"scope"`
	IDTokenClaims map[string]any `json:"id_token_claims"`
	Userinfo      map[string]any `json:"userinfo"`
	Introspection map[string]any `json:"introspection"`
	Refresh       struct {
		IDTokenClaims   map[string]any `json:"id_token_claims"`
		NewRefreshToken bool           `json:"new_refresh_token"`
		NewAccessToken  bool           `json:"new_access_token"`
		Userinfo        map[string]any `json:"userinfo"`
	} `json:"refresh"`
	RefreshAfterRevoke string `json:"refresh_after_revoke"`
}

// TestE2E_OpenIDClient_OIDCProvider signs alice in through realmgate with
// two certified peers: panva's openid-client as the app and panva's
// oidc-provider as ACME's upstream IdP, the broker on the Redis store.
// openid-client checks the authorization response's iss (RFC 9207, S05),
// state, PKCE, the ID token (signature, iss, aud, exp, iat) and its nonce
// (S11), the userinfo sub, and the refreshed ID token; any discrepancy it
// reports fails the test with its error.
func TestE2E_OpenIDClient_OIDCProvider(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	d := newDeployment(t, issuer, 1, "ES256")
	startRealmgate(t, d, "realmgate", addr)

	stateFile := filepath.Join(t.TempDir(), "rp-state.json")
	common := []string{"--issuer", issuer, "--client-id", rpClientID, "--client-secret=" + d.cfg.ClientSecret, "--state-file", stateFile}

	var started struct {
		URL string `json:"url"`
	}
	// The app asks for authentication context c1 (Entra's model, OIDC Core
	// §5.5.1); tenant acme maps it to a fresh sign-in (procs_test.go).
	runNode(t, &started, "rp.mjs", append([]string{"start", "--redirect-uri", rpRedirectURI,
		"--login-hint", "alice@acme.test", "--claims", `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}`}, common...)...)
	au, err := url.Parse(started.URL)
	if err != nil || au.Host != addr || au.Path != "/authorize" {
		t.Fatalf("rp.mjs start URL = %q, want %s/authorize", started.URL, issuer)
	}
	q := au.Query()
	for _, p := range []string{"code_challenge", "state", "nonce", "login_hint"} {
		if q.Get(p) == "" {
			t.Errorf("authorization URL %q has no %s", started.URL, p)
		}
	}

	b := newBrowser(t, "alice", "")
	callback := b.signIn(started.URL, rpRedirectURI)
	// The browser must have gone through the upstream's login and consent.
	for _, want := range []string{"/interaction/", "/callback/" + idpID} {
		if !slices.ContainsFunc(b.visits, func(v string) bool { return strings.Contains(v, want) }) {
			t.Errorf("browser never visited %s; visits:\n%v", want, b.visits)
		}
	}

	var res rpResult
	runNode(t, &res, "rp.mjs", append([]string{"finish", "--callback", callback}, common...)...)

	if res.ServerIssuer != issuer {
		t.Errorf("discovered issuer = %q, want %q", res.ServerIssuer, issuer)
	}
	if res.TokenType != "bearer" && res.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", res.TokenType)
	}
	id := res.IDTokenClaims
	sub, _ := id["sub"].(string)
	if sub == "" || sub == "alice" {
		t.Errorf("ID token sub = %q, want realmgate's opaque subject", sub)
	}
	wantClaims := map[string]any{
		"iss": issuer, "aud": rpClientID, "tid": "acme", "idp": idpID,
		// The upstream ID token carries only sub: these came from its userinfo.
		"email": "alice@acme.test", "email_verified": true, "name": "Alice Liddell",
	}
	checkClaims(t, "ID token", id, wantClaims)
	checkRoles(t, "ID token", id, "admin", "member")
	if acrs, _ := id["acrs"].([]any); len(acrs) != 1 || acrs[0] != "c1" {
		t.Errorf("ID token acrs = %v, want [c1] (the authentication context asked for and met)", id["acrs"])
	}
	if acrs, _ := res.Refresh.IDTokenClaims["acrs"].([]any); len(acrs) != 1 || acrs[0] != "c1" {
		t.Errorf("refreshed ID token acrs = %v, want [c1]", res.Refresh.IDTokenClaims["acrs"])
	}
	if _, ok := id["nonce"]; !ok {
		t.Errorf("ID token has no nonce (openid-client checked its value)")
	}

	checkClaims(t, "userinfo", res.Userinfo, map[string]any{"sub": sub, "tid": "acme", "idp": idpID, "email": "alice@acme.test"})
	checkRoles(t, "userinfo", res.Userinfo, "admin", "member")

	checkClaims(t, "introspection", res.Introspection, map[string]any{"active": true, "sub": sub, "tid": "acme",
		"client_id": rpClientID, "iss": issuer})

	if !res.Refresh.NewRefreshToken {
		t.Errorf("refresh gave no new refresh token (rotation, S09)")
	}
	if !res.Refresh.NewAccessToken {
		t.Errorf("refresh gave the same access token")
	}
	if res.Refresh.IDTokenClaims == nil {
		t.Fatalf("refresh gave no ID token")
	}
	want := map[string]any{"sub": sub, "tid": "acme", "idp": idpID, "email": "alice@acme.test", "iss": issuer, "aud": rpClientID}
	if id["auth_time"] != nil { // present only when the upstream stated it (S67)
		want["auth_time"] = id["auth_time"]
	} else if res.Refresh.IDTokenClaims["auth_time"] != nil {
		t.Errorf("refreshed ID token has auth_time %v, the first had none", res.Refresh.IDTokenClaims["auth_time"])
	}
	checkClaims(t, "refreshed ID token", res.Refresh.IDTokenClaims, want)
	checkRoles(t, "refreshed ID token", res.Refresh.IDTokenClaims, "admin", "member")
	checkClaims(t, "userinfo after refresh", res.Refresh.Userinfo, map[string]any{"sub": sub, "email": "alice@acme.test"})

	checkUserinfoMerged(t, d.op)
	if res.RefreshAfterRevoke != "invalid_grant" {
		t.Errorf("refresh after revocation = %q, want invalid_grant", res.RefreshAfterRevoke)
	}
}

// checkClaims compares claims decoded from JSON; numbers compare as float64.
func checkClaims(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: claim %q missing, want %v (claims: %v)", what, k, w, got)
			continue
		}
		if aud, isList := g.([]any); isList && k == "aud" && len(aud) == 1 {
			g = aud[0]
		}
		if g != w {
			t.Errorf("%s: %s = %v (%T), want %v (%T)", what, k, g, g, w, w)
		}
	}
}

// checkRoles asserts the roles claim is exactly the given set.
func checkRoles(t *testing.T, what string, claims map[string]any, want ...string) {
	t.Helper()
	raw, ok := claims["roles"].([]any)
	if !ok {
		t.Errorf("%s: roles = %v (%T), want %v", what, claims["roles"], claims["roles"], want)
		return
	}
	var got []string
	for _, r := range raw {
		s, _ := r.(string)
		got = append(got, s)
	}
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Errorf("%s: roles = %v, want %v", what, got, w)
	}
}
