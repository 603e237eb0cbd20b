package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/users"
)

// withDeviceClients adds a public CLI client and a confidential TV client
// registered for the device grant.
func withDeviceClients(c *broker.Config) {
	c.Clients = append(c.Clients,
		broker.Client{ID: "cli", ClientSettings: broker.ClientSettings{Name: "Acme CLI"}, AllowedTenants: []string{"*"},
			Machine: broker.Machine{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}}},
		broker.Client{ID: "tv", Secret: secretB, AllowedTenants: []string{"globex"},
			Machine: broker.Machine{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"}}},
	)
}

const grantDevice = "urn:ietf:params:oauth:grant-type:device_code"

// startDevice asks for a device code as the public client cli.
func (e *env) startDevice(client string) tokenResp {
	e.t.Helper()
	v := url.Values{"client_id": {client}, "scope": {"openid email"}}
	user, pass := "", ""
	if client == "tv" {
		user, pass = "tv", secretB
		v.Del("client_id")
	}
	r := e.post("/device_authorization", v, user, pass)
	if r.status != http.StatusOK {
		e.t.Fatalf("device_authorization = %d %v, want 200", r.status, r.body)
	}
	return r
}

func (e *env) pollDevice(client, deviceCode string) tokenResp {
	e.t.Helper()
	v := url.Values{"grant_type": {grantDevice}, "device_code": {deviceCode}}
	if client == "tv" {
		return e.post("/token", v, "tv", secretB)
	}
	v.Set("client_id", client)
	return e.post("/token", v, "", "")
}

// verifyDevice drives the verification page in browser b for userCode,
// signing in as email through home-realm discovery when b has no session,
// and returns the confirmation page's body.
func (e *env) verifyDevice(b *browser, userCode, email string) (int, string) {
	e.t.Helper()
	resp, body := b.postForm(e.issuer+"/device", url.Values{"user_code": {userCode}})
	if resp.StatusCode == http.StatusSeeOther { // to the discovery page
		resp, body = b.getBody(e.issuer + resp.Header.Get("Location"))
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(body, `name="email"`) {
		// The discovery page: the email finds the home realm.
		resp, body = b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "email": {email}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://idp.example/") {
			return resp.StatusCode, body // refused on the way
		}
		u, _ := url.Parse(loc)
		idp := strings.Split(u.Path, "/")[1]
		resp, body = b.getBody(e.issuer + "/callback/" + idp + "?code=upstream-code&state=" + url.QueryEscape(u.Query().Get("state")))
	}
	return resp.StatusCode, body
}

func (e *env) confirmDevice(b *browser, confirmPage, op string) (int, string) {
	e.t.Helper()
	resp, body := b.postForm(e.issuer+"/device/confirm", url.Values{"csrf": {formField(confirmPage, "csrf")}, "op": {op}})
	if resp.StatusCode == http.StatusSeeOther { // to the result page
		resp, body = b.getBody(e.issuer + resp.Header.Get("Location"))
	}
	return resp.StatusCode, body
}

func TestDevice_EndToEnd(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	var meta map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &meta)
	if got := meta["device_authorization_endpoint"]; got != e.issuer+"/device_authorization" {
		t.Errorf("device_authorization_endpoint = %v, want %s", got, e.issuer+"/device_authorization")
	}
	if gts, _ := meta["grant_types_supported"].([]any); !containsAny(gts, grantDevice) {
		t.Errorf("grant_types_supported = %v, want it to list %s", gts, grantDevice)
	}

	da := e.startDevice("cli")
	uc := da.str("user_code")
	if len(uc) != 9 || uc[4] != '-' || strings.ContainsAny(uc, "AEIOUY01") {
		t.Fatalf("user_code = %q, want XXXX-XXXX of consonants", uc)
	}
	if da.str("verification_uri") != e.issuer+"/device" || !strings.HasSuffix(da.str("verification_uri_complete"), "user_code="+uc) {
		t.Fatalf("verification URIs = %q %q", da.str("verification_uri"), da.str("verification_uri_complete"))
	}
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "authorization_pending" {
		t.Fatalf("poll before the user answered = %d %v, want authorization_pending", r.status, r.body)
	}
	b := e.browser()
	// verification_uri_complete fills the code in; the person still submits it.
	if resp, body := b.getBody(da.str("verification_uri_complete")); resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="`+uc+`"`) {
		t.Fatalf("GET verification_uri_complete = %d, want the form with the code filled in", resp.StatusCode)
	}
	// Typed in lower case without the dash: still the code.
	status, page := e.verifyDevice(b, strings.ToLower(strings.ReplaceAll(uc, "-", "")), "alice@acme.test")
	if status != http.StatusOK || !strings.Contains(page, `id="client">Acme CLI<`) || formField(page, "csrf") == "" {
		t.Fatalf("after sign-in = %d %.300s, want the confirmation page naming the client", status, page)
	}
	if status, body := e.confirmDevice(b, page, "approve"); status != http.StatusOK || !strings.Contains(body, "Device connected") {
		t.Fatalf("approve = %d %.200s, want the result page", status, body)
	}
	e.clock.advance(6 * time.Second)
	tr := e.pollDevice("cli", da.str("device_code"))
	if tr.status != http.StatusOK || tr.str("access_token") == "" || tr.str("id_token") == "" || tr.str("refresh_token") == "" {
		t.Fatalf("poll after approval = %d %v, want tokens", tr.status, tr.body)
	}
	_, id := claimsOf(t, tr.str("id_token"))
	if id["tid"] != "acme" || id["aud"] != "cli" || id["email"] != "alice@acme.test" {
		t.Errorf("ID token claims = %v, want tid acme, aud cli, alice's email", id)
	}
	// The device code is single use.
	e.clock.advance(6 * time.Second)
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "invalid_grant" {
		t.Errorf("reused device code = %d %v, want invalid_grant", r.status, r.body)
	}
	// The refresh token works like any other.
	if r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}, "client_id": {"cli"}}, "", ""); r.status != http.StatusOK {
		t.Errorf("refresh = %d %v, want 200", r.status, r.body)
	}
}

func containsAny(xs []any, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func TestDevice_SlowDown(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	da := e.startDevice("cli")
	if got := da.body["interval"]; got != float64(5) {
		t.Fatalf("interval = %v, want 5", got)
	}
	dc := da.str("device_code")
	if r := e.pollDevice("cli", dc); r.str("error") != "authorization_pending" {
		t.Fatalf("first poll = %v, want authorization_pending", r.body)
	}
	// RFC 8628 §3.5: polled sooner than the interval: slow_down, and the
	// interval grows by 5 s.
	if r := e.pollDevice("cli", dc); r.status != http.StatusBadRequest || r.str("error") != "slow_down" {
		t.Fatalf("poll at once = %d %v, want slow_down", r.status, r.body)
	}
	e.clock.advance(6 * time.Second) // enough for 5 s, not for the 10 s now asked
	if r := e.pollDevice("cli", dc); r.str("error") != "slow_down" {
		t.Fatalf("poll after 6 s = %v, want slow_down (interval is now 10 s)", r.body)
	}
	e.clock.advance(16 * time.Second)
	if r := e.pollDevice("cli", dc); r.str("error") != "authorization_pending" {
		t.Fatalf("poll after the grown interval = %v, want authorization_pending", r.body)
	}
}

func TestDevice_Expired(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	da := e.startDevice("cli")
	b := e.browser()
	e.clock.advance(11 * time.Minute)
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "expired_token" {
		t.Errorf("poll of an expired code = %d %v, want expired_token", r.status, r.body)
	}
	if status, body := e.verifyDevice(b, da.str("user_code"), "alice@acme.test"); status != http.StatusBadRequest || !strings.Contains(body, "wrong or has expired") {
		t.Errorf("expired user code at the page = %d %.200s, want 400 asking again", status, body)
	}
	if r := e.pollDevice("cli", "never-issued-device-code"); r.str("error") != "expired_token" {
		t.Errorf("poll of an unknown code = %v, want expired_token", r.body)
	}
}

func TestDevice_Denied(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	da := e.startDevice("cli")
	b := e.browser()
	_, page := e.verifyDevice(b, da.str("user_code"), "alice@acme.test")
	if status, _ := e.confirmDevice(b, page, "deny"); status != http.StatusOK {
		t.Fatalf("deny = %d", status)
	}
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "access_denied" {
		t.Errorf("poll after denial = %d %v, want access_denied", r.status, r.body)
	}
	// The form works once: a second answer (approve after deny) is refused.
	if status, _ := e.confirmDevice(b, page, "approve"); status != http.StatusForbidden {
		t.Errorf("second answer = %d, want 403", status)
	}
	e.clock.advance(6 * time.Second)
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "access_denied" {
		t.Errorf("poll after a second answer = %v, want access_denied still", r.body)
	}
}

func TestDevice_ConfirmationCSRF(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	da := e.startDevice("cli")
	b := e.browser()
	_, page := e.verifyDevice(b, da.str("user_code"), "alice@acme.test")
	// Another browser (the attacker's page posting the token it somehow
	// learned, without the victim's cookie) cannot answer.
	other := e.browser()
	if status, _ := e.confirmDevice(other, page, "approve"); status != http.StatusForbidden {
		t.Errorf("confirm from another browser = %d, want 403", status)
	}
	// A cross-origin post is refused even with the cookie.
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/device/confirm",
		strings.NewReader(url.Values{"csrf": {formField(page, "csrf")}, "op": {"approve"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin confirm = %d, want 403", resp.StatusCode)
	}
	if r := e.pollDevice("cli", da.str("device_code")); r.str("error") != "authorization_pending" {
		t.Errorf("poll = %v, want authorization_pending: nothing was approved", r.body)
	}
	if status, _ := e.confirmDevice(b, page, "approve"); status != http.StatusOK {
		t.Errorf("the right browser's answer = %d, want 200", status)
	}
}

func TestDevice_S60_UserCodeGuessingBounded(t *testing.T) {
	e := newEnv(t, withDeviceClients, func(c *broker.Config) {
		c.Device.UserCodeAttempts = broker.RateLimit{Limit: 3, Window: time.Hour}
	})
	da := e.startDevice("cli")
	b := e.browser()
	for i, code := range []string{"BCDF-GHJK", "not a code!", "ZZZZ-ZZZZ"} {
		if status, body := e.verifyDevice(b, code, ""); status != http.StatusBadRequest || !strings.Contains(body, `id="msg"`) {
			t.Fatalf("wrong code %d = %d %.200s, want 400 with a message", i, status, body)
		}
	}
	// The limit is reached: even the right code is refused from this IP.
	if status, _ := e.verifyDevice(b, da.str("user_code"), "alice@acme.test"); status != http.StatusTooManyRequests {
		t.Fatalf("right code after the limit = %d, want 429", status)
	}
	e.clock.advance(2 * time.Hour)
	da = e.startDevice("cli")
	if status, page := e.verifyDevice(b, da.str("user_code"), "alice@acme.test"); status != http.StatusOK || formField(page, "csrf") == "" {
		t.Fatalf("right code after the window = %d, want the confirmation page", status)
	}
}

func TestDevice_ClientChecks(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	// A client not registered for the grant is refused.
	if r := e.post("/device_authorization", url.Values{"client_id": {"pub"}}, "", ""); r.str("error") != "unauthorized_client" {
		t.Errorf("device_authorization by pub = %v, want unauthorized_client", r.body)
	}
	if r := e.post("/device_authorization", url.Values{"client_id": {"tv"}}, "", ""); r.str("error") != "invalid_client" {
		t.Errorf("confidential client without its secret = %v, want invalid_client", r.body)
	}
	if r := e.post("/device_authorization", url.Values{"client_id": {"cli"}, "scope": {"email"}}, "", ""); r.str("error") != "invalid_scope" {
		t.Errorf("scope without openid = %v, want invalid_scope", r.body)
	}
	da := e.startDevice("cli")
	// Another client cannot redeem cli's device code.
	if r := e.pollDevice("tv", da.str("device_code")); r.str("error") != "invalid_grant" {
		t.Errorf("tv polling cli's code = %v, want invalid_grant", r.body)
	}
	// The one authorization decision: tv is for globex only; alice of acme is refused.
	tv := e.startDevice("tv")
	b := e.browser()
	if status, body := e.verifyDevice(b, tv.str("user_code"), "alice@acme.test"); status < 400 || strings.Contains(body, `name="csrf"`) {
		t.Errorf("acme user for a globex-only client = %d %.200s, want a refusal without a confirmation", status, body)
	}
	// carol of globex may.
	b2 := e.browser()
	status, page := e.verifyDevice(b2, tv.str("user_code"), "carol@globex.test")
	if status != http.StatusOK {
		t.Fatalf("globex user = %d %.200s", status, page)
	}
	e.confirmDevice(b2, page, "approve")
	tr := e.pollDevice("tv", tv.str("device_code"))
	if tr.status != http.StatusOK {
		t.Fatalf("tv poll = %d %v", tr.status, tr.body)
	}
	if _, at := claimsOf(t, tr.str("access_token")); at["tid"] != "globex" {
		t.Errorf("access token tid = %v, want globex", at["tid"])
	}
}

func TestDevice_SSOSessionSkipsUpstream(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	_, b := e.signIn() // alice signed in to app-a in this browser
	da := e.startDevice("cli")
	resp, page := b.postForm(e.issuer+"/device", url.Values{"user_code": {da.str("user_code")}})
	if resp.StatusCode != http.StatusOK || formField(page, "csrf") == "" {
		t.Fatalf("device page with a session = %d %.200s, want the confirmation at once", resp.StatusCode, page)
	}
}

// TestDevice_S68_SuspendedBeforePoll: the decision is taken again when the
// device collects its tokens; a user suspended after approving gets none.
func TestDevice_S68_SuspendedBeforePoll(t *testing.T) {
	e := newEnv(t, withDeviceClients)
	da := e.startDevice("cli")
	b := e.browser()
	_, page := e.verifyDevice(b, da.str("user_code"), "alice@acme.test")
	if status, _ := e.confirmDevice(b, page, "approve"); status != http.StatusOK {
		t.Fatalf("approve = %d", status)
	}
	dir := e.broker.Users()
	u, err := dir.UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.SetStatus(t.Context(), "admin:ops", "acme", u.ID, users.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if r := e.pollDevice("cli", da.str("device_code")); r.status == http.StatusOK || r.str("error") != "access_denied" {
		t.Errorf("poll for a suspended user = %d %v, want access_denied", r.status, r.body)
	}
}
