package broker_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/transform"
	"github.com/realmgate/realmgate/users"
)

// withUserPolicy sets tenant's directory policy.
func withUserPolicy(tenant string, p broker.UserPolicy) envOpt {
	return func(c *broker.Config) {
		if c.Policies == nil {
			c.Policies = map[string]broker.TenantPolicy{}
		}
		pol := c.Policies[tenant]
		pol.Users = &p
		c.Policies[tenant] = pol
	}
}

// withGroupRoles maps the directory groups of acme's users to roles when
// the IdP sends no groups.
func withGroupRoles(t *testing.T) envOpt {
	eng, err := transform.Compile(nil, []transform.Rule{{Name: "provisioned groups", If: `!has(upstream.groups)`,
		Map: &transform.Map{From: "user.groups", To: "roles", Table: map[string]string{"Engineers": "dev", "Admins": "admin"}}}},
		transform.Options{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *broker.Config) { c.Rules = map[string]*transform.Engine{"acme": eng} }
}

func rolesOf(t *testing.T, tr tokenResp) []string {
	t.Helper()
	_, c := claimsOf(t, tr.str("access_token"))
	var out []string
	l, _ := c["roles"].([]any)
	for _, r := range l {
		s, _ := r.(string)
		out = append(out, s)
	}
	return out
}

// TestUsers_JITRecordAtFirstSignIn: a first sign-in creates the user's
// record keyed by tenant + IdP + upstream subject; the next one finds it.
func TestUsers_JITRecordAtFirstSignIn(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	dir := e.broker.Users()
	u, err := dir.UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatalf("UserByLink after the first sign-in = %v", err)
	}
	_, c := claimsOf(t, tr.str("id_token"))
	if u.Subject != c["sub"] || u.Email != "alice@acme.test" || !u.EmailVerified || u.FirstSignIn.IsZero() || u.LastIP == "" {
		t.Fatalf("JIT record = %+v; want sub %v, the verified email, sign-in time and IP", u, c["sub"])
	}
	e.signIn()
	if n, _ := dir.CountUsers(t.Context(), "acme"); n != 1 {
		t.Fatalf("users after two sign-ins = %d, want 1", n)
	}
}

// TestUsers_S68_SuspendEndsAccess: suspending a user ends their refresh
// tokens and SSO session, sends the application a back-channel logout
// token, and refuses their next sign-in with a page.
func TestUsers_S68_SuspendEndsAccess(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	e := newEnv(t, withBackchannel(uri))
	tr, b := e.signIn()
	dir := e.broker.Users()
	u, err := dir.UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.SetStatus(t.Context(), "admin:ops", "acme", u.ID, users.StatusSuspended); err != nil {
		t.Fatalf("SetStatus = %v", err)
	}
	select {
	case <-lc.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout token after the suspension")
	}
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("refresh after suspension = %d %v, want invalid_grant", r.status, r.body)
	}
	// SSO from the old browser and a fresh sign-in are both refused with a page.
	_, challenge := pkce()
	resp := b.get(e.authorizeURL(authParams(challenge)))
	if resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Fatalf("SSO after suspension issued a code: %s", resp.Header.Get("Location"))
	}
	b2 := e.browser()
	idp, state := e.upstreamState(b2, authParams(challenge))
	resp, body := b2.getBody(e.issuer + "/callback/" + idp + "?code=c&state=" + url.QueryEscape(state))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "suspended or deprovisioned") {
		t.Fatalf("sign-in of a suspended user = %d %.200s, want 403 with a clear page", resp.StatusCode, body)
	}
	// Reactivated, they sign in again; the old refresh token stays dead.
	if _, err := dir.SetStatus(t.Context(), "admin:ops", "acme", u.ID, users.StatusActive); err != nil {
		t.Fatal(err)
	}
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status == http.StatusOK {
		t.Fatal("a refresh token of before the suspension works again after reactivation")
	}
	e.signIn()
}

// TestUsers_S68_RevokeEndsRefreshFamilies: an admin revoke ends the
// refresh-token families issued before it, without blocking a new sign-in.
func TestUsers_S68_RevokeEndsRefreshFamilies(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	u, _ := e.broker.Users().UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusOK {
		t.Fatalf("refresh before revoke = %d %v", r.status, r.body)
	} else {
		tr = r
	}
	if _, err := e.broker.Users().Revoke(t.Context(), "admin:ops", "acme", u.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusBadRequest {
		t.Fatalf("refresh after revoke = %d %v, want 400", r.status, r.body)
	}
	tr2, _ := e.signIn()
	if r := e.refresh(tr2.str("refresh_token"), "app-a", secretA); r.status != http.StatusOK {
		t.Fatalf("refresh of a sign-in after revoke = %d %v, want 200", r.status, r.body)
	}
}

// TestUsers_S68_RolesFromProvisionedGroups: a user provisioned with a
// group, matched by externalId at the first sign-in through an IdP that
// sends no groups, gets the mapped role; a group change shows at the next
// refresh.
func TestUsers_S68_RolesFromProvisionedGroups(t *testing.T) {
	e := newEnv(t, withGroupRoles(t), withUserPolicy("acme", broker.UserPolicy{Match: "externalId"}))
	e.acme.ident.Claims = map[string]any{"sub": "alice-upstream"} // no groups
	ctx := t.Context()
	dir := e.broker.Users()
	u := &users.User{Tenant: "acme", ExternalID: "alice-upstream", UserName: "alice@acme.test"}
	if err := dir.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	eng := &users.Group{Tenant: "acme", DisplayName: "Engineers"}
	adm := &users.Group{Tenant: "acme", DisplayName: "Admins"}
	for _, g := range []*users.Group{eng, adm} {
		if err := dir.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dir.AddMembers(ctx, "scim", "acme", eng.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	tr, _ := e.signIn()
	if got := rolesOf(t, tr); !slices.Equal(got, []string{"dev"}) {
		t.Fatalf("roles at sign-in = %v, want [dev]", got)
	}
	linked, err := dir.GetUser(ctx, "acme", u.ID)
	if err != nil || !linked.HasLink("acme-idp", "alice-upstream") {
		t.Fatalf("provisioned record after sign-in = %+v, %v; want it linked", linked, err)
	}
	if n, _ := dir.CountUsers(ctx, "acme"); n != 1 {
		t.Fatalf("users = %d, want 1 (matched, not a second JIT record)", n)
	}
	if _, err := dir.RemoveMembers(ctx, "scim", "acme", eng.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.AddMembers(ctx, "scim", "acme", adm.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	r := e.refresh(tr.str("refresh_token"), "app-a", secretA)
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %v", r.status, r.body)
	}
	if got := rolesOf(t, r); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("roles after a group change and one refresh = %v, want [admin]", got)
	}
}

// TestUsers_ProvisionedOnly: a tenant that admits provisioned users only
// refuses an unknown one with a page.
func TestUsers_ProvisionedOnly(t *testing.T) {
	e := newEnv(t, withUserPolicy("acme", broker.UserPolicy{Match: "userName", ProvisionedOnly: true}))
	b := e.browser()
	_, challenge := pkce()
	idp, state := e.upstreamState(b, authParams(challenge))
	resp, body := b.getBody(e.issuer + "/callback/" + idp + "?code=c&state=" + url.QueryEscape(state))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Account not found") {
		t.Fatalf("sign-in of an unprovisioned user = %d %.200s, want 403 Account not found", resp.StatusCode, body)
	}
	// Provisioned by userName (the email, as the IdP sends no preferred_username).
	if err := e.broker.Users().CreateUser(t.Context(), &users.User{Tenant: "acme", UserName: "Alice@acme.test"}); err != nil {
		t.Fatal(err)
	}
	e.signIn()
}

// TestUsers_ProfileFollowsIdP: a just-in-time record takes the upstream
// profile (email, names, IdP groups) at every sign-in; a provisioned one
// keeps the provisioner's email and names and takes only the IdP groups.
func TestUsers_ProfileFollowsIdP(t *testing.T) {
	e := newEnv(t, withUserPolicy("acme", broker.UserPolicy{Match: "externalId"}))
	dir := e.broker.Users()
	setIdent := func(email, name string, groups ...any) {
		e.acme.mu.Lock()
		defer e.acme.mu.Unlock()
		e.acme.ident.Email, e.acme.ident.Name = email, name
		e.acme.ident.Claims = map[string]any{"sub": e.acme.ident.Subject, "groups": groups}
	}
	e.signIn()
	setIdent("alice.anders@acme.test", "Alice B. Anders", "Finance-Admins", "Auditors")
	e.signIn()
	u, err := dir.UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice.anders@acme.test" || u.DisplayName != "Alice B. Anders" ||
		!slices.Equal(u.UpstreamGroups, []string{"Finance-Admins", "Auditors"}) {
		t.Fatalf("JIT record after a changed upstream profile = %+v; want the new email, name and IdP groups", u)
	}
	if found, _ := dir.UsersByEmail(t.Context(), "acme", "alice.anders@acme.test", 2); len(found) != 1 {
		t.Fatalf("UsersByEmail(new email) = %d users, want the record re-indexed", len(found))
	}

	// A provisioned user (matched by externalId) keeps the provisioner's profile.
	p := &users.User{Tenant: "acme", UserName: "bob", ExternalID: "bob-upstream", Email: "bob@corp.acme.test",
		DisplayName: "Robert (HR)", Provisioned: true}
	if err := dir.CreateUser(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	e.acme.mu.Lock()
	e.acme.ident.Subject = "bob-upstream"
	e.acme.mu.Unlock()
	setIdent("bob@personal.example", "Bobby", "Engineers")
	e.signIn()
	e.signIn()
	got, err := dir.GetUser(t.Context(), "acme", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "bob@corp.acme.test" || got.DisplayName != "Robert (HR)" || !slices.Equal(got.UpstreamGroups, []string{"Engineers"}) {
		t.Fatalf("provisioned record after sign-ins = %+v; want the provisioner's email and name, the IdP's groups", got)
	}
}
