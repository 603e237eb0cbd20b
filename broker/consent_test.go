package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker"
)

const thirdCB = "https://printer.example/cb"

func withThirdParty() envOpt {
	return withClients(broker.Client{ID: "third", Secret: secretA, RedirectURIs: []string{thirdCB}, AllowedTenants: []string{"*"},
		Claims: []string{"department"}, ClientSettings: broker.ClientSettings{Name: "Photo <Printer>", ThirdParty: true}})
}

// thirdParams is an authorization request of the third-party client.
func thirdParams(scope, prompt string) (url.Values, string) {
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("client_id", "third")
	v.Set("redirect_uri", thirdCB)
	v.Set("scope", scope)
	if prompt != "" {
		v.Set("prompt", prompt)
	}
	return v, verifier
}

// toConsent runs /authorize (signing in upstream when the browser has no
// session) and returns the response that follows: the consent page, or
// the redirect to the client.
func (e *env) toConsent(b *browser, v url.Values) (*http.Response, string) {
	e.t.Helper()
	resp := b.get(e.authorizeURL(v))
	loc := resp.Header.Get("Location")
	if resp.StatusCode == http.StatusFound && strings.HasPrefix(loc, "https://idp.example/") {
		u, _ := url.Parse(loc)
		return b.getBody(e.issuer + "/callback/" + strings.Split(u.Path, "/")[1] + "?code=upstream-code&state=" + url.QueryEscape(u.Query().Get("state")))
	}
	if resp.StatusCode == http.StatusFound {
		return resp, ""
	}
	return b.getBody(e.authorizeURL(v))
}

func isConsentPage(resp *http.Response, body string) bool {
	return resp.StatusCode == http.StatusOK && strings.Contains(body, `name="decision" value="allow"`)
}

func (e *env) answerConsent(b *browser, page, decision string) *http.Response {
	e.t.Helper()
	resp, _ := b.postForm(e.issuer+"/consent", url.Values{"r": {formField(page, "r")}, "csrf": {formField(page, "csrf")}, "decision": {decision}})
	return resp
}

func TestConsent_ThirdPartyClient(t *testing.T) {
	e := newEnv(t, withThirdParty())
	b := e.browser()

	// First sign-in: the page names the client and what it asks for.
	v, verifier := thirdParams("openid email", "")
	resp, page := e.toConsent(b, v)
	if !isConsentPage(resp, page) {
		t.Fatalf("first sign-in = %d, want the consent page; body %.300s", resp.StatusCode, page)
	}
	for _, want := range []string{"Photo &lt;Printer&gt;", "Your email address", "department", `name="csrf"`, "width=device-width"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("consent page X-Frame-Options = %q, want DENY", resp.Header.Get("X-Frame-Options"))
	}
	// no-referrer would make browsers post the form with Origin: null,
	// which the same-origin check refuses (found by TestChrome_ConsentPage360).
	if got := resp.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("consent page Referrer-Policy = %q, want same-origin", got)
	}

	t.Run("forged form refused", func(t *testing.T) {
		r, _ := b.postForm(e.issuer+"/consent", url.Values{"r": {formField(page, "r")}, "csrf": {"forged"}, "decision": {"allow"}})
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("consent with a wrong csrf token = %d, want 403", r.StatusCode)
		}
	})

	q := e.clientRedirect(e.answerConsent(b, page, "allow"), thirdCB)
	tr := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {thirdCB}, "code_verifier": {verifier}}, "third", secretA)
	if tr.status != http.StatusOK || q.Get("state") != "st-123" {
		t.Fatalf("after allow: token = %d %v, state %q", tr.status, tr.body, q.Get("state"))
	}

	t.Run("remembered consent skips the page", func(t *testing.T) {
		v, _ := thirdParams("openid", "")
		resp, _ := e.toConsent(b, v)
		if q := e.clientRedirect(resp, thirdCB); q.Get("code") == "" {
			t.Errorf("remembered consent: redirect %v, want a code", q)
		}
	})
	t.Run("prompt=none with consent given", func(t *testing.T) {
		v, _ := thirdParams("openid email", "none")
		resp, _ := e.toConsent(b, v)
		if q := e.clientRedirect(resp, thirdCB); q.Get("code") == "" {
			t.Errorf("prompt=none after consent: redirect %v, want a code", q)
		}
	})
	t.Run("a new scope asks again", func(t *testing.T) {
		v, _ := thirdParams("openid email profile", "")
		resp, page := e.toConsent(b, v)
		if !isConsentPage(resp, page) || !strings.Contains(page, "Your name and basic profile <strong>(new)</strong>") {
			t.Fatalf("new scope = %d, want the consent page marking profile new; body %.400s", resp.StatusCode, page)
		}
		e.clientRedirect(e.answerConsent(b, page, "allow"), thirdCB)
		cn, err := e.broker.LoadConsent(context.Background(), subjectOfAlice(t, tr), "third")
		if err != nil || strings.Join(cn.Scopes, " ") != "email openid profile" {
			t.Errorf("stored consent = %+v, %v, want scopes email openid profile", cn, err)
		}
	})
	t.Run("prompt=consent forces the page", func(t *testing.T) {
		v, _ := thirdParams("openid", "consent")
		if resp, page := e.toConsent(b, v); !isConsentPage(resp, page) {
			t.Errorf("prompt=consent = %d, want the consent page", resp.StatusCode)
		}
	})
	t.Run("deny returns access_denied", func(t *testing.T) {
		v, _ := thirdParams("openid", "consent")
		_, page := e.toConsent(b, v)
		q := e.clientRedirect(e.answerConsent(b, page, "deny"), thirdCB)
		if q.Get("error") != "access_denied" || q.Get("state") != "st-123" || q.Get("code") != "" || q.Get("iss") != e.issuer {
			t.Errorf("deny: redirect %v, want error=access_denied with state and iss, no code", q)
		}
		// The answer is single use.
		if r := e.answerConsent(b, page, "allow"); strings.HasPrefix(r.Header.Get("Location"), thirdCB) {
			t.Errorf("replayed consent form = %d %q, want no redirect", r.StatusCode, r.Header.Get("Location"))
		}
	})
	t.Run("admin view scoped to the tenant", func(t *testing.T) {
		ctx, sub := context.Background(), subjectOfAlice(t, tr)
		if cn, err := e.broker.ConsentOf(ctx, "acme", sub, "third"); err != nil || len(cn.Scopes) == 0 {
			t.Errorf("ConsentOf(acme) = %+v, %v, want alice's consent", cn, err)
		}
		if _, err := e.broker.ConsentOf(ctx, "globex", sub, "third"); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("ConsentOf(globex) = %v, want ErrNotFound (alice never signed in to globex)", err)
		}
		if err := e.broker.RevokeConsentOf(ctx, "globex", sub, "third"); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("RevokeConsentOf(globex) = %v, want ErrNotFound", err)
		}
	})
	t.Run("revoked consent asks again", func(t *testing.T) {
		if err := e.broker.RevokeConsentOf(context.Background(), "acme", subjectOfAlice(t, tr), "third"); err != nil {
			t.Fatal(err)
		}
		v, _ := thirdParams("openid", "")
		if resp, page := e.toConsent(b, v); !isConsentPage(resp, page) {
			t.Errorf("after revocation = %d, want the consent page", resp.StatusCode)
		}
	})
}

// subjectOfAlice is alice's local (public) sub, from a public client's token.
func subjectOfAlice(t *testing.T, tr tokenResp) string {
	t.Helper()
	_, c := claimsOf(t, tr.str("id_token"))
	return c["sub"].(string)
}

func TestConsent_PromptNoneWithoutConsent(t *testing.T) {
	e := newEnv(t, withThirdParty())
	_, b := e.signIn() // a session, through app-a (first party: no page)
	v, _ := thirdParams("openid", "none")
	resp := b.get(e.authorizeURL(v))
	q := e.clientRedirect(resp, thirdCB)
	if q.Get("error") != "consent_required" || q.Get("state") != "st-123" {
		t.Errorf("prompt=none without consent: redirect %v, want error=consent_required (OIDC Core §3.1.2.6)", q)
	}
}
