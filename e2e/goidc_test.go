package e2e

import (
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// TestE2E_GoOIDC signs alice in through realmgate (Redis store, RS256 keys)
// from a Go app on coreos/go-oidc and x/oauth2, with oidc-provider upstream:
// the ID token verifies (iss, aud, exp, nonce, at_hash; S11, S13), userinfo
// agrees, refresh rotates and replaying a used refresh token kills the family
// (S09), and a second, forced login through realmgate's discovery page yields
// the same sub.
func TestE2E_GoOIDC(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	d := newDeployment(t, issuer, 2, "RS256")
	startRealmgate(t, d, "realmgate", addr)
	rp := newGoRP(t, issuer, d.cfg.ClientSecret)
	b := newBrowser(t, "alice", "alice@acme.test")

	// First login: login_hint sends alice straight to ACME's IdP.
	authURL, l := rp.authURL(t, oauth2.SetAuthURLParam("login_hint", "alice@acme.test"))
	tok, idt, claims := rp.redeem(t, b.signIn(authURL, rpRedirectURI), l, "")
	checkAlice(t, "ID token", claims)
	if idt.Subject == "" || idt.Subject == "alice" {
		t.Errorf("ID token sub = %q, want realmgate's opaque subject", idt.Subject)
	}
	ui := rp.userinfo(t, tok)
	if ui.Subject != idt.Subject {
		t.Errorf("userinfo sub = %q, want %q", ui.Subject, idt.Subject)
	}
	checkAlice(t, "userinfo", ui)
	checkUserinfoMerged(t, d.op)

	// Refresh: a new refresh token, a new ID token for the same subject.
	fresh, err := rp.refresh(tok.RefreshToken, "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh gave refresh token %q, want a new one (rotation)", fresh.RefreshToken)
	}
	idt2, claims2 := rp.verifyID(t, fresh)
	if idt2.Subject != idt.Subject {
		t.Errorf("refreshed ID token sub = %q, want %q", idt2.Subject, idt.Subject)
	}
	if claims2.Nonce != "" {
		t.Errorf("refreshed ID token nonce = %q, want none (OIDC Core §12.2)", claims2.Nonce)
	}
	checkAlice(t, "refreshed ID token", claims2)

	// S09: the used refresh token is refused and takes its family down.
	if _, err := rp.refresh(tok.RefreshToken, ""); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("replayed refresh token: error %q, want invalid_grant", oauthErrorCode(err))
	}
	if _, err := rp.refresh(fresh.RefreshToken, ""); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh token of a revoked family: error %q, want invalid_grant", oauthErrorCode(err))
	}

	// Second login, forced (prompt=login), without a hint and ignoring the
	// remembered IdP (select_account): realmgate asks for the email, the
	// upstream asks for the password again, and the sub is the same as before.
	b.visits = nil
	authURL, l = rp.authURL(t, oauth2.SetAuthURLParam("prompt", "login select_account"))
	_, idt3, claims3 := rp.redeem(t, b.signIn(authURL, rpRedirectURI), l, "")
	if !visited(b, addr+"/login") || !visited(b, "/interaction/") {
		t.Errorf("forced login did not go through realmgate's discovery page and the upstream login; visits:\n%s",
			strings.Join(b.visits, "\n"))
	}
	if idt3.Subject != idt.Subject {
		t.Errorf("second login sub = %q, want %q (stable)", idt3.Subject, idt.Subject)
	}
	checkAlice(t, "second ID token", claims3)
}

// visited reports whether the browser requested a URL containing part.
func visited(b *browser, part string) bool {
	for _, v := range b.visits {
		if strings.Contains(v, part) {
			return true
		}
	}
	return false
}
