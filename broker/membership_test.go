package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/transform"
)

// consultant: alice from acme's IdP is a member of globex (roles from
// globex's rules) and of initech (which wants re-authentication).
func withMemberships(c *broker.Config) {
	c.Memberships = []broker.Membership{
		{Tenant: "globex", IdP: "acme-idp", Email: "alice@acme.test"},
		{Tenant: "initech", IdP: "acme-idp", Subject: "alice-upstream", Reauth: true},
	}
	eng, err := transform.Compile(nil, []transform.Rule{{Name: "consultants", Add: []transform.Assignment{{Claim: "roles", Expr: `"consultant"`}}}},
		transform.Options{Tenant: "globex"})
	if err != nil {
		panic(err)
	}
	c.Rules = map[string]*transform.Engine{"globex": eng}
}

func TestTenantSwitch(t *testing.T) {
	e := newEnv(t, withMemberships)
	b := e.browser()
	// First sign-in without a tenant parameter: a picker lists home and memberships.
	v := authParams(s256(authVerifier))
	idp, state := e.upstreamState(b, v)
	resp, page := b.getBody(e.issuer + "/callback/" + idp + "?code=x&state=" + url.QueryEscape(state))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="globex"`) || !strings.Contains(page, `value="acme"`) {
		t.Fatalf("callback = %d, want the tenant picker listing acme and globex:\n%s", resp.StatusCode, page)
	}
	pick, _ := b.postForm(e.issuer+"/tenant", url.Values{"r": {formField(page, "r")}, "tenant": {"globex"}})
	q := e.clientRedirect(pick, appCB)
	tr := e.exchange(q.Get("code"), authVerifier)
	_, c := claimsOf(t, tr.str("id_token"))
	if c["tid"] != "globex" || !strings.Contains(strings.Join(toStrings(c["roles"]), ","), "consultant") || c["idp"] != "acme-idp" {
		t.Fatalf("picked globex: claims %v, want tid globex with globex's roles and idp acme-idp", c)
	}
	if c["email"] != "alice@acme.test" {
		t.Errorf("the home IdP's verified email was dropped for the guest tenant: %v", c["email"])
	}
	sub := c["sub"]
	// Switch back with a new authorization request: SSO, no upstream.
	v.Set("tenant", "acme")
	q = e.clientRedirect(b.get(e.authorizeURL(v)), appCB)
	_, c = claimsOf(t, e.exchange(q.Get("code"), authVerifier).str("id_token"))
	if c["tid"] != "acme" || c["sub"] != sub {
		t.Fatalf("switch to acme: tid %v sub %v, want acme and the same sub", c["tid"], c["sub"])
	}
	// initech's policy wants re-authentication for members.
	v.Set("tenant", "initech")
	resp = b.get(e.authorizeURL(v))
	if upstreamOf(resp) != "acme-idp" || !e.acme.last.ForceLogin {
		t.Fatalf("switch to initech = %q, want a forced upstream login", resp.Header.Get("Location"))
	}
	state = mustQuery(t, resp.Header.Get("Location")).Get("state")
	q = e.clientRedirect(b.get(e.issuer+"/callback/acme-idp?code=x&state="+url.QueryEscape(state)), appCB)
	_, c = claimsOf(t, e.exchange(q.Get("code"), authVerifier).str("id_token"))
	if c["tid"] != "initech" {
		t.Fatalf("after re-authentication tid = %v, want initech", c["tid"])
	}
}

func TestTenantSwitch_S51_NotAMember(t *testing.T) {
	e := newEnv(t, withMemberships)
	// carol (globex IdP) has no memberships: asking for acme is refused.
	v := authParams(s256(authVerifier))
	v.Set("login_hint", "carol@globex.test")
	v.Set("tenant", "acme")
	q := e.login(e.browser(), v)
	if q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("tenant=acme for a globex user = %v, want access_denied", q)
	}
	// A client limited to acme never gets globex tokens for alice either.
	v = authParams(s256(authVerifier))
	v.Set("client_id", "acme-only")
	v.Set("tenant", "globex")
	q = e.login(e.browser(), v)
	if q.Get("error") != "access_denied" {
		t.Fatalf("acme-only client asking for globex = %v, want access_denied", q)
	}
	// A forged picker answer is refused too.
	b := e.browser()
	idp, state := e.upstreamState(b, authParams(s256(authVerifier)))
	_, page := b.getBody(e.issuer + "/callback/" + idp + "?code=x&state=" + url.QueryEscape(state))
	pick, _ := b.postForm(e.issuer+"/tenant", url.Values{"r": {formField(page, "r")}, "tenant": {"consumers"}})
	if q := e.clientRedirect(pick, appCB); q.Get("error") != "access_denied" {
		t.Fatalf("forged picker answer = %v, want access_denied", q)
	}
}
