package broker_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/internal/outbound"
)

// logoutCatcher is a client's back-channel logout endpoint.
type logoutCatcher struct {
	mu     sync.Mutex
	tokens []string
	got    chan struct{}
}

func newLogoutCatcher(t *testing.T) (*logoutCatcher, string) {
	lc := &logoutCatcher{got: make(chan struct{}, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(body))
		lc.mu.Lock()
		lc.tokens = append(lc.tokens, v.Get("logout_token"))
		lc.mu.Unlock()
		lc.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return lc, srv.URL + "/backchannel"
}

func withBackchannel(uri string) envOpt {
	return func(c *broker.Config) {
		c.HTTPClient = outbound.New(outbound.Policy{AllowLoopback: true}) // the receiver is a loopback httptest server
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].BackchannelLogoutURI = uri
				c.Clients[i].PostLogoutRedirectURIs = []string{"https://app-a.example/signed-out"}
			}
		}
	}
}

func TestLogout_S64_BackchannelLogoutToken(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	e := newEnv(t, withBackchannel(uri))
	tr, b := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	v := url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}, "state": {"bye"}}
	resp := b.get(e.issuer + "/logout?" + v.Encode())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://app-a.example/signed-out?state=bye" {
		t.Fatalf("logout = %d %q, want 302 to the registered URI with state", resp.StatusCode, resp.Header.Get("Location"))
	}
	select {
	case <-lc.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout token delivered")
	}
	lc.mu.Lock()
	tok := lc.tokens[0]
	lc.mu.Unlock()
	h, c := claimsOf(t, tok)
	if h["typ"] != "logout+jwt" || h["kid"] == nil {
		t.Errorf("logout token header = %v, want typ logout+jwt and a kid", h)
	}
	for _, k := range []string{"iss", "aud", "iat", "exp", "jti", "sub", "sid"} {
		if c[k] == nil {
			t.Errorf("logout token lacks %s: %v", k, c)
		}
	}
	if c["nonce"] != nil {
		t.Errorf("logout token carries a nonce")
	}
	events, _ := c["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Errorf("events = %v, want the back-channel logout event", c["events"])
	}
	if c["sid"] != idc["sid"] || c["sub"] != idc["sub"] || c["aud"] != "app-a" || c["iss"] != e.issuer {
		t.Errorf("logout token sid/sub/aud/iss = %v/%v/%v/%v, want those of the ID token", c["sid"], c["sub"], c["aud"], c["iss"])
	}
	verifyLogoutToken(t, e, tok)
	// The session is over: tokens stop working at our endpoints and the
	// next authorization goes back upstream.
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo after logout = %d, want 401", st)
	}
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
		t.Errorf("refresh after logout = %v, want invalid_grant", r.body)
	}
	_, challenge := pkce()
	v2 := authParams(challenge)
	v2.Del("login_hint")
	if loc := b.get(e.authorizeURL(v2)).Header.Get("Location"); strings.HasPrefix(loc, appCB) {
		t.Errorf("authorize after logout answered from the old session: %q", loc)
	}
}

// TestLogout_S70_BackchannelDefaultReachesNoInternalAddress: a
// backchannel_logout_uri (which the admin API can set) pointing at a
// loopback service gets nothing from a broker whose Config names no client:
// the default is the outbound client, public addresses only.
func TestLogout_S70_BackchannelDefaultReachesNoInternalAddress(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	e := newEnv(t, withBackchannel(uri), func(c *broker.Config) { c.HTTPClient = nil })
	tr, b := e.signIn()
	v := url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}}
	if resp := b.get(e.issuer + "/logout?" + v.Encode()); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout = %d, want 302", resp.StatusCode)
	}
	if err := e.broker.Close(); err != nil { // waits for every delivery attempt
		t.Fatal(err)
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.tokens) != 0 {
		t.Fatalf("the loopback back-channel endpoint received %d logout tokens, want 0", len(lc.tokens))
	}
}

func verifyLogoutToken(t *testing.T, e *env, tok string) {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, e.issuer+"/jwks", &set)
	h, _ := claimsOf(t, tok)
	for _, k := range set.Keys {
		if k["kid"] == h["kid"] {
			return
		}
	}
	t.Fatalf("logout token kid %v not in JWKS", h["kid"])
}

func TestLogout_S65_UnregisteredRedirect(t *testing.T) {
	e := newEnv(t, withBackchannel("http://127.0.0.1:1/unused"))
	tr, b := e.signIn()
	for _, tc := range []struct {
		name string
		v    url.Values
	}{
		{"unregistered", url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		{"another client's", url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-b.example/bye"}}},
		{"suffix change", url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-a.example/signed-out/"}}},
		{"no client identified", url.Values{"post_logout_redirect_uri": {"https://app-a.example/signed-out"}}},
		{"forged hint", url.Values{"id_token_hint": {tr.str("id_token")[:40] + "x" + tr.str("id_token")[41:]}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}}},
		{"client_id mismatch", url.Values{"id_token_hint": {tr.str("id_token")}, "client_id": {"app-b"}, "post_logout_redirect_uri": {"https://app-b.example/bye"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := b.getBody(e.issuer + "/logout?" + tc.v.Encode())
			if resp.Header.Get("Location") != "" || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("logout(%s) = %d %q, want 400 without redirect", tc.name, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	// None of these ended the session.
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusOK {
		t.Errorf("refused logouts ended the session: userinfo = %d", st)
	}
}

func TestLogout_ConfirmWithoutHint(t *testing.T) {
	e := newEnv(t)
	tr, b := e.signIn()
	resp, body := b.getBody(e.issuer + "/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("logout without hint = %d, want a confirmation page", resp.StatusCode)
	}
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusOK {
		t.Fatalf("the confirmation page already ended the session")
	}
	post, page := b.postForm(e.issuer+"/logout", url.Values{"confirm": {"yes"}})
	if post.StatusCode != http.StatusOK || !strings.Contains(page, "signed out") {
		t.Fatalf("confirmed logout = %d", post.StatusCode)
	}
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo after confirmed logout = %d, want 401", st)
	}
}

func TestBackchannel_S64_InboundLogoutAndJTIReplay(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	e := newEnv(t, withBackchannel(uri))
	e.acme.ident.Claims = map[string]any{"sub": "alice-upstream", "sid": "upstream-session-1"}
	tr, _ := e.signIn()
	send := func(tok string) tokenResp {
		return e.post("/backchannel/acme-idp", url.Values{"logout_token": {tok}}, "", "")
	}
	if r := send("garbage"); r.status != http.StatusBadRequest {
		t.Fatalf("invalid logout token = %d, want 400", r.status)
	}
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusOK {
		t.Fatalf("an invalid logout token ended the session")
	}
	if r := send("logout|alice-upstream|upstream-session-1|jti-1"); r.status != http.StatusOK {
		t.Fatalf("logout token = %d %v, want 200", r.status, r.body)
	}
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("session not ended by the upstream logout: userinfo = %d", st)
	}
	select {
	case <-lc.got: // and the downstream client was told
	case <-time.After(5 * time.Second):
		t.Error("no downstream back-channel logout after the upstream one")
	}
	// A second session, then a replay of the same jti: refused, session lives.
	tr2, _ := e.signIn()
	if r := send("logout|alice-upstream|upstream-session-1|jti-1"); r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Fatalf("replayed jti = %d %v, want 400 invalid_request", r.status, r.body)
	}
	if st, _ := e.userinfo(tr2.str("access_token")); st != http.StatusOK {
		t.Errorf("a replayed logout token ended a session")
	}
	// By subject only, with a fresh jti.
	if r := send("logout|alice-upstream||jti-2"); r.status != http.StatusOK {
		t.Fatalf("logout by sub = %d", r.status)
	}
	if st, _ := e.userinfo(tr2.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("logout by sub did not end the latest session")
	}
	if r := send("logout|x||jti-3"); r.status != http.StatusOK {
		t.Errorf("logout of an unknown subject = %d, want 200", r.status)
	}
	if r := e.post("/backchannel/nope", url.Values{"logout_token": {"x"}}, "", ""); r.status != http.StatusNotFound {
		t.Errorf("unknown idp = %d", r.status)
	}
}

// TestBackchannel_S64_LogoutBySubEndsEverySession: a logout token with a
// sid ends that session only; one with a sub and no sid ends every session
// the upstream user has at realmgate (OIDC Back-Channel Logout 1.0 §2.4),
// not only the newest.
func TestBackchannel_S64_LogoutBySubEndsEverySession(t *testing.T) {
	e := newEnv(t)
	send := func(tok string) {
		t.Helper()
		if r := e.post("/backchannel/acme-idp", url.Values{"logout_token": {tok}}, "", ""); r.status != http.StatusOK {
			t.Fatalf("logout token %q = %d %v, want 200", tok, r.status, r.body)
		}
	}
	var tokens []string
	for _, sid := range []string{"s-1", "s-2", "s-3"} { // three browsers
		e.acme.ident.Claims = map[string]any{"sub": "alice-upstream", "sid": sid}
		tr, _ := e.signIn()
		tokens = append(tokens, tr.str("access_token"))
	}
	alive := func(when string, want ...bool) {
		t.Helper()
		for i, tok := range tokens {
			st, _ := e.userinfo(tok)
			if got := st == http.StatusOK; got != want[i] {
				t.Errorf("%s: session %d alive = %v (userinfo %d), want %v", when, i+1, got, st, want[i])
			}
		}
	}
	send("logout|alice-upstream|s-2|jti-1")
	alive("after logout of sid s-2", true, false, true)
	send("logout|alice-upstream||jti-2")
	alive("after logout of the sub", false, false, false)
}

func TestLogout_UpstreamSessionEnded(t *testing.T) {
	e := newEnv(t, withBackchannel("http://127.0.0.1:1/unused"), func(c *broker.Config) {
		for i := range c.IdPs {
			if c.IdPs[i].ID == "acme-idp" {
				c.IdPs[i].UpstreamLogout = true
			}
		}
	})
	tr, b := e.signIn()
	v := url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}, "state": {"bye"}}
	resp := b.get(e.issuer + "/logout?" + v.Encode())
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "https://idp.example/acme-idp/logout?") {
		t.Fatalf("logout = %q, want a redirect to the IdP's end-session endpoint", loc)
	}
	up := mustQuery(t, loc)
	if up.Get("post_logout_redirect_uri") != e.issuer+"/logout/upstream" {
		t.Errorf("post_logout_redirect_uri sent upstream = %q", up.Get("post_logout_redirect_uri"))
	}
	back := b.get(e.issuer + "/logout/upstream?state=" + url.QueryEscape(up.Get("state")))
	if back.Header.Get("Location") != "https://app-a.example/signed-out?state=bye" {
		t.Fatalf("return from the IdP = %d %q, want the client's registered URI with its state", back.StatusCode, back.Header.Get("Location"))
	}
	again, page := b.getBody(e.issuer + "/logout/upstream?state=" + url.QueryEscape(up.Get("state")))
	if again.Header.Get("Location") != "" || !strings.Contains(page, "signed out") {
		t.Errorf("replayed upstream-logout state redirected to %q", again.Header.Get("Location"))
	}
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo after logout = %d", st)
	}
}

// TestLogout_S09_RefreshChecksTheSessionInTheRotation: a refresh token's
// family id carries its session ("<sid>~<random>"), so the store checks the
// session's logout marker in the rotation itself; after the logout the
// refresh is refused and the family is gone (its access tokens too).
func TestLogout_S09_RefreshChecksTheSessionInTheRotation(t *testing.T) {
	e := newEnv(t)
	tr, b := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	rt := tr.str("refresh_token")
	fam, _, _ := strings.Cut(rt, ".")
	if sid, _ := idc["sid"].(string); broker.SessionOfFamily(fam) != sid || sid == "" {
		t.Fatalf("refresh token family %q does not carry the session %q", fam, sid)
	}
	r := e.refresh(rt, "app-a", secretA)
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %v", r.status, r.body)
	}
	post, _ := b.postForm(e.issuer+"/logout", url.Values{"confirm": {"yes"}})
	if post.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d", post.StatusCode)
	}
	if r2 := e.refresh(r.str("refresh_token"), "app-a", secretA); r2.str("error") != "invalid_grant" {
		t.Fatalf("refresh after logout = %d %v, want invalid_grant", r2.status, r2.body)
	}
	if st, _ := e.userinfo(r.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo with the refreshed access token after logout = %d, want 401", st)
	}
}
