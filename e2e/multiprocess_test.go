package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// TestE2E_MultiProcess runs three realmgate processes with one configuration
// on one Redis, started at the same moment (so they race to create the
// shared signing keys), and sends each step of one sign-in to a different
// process: /authorize on process 1, the upstream callback on process 2,
// /token on process 3, userinfo on process 2, refresh on process 1. Nothing
// but Redis connects them. All three must publish the same JWKS; a token
// from one verifies with the keys of another; an SSO session made on
// process 2 serves an /authorize on process 3; and replaying a rotated
// refresh token on process 2 revokes the family for process 3 too (S09).
func TestE2E_MultiProcess(t *testing.T) {
	e2etest.Need(t)
	addrs := []string{e2etest.FreeAddr(t), e2etest.FreeAddr(t), e2etest.FreeAddr(t)}
	issuer := "http://" + addrs[0] // one issuer; each step picks its process
	d := newDeployment(t, issuer, 3, "ES256")
	procs := make([]*e2etest.Proc, len(addrs))
	for i, a := range addrs {
		procs[i] = e2etest.Start(t, "realmgate-"+string(rune('1'+i)), exec.Command(env.binary,
			"serve", "--config", d.configPath, "--listen", a, "--log-format", "text"))
	}
	for i, a := range addrs {
		procs[i].WaitReady(t, "http://"+a+"/readyz")
	}
	at := func(i int, path string) string { return "http://" + addrs[i] + path }

	jwks := make([]map[string]any, len(addrs))
	for i := range addrs {
		jwks[i] = fetchJWKS(t, at(i, "/jwks"))
	}
	for i := 1; i < len(addrs); i++ {
		if !reflect.DeepEqual(jwks[0], jwks[i]) {
			t.Errorf("JWKS of process %d differs from process 1:\n%v\nvs\n%v", i+1, jwks[i], jwks[0])
		}
	}

	rp := newGoRP(t, issuer, d.cfg.ClientSecret) // discovery on process 1
	b := newBrowser(t, "alice", "alice@acme.test")
	// The upstream sends the browser to the issuer's callback (process 1's
	// address); deliver it to process 2 instead.
	b.route = func(u *url.URL) {
		if u.Host == addrs[0] && strings.HasPrefix(u.Path, "/callback/") {
			u.Host = addrs[1]
		}
	}
	authURL, l := rp.authURL(t)
	if !strings.HasPrefix(authURL, at(0, "/authorize")) {
		t.Fatalf("authorization URL %q is not on process 1", authURL)
	}
	callback := b.signIn(authURL, rpRedirectURI)
	for _, want := range []string{"GET " + addrs[0] + "/authorize", "POST " + addrs[0] + "/login",
		"GET " + addrs[1] + "/callback/" + idpID} {
		if !visited(b, want) {
			t.Errorf("browser never did %q; visits:\n%s", want, strings.Join(b.visits, "\n"))
		}
	}
	if visited(b, addrs[0]+"/callback/") {
		t.Errorf("the upstream callback reached process 1; visits:\n%s", strings.Join(b.visits, "\n"))
	}

	tok, idt, claims := rp.redeem(t, callback, l, at(2, "/token"))
	checkAlice(t, "ID token from process 3", claims)
	// The token process 3 signed verifies with process 2's and 3's keys too.
	for _, i := range []int{1, 2} {
		v := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(rp.ctx, at(i, "/jwks")),
			&oidc.Config{ClientID: rpClientID, SupportedSigningAlgs: []string{oidc.ES256}})
		if _, err := v.Verify(rp.ctx, tok.Extra("id_token").(string)); err != nil {
			t.Errorf("ID token from process 3 with the JWKS of process %d: %v", i+1, err)
		}
	}

	ui := bearerJSON(t, at(1, "/userinfo"), tok.AccessToken)
	if ui["sub"] != idt.Subject || ui["email"] != "alice@acme.test" || ui["tid"] != "acme" {
		t.Errorf("userinfo on process 2 = %v, want sub %s, alice@acme.test, tid acme", ui, idt.Subject)
	}

	fresh, err := rp.refresh(tok.RefreshToken, at(0, "/token"))
	if err != nil {
		t.Fatalf("refresh on process 1: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh on process 1 gave refresh token %q, want a new one", fresh.RefreshToken)
	}
	idt2, claims2 := rp.verifyID(t, fresh)
	if idt2.Subject != idt.Subject {
		t.Errorf("refreshed sub = %q, want %q", idt2.Subject, idt.Subject)
	}
	checkAlice(t, "refreshed ID token from process 1", claims2)

	// SSO: the session process 2 created serves an /authorize on process 3
	// without going upstream.
	b.visits = nil
	authURL, l = rp.authURL(t)
	ssoURL := strings.Replace(authURL, at(0, "/authorize"), at(2, "/authorize"), 1)
	_, idt3, _ := rp.redeem(t, b.signIn(ssoURL, rpRedirectURI), l, at(1, "/token"))
	if len(b.visits) != 1 || idt3.Subject != idt.Subject {
		t.Errorf("SSO on process 3: sub %q after visits %v; want sub %q in one hop", idt3.Subject, b.visits, idt.Subject)
	}

	// S09 across processes: replaying the rotated token on process 2 revokes
	// the family, so process 3 refuses its newest refresh token.
	if _, err := rp.refresh(tok.RefreshToken, at(1, "/token")); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("replayed refresh token on process 2: error %q, want invalid_grant", oauthErrorCode(err))
	}
	if _, err := rp.refresh(fresh.RefreshToken, at(2, "/token")); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh of the revoked family on process 3: error %q, want invalid_grant", oauthErrorCode(err))
	}

	for i := range addrs {
		if got := fetchJWKS(t, at(i, "/jwks")); !reflect.DeepEqual(got, jwks[0]) {
			t.Errorf("JWKS of process %d changed during the test:\n%v\nwant\n%v", i+1, got, jwks[0])
		}
	}
}

// fetchJWKS returns a decoded JWKS with at least one key.
func fetchJWKS(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var set map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v; want a JWKS", u, resp.StatusCode, err)
	}
	keys, _ := set["keys"].([]any)
	if len(keys) == 0 {
		t.Fatalf("GET %s: JWKS has no keys: %v", u, set)
	}
	return set
}

// bearerJSON GETs u with a bearer token and decodes the JSON object answer.
func bearerJSON(t *testing.T, u, token string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET %s = %d %s; want 200 and a JSON object", u, resp.StatusCode, body)
	}
	return out
}
