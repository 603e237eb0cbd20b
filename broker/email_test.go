package broker_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/transform"
)

// hostileEmails are addresses that some parsers read in acme's domain
// (acme.test) and others in globex's (globex.test, which globex verified).
var hostileEmails = []string{
	"ceo@acme.test@globex.test",
	`"ceo@acme.test"@globex.test`,
	"ceo@acme.test,x@globex.test",
	"ceo@acme.test;x@globex.test",
	"ceo@acme.test@sub.globex.test",
	"ceo%acme.test@globex.test",
	`ceo\@acme.test@globex.test`,
	"ceo(x@acme.test)@globex.test",
	"CEO <ceo@acme.test>@globex.test",
	"ceo@acme.test @globex.test",
	"ceo\u200b@acme.test@globex.test",
}

// withEmailRule gives globex a rule that copies the upstream email claim
// and vouches for it, as a careless tenant admin might write.
func withEmailRule(c *broker.Config) {
	eng, err := transform.Compile(nil, []transform.Rule{{Name: "copy-email", Set: []transform.Assignment{
		{Claim: "email", Expr: `upstream.email`}, {Claim: "email_verified", Expr: `true`}}}},
		transform.Options{Tenant: "globex"})
	if err != nil {
		panic(err)
	}
	c.Rules = map[string]*transform.Engine{"globex": eng}
}

// TestEmail_S74_HostileUpstreamEmailNeverVerified: globex's own IdP asserts
// addresses that name acme.test in a way some parsers honour; through a full
// sign-in none reaches the ID token as a verified email, whether it comes in
// the identity or is copied by a tenant rule from the raw claims.
func TestEmail_S74_HostileUpstreamEmailNeverVerified(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []envOpt
	}{{"identity", nil}, {"copied by a rule", []envOpt{withEmailRule}}} {
		e := newEnv(t, mode.opts...)
		for _, email := range hostileEmails {
			t.Run(mode.name+"/"+email, func(t *testing.T) {
				e.globex.mu.Lock()
				e.globex.ident.Email, e.globex.ident.EmailVerified = email, true
				e.globex.ident.Claims = map[string]any{"sub": "carol", "email": email, "email_verified": true}
				e.globex.mu.Unlock()
				verifier, challenge := pkce()
				v := authParams(challenge)
				v.Set("login_hint", "carol@globex.test")
				q := e.login(e.browser(), v)
				tr := e.exchange(q.Get("code"), verifier)
				_, c := claimsOf(t, tr.str("id_token"))
				if c["tid"] != "globex" {
					t.Fatalf("tid = %v, want globex", c["tid"])
				}
				if c["email"] != nil || c["email_verified"] == true {
					t.Errorf("upstream email %q: ID token email = %v, email_verified = %v; want no email", email, c["email"], c["email_verified"])
				}
				if _, info := e.userinfo(tr.str("access_token")); info["email"] != nil || info["email_verified"] == true {
					t.Errorf("upstream email %q: userinfo email = %v, email_verified = %v; want no email", email, info["email"], info["email_verified"])
				}
			})
		}
	}
}

// TestEmail_S74_HostileHintNeverRoutes: a hostile login_hint, or the same
// address typed on the discovery page, sends nobody to any IdP: the page
// asks for a real address.
func TestEmail_S74_HostileHintNeverRoutes(t *testing.T) {
	e := newEnv(t)
	for _, email := range append(hostileEmails, "carol@globex.test@acme.test", `"x@globex.test"@acme.test`) {
		t.Run(email, func(t *testing.T) {
			b := e.browser()
			resp, body := e.startAt(b, map[string]string{"login_hint": email}, nil)
			if idp := upstreamOf(resp); idp != "" || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("authorize with login_hint %q = %d to %q, want the 400 discovery page", email, resp.StatusCode, idp)
			}
			r := formField(body, "r")
			if r == "" {
				t.Fatalf("discovery page has no request id: %.300q", body)
			}
			resp, _ = b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {email}})
			if idp := upstreamOf(resp); idp != "" {
				t.Errorf("POST /login email %q went to IdP %q, want the discovery page", email, idp)
			}
			// Typed together with a tenant's IdP button, the address does not
			// make that tenant's IdPs offered.
			resp, _ = b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {email}, "idp": {"acme-idp"}})
			if idp := upstreamOf(resp); idp != "" {
				t.Errorf("POST /login email %q idp=acme-idp went to IdP %q, want refused", email, idp)
			}
		})
	}
}
