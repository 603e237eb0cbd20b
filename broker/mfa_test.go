package broker_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker"
)

func requireMFA(tenant string) envOpt {
	return func(c *broker.Config) { c.Policies = map[string]broker.TenantPolicy{tenant: {RequireMFA: true}} }
}

func TestMFA_TenantRequiresIt(t *testing.T) {
	e := newEnv(t, requireMFA("acme"))
	callback := func(b *browser, resp *http.Response) (*http.Response, string) {
		t.Helper()
		if upstreamOf(resp) != "acme-idp" {
			t.Fatalf("not sent to the acme IdP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		state := mustQuery(t, resp.Header.Get("Location")).Get("state")
		return b.getBody(e.issuer + "/callback/acme-idp?code=x&state=" + url.QueryEscape(state))
	}
	t.Run("single factor refused although MFA was asked", func(t *testing.T) {
		e.acme.ident.AMR = []string{"pwd"}
		b := e.browser()
		resp, _ := e.startAt(b, map[string]string{"login_hint": "alice@acme.test"}, nil)
		if !slices.Equal(e.acme.last.ACRValues, broker.DefaultMFAACRValues) {
			t.Errorf("first upstream request acr_values = %v, want %v", e.acme.last.ACRValues, broker.DefaultMFAACRValues)
		}
		denied, page := callback(b, resp)
		if denied.StatusCode != http.StatusForbidden || !strings.Contains(page, "Multi-factor") || denied.Header.Get("Location") != "" {
			t.Fatalf("second single-factor answer = %d %q, want a 403 page", denied.StatusCode, denied.Header.Get("Location"))
		}
	})
	t.Run("multi-factor accepted with acr", func(t *testing.T) {
		e.acme.ident.AMR = []string{"pwd", "otp"}
		b := e.browser()
		resp, _ := e.startAt(b, map[string]string{"login_hint": "alice@acme.test"}, nil)
		cb, _ := callback(b, resp)
		q := e.clientRedirect(cb, appCB)
		tr := e.exchange(q.Get("code"), authVerifier)
		_, c := claimsOf(t, tr.str("id_token"))
		if c["acr"] != broker.ACRMFA || c["tid"] != "acme" {
			t.Fatalf("claims = %v, want acr %s", c, broker.ACRMFA)
		}
	})
	t.Run("other tenants unaffected", func(t *testing.T) {
		e.globex.ident.AMR = []string{"pwd"}
		b := e.browser()
		resp, _ := e.startAt(b, map[string]string{"login_hint": "carol@globex.test"}, nil)
		if len(e.globex.last.ACRValues) != 0 {
			t.Errorf("globex was asked for MFA")
		}
		state := mustQuery(t, resp.Header.Get("Location")).Get("state")
		q := e.clientRedirect(b.get(e.issuer+"/callback/globex-idp?code=x&state="+url.QueryEscape(state)), appCB)
		_, c := claimsOf(t, e.exchange(q.Get("code"), authVerifier).str("id_token"))
		if c["acr"] != broker.ACRSingleFactor {
			t.Fatalf("globex acr = %v, want %s", c["acr"], broker.ACRSingleFactor)
		}
	})
}

func TestMFA_StepUpFromClient(t *testing.T) {
	e := newEnv(t)
	e.acme.ident.AMR = []string{"pwd"}
	_, b := e.signIn() // single-factor SSO session
	resp, _ := e.startAt(b, map[string]string{"acr_values": broker.ACRMFA}, nil)
	if upstreamOf(resp) != "acme-idp" || !slices.Equal(e.acme.last.ACRValues, broker.DefaultMFAACRValues) {
		t.Fatalf("step-up with a single-factor session = %q (acr_values %v), want the IdP asked for MFA", resp.Header.Get("Location"), e.acme.last.ACRValues)
	}
	// Without acr_values, the SSO session answers directly.
	if loc := b.get(e.authorizeURL(authParams(s256(authVerifier)))).Header.Get("Location"); !strings.HasPrefix(loc, appCB) {
		t.Fatalf("plain authorize with a session = %q, want an SSO answer", loc)
	}
}
