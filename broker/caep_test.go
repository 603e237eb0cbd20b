package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/users"
)

// setReceiver is an SSF push receiver (RFC 8935) written for the tests: it
// checks the request's form, verifies each SET's signature against the
// broker's JWKS and keeps its header and claims.
type setReceiver struct {
	t      *testing.T
	issuer string // whose /jwks verifies the SETs
	mu     sync.Mutex
	sets   []receivedSET
	got    chan struct{}
	// status, when set, is answered instead of 202 to the first
	// len(status) deliveries.
	status []int
	calls  int
}

type receivedSET struct {
	header map[string]any
	claims jwt.MapClaims
}

func newSETReceiver(t *testing.T) (*setReceiver, string) {
	r := &setReceiver{t: t, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/events"
}

func (r *setReceiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.calls++
	call := r.calls
	r.mu.Unlock()
	// RFC 8935 §2: POST, Content-Type application/secevent+jwt, the SET as the body.
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/secevent+jwt" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"err":"invalid_request","description":"not a SET push"}`)
		return
	}
	if call <= len(r.status) {
		w.WriteHeader(r.status[call-1])
		return
	}
	body, _ := io.ReadAll(req.Body)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(r.t, r.issuer+"/jwks", &set)
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256", "RS256"}), jwt.WithIssuer(r.issuer)).
		ParseWithClaims(string(body), claims, func(tok *jwt.Token) (any, error) {
			for _, k := range set.Keys {
				if k["kid"] == tok.Header["kid"] {
					return jwkPublic(r.t, k)
				}
			}
			return nil, jwt.ErrTokenUnverifiable
		})
	if err != nil {
		r.t.Errorf("SET does not verify against the broker's JWKS: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"err":"invalid_key","description":"signature"}`)
		return
	}
	r.mu.Lock()
	r.sets = append(r.sets, receivedSET{header: tok.Header, claims: claims})
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted) // RFC 8935 §2.2
	r.got <- struct{}{}
}

// wait returns the next n SETs, failing after a generous deadline.
func (r *setReceiver) wait(n int) []receivedSET {
	r.t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(15 * time.Second):
			r.t.Fatalf("SET receiver: %d SETs expected, got fewer", n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sets
	r.sets = nil
	return out
}

// withReceiver registers uri as app-a's SSF push endpoint.
func withReceiver(uri string) envOpt {
	return func(c *broker.Config) {
		c.HTTPClient = outbound.New(outbound.Policy{AllowLoopback: true}) // the receiver is a loopback httptest server
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].SSFPushURL = uri
			}
		}
	}
}

// checkSET checks the shape every SET has (RFC 8417 §2.2, SSF 1.0 §4,
// CAEP 1.0 §2) and returns the body of its one event of type want.
func checkSET(t *testing.T, s receivedSET, issuer, sub, want string) map[string]any {
	t.Helper()
	if s.header["typ"] != "secevent+jwt" || s.header["kid"] == nil {
		t.Errorf("SET header = %v, want typ secevent+jwt and a kid", s.header)
	}
	c := s.claims
	for _, k := range []string{"iss", "iat", "jti", "txn", "aud", "events", "sub_id"} {
		if c[k] == nil {
			t.Errorf("SET lacks %s: %v", k, c)
		}
	}
	if c["aud"] != "app-a" || c["iss"] != issuer {
		t.Errorf("SET aud, iss = %v, %v; want app-a, %s", c["aud"], c["iss"], issuer)
	}
	if c["exp"] != nil || c["sub"] != nil {
		t.Errorf("SET carries exp or sub (RFC 8417 §2.2 and SSF §4: sub_id): %v", c)
	}
	subID, _ := c["sub_id"].(map[string]any)
	if subID["format"] != "iss_sub" || subID["iss"] != issuer || subID["sub"] != sub {
		t.Errorf("sub_id = %v, want iss_sub of %s / %s", subID, issuer, sub)
	}
	events, _ := c["events"].(map[string]any)
	if len(events) != 1 {
		t.Fatalf("events = %v, want exactly one", events)
	}
	ev, ok := events[want].(map[string]any)
	if !ok {
		t.Fatalf("events = %v, want %s", events, want)
	}
	if _, ok := ev["event_timestamp"].(float64); !ok {
		t.Errorf("event %s lacks event_timestamp: %v", want, ev)
	}
	return ev
}

func TestCAEP_SessionRevokedOnLogout(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri))
	rcv.issuer = e.issuer
	tr, b := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	v := url.Values{"id_token_hint": {tr.str("id_token")}}
	if resp := b.get(e.issuer + "/logout?" + v.Encode()); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d, want 200", resp.StatusCode)
	}
	sets := rcv.wait(1)
	checkSET(t, sets[0], e.issuer, idc["sub"].(string), broker.CAEPSessionRevoked)
}

func TestCAEP_SessionRevokedOnUserRevocation(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri))
	rcv.issuer = e.issuer
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	ctx := context.Background()
	d, u := aliceRecord(t, e)
	if _, err := d.Revoke(ctx, "admin:test", "acme", u.ID); err != nil {
		t.Fatal(err)
	}
	sets := rcv.wait(1)
	ev := checkSET(t, sets[0], e.issuer, idc["sub"].(string), broker.CAEPSessionRevoked)
	if ev["initiating_entity"] != "admin" {
		t.Errorf("initiating_entity = %v, want admin", ev["initiating_entity"])
	}
	if r, _ := ev["reason_admin"].(map[string]any); r["en"] == nil {
		t.Errorf("reason_admin = %v, want an English reason", ev["reason_admin"])
	}
	// One event for the user, not one per session as well.
	select {
	case <-rcv.got:
		t.Errorf("a second SET arrived for one revocation: %v", rcv.sets)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestCAEP_PushRetriedWithBackoff(t *testing.T) {
	tests := []struct {
		name      string
		status    []int
		delivered bool
	}{
		{"5xx then accepted", []int{http.StatusServiceUnavailable, http.StatusInternalServerError}, true},
		{"400 is final", []int{http.StatusBadRequest}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv, uri := newSETReceiver(t)
			rcv.status = tt.status
			e := newEnv(t, withReceiver(uri))
			rcv.issuer = e.issuer
			e.broker.EmitSecurityEvent(context.Background(), broker.SecurityEvent{Type: broker.CAEPCredentialChange,
				Tenant: "acme", Subject: "sub-1", CredentialType: "password", ChangeType: "update", Initiator: "user"})
			if tt.delivered {
				ev := checkSET(t, rcv.wait(1)[0], e.issuer, "sub-1", broker.CAEPCredentialChange)
				if ev["credential_type"] != "password" || ev["change_type"] != "update" {
					t.Errorf("credential-change = %v", ev)
				}
				return
			}
			time.Sleep(1500 * time.Millisecond) // longer than the first backoff
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if rcv.calls != 1 {
				t.Errorf("receiver called %d times after a 400, want 1 (RFC 8935 §2.3: not retried)", rcv.calls)
			}
		})
	}
}

func TestCAEP_ReceiversOfTheTenantOnly(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri), func(c *broker.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].AllowedTenants = []string{"acme"}
			}
		}
	})
	rcv.issuer = e.issuer
	ctx := context.Background()
	e.broker.EmitSecurityEvent(ctx, broker.SecurityEvent{Type: broker.CAEPTokenClaimsChange, Tenant: "globex", Subject: "g-1"})
	e.broker.EmitSecurityEvent(ctx, broker.SecurityEvent{Type: broker.CAEPTokenClaimsChange, Tenant: "acme", Subject: "a-1",
		Claims: map[string]any{"jit_roles": []any{"x"}}})
	sets := rcv.wait(1)
	ev := checkSET(t, sets[0], e.issuer, "a-1", broker.CAEPTokenClaimsChange)
	if cl, _ := ev["claims"].(map[string]any); cl["jit_roles"] == nil {
		t.Errorf("token-claims-change claims = %v", ev["claims"])
	}
	if sets[0].claims["tid"] != "acme" {
		t.Errorf("tid = %v, want acme", sets[0].claims["tid"])
	}
}

func TestCAEP_TransmitterConfiguration(t *testing.T) {
	e := newEnv(t)
	var doc map[string]any
	if resp := getJSON(t, e.issuer+"/.well-known/ssf-configuration", &doc); resp.StatusCode != http.StatusOK {
		t.Fatalf("ssf-configuration = %d", resp.StatusCode)
	}
	if doc["issuer"] != e.issuer || doc["jwks_uri"] != e.issuer+"/jwks" {
		t.Errorf("ssf-configuration issuer, jwks_uri = %v, %v", doc["issuer"], doc["jwks_uri"])
	}
	if m, _ := doc["delivery_methods_supported"].([]any); len(m) != 1 || m[0] != broker.PushDeliveryMethod {
		t.Errorf("delivery_methods_supported = %v, want [%s]", doc["delivery_methods_supported"], broker.PushDeliveryMethod)
	}
}

// TestCAEP_GroupChangeTold: adding a signed-in user to a directory group
// tells the tenant's receivers (token-claims-change with the groups).
func TestCAEP_GroupChangeTold(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri))
	rcv.issuer = e.issuer
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	ctx := context.Background()
	d := e.broker.Users()
	u, err := d.UserByLink(ctx, "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	g := &users.Group{Tenant: "acme", DisplayName: "DBAs"}
	if err := d.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddMembers(ctx, "admin:test", "acme", g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	ev := checkSET(t, rcv.wait(1)[0], e.issuer, idc["sub"].(string), broker.CAEPTokenClaimsChange)
	cl, _ := ev["claims"].(map[string]any)
	if gs, _ := cl["groups"].([]any); len(gs) != 1 || gs[0] != "DBAs" {
		t.Errorf("token-claims-change claims = %v, want groups [DBAs]", cl)
	}
	// Adding again changes nothing and tells nothing.
	if _, err := d.AddMembers(ctx, "admin:test", "acme", g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RemoveMembers(ctx, "admin:test", "acme", g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	ev = checkSET(t, rcv.wait(1)[0], e.issuer, idc["sub"].(string), broker.CAEPTokenClaimsChange)
	if cl, _ := ev["claims"].(map[string]any); len(cl["groups"].([]any)) != 0 {
		t.Errorf("after removal claims = %v, want no groups", cl)
	}
}

// TestCAEP_S70_PrivateReceiverRefused: with the default outbound policy
// (public addresses only) a receiver URL on loopback, which an admin could
// register, is never called.
func TestCAEP_S70_PrivateReceiverRefused(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, func(c *broker.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].SSFPushURL = uri
			}
		}
	})
	rcv.issuer = e.issuer
	e.broker.EmitSecurityEvent(context.Background(), broker.SecurityEvent{Type: broker.CAEPSessionRevoked, Tenant: "acme", Subject: "s"})
	time.Sleep(time.Second) // the first attempt and a retry would have happened
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.calls != 0 {
		t.Errorf("receiver on loopback called %d times under the default outbound policy, want 0 (S70)", rcv.calls)
	}
}

// TestCAEP_CredentialChangeFromProvisioning: a password a provisioning
// client sets (SCIM, which discards it) reaches the tenant's receivers as
// a credential-change for the user's sub (CAEP 1.0 §3.3).
func TestCAEP_CredentialChangeFromProvisioning(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri))
	rcv.issuer = e.issuer
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	ctx := context.Background()
	_, u := aliceRecord(t, e)
	e.broker.CredentialChanged(ctx, "acme", u.ID, "scim:entra")
	ev := checkSET(t, rcv.wait(1)[0], e.issuer, idc["sub"].(string), broker.CAEPCredentialChange)
	if ev["credential_type"] != "password" || ev["change_type"] != "update" || ev["initiating_entity"] != "admin" {
		t.Errorf("credential-change event = %v, want credential_type password, change_type update, initiating_entity admin", ev)
	}
}

// aliceRecord is the directory and alice's record there, made at her sign-in.
func aliceRecord(t *testing.T, e *env) (*users.Directory, *users.User) {
	t.Helper()
	d := e.broker.Users()
	if d == nil {
		t.Fatal("the test store keeps no directory")
	}
	u, err := d.UserByLink(context.Background(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatalf("UserByLink = %v", err)
	}
	return d, u
}
