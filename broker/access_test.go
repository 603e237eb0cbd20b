package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// withAccess gives tenants acme and globex an access policy: db-admin up
// to 2h with approval, support self-activated up to 30m; acme's users in
// the group Finance-Admins are approvers (a rule gives them the role).
func withAccess(t *testing.T) envOpt {
	return func(c *broker.Config) {
		pol := &broker.AccessPolicy{ApproverRoles: []string{"access-approver"}, Roles: map[string]broker.AccessRole{
			"db-admin": {MaxDuration: 2 * time.Hour},
			"support":  {MaxDuration: 30 * time.Minute, SelfActivate: true},
		}}
		c.Policies = map[string]broker.TenantPolicy{"acme": {Access: pol}, "globex": {Access: pol}}
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "approvers", If: `"Finance-Admins" in upstream.groups`,
			Add: []transform.Assignment{{Claim: "roles", Expr: `"access-approver"`}}}}, transform.Options{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		c.Rules = map[string]*transform.Engine{"acme": eng}
	}
}

func grantedRoles(t *testing.T, tr tokenResp) []string {
	t.Helper()
	if tr.status != http.StatusOK {
		t.Fatalf("token response = %d %v", tr.status, tr.body)
	}
	return rolesOf(t, tr)
}

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAccess_GrantExpiresDuringRefreshChain(t *testing.T) {
	grantExpiryChain(t, func(opts ...envOpt) *env { return newEnv(t, opts...) })
}

// grantExpiryChain: a grant requested, approved, in the refresh chain for
// its hour, gone at the first refresh after it, told to receivers and
// audited at each step; on the store newEnv makes.
func grantExpiryChain(t *testing.T, newEnv func(...envOpt) *env) {
	rcv, uri := newSETReceiver(t)
	audit := &lockedBuffer{}
	e := newEnv(withAccess(t), withReceiver(uri), func(c *broker.Config) {
		c.Audit = slog.New(slog.NewJSONHandler(audit, nil))
	})
	rcv.issuer = e.issuer
	ctx := context.Background()
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	sub := idc["sub"].(string)
	rt := tr.str("refresh_token")
	step := func(what string, wantDBAdmin bool) {
		t.Helper()
		next := e.refresh(rt, "app-a", secretA)
		roles := grantedRoles(t, next)
		if slices.Contains(roles, "db-admin") != wantDBAdmin {
			t.Fatalf("%s: refreshed roles = %v, want db-admin %v", what, roles, wantDBAdmin)
		}
		rt = next.str("refresh_token")
	}
	g, err := e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "acme", Subject: sub, Role: "db-admin",
		Duration: time.Hour, Justification: "INC-42: restore the ledger table", RequestedBy: "user"})
	if err != nil || g.Status != broker.AccessPending {
		t.Fatalf("RequestAccess = %+v, %v; want pending", g, err)
	}
	step("pending", false)
	if g, err = e.broker.DecideAccess(ctx, "acme", g.ID, true, "admin:test", "", ""); err != nil || g.Status != broker.AccessActive {
		t.Fatalf("DecideAccess(approve) = %+v, %v", g, err)
	}
	ev := checkSET(t, rcv.wait(1)[0], e.issuer, sub, broker.CAEPTokenClaimsChange)
	if cl, _ := ev["claims"].(map[string]any); !slices.Contains(cl["jit_roles"].([]any), any("db-admin")) {
		t.Errorf("token-claims-change at approval = %v, want jit_roles with db-admin", ev)
	}
	step("approved", true)
	e.clock.advance(30 * time.Minute)
	step("30m into the grant", true)
	if _, err := e.broker.DecideAccess(ctx, "acme", g.ID, true, "admin:test", "", ""); !errors.Is(err, broker.ErrAccessConflict) {
		t.Errorf("approving an active grant again = %v, want ErrAccessConflict", err)
	}
	e.clock.advance(31 * time.Minute)
	step("after expiry", false)
	ev = checkSET(t, rcv.wait(1)[0], e.issuer, sub, broker.CAEPTokenClaimsChange)
	if cl, _ := ev["claims"].(map[string]any); len(cl["jit_roles"].([]any)) != 0 {
		t.Errorf("token-claims-change at expiry = %v, want no jit_roles", ev)
	}
	step("later", false)
	list, err := e.broker.ListAccess(ctx, "acme", "")
	if err != nil || len(list) != 1 || list[0].Status != broker.AccessExpired {
		t.Errorf("ListAccess after expiry = %+v, %v; want the grant, expired", list, err)
	}
	// The audit stream has every step, with the grant's details.
	log := audit.String()
	for _, want := range []string{`"reason":"access_requested"`, `"reason":"access_approved"`, `"reason":"access_expired"`,
		`"role":"db-admin"`, `"justification":"INC-42: restore the ledger table"`, `"actor":"admin:test"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
}

func TestAccess_TenantIsolation(t *testing.T) {
	e := newEnv(t, withAccess(t))
	ctx := context.Background()
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	sub := idc["sub"].(string)
	// A grant for the same subject string in another tenant.
	g, err := e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "globex", Subject: sub, Role: "support",
		Duration: 10 * time.Minute, Justification: "other tenant", RequestedBy: "user"})
	if err != nil || g.Status != broker.AccessActive {
		t.Fatalf("RequestAccess(globex, self-activated) = %+v, %v", g, err)
	}
	if roles := grantedRoles(t, e.refresh(tr.str("refresh_token"), "app-a", secretA)); slices.Contains(roles, "support") {
		t.Errorf("acme token roles = %v: a globex grant leaked into acme", roles)
	}
	if list, err := e.broker.ListAccess(ctx, "acme", ""); err != nil || len(list) != 0 {
		t.Errorf("ListAccess(acme) = %+v, %v; want none of globex's grants", list, err)
	}
	if _, err := e.broker.DecideAccess(ctx, "acme", g.ID, false, "admin:acme", "", ""); !errors.Is(err, broker.ErrAccessNotFound) {
		t.Errorf("acme deciding globex's grant = %v, want ErrAccessNotFound", err)
	}
	if _, err := e.broker.AccessOf(ctx, "acme", g.ID); !errors.Is(err, broker.ErrAccessNotFound) {
		t.Errorf("AccessOf(acme, globex grant) = %v, want ErrAccessNotFound", err)
	}
	if _, err := e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "initech", Subject: sub, Role: "support",
		Duration: time.Minute, Justification: "x"}); !errors.Is(err, broker.ErrAccessOff) {
		t.Errorf("RequestAccess in a tenant without a policy = %v, want ErrAccessOff", err)
	}
}

func TestAccess_RequestChecks(t *testing.T) {
	e := newEnv(t, withAccess(t))
	ctx := context.Background()
	ok := broker.AccessRequest{Tenant: "acme", Subject: "s-1", Role: "db-admin", Duration: time.Hour, Justification: "why"}
	tests := []struct {
		name string
		edit func(*broker.AccessRequest)
		want error
	}{
		{"unknown role", func(r *broker.AccessRequest) { r.Role = "root" }, broker.ErrAccessInvalid},
		{"over the role's maximum", func(r *broker.AccessRequest) { r.Duration = 3 * time.Hour }, broker.ErrAccessInvalid},
		{"zero duration", func(r *broker.AccessRequest) { r.Duration = 0 }, broker.ErrAccessInvalid},
		{"no justification", func(r *broker.AccessRequest) { r.Justification = "  " }, broker.ErrAccessInvalid},
		{"control character", func(r *broker.AccessRequest) { r.Justification = "a\x00b" }, broker.ErrAccessInvalid},
		{"overlong justification", func(r *broker.AccessRequest) { r.Justification = strings.Repeat("j", 501) }, broker.ErrAccessInvalid},
		{"no subject", func(r *broker.AccessRequest) { r.Subject = "" }, broker.ErrAccessInvalid},
		{"valid", func(*broker.AccessRequest) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			if _, err := e.broker.RequestAccess(ctx, r); !errors.Is(err, tt.want) {
				t.Errorf("RequestAccess = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("own request", func(t *testing.T) {
		g, err := e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "acme", Subject: "s-2", Role: "db-admin", Duration: time.Hour, Justification: "why"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.broker.DecideAccess(ctx, "acme", g.ID, true, "approver:s-2", "s-2", ""); !errors.Is(err, broker.ErrAccessForbidden) {
			t.Errorf("approving one's own request = %v, want ErrAccessForbidden", err)
		}
	})
	t.Run("bounded per user", func(t *testing.T) {
		var err error
		for i := 0; i <= broker.MaxUserGrants && err == nil; i++ {
			_, err = e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "acme", Subject: "s-3", Role: "db-admin", Duration: time.Hour, Justification: "again"})
		}
		if !errors.Is(err, broker.ErrAccessLimit) {
			t.Errorf("request %d of one user = %v, want ErrAccessLimit", broker.MaxUserGrants+1, err)
		}
	})
	t.Run("revoke an active grant", func(t *testing.T) {
		g, err := e.broker.RequestAccess(ctx, broker.AccessRequest{Tenant: "acme", Subject: "s-4", Role: "support", Duration: time.Minute, Justification: "now"})
		if err != nil || g.Status != broker.AccessActive {
			t.Fatalf("self-activation = %+v, %v", g, err)
		}
		if g, err = e.broker.DecideAccess(ctx, "acme", g.ID, false, "admin:test", "", "done early"); err != nil || g.Status != broker.AccessRevoked {
			t.Errorf("revoke = %+v, %v; want revoked", g, err)
		}
	})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// accessSignIn walks the access page's own sign-in for the identity the
// acme fake IdP returns, and returns the page's HTML.
func (e *env) accessSignIn(b *browser) string {
	e.t.Helper()
	resp := b.get(e.issuer + "/access")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/access/signin" {
		e.t.Fatalf("GET /access signed out = %d %q, want 302 to /access/signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = b.get(e.issuer + "/access/signin?login_hint=" + url.QueryEscape("someone@acme.test"))
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), "https://idp.example/acme-idp/") {
		e.t.Fatalf("access sign-in = %d %q, want the acme IdP", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = b.get(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(u.Query().Get("state")))
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, e.issuer+"/access/callback?") {
		e.t.Fatalf("callback = %d %q, want the access page's callback", resp.StatusCode, loc)
	}
	resp = b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/access" {
		e.t.Fatalf("access callback = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.getBody(e.issuer + "/access")
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /access signed in = %d: %s", resp.StatusCode, body)
	}
	return body
}

func TestAccess_ApprovalPage(t *testing.T) {
	e := newEnv(t, withAccess(t))
	// Bob asks for db-admin on the page.
	e.acme.mu.Lock()
	alice := e.acme.ident
	bob := providers.Identity{Issuer: "https://acme.idp", Subject: "bob-upstream", Email: "bob@acme.test", EmailVerified: true,
		Claims: map[string]any{"sub": "bob-upstream", "groups": []any{"Staff"}}}
	e.acme.ident = bob
	e.acme.mu.Unlock()
	bb := e.browser()
	page := e.accessSignIn(bb)
	if strings.Contains(page, "Waiting for approval") {
		t.Errorf("bob (no approver role) sees the approval list")
	}
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no csrf field on the page: %s", page)
	}
	form := url.Values{"csrf": {csrf[1]}, "op": {"request"}, "role": {"db-admin"}, "duration": {"45m"}, "justification": {"INC-7 <b>hot</b> fix"}}
	if resp, body := bb.postForm(e.issuer+"/access", form); resp.StatusCode != http.StatusOK || !strings.Contains(body, "waiting for an approver") {
		t.Fatalf("request on the page = %d: %s", resp.StatusCode, body)
	}
	forged := url.Values{"op": {"request"}, "role": {"db-admin"}, "duration": {"45m"}, "justification": {"forged"}}
	for name, v := range map[string]url.Values{"no token": forged, "wrong token": func() url.Values {
		wrong := "x" // the real token with its first character changed (never to itself)
		if strings.HasPrefix(csrf[1], "x") {
			wrong = "y"
		}
		f := url.Values{"csrf": {wrong + csrf[1][1:]}}
		for k, v := range forged {
			f[k] = v
		}
		return f
	}()} {
		if resp, _ := bb.postForm(e.issuer+"/access", v); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %s = %d, want 403", name, resp.StatusCode)
		}
	}
	// A cross-site POST with bob's valid token (his cookie sent along) is refused by its Origin.
	for _, origin := range []string{"https://evil.example", "null"} {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/access", strings.NewReader(url.Values{"csrf": {csrf[1]}, "op": {"request"},
			"role": {"db-admin"}, "duration": {"5m"}, "justification": {"cross-site"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := bb.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with Origin %s = %d, want 403", origin, resp.StatusCode)
		}
	}
	// Bob is no approver: deciding is refused.
	list, _ := e.broker.ListAccess(context.Background(), "acme", broker.AccessPending)
	if len(list) != 1 {
		t.Fatalf("pending = %+v, want bob's one request", list)
	}
	id := list[0].ID
	if resp, body := bb.postForm(e.issuer+"/access", url.Values{"csrf": {csrf[1]}, "op": {"approve"}, "id": {id}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, "not an approver") {
		t.Errorf("bob approving = %d, want 400 not an approver", resp.StatusCode)
	}
	// Alice (Finance-Admins: approver) sees and approves it.
	e.acme.mu.Lock()
	e.acme.ident = alice
	e.acme.mu.Unlock()
	ab := e.browser()
	page = e.accessSignIn(ab)
	if !strings.Contains(page, `data-grant="`+id+`"`) || !strings.Contains(page, "INC-7 &lt;b&gt;hot&lt;/b&gt; fix") {
		t.Fatalf("approver page lacks bob's escaped request: %s", page)
	}
	acsrf := csrfField.FindStringSubmatch(page)[1]
	if acsrf == csrf[1] {
		t.Errorf("two sessions share a CSRF token")
	}
	if resp, _ := ab.postForm(e.issuer+"/access", url.Values{"csrf": {csrf[1]}, "op": {"approve"}, "id": {id}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice posting bob's token = %d, want 403", resp.StatusCode)
	}
	if resp, body := ab.postForm(e.issuer+"/access", url.Values{"csrf": {acsrf}, "op": {"approve"}, "id": {id}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "now active") {
		t.Fatalf("alice approving = %d: %s", resp.StatusCode, body)
	}
	g, err := e.broker.AccessOf(context.Background(), "acme", id)
	if err != nil || g.Status != broker.AccessActive || g.DecidedBy == "" {
		t.Errorf("grant after approval = %+v, %v", g, err)
	}
}

// TestAccess_BuiltInClientSurvivesReconfiguration: the access page's
// client is in the directory after a full and after an incremental
// reconfiguration that replaces the clients.
func TestAccess_BuiltInClientSurvivesReconfiguration(t *testing.T) {
	var res *realm.Resolver
	e := newEnv(t, withAccess(t), func(c *broker.Config) { res = c.Resolver })
	clients := []broker.Client{{ID: "app-a", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"*"}}}
	signInStarts := func(what string) {
		t.Helper()
		resp := e.browser().get(e.issuer + "/access/signin?login_hint=" + url.QueryEscape("alice@acme.test"))
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://idp.example/acme-idp/") {
			t.Errorf("%s: access sign-in = %d %q, want a redirect to the acme IdP", what, resp.StatusCode, loc)
		}
	}
	signInStarts("at start")
	if err := e.broker.ReconfigureTenants(res, broker.Directory{Resolver: res, IdPs: e.harnessIdPs(), Clients: clients}, nil, true); err != nil {
		t.Fatal(err)
	}
	signInStarts("after an incremental reconfiguration")
	if err := e.broker.Reconfigure(broker.Directory{Resolver: res, IdPs: e.harnessIdPs(), Clients: clients}); err != nil {
		t.Fatal(err)
	}
	signInStarts("after a full reconfiguration")
}
