package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
)

// TestDPoP_BoundAccessToken: a proof at /token binds the access token to
// the key (token_type DPoP, cnf.jkt); /userinfo then takes it only with the
// DPoP scheme and a fresh proof by that key over this request and token;
// introspection shows the binding (RFC 9449 §5, §6, §7).
func TestDPoP_BoundAccessToken(t *testing.T) {
	e := newEnv(t)
	k := newDPoPKey(t)
	tr := e.dpopSignIn(k)
	at := tr.str("access_token")
	if tt := tr.str("token_type"); tt != "DPoP" {
		t.Errorf("token_type = %q, want DPoP", tt)
	}
	_, claims := claimsOf(t, at)
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != k.jkt() {
		t.Fatalf("access token cnf = %v, want jkt %s", claims["cnf"], k.jkt())
	}
	ui := e.issuer + "/userinfo"
	if r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, k.proof("GET", ui, forToken(at))); r.status != http.StatusOK || r.str("sub") == "" {
		t.Fatalf("userinfo with DPoP and a proof = %d %v, want 200", r.status, r.body)
	}
	other := newDPoPKey(t)
	replayed := k.proof("GET", ui, forToken(at))
	if r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, replayed); r.status != http.StatusOK {
		t.Fatalf("first use of a proof = %d %v, want 200", r.status, r.body)
	}
	for _, tc := range []struct {
		name, authz string
		proofs      []string
		wantErr     string
	}{
		{"as a bearer token", "Bearer " + at, nil, "invalid_token"},
		{"as a bearer token with a proof", "Bearer " + at, []string{k.proof("GET", ui, forToken(at))}, "invalid_token"},
		{"no proof", "DPoP " + at, nil, "invalid_dpop_proof"},
		{"replayed proof", "DPoP " + at, []string{replayed}, "invalid_dpop_proof"},
		{"another key", "DPoP " + at, []string{other.proof("GET", ui, forToken(at))}, "invalid_dpop_proof"},
		{"ath of another token", "DPoP " + at, []string{k.proof("GET", ui, forToken(at+"x"))}, "invalid_dpop_proof"},
		{"no ath", "DPoP " + at, []string{k.proof("GET", ui)}, "invalid_dpop_proof"},
		{"wrong htm", "DPoP " + at, []string{k.proof("POST", ui, forToken(at))}, "invalid_dpop_proof"},
		{"wrong htu", "DPoP " + at, []string{k.proof("GET", e.issuer+"/token", forToken(at))}, "invalid_dpop_proof"},
		{"proof made for /token", "DPoP " + at, []string{k.proof("POST", e.issuer+"/token")}, "invalid_dpop_proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", tc.authz, tc.proofs...)
			if r.status != http.StatusUnauthorized || r.str("error") != tc.wantErr {
				t.Fatalf("userinfo = %d %v, want 401 %s", r.status, r.body, tc.wantErr)
			}
			ch := r.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `algs="ES256`) || !strings.Contains(ch, `error="`+tc.wantErr+`"`) {
				t.Errorf("WWW-Authenticate = %q, want a DPoP challenge with algs and error %s (RFC 9449 §7.1)", ch, tc.wantErr)
			}
		})
	}
	// Introspection (RFC 9449 §6.2).
	r := e.sendDPoP(http.MethodPost, "/introspect", url.Values{"token": {at}}, "app-a", secretA, "")
	if cnf, _ := r.body["cnf"].(map[string]any); r.body["active"] != true || r.str("token_type") != "DPoP" || cnf["jkt"] != k.jkt() {
		t.Errorf("introspection = %v, want active, token_type DPoP, cnf.jkt %s", r.body, k.jkt())
	}
	// A proof sent to /introspect is checked too.
	if r := e.sendDPoP(http.MethodPost, "/introspect", url.Values{"token": {at}}, "app-a", secretA, "", k.proof("POST", e.issuer+"/token")); r.str("error") != "invalid_dpop_proof" {
		t.Errorf("introspection with a proof for /token = %d %v, want invalid_dpop_proof", r.status, r.body)
	}
	if r := e.sendDPoP(http.MethodPost, "/introspect", url.Values{"token": {at}}, "app-a", secretA, "", k.proof("POST", e.issuer+"/introspect")); r.body["active"] != true {
		t.Errorf("introspection with a good proof = %d %v, want active", r.status, r.body)
	}
	// A token that is not DPoP-bound is refused with the DPoP scheme.
	plain, _ := e.signIn()
	pat := plain.str("access_token")
	if r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+pat, k.proof("GET", ui, forToken(pat))); r.status != http.StatusUnauthorized {
		t.Errorf("userinfo with an unbound token and the DPoP scheme = %d %v, want 401", r.status, r.body)
	}
	if r := e.sendDPoP(http.MethodPost, "/introspect", url.Values{"token": {pat}}, "app-a", secretA, ""); r.str("token_type") != "Bearer" || r.body["cnf"] != nil {
		t.Errorf("introspection of an unbound token = %v, want token_type Bearer and no cnf", r.body)
	}
}

// TestDPoP_ProofChecks: every proof of the RFC 9449 §4.3 / §11 attack list
// is refused at the token endpoint with invalid_dpop_proof; the proof is
// checked before the grant, so the refresh token offered is never touched.
func TestDPoP_ProofChecks(t *testing.T) {
	e := newEnv(t)
	k := newDPoPKey(t)
	tokenURL := e.issuer + "/token"
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	replayed := k.proof("POST", tokenURL)
	if r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", replayed); r.str("error") != "invalid_grant" {
		t.Fatalf("first use of a proof = %d %v, want invalid_grant (the proof passes, the token does not)", r.status, r.body)
	}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"replayed proof", []string{replayed}},
		{"wrong htu", []string{k.proof("POST", e.issuer+"/userinfo")}},
		{"htu of another host", []string{k.proof("POST", "https://evil.example/token")}},
		{"wrong htm", []string{k.proof("GET", tokenURL)}},
		{"iat expired", []string{k.proof("POST", tokenURL, withClaim("iat", now.Add(-5*time.Minute).Unix()))}},
		{"iat in the future", []string{k.proof("POST", tokenURL, withClaim("iat", now.Add(5*time.Minute).Unix()))}},
		{"no iat", []string{k.proof("POST", tokenURL, withClaim("iat", nil))}},
		{"no jti", []string{k.proof("POST", tokenURL, withClaim("jti", nil))}},
		{"alg none", []string{k.proof("POST", tokenURL, withHeader("alg", "none"))}},
		{"alg HS256", []string{k.proof("POST", tokenURL, withHeader("alg", "HS256"))}},
		{"symmetric jwk", []string{k.proof("POST", tokenURL, withHeader("alg", "HS256"),
			withHeader("jwk", map[string]any{"kty": "oct", "k": b64([]byte("a-shared-secret-0123456789abcdef"))}))}},
		{"private key in jwk", []string{k.proof("POST", tokenURL, withHeader("jwk", k.jwk(true)))}},
		{"no jwk", []string{k.proof("POST", tokenURL, withHeader("jwk", nil))}},
		{"typ JWT", []string{k.proof("POST", tokenURL, withHeader("typ", "JWT"))}},
		{"signed by another key", []string{k.proof("POST", tokenURL, withHeader("jwk", newDPoPKey(t).jwk(false)))}},
		{"two DPoP headers", []string{k.proof("POST", tokenURL), k.proof("POST", tokenURL)}},
		{"not a JWT", []string{"not.a.jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", tc.proofs...)
			if r.status != http.StatusBadRequest || r.str("error") != "invalid_dpop_proof" {
				t.Fatalf("token = %d %v, want 400 invalid_dpop_proof", r.status, r.body)
			}
		})
	}
	t.Run("htu query and fragment ignored", func(t *testing.T) {
		r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", k.proof("POST", tokenURL+"?x=1#f"))
		if r.str("error") != "invalid_grant" {
			t.Fatalf("token = %d %v, want the proof accepted (RFC 9449 §4.3 check 9) and invalid_grant", r.status, r.body)
		}
	})
}

// TestDPoP_ReplayAcrossInstances: two instances with the same issuer share
// the store; a proof one accepted is refused by the other (RFC 9449 §11.1).
func TestDPoP_ReplayAcrossInstances(t *testing.T) {
	var cfg broker.Config
	e := newEnv(t, func(c *broker.Config) { cfg = *c })
	second, err := broker.New(context.Background(), cfg, e.store)
	if err != nil {
		t.Fatal(err)
	}
	srvB := httptest.NewServer(second.Handler())
	t.Cleanup(srvB.Close)
	k := newDPoPKey(t)
	proof := k.proof("POST", e.issuer+"/token") // the shared issuer's URL
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	if r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", proof); r.str("error") != "invalid_grant" {
		t.Fatalf("instance A = %d %v, want the proof accepted (invalid_grant)", r.status, r.body)
	}
	b := *e
	b.issuer = srvB.URL
	if r := b.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", proof); r.str("error") != "invalid_dpop_proof" {
		t.Fatalf("instance B with the proof A accepted = %d %v, want invalid_dpop_proof", r.status, r.body)
	}
}

// TestDPoP_PublicClientRefreshBoundToKey: a public client's refresh tokens
// are bound to the key of the proof at the code redemption (RFC 9449 §5):
// a refresh by the same key works, one without a proof or with another key
// (a stolen token, a key swap) is refused and ends the family.
func TestDPoP_PublicClientRefreshBoundToKey(t *testing.T) {
	e := newEnv(t)
	refresh := func(rt string, k *dpopKey) tokenResp {
		var proofs []string
		if k != nil {
			proofs = append(proofs, k.proof("POST", e.issuer+"/token"))
		}
		return e.sendDPoP(http.MethodPost, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {"pub"}}, "", "", "", proofs...)
	}
	k := newDPoPKey(t)
	tr := e.pubSignIn(k)
	r := refresh(tr.str("refresh_token"), k)
	if r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("refresh with the bound key = %d %v, want 200 DPoP", r.status, r.body)
	}
	for _, tc := range []struct {
		name string
		key  *dpopKey
	}{{"without a proof", nil}, {"with another key (key swap)", newDPoPKey(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := e.pubSignIn(k)
			if r := refresh(tr.str("refresh_token"), tc.key); r.str("error") != "invalid_grant" {
				t.Fatalf("refresh %s = %d %v, want invalid_grant", tc.name, r.status, r.body)
			}
			// The family is ended: the next token is refused even with the right key.
			if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
				t.Errorf("access token of the family after the refused refresh: userinfo = %d, want 401", st)
			}
		})
	}
	// Without a proof at the redemption, a public client's family is unbound.
	plain := e.pubSignIn(nil)
	if r := refresh(plain.str("refresh_token"), nil); r.status != http.StatusOK || r.str("token_type") != "Bearer" {
		t.Errorf("refresh of an unbound public family = %d %v, want 200 Bearer", r.status, r.body)
	}
	// A confidential client's refresh tokens are bound by its authentication,
	// not to the key: a refresh without a proof gets a bearer token.
	conf := e.dpopSignIn(k)
	if r := e.refresh(conf.str("refresh_token"), "app-a", secretA); r.status != http.StatusOK || r.str("token_type") != "Bearer" {
		t.Errorf("confidential refresh without a proof = %d %v, want 200 Bearer", r.status, r.body)
	}
}

// TestDPoP_BoundAccessTokensClient: a client with dpop_bound_access_tokens
// cannot get a token without a proof (RFC 9449 §5.2).
func TestDPoP_BoundAccessTokensClient(t *testing.T) {
	e := newEnv(t, func(c *broker.Config) { c.Clients[0].DPoPBoundAccessTokens = true })
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {appCB}, "code_verifier": {verifier}}
	if r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, ""); r.status != http.StatusBadRequest || r.str("error") != "invalid_dpop_proof" {
		t.Fatalf("token without a proof = %d %v, want 400 invalid_dpop_proof", r.status, r.body)
	}
	k := newDPoPKey(t)
	if r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", k.proof("POST", e.issuer+"/token")); r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("token with a proof = %d %v, want 200 DPoP", r.status, r.body)
	}
}

// TestDPoP_ServerNonce: with require_nonce every proof carries the server's
// nonce (RFC 9449 §8, §9): without it the token endpoint answers 400
// use_dpop_nonce and the resource endpoint 401 with a DPoP challenge, both
// with a DPoP-Nonce header; a stale nonce is refused the same way.
func TestDPoP_ServerNonce(t *testing.T) {
	e := newEnv(t, func(c *broker.Config) { c.DPoP.RequireNonce = true })
	k := newDPoPKey(t)
	k.now = e.clock.now
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {appCB}, "code_verifier": {verifier}}
	r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", k.proof("POST", e.issuer+"/token"))
	nonce := r.header.Get("DPoP-Nonce")
	if r.status != http.StatusBadRequest || r.str("error") != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("token without a nonce = %d %v DPoP-Nonce %q, want 400 use_dpop_nonce with a nonce", r.status, r.body, nonce)
	}
	r = e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", k.proof("POST", e.issuer+"/token", withClaim("nonce", nonce)))
	if r.status != http.StatusOK {
		t.Fatalf("token with the nonce = %d %v, want 200", r.status, r.body)
	}
	at, ui := r.str("access_token"), e.issuer+"/userinfo"
	r = e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, k.proof("GET", ui, forToken(at)))
	if r.status != http.StatusUnauthorized || r.str("error") != "use_dpop_nonce" || r.header.Get("DPoP-Nonce") == "" ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("userinfo without a nonce = %d %v %v, want 401 use_dpop_nonce, a DPoP challenge and DPoP-Nonce", r.status, r.body, r.header)
	}
	if r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, k.proof("GET", ui, forToken(at), withClaim("nonce", nonce))); r.status != http.StatusOK {
		t.Fatalf("userinfo with the nonce = %d %v, want 200", r.status, r.body)
	}
	for _, bad := range []string{"made-up", nonce + "x"} {
		if r := e.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, k.proof("GET", ui, forToken(at), withClaim("nonce", bad))); r.str("error") != "use_dpop_nonce" {
			t.Errorf("userinfo with nonce %q = %d %v, want use_dpop_nonce", bad, r.status, r.body)
		}
	}
	e.clock.advance(11 * time.Minute) // two nonce steps later
	r = e.sendDPoP(http.MethodPost, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "app-a", secretA, "",
		k.proof("POST", e.issuer+"/token", withClaim("nonce", nonce)))
	if r.str("error") != "use_dpop_nonce" || r.header.Get("DPoP-Nonce") == nonce {
		t.Errorf("token with a stale nonce = %d %v (DPoP-Nonce %q), want use_dpop_nonce and a new nonce", r.status, r.body, r.header.Get("DPoP-Nonce"))
	}
}

// TestDPoP_Discovery: the metadata lists the proof algorithms (RFC 9449
// §5.1), asymmetric only.
func TestDPoP_Discovery(t *testing.T) {
	e := newEnv(t)
	var doc map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &doc)
	raw, _ := doc["dpop_signing_alg_values_supported"].([]any)
	var algs []string
	for _, a := range raw {
		s, _ := a.(string)
		algs = append(algs, s)
	}
	if !slices.Contains(algs, "ES256") || !slices.Contains(algs, "PS256") {
		t.Errorf("dpop_signing_alg_values_supported = %v, want ES256 and PS256 among them", algs)
	}
	for _, a := range algs {
		if a == "none" || strings.HasPrefix(a, "HS") {
			t.Errorf("dpop_signing_alg_values_supported lists %q", a)
		}
	}
}

// TestDPoP_TokenExchangeNeedsTheKey: a DPoP-bound subject token is
// exchanged only with a proof by its key, so a stolen bound token cannot
// be turned into a bearer token; the exchanged token is bound to the key
// of the exchange's proof.
func TestDPoP_TokenExchangeNeedsTheKey(t *testing.T) {
	e := newEnv(t, allowExchange("app-a", "app-b"))
	k := newDPoPKey(t)
	at := e.dpopSignIn(k).str("access_token")
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"no proof", nil},
		{"another key", []string{newDPoPKey(t).proof("POST", e.issuer+"/token")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sendDPoP(http.MethodPost, "/token", exchangeParams(at), "app-a", secretA, "", tc.proofs...)
			if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
				t.Fatalf("exchange of a bound token, %s = %d %v, want invalid_grant", tc.name, r.status, r.body)
			}
		})
	}
	r := e.sendDPoP(http.MethodPost, "/token", exchangeParams(at), "app-a", secretA, "", k.proof("POST", e.issuer+"/token"))
	if r.status != http.StatusOK || r.str("token_type") != "DPoP" {
		t.Fatalf("exchange with the key's proof = %d %v, want 200 DPoP", r.status, r.body)
	}
	if _, c := claimsOf(t, r.str("access_token")); func() any { cnf, _ := c["cnf"].(map[string]any); return cnf["jkt"] }() != k.jkt() {
		t.Errorf("exchanged token cnf = %v, want jkt %s", c["cnf"], k.jkt())
	}
}
