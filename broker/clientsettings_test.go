package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/store"
)

// signInAs runs a whole sign-in of alice for client (redirect uri cb,
// secret secretA) in browser b and returns the token response.
func (e *env) signInAs(b *browser, client, cb, scope string) tokenResp {
	e.t.Helper()
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("client_id", client)
	v.Set("redirect_uri", cb)
	if scope != "" {
		v.Set("scope", scope)
	}
	var q url.Values
	if resp := b.get(e.authorizeURL(v)); strings.HasPrefix(resp.Header.Get("Location"), cb+"?") {
		q = e.clientRedirect(resp, cb) // SSO from the browser's session
	} else {
		q = e.login(b, v)
	}
	tr := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {cb}, "code_verifier": {verifier}}, client, secretA)
	if tr.status != http.StatusOK {
		e.t.Fatalf("token(%s) = %d %v", client, tr.status, tr.body)
	}
	return tr
}

// ttlStore records the lifetime each refresh-token family was created with.
type ttlStore struct {
	*memstore.Store // every optional capability promoted
	mu              sync.Mutex
	ttls            []time.Duration
	marks           []time.Duration // Put of session logout marks ("sx:")
}

func (s *ttlStore) CreateFamily(ctx context.Context, f, tok string, g []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.ttls = append(s.ttls, ttl)
	s.mu.Unlock()
	return s.Store.CreateFamily(ctx, f, tok, g, ttl)
}

// Put records the lifetime of the marks that end a session's families.
func (s *ttlStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if strings.HasPrefix(k, "sx:") {
		s.mu.Lock()
		s.marks = append(s.marks, ttl)
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, k, v, ttl)
}

// RedeemCode records the family lifetime of a one-step redemption.
func (s *ttlStore) RedeemCode(ctx context.Context, r store.Redemption) ([]byte, error) {
	s.mu.Lock()
	s.ttls = append(s.ttls, r.FamilyTTL)
	s.mu.Unlock()
	return s.Store.RedeemCode(ctx, r)
}

func TestClientSettings_LifetimesHonoured(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	ts := &ttlStore{Store: ms}
	e := newEnvOn(t, &recordingStore{Store: ts}, withClients(
		broker.Client{ID: "short", Secret: secretA, RedirectURIs: []string{"https://short.example/cb"}, AllowedTenants: []string{"*"},
			ClientSettings: broker.ClientSettings{AccessTokenLifetime: 2 * time.Minute, IDTokenLifetime: 3 * time.Minute,
				RefreshTokenLifetime: time.Hour}},
		broker.Client{ID: "huge", Secret: secretA, RedirectURIs: []string{"https://huge.example/cb"}, AllowedTenants: []string{"*"},
			ClientSettings: broker.ClientSettings{AccessTokenLifetime: 1000 * time.Hour, RefreshTokenLifetime: 100000 * time.Hour}},
	), func(c *broker.Config) {
		c.AccessTokenLifetime, c.IDTokenLifetime, c.RefreshTokenLifetime = 10*time.Minute, 10*time.Minute, 720*time.Hour
	})
	for _, tc := range []struct {
		client, cb          string
		access, id, refresh time.Duration
	}{
		{"short", "https://short.example/cb", 2 * time.Minute, 3 * time.Minute, time.Hour},
		{"app-a", appCB, 10 * time.Minute, 10 * time.Minute, 720 * time.Hour}, // the server's
		{"huge", "https://huge.example/cb", broker.MaxAccessTokenLifetime, 10 * time.Minute, broker.MaxRefreshTokenLifetime},
	} {
		t.Run(tc.client, func(t *testing.T) {
			ts.mu.Lock()
			ts.ttls = nil
			ts.mu.Unlock()
			tr := e.signInAs(e.browser(), tc.client, tc.cb, "")
			_, at := claimsOf(t, tr.str("access_token"))
			_, id := claimsOf(t, tr.str("id_token"))
			if got := time.Duration(at["exp"].(float64)-at["iat"].(float64)) * time.Second; got != tc.access {
				t.Errorf("access token exp-iat = %s, want %s", got, tc.access)
			}
			if got := time.Duration(tr.body["expires_in"].(float64)) * time.Second; got != tc.access {
				t.Errorf("expires_in = %s, want %s", got, tc.access)
			}
			if got := time.Duration(id["exp"].(float64)-id["iat"].(float64)) * time.Second; got != tc.id {
				t.Errorf("ID token exp-iat = %s, want %s", got, tc.id)
			}
			ts.mu.Lock()
			ttls := ts.ttls
			ts.mu.Unlock()
			if len(ttls) != 1 || ttls[0] != tc.refresh {
				t.Errorf("refresh family lifetimes = %v, want [%s]", ttls, tc.refresh)
			}
			// A refresh keeps the client's access token lifetime.
			rr := e.refresh(tr.str("refresh_token"), tc.client, secretA)
			if rr.status != http.StatusOK {
				t.Fatalf("refresh = %d %v", rr.status, rr.body)
			}
			_, at2 := claimsOf(t, rr.str("access_token"))
			if got := time.Duration(at2["exp"].(float64)-at2["iat"].(float64)) * time.Second; got != tc.access {
				t.Errorf("refreshed access token exp-iat = %s, want %s", got, tc.access)
			}
		})
	}
}

// pairwiseClients: pw-1 and pw-2 share the sector rp.one.example, pw-3 is
// of rp.two.example; pw-3 may exchange pw-1's tokens... the other way round.
func pairwiseClients() envOpt {
	pw := broker.ClientSettings{SubjectType: broker.SubjectPairwise}
	return withClients(
		broker.Client{ID: "pw-1", Secret: secretA, RedirectURIs: []string{"https://rp.one.example/cb"}, AllowedTenants: []string{"*"},
			ClientSettings: pw, ExchangeAudiences: []string{"pw-3", "app-b"}},
		broker.Client{ID: "pw-2", Secret: secretA, RedirectURIs: []string{"https://rp.one.example/other"}, AllowedTenants: []string{"*"},
			ClientSettings: pw},
		broker.Client{ID: "pw-3", Secret: secretA, RedirectURIs: []string{"https://rp.two.example/cb"}, AllowedTenants: []string{"*"},
			ClientSettings: pw},
	)
}

func TestClientSettings_PairwiseSubjects(t *testing.T) {
	e := newEnv(t, pairwiseClients())
	b := e.browser()
	subs := map[string]string{}
	toks := map[string]tokenResp{}
	for _, c := range []struct{ id, cb string }{
		{"app-a", appCB}, {"pw-1", "https://rp.one.example/cb"}, {"pw-2", "https://rp.one.example/other"}, {"pw-3", "https://rp.two.example/cb"},
	} {
		tr := e.signInAs(b, c.id, c.cb, "")
		_, id := claimsOf(t, tr.str("id_token"))
		_, at := claimsOf(t, tr.str("access_token"))
		if id["sub"] != at["sub"] {
			t.Errorf("%s: ID token sub %v != access token sub %v", c.id, id["sub"], at["sub"])
		}
		subs[c.id], toks[c.id] = id["sub"].(string), tr
	}
	if subs["pw-1"] != subs["pw-2"] {
		t.Errorf("same sector: pw-1 sub %q != pw-2 sub %q", subs["pw-1"], subs["pw-2"])
	}
	if subs["pw-1"] == subs["pw-3"] {
		t.Errorf("different sectors: pw-1 and pw-3 both got sub %q", subs["pw-1"])
	}
	if subs["pw-1"] == subs["app-a"] || subs["pw-3"] == subs["app-a"] {
		t.Errorf("a pairwise client got the public sub %q", subs["app-a"])
	}
	t.Run("userinfo", func(t *testing.T) {
		if code, ui := e.userinfo(toks["pw-3"].str("access_token")); code != http.StatusOK || ui["sub"] != subs["pw-3"] {
			t.Errorf("userinfo = %d sub %v, want %q", code, ui["sub"], subs["pw-3"])
		}
	})
	t.Run("introspection", func(t *testing.T) {
		in := e.post("/introspect", url.Values{"token": {toks["pw-1"].str("access_token")}}, "pw-1", secretA).body
		if in["active"] != true || in["sub"] != subs["pw-1"] {
			t.Errorf("introspect = %v, want active with sub %q", in, subs["pw-1"])
		}
	})
	t.Run("refresh", func(t *testing.T) {
		rr := e.refresh(toks["pw-1"].str("refresh_token"), "pw-1", secretA)
		_, id := claimsOf(t, rr.str("id_token"))
		if rr.status != http.StatusOK || id["sub"] != subs["pw-1"] {
			t.Errorf("refresh = %d sub %v, want %q", rr.status, id["sub"], subs["pw-1"])
		}
	})
	t.Run("token exchange takes the audience's sub", func(t *testing.T) {
		for aud, want := range map[string]string{"pw-3": subs["pw-3"], "app-b": subs["app-a"]} {
			x := e.post("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token": {toks["pw-1"].str("access_token")}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
				"audience": {aud}}, "pw-1", secretA)
			if x.status != http.StatusOK {
				t.Fatalf("exchange for %s = %d %v", aud, x.status, x.body)
			}
			_, c := claimsOf(t, x.str("access_token"))
			if c["sub"] != want {
				t.Errorf("exchange for %s: sub %v, want %q", aud, c["sub"], want)
			}
		}
	})
}

func TestClientSettings_PairwiseStableAcrossInstances(t *testing.T) {
	e1 := newEnv(t, pairwiseClients())
	// A second instance on the same store and server secret, serving the
	// same issuer (behind one load balancer).
	e2 := newEnvOn(t, e1.store, pairwiseClients(), func(c *broker.Config) { c.Issuer = e1.issuer })
	tr1 := e1.signInAs(e1.browser(), "pw-1", "https://rp.one.example/cb", "")
	tr2 := e2.signInAs(e2.browser(), "pw-1", "https://rp.one.example/cb", "")
	_, c1 := claimsOf(t, tr1.str("id_token"))
	_, c2 := claimsOf(t, tr2.str("id_token"))
	if c1["sub"] != c2["sub"] || c1["sub"] == "" {
		t.Errorf("pairwise sub: instance 1 %v, instance 2 %v, want equal", c1["sub"], c2["sub"])
	}
}

func TestClientSettings_PairwiseBackchannelLogoutSub(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	e := newEnv(t, withBackchannel(uri), func(c *broker.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].SubjectType = broker.SubjectPairwise
			}
		}
	})
	tr, b := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	pub := e.signInAs(b, "acme-only", appCB, "")
	_, pubc := claimsOf(t, pub.str("id_token"))
	if idc["sub"] == pubc["sub"] {
		t.Fatalf("pairwise app-a got the public sub %v", idc["sub"])
	}
	v := url.Values{"id_token_hint": {tr.str("id_token")}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}}
	b.get(e.issuer + "/logout?" + v.Encode())
	select {
	case <-lc.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no back-channel logout token delivered")
	}
	lc.mu.Lock()
	tok := lc.tokens[0]
	lc.mu.Unlock()
	if _, c := claimsOf(t, tok); c["sub"] != idc["sub"] {
		t.Errorf("logout token sub = %v, want the pairwise sub %v", c["sub"], idc["sub"])
	}
}

func TestClientSettings_SectorIdentifierURI(t *testing.T) {
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode([]string{"https://rp.one.example/cb", "https://rp.other.example/cb"})
	}))
	t.Cleanup(doc.Close)
	e := newEnv(t, withClients(broker.Client{ID: "sec", Secret: secretA,
		RedirectURIs:   []string{"https://rp.one.example/cb", "https://rp.other.example/cb", "https://rp.unlisted.example/cb"},
		AllowedTenants: []string{"*"}, ClientSettings: broker.ClientSettings{SubjectType: broker.SubjectPairwise,
			SectorIdentifierURI: doc.URL + "/sector.json"}},
	), func(c *broker.Config) { c.HTTPClient = outbound.New(outbound.Policy{AllowLoopback: true}) })
	b := e.browser()
	one := e.signInAs(b, "sec", "https://rp.one.example/cb", "")
	other := e.signInAs(b, "sec", "https://rp.other.example/cb", "")
	_, c1 := claimsOf(t, one.str("id_token"))
	_, c2 := claimsOf(t, other.str("id_token"))
	if c1["sub"] != c2["sub"] {
		t.Errorf("one sector identifier, two hosts: sub %v != %v", c1["sub"], c2["sub"])
	}
	_, challenge := pkce()
	v := authParams(challenge)
	v.Set("client_id", "sec")
	v.Set("redirect_uri", "https://rp.unlisted.example/cb")
	resp, body := e.browser().getBody(e.authorizeURL(v))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "sector identifier") {
		t.Errorf("redirect_uri not in the sector document: %d %q, want 400 page, no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestDiscovery_SubjectTypesSupported(t *testing.T) {
	e := newEnv(t)
	var d map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &d)
	got, _ := json.Marshal(d["subject_types_supported"])
	if string(got) != `["public","pairwise"]` {
		t.Errorf("subject_types_supported = %s, want [\"public\",\"pairwise\"]", got)
	}
}

func TestClientSettings_PairwiseSecurityEventSub(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri), func(c *broker.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "app-a" {
				c.Clients[i].SubjectType = broker.SubjectPairwise
			}
		}
	})
	rcv.issuer = e.issuer
	tr, b := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	v := url.Values{"id_token_hint": {tr.str("id_token")}}
	if resp := b.get(e.issuer + "/logout?" + v.Encode()); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d, want 200", resp.StatusCode)
	}
	// checkSET compares sub_id.sub with the pairwise sub app-a knows.
	checkSET(t, rcv.wait(1)[0], e.issuer, idc["sub"].(string), broker.CAEPSessionRevoked)
}

func TestClientSettings_ClientCredentialsLifetime(t *testing.T) {
	e := newEnv(t, withClients(broker.Client{ID: "job", Secret: secretM,
		Machine:        broker.Machine{GrantTypes: []string{"client_credentials"}, Scopes: []string{"jobs"}},
		ClientSettings: broker.ClientSettings{AccessTokenLifetime: 90 * time.Second}}))
	r := e.post("/token", ccParams(), "job", secretM)
	if r.status != http.StatusOK {
		t.Fatalf("client_credentials = %d %v", r.status, r.body)
	}
	_, c := claimsOf(t, r.str("access_token"))
	if got := time.Duration(c["exp"].(float64)-c["iat"].(float64)) * time.Second; got != 90*time.Second || r.body["expires_in"] != float64(90) {
		t.Errorf("client_credentials token lifetime %s, expires_in %v; want the client's 90s", got, r.body["expires_in"])
	}
}

// TestClientSettings_LogoutOutlivesLongFamilies: a client whose refresh
// families live longer than the server's default still has them ended by
// logout: the session's marks live as long as the longest family.
func TestClientSettings_LogoutOutlivesLongFamilies(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	ts := &ttlStore{Store: ms}
	e := newEnvOn(t, &recordingStore{Store: ts}, withClients(
		broker.Client{ID: "long", Secret: secretA, RedirectURIs: []string{"https://long.example/cb"}, AllowedTenants: []string{"*"},
			ClientSettings: broker.ClientSettings{RefreshTokenLifetime: 2000 * time.Hour}},
	), func(c *broker.Config) { c.RefreshTokenLifetime = 720 * time.Hour })
	b := e.browser()
	tr := e.signInAs(b, "long", "https://long.example/cb", "")
	b.get(e.issuer + "/logout?" + url.Values{"id_token_hint": {tr.str("id_token")}}.Encode())
	ts.mu.Lock()
	marks := ts.marks
	ts.mu.Unlock()
	if len(marks) == 0 {
		t.Fatal("logout wrote no session mark")
	}
	for _, m := range marks {
		if m < 2000*time.Hour {
			t.Errorf("session mark lifetime %s, want at least the client's 2000h refresh lifetime", m)
		}
	}
	if rr := e.refresh(tr.str("refresh_token"), "long", secretA); rr.status != http.StatusBadRequest {
		t.Errorf("refresh after logout = %d %v, want 400 invalid_grant", rr.status, rr.body)
	}
}
