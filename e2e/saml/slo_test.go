package saml

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
)

// sloConfig is realmgate with tenant contoso on a samlify IdP (HTTP-Redirect
// binding) with upstream_logout on, and a client with a post-logout URI.
const sloConfig = `issuer: http://%[1]s
listen: %[1]s
store:
  type: redis
  redis:
    addrs: ["%[2]s"]
    db: %[3]d
keys:
  secret: %[4]s
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
clients:
  - id: notes
    secret: %[5]s
    redirect_uris: ["%[6]s"]
    post_logout_redirect_uris: ["%[8]s"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: contoso
    name: Contoso
    domains: ["contoso.test"]
    providers:
      - id: contoso-adfs
        type: saml
        name: Contoso AD FS
        metadata_url: %[7]s/metadata
        sp_key_file: contoso-sp.key
        sp_cert_file: contoso-sp.crt
        name_id_format: persistent
        binding: redirect
        upstream_logout: true
`

const signedOutURI = "http://127.0.0.1:9/signed-out" // never contacted

// follow sends the browser through GET redirects from start and returns the
// last response's status and page.
func (b *browser) follow(start string) (int, string) {
	b.t.Helper()
	target := start
	for range 10 {
		resp, page := b.do(http.MethodGet, target, nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return resp.StatusCode, string(page)
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		target = u.String()
	}
	b.t.Fatalf("browser: more than 10 redirects:\n%s", strings.Join(b.visits, "\n"))
	return 0, ""
}

// TestE2E_SAML_SingleLogout: SAML Single Logout with samlify, both ways.
// SP-initiated: signing out of realmgate sends a signed LogoutRequest with
// the NameID and SessionIndex samlify issued; samlify verifies it and
// answers with a signed LogoutResponse, which realmgate validates before
// sending the browser on to the app's post-logout URI. IdP-initiated:
// samlify's signed LogoutRequest ends the realmgate session, and realmgate's
// signed LogoutResponse answers that request.
func TestE2E_SAML_SingleLogout(t *testing.T) {
	e2etest.Need(t)
	redis := redistest.Start(t)
	dir := t.TempDir()
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	e2etest.WriteKeyPair(t, dir, "contoso-sp")
	idps := startSamlify(t, dir, []idpSpec{
		{Name: "contoso", SPMetadata: issuer + "/saml/contoso-adfs/metadata", Domain: "contoso.test"},
	})
	clientSecret := randomText(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	provider := startRealmgate(t, ctx, dir, issuer, fmt.Sprintf(sloConfig, addr, redis.Addr(), redisDB, randomText(t), clientSecret, redirectURI, idps.url+"/contoso", signedOutURI))

	// signIn signs alice in and returns her browser, ID token and access token.
	signIn := func(t *testing.T) (*browser, string, string) {
		t.Helper()
		verifierCode := randomText(t)
		challenge := sha256.Sum256([]byte(verifierCode))
		q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {randomText(t)}, "nonce": {randomText(t)},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
		b := newBrowser(t, "alice@contoso.test")
		cb := b.signIn(provider.Endpoint().AuthURL+"?"+q.Encode(), redirectURI)
		tok := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {redirectURI}, "code_verifier": {verifierCode}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, provider.Endpoint().TokenURL, strings.NewReader(tok.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			IDToken     string `json:"id_token"`
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.IDToken == "" {
			t.Fatalf("token = %d %v", resp.StatusCode, err)
		}
		return b, tr.IDToken, tr.AccessToken
	}
	userinfo := func(t *testing.T, at string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, provider.UserInfoEndpoint(), nil)
		req.Header.Set("Authorization", "Bearer "+at)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// events returns samlify's events of kind since index from, failing on errors.
	events := func(t *testing.T, from int, kind string) []idpEvent {
		t.Helper()
		// samlify logs its events on stdout, read asynchronously: a line may
		// arrive just after the browser step that caused it. Wait briefly.
		var out []idpEvent
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(25 * time.Millisecond) {
			out = out[:0]
			for _, ev := range idps.events("contoso")[from:] {
				if ev.Event == kind {
					out = append(out, ev)
				}
			}
			if len(out) > 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, ev := range idps.events("contoso")[from:] {
			if ev.Event == "error" {
				t.Errorf("samlify IdP error: %s", ev.Error)
			}
		}
		return out
	}

	t.Run("SP-initiated", func(t *testing.T) {
		b, idToken, at := signIn(t)
		mark := len(idps.events("contoso"))
		v := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {signedOutURI}, "state": {"bye"}}
		end := b.signIn(issuer+"/logout?"+v.Encode(), signedOutURI)
		if end.String() != signedOutURI+"?state=bye" {
			t.Errorf("logout ended at %s, want %s?state=bye", end, signedOutURI)
		}
		if reqs := events(t, mark, "logout_request"); len(reqs) != 1 || !reqs[0].Signed {
			t.Errorf("samlify saw LogoutRequests %+v, want one signed", reqs)
		}
		sawIdP := false
		for _, v := range b.visits {
			sawIdP = sawIdP || strings.HasPrefix(v, "GET "+idps.url+"/contoso/slo?SAMLRequest=")
		}
		if !sawIdP {
			t.Errorf("the browser never went to the IdP's SLO service; visits:\n%s", strings.Join(b.visits, "\n"))
		}
		if st := userinfo(t, at); st != http.StatusUnauthorized {
			t.Errorf("userinfo after logout = %d, want 401", st)
		}
	})

	t.Run("IdP-initiated", func(t *testing.T) {
		b, _, at := signIn(t)
		if st := userinfo(t, at); st != http.StatusOK {
			t.Fatalf("userinfo before logout = %d", st)
		}
		mark := len(idps.events("contoso"))
		status, page := b.follow(idps.url + "/contoso/logout")
		if status != http.StatusOK || !strings.Contains(page, "Signed out") {
			t.Errorf("IdP-initiated logout ended with %d:\n%.300s\nvisits:\n%s", status, page, strings.Join(b.visits, "\n"))
		}
		if resps := events(t, mark, "logout_response"); len(resps) != 1 || !resps[0].Signed || resps[0].InResponseTo == "" {
			t.Errorf("samlify saw LogoutResponses %+v, want one signed answering its request", resps)
		}
		if st := userinfo(t, at); st != http.StatusUnauthorized {
			t.Errorf("userinfo after the IdP's logout = %d, want 401", st)
		}
	})
}
