package broker_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/saml"
)

// sloIdP is a fake SAML connector with Single Logout: its "signed" messages
// are plain strings the test writes (the XML and signatures are
// providers/saml's tests). A LogoutResponse "ok:<id>" answers request <id>;
// a LogoutRequest "sub|sid|id" names whom to log out; "bad" is invalid.
type sloIdP struct {
	*fakeIdP
	mu     sync.Mutex
	idents []providers.Identity // sessions LogoutRequestURL was asked to end
	n      int
}

func (f *sloIdP) LogoutRequestURL(_ context.Context, ident providers.Identity, relayState string) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.idents = append(f.idents, ident)
	id := "req-" + strings.Repeat("x", f.n)
	return "https://idp.example/slo?" + url.Values{"SAMLRequest": {id}, "RelayState": {relayState}}.Encode(), id, nil
}

func (f *sloIdP) HandleLogoutResponse(_ context.Context, r *http.Request, requestID string) error {
	if r.FormValue("SAMLResponse") != "ok:"+requestID {
		return providers.ErrInvalidResponse
	}
	return nil
}

func (f *sloIdP) HandleLogoutRequest(_ context.Context, r *http.Request) (providers.LogoutClaims, error) {
	parts := strings.Split(r.FormValue("SAMLRequest"), "|")
	if len(parts) != 3 {
		return providers.LogoutClaims{}, providers.ErrInvalidResponse
	}
	return providers.LogoutClaims{Subject: parts[0], SID: parts[1], JTI: parts[2], Expiry: time.Now().Add(time.Minute)}, nil
}

func (f *sloIdP) LogoutResponseURL(_ context.Context, inResponseTo, relayState string) (string, error) {
	return "https://idp.example/slo?" + url.Values{"SAMLResponse": {"resp-" + inResponseTo}, "RelayState": {relayState}}.Encode(), nil
}

// newSLOEnv puts acme-idp behind a SAML Single Logout connector with
// upstream logout on; alice's upstream session has NameID, SessionIndex and sid.
func newSLOEnv(t *testing.T) (*env, *sloIdP, *logoutCatcher) {
	t.Helper()
	lc, uri := newLogoutCatcher(t)
	var slo *sloIdP
	e := newEnv(t, withBackchannel(uri), func(c *broker.Config) {
		for i := range c.IdPs {
			if c.IdPs[i].ID == "acme-idp" {
				slo = &sloIdP{fakeIdP: c.IdPs[i].Connector.(*fakeIdP)}
				c.IdPs[i].Connector, c.IdPs[i].UpstreamLogout = slo, true
			}
		}
	})
	e.acme.ident.Claims = map[string]any{"sub": "alice-upstream", "name_id": "alice-upstream",
		"name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", "session_index": "sess-1", "sid": "sess-1"}
	return e, slo, lc
}

// spLogout signs out of realmgate and returns the RelayState sent to the IdP.
func spLogout(t *testing.T, e *env, b *browser, idToken string) string {
	t.Helper()
	v := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://app-a.example/signed-out"}, "state": {"bye"}}
	resp := b.get(e.issuer + "/logout?" + v.Encode())
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "https://idp.example/slo?") {
		t.Fatalf("logout = %d %q, want a redirect to the IdP's SLO endpoint", resp.StatusCode, loc)
	}
	return mustQuery(t, loc).Get("RelayState")
}

func TestSAMLSLO_SPInitiated(t *testing.T) {
	e, slo, _ := newSLOEnv(t)
	tr, b := e.signIn()
	relay := spLogout(t, e, b, tr.str("id_token"))
	if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo after logout = %d, want 401", st)
	}
	slo.mu.Lock()
	got := slo.idents[0]
	slo.mu.Unlock()
	if got.Claims["name_id"] != "alice-upstream" || got.Claims["session_index"] != "sess-1" {
		t.Errorf("LogoutRequest for %v, want the session's NameID and SessionIndex", got.Claims)
	}
	// A response answering another request: refused, no redirect.
	resp, page := b.getBody(e.issuer + "/saml/acme-idp/slo?" + url.Values{"SAMLResponse": {"ok:req-other"}, "RelayState": {relay}}.Encode())
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("LogoutResponse with the wrong InResponseTo = %d %q, want 400 without redirect:\n%.200s", resp.StatusCode, resp.Header.Get("Location"), page)
	}

	// Again, answered right (HTTP-POST binding): on to the client's URI.
	tr, b = e.signIn()
	relay = spLogout(t, e, b, tr.str("id_token"))
	form := url.Values{"SAMLResponse": {"ok:req-xx"}, "RelayState": {relay}}
	resp, _ = b.postForm(e.issuer+"/saml/acme-idp/slo", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://app-a.example/signed-out?state=bye" {
		t.Fatalf("LogoutResponse = %d %q, want 303 to the client's post-logout URI", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The state is used once.
	resp, page = b.postForm(e.issuer+"/saml/acme-idp/slo", form)
	if resp.Header.Get("Location") != "" || !strings.Contains(page, "signed out") {
		t.Errorf("replayed LogoutResponse = %d %q, want the signed-out page", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Another IdP's path, or no message at all.
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"unknown idp", "/saml/nope/slo?SAMLResponse=x", http.StatusNotFound},
		{"idp without SAML logout", "/saml/globex-idp/slo?SAMLResponse=x", http.StatusNotFound},
		{"no message", "/saml/acme-idp/slo", http.StatusBadRequest},
	} {
		if resp := b.get(e.issuer + tc.path); resp.StatusCode != tc.want {
			t.Errorf("%s: GET %s = %d, want %d", tc.name, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestSAMLSLO_IdPInitiated(t *testing.T) {
	e, _, lc := newSLOEnv(t)
	idpReq := func(msg string) *http.Response {
		return e.browser().get(e.issuer + "/saml/acme-idp/slo?" + url.Values{"SAMLRequest": {msg}, "RelayState": {"rs-1"}}.Encode())
	}
	tr1, _ := e.signIn()

	// An invalid request ends nothing.
	if resp := idpReq("bad"); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("invalid LogoutRequest = %d %q, want 400", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st, _ := e.userinfo(tr1.str("access_token")); st != http.StatusOK {
		t.Fatalf("an invalid LogoutRequest ended the session: userinfo = %d", st)
	}

	// By SessionIndex: the session ends, the client hears of it, the IdP gets Success.
	resp := idpReq("someone-else|sess-1|lr-1")
	want := "https://idp.example/slo?" + url.Values{"SAMLResponse": {"resp-lr-1"}, "RelayState": {"rs-1"}}.Encode()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("LogoutRequest = %d %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if st, _ := e.userinfo(tr1.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("session not ended by the IdP's LogoutRequest: userinfo = %d", st)
	}
	select {
	case <-lc.got:
	case <-time.After(5 * time.Second):
		t.Error("no downstream back-channel logout after the IdP-initiated one")
	}

	// An unknown session: Success, and nothing else ends.
	tr2, _ := e.signIn()
	if resp := idpReq("nobody|no-such-session|lr-2"); resp.StatusCode != http.StatusFound ||
		!strings.Contains(resp.Header.Get("Location"), "SAMLResponse=resp-lr-2") {
		t.Errorf("LogoutRequest for an unknown session = %d %q, want a Success response", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st, _ := e.userinfo(tr2.str("access_token")); st != http.StatusOK {
		t.Errorf("a LogoutRequest for an unknown session ended another one: userinfo = %d", st)
	}

	// By NameID alone.
	if resp := idpReq("alice-upstream||lr-3"); resp.StatusCode != http.StatusFound {
		t.Errorf("LogoutRequest by NameID = %d", resp.StatusCode)
	}
	if st, _ := e.userinfo(tr2.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("LogoutRequest by NameID did not end the session: userinfo = %d", st)
	}
}

// TestSLO_S63_MetadataFetchedOnce: 30 anonymous GETs to a SAML IdP's SLO
// endpoint while its metadata host is down make at most one metadata
// fetch (each answers 503 at once); the metadata host is not hammered
// through realmgate.
func TestSLO_S63_MetadataFetchedOnce(t *testing.T) {
	var fetches atomic.Int32
	mdHost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(mdHost.Close)
	e := newEnv(t, func(cfg *broker.Config) {
		base := cfg.Issuer + "/saml/acme-idp"
		conn, err := saml.New(saml.Config{ID: "acme-idp", ACSURL: base + "/acs", MetadataURL: base + "/metadata",
			IdPMetadataURL: mdHost.URL, Now: cfg.Now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range cfg.IdPs {
			if cfg.IdPs[i].ID == "acme-idp" {
				cfg.IdPs[i].Connector = conn
			}
		}
	})
	for i := range 30 {
		resp := e.browser().get(e.issuer + "/saml/acme-idp/slo?SAMLRequest=" + url.QueryEscape("junk-"+strconv.Itoa(i)))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("anonymous SLO GET %d = %d, want 503", i, resp.StatusCode)
		}
	}
	if n := fetches.Load(); n > 1 {
		t.Errorf("metadata fetched %d times for 30 anonymous SLO GETs, want at most 1", n)
	}
}
