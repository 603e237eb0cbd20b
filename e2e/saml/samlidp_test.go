package saml

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
)

// realmgate as SAML IdP, end to end: a samlify service provider (node/sp.mjs)
// signs users in through the realmgate binary, which sends them on to the
// development OpenID Provider (internal/devidp) as their upstream IdP.

// spEvent is one line sp.mjs prints.
type spEvent struct {
	URL          string         `json:"url"`
	Event        string         `json:"event"`
	Binding      string         `json:"binding"`
	ID           string         `json:"id"`
	InResponseTo string         `json:"in_response_to"`
	RelayState   string         `json:"relay_state"`
	NameID       string         `json:"name_id"`
	SessionIndex string         `json:"session_index"`
	Audience     string         `json:"audience"`
	Recipient    string         `json:"recipient"`
	Attributes   map[string]any `json:"attributes"`
	Signed       bool           `json:"signed"`
	Known        bool           `json:"known"`
	Answered     bool           `json:"answered"`
	Error        string         `json:"error"`
}

// samlifySP is the running sp.mjs.
type samlifySP struct {
	url string
	p   *e2etest.Proc
}

// events returns the SP's events of kind so far, failing the test on errors.
func (s *samlifySP) events(t *testing.T, kind string) []spEvent {
	t.Helper()
	var out []spEvent
	for _, line := range s.p.Lines() {
		var ev spEvent
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Event == "" {
			continue
		}
		if ev.Event == "error" {
			t.Errorf("samlify SP error: %s", ev.Error)
		}
		if ev.Event == kind {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the SP's events of kind once there are n of them (stdout is
// read asynchronously: a line may arrive just after the browser step that
// caused it), or what there is after a generous deadline.
func (s *samlifySP) wait(t *testing.T, kind string, n int) []spEvent {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		evs := s.events(t, kind)
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
	}
}

// startDevIdP serves the development OpenID Provider on loopback: realm
// acme, with realmgate's callback registered, and alice, approved at once.
func startDevIdP(t *testing.T, callback, secret string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{BaseURL: base, DevMode: true, AutoApprove: "*", Realms: []devidp.Realm{{Name: "acme",
		Clients: []devidp.Client{{ID: "realmgate", Secret: secret, RedirectURIs: []string{callback}}},
		Users: []devidp.User{{Subject: "alice-upstream", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders",
			Groups: []string{"finance-admins", "staff"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return base
}

// idpConfig is realmgate with one SAML app (the samlify SP: signed requests
// required, response and assertion signed, SLO over HTTP-Redirect, tid,
// roles and email as attributes) and tenant acme signing in at devidp.
const idpConfig = `issuer: http://%[1]s
listen: %[1]s
store:
  type: redis
  redis:
    addrs: ["%[2]s"]
    db: %[3]d
keys:
  secret: %[4]s
outbound:
  allow_loopback: true # the upstream IdP runs on loopback
clients:
  - id: samlify
    allowed_tenants: ["acme"]
    saml:
      entity_id: %[5]s/metadata
      acs: [{url: %[5]s/acs}]
      slo: {url: %[5]s/slo, binding: redirect}
      require_signed_requests: true
      signing_cert: |
%[6]s
      sign: both
      attributes:
        - {name: tid, claim: tid}
        - {name: roles, claim: roles}
        - {name: email, claim: email}
tenants:
  - id: acme
    name: ACME
    domains: ["acme.test"]
    providers:
      - id: acme-idp
        type: oidc
        name: ACME sign-in
        issuer: %[7]s/acme
        client_id: realmgate
        client_secret: %[8]s
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            finance-admins: admin
            staff: member
`

// TestE2E_SAMLIdP_SamlifySP: samlify as a service provider signs alice in
// through the realmgate binary (Redis store) chained to devidp, with signed
// AuthnRequests over HTTP-Redirect and HTTP-POST; samlify verifies the
// signed Response and the SP checks Audience, Recipient, Destination and
// InResponseTo; the attributes carry tid and the roles the tenant's rule
// made from devidp's groups. Single logout both ways: SP-initiated
// (samlify's signed LogoutRequest; realmgate's signed LogoutResponse, which
// samlify verifies) and realmgate-initiated (realmgate's signed
// LogoutRequest names the NameID and SessionIndex samlify holds; samlify's
// signed LogoutResponse is accepted, audited saml_logout_confirmed). After
// either, the next sign-in goes upstream again.
func TestE2E_SAMLIdP_SamlifySP(t *testing.T) {
	e2etest.Need(t)
	redis := redistest.Start(t)
	dir := t.TempDir()
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	upSecret := randomText(t)
	up := startDevIdP(t, issuer+"/callback/acme-idp", upSecret)

	keyFile, certFile := e2etest.WriteKeyPair(t, dir, "samlify-sp")
	spCfg, _ := json.Marshal(map[string]string{"key": keyFile, "cert": certFile, "idpMetadata": issuer + "/saml-idp/metadata?app=samlify"})
	spCfgFile := filepath.Join(dir, "sp.json")
	if err := os.WriteFile(spCfgFile, spCfg, 0o600); err != nil {
		t.Fatal(err)
	}
	spProc := e2etest.Start(t, "samlify sp.mjs", e2etest.NodeCommand(env.node, env.nodeDir, "sp.mjs", spCfgFile))
	var ready spEvent
	spProc.WaitLine(t, func(line string) bool { return json.Unmarshal([]byte(line), &ready) == nil && ready.URL != "" })
	sp := &samlifySP{url: ready.URL, p: spProc}

	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(string(certPEM)), "\n", "\n        ")
	cfgFile := filepath.Join(dir, "realmgate.yaml")
	cfg := fmt.Sprintf(idpConfig, addr, redis.Addr(), redisDB, randomText(t), sp.url, indented, up, upSecret)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rg := e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", cfgFile, "--log-format", "text"))
	rg.WaitReady(t, issuer+"/readyz")

	// signIn signs alice in from the SP with binding and returns her browser
	// and the SP's login event.
	signIn := func(t *testing.T, b *browser, binding string) spEvent {
		t.Helper()
		before := len(sp.events(t, "login"))
		end := b.signIn(sp.url+"/login?binding="+binding, sp.url+"/app")
		if want := "rs-" + binding; end.Query().Get("relay") != want {
			t.Errorf("RelayState at the ACS = %q, want %q", end.Query().Get("relay"), want)
		}
		logins := sp.wait(t, "login", before+1)
		if len(logins) != before+1 {
			t.Fatalf("samlify SP logged %d sign-ins, want %d", len(logins), before+1)
		}
		return logins[before]
	}
	wentUpstream := func(b *browser) bool {
		return slices.ContainsFunc(b.visits, func(v string) bool { return strings.HasPrefix(v, "GET "+up+"/acme/authorize") })
	}

	var redirectBrowser, postBrowser *browser
	var redirectLogin, postLogin spEvent
	for _, tc := range []struct{ binding string }{{"redirect"}, {"post"}} {
		t.Run("sign-in HTTP-"+map[string]string{"redirect": "Redirect", "post": "POST"}[tc.binding], func(t *testing.T) {
			b := newBrowser(t, "alice@acme.test")
			ev := signIn(t, b, tc.binding)
			if !wentUpstream(b) {
				t.Errorf("the browser never reached devidp; visits:\n%s", strings.Join(b.visits, "\n"))
			}
			reqs := sp.events(t, "login_request")
			if !slices.ContainsFunc(reqs, func(r spEvent) bool { return r.ID == ev.InResponseTo && r.Binding == tc.binding }) {
				t.Errorf("Response InResponseTo %q answers none of the SP's %s requests %+v", ev.InResponseTo, tc.binding, reqs)
			}
			if ev.Audience != sp.url+"/metadata" || ev.Recipient != sp.url+"/acs" {
				t.Errorf("Audience %q Recipient %q, want the SP's entity ID and ACS", ev.Audience, ev.Recipient)
			}
			if got := fmt.Sprint(ev.Attributes["tid"]); got != "acme" {
				t.Errorf("tid attribute = %v, want acme", ev.Attributes["tid"])
			}
			roles, _ := ev.Attributes["roles"].([]any)
			if !slices.Equal(roles, []any{"admin", "member"}) {
				t.Errorf("roles attribute = %v, want [admin member] (devidp groups through the tenant's rule)", ev.Attributes["roles"])
			}
			if ev.NameID == "" || ev.SessionIndex == "" {
				t.Errorf("NameID %q SessionIndex %q, want both", ev.NameID, ev.SessionIndex)
			}
			if tc.binding == "redirect" {
				redirectBrowser, redirectLogin = b, ev
			} else {
				postBrowser, postLogin = b, ev
			}
		})
	}
	if redirectBrowser == nil || postBrowser == nil {
		t.Fatal("a sign-in failed; the logouts need both")
	}
	if redirectLogin.NameID != postLogin.NameID {
		t.Errorf("NameIDs %q and %q for the same user, want one persistent NameID", redirectLogin.NameID, postLogin.NameID)
	}

	t.Run("SP-initiated logout", func(t *testing.T) {
		b := postBrowser
		status, page := b.follow(sp.url + "/logout")
		if status != http.StatusOK || !strings.Contains(page, "Signed out of the samlify app") {
			t.Fatalf("SP-initiated logout ended with %d:\n%.300s\nvisits:\n%s", status, page, strings.Join(b.visits, "\n"))
		}
		resps := sp.wait(t, "logout_response", 1)
		if len(resps) != 1 || !resps[0].Signed || !resps[0].Answered || resps[0].RelayState != "sp-bye" {
			t.Errorf("samlify saw LogoutResponses %+v, want one signed, answering its request, RelayState sp-bye", resps)
		}
		b.visits = nil
		signIn(t, b, "redirect")
		if !wentUpstream(b) {
			t.Errorf("after the logout the sign-in did not go upstream (session not ended); visits:\n%s", strings.Join(b.visits, "\n"))
		}
	})

	t.Run("realmgate-initiated logout", func(t *testing.T) {
		b := redirectBrowser
		resp, _ := b.do(http.MethodPost, issuer+"/logout", url.Values{"confirm": {"yes"}})
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, sp.url+"/slo?SAMLRequest=") {
			t.Fatalf("realmgate logout = %d %q, want a LogoutRequest to the SP", resp.StatusCode, loc)
		}
		status, page := b.follow(loc)
		if status != http.StatusOK || !strings.Contains(page, "signed out") {
			t.Errorf("realmgate-initiated logout ended with %d:\n%.300s\nvisits:\n%s", status, page, strings.Join(b.visits, "\n"))
		}
		reqs := sp.wait(t, "logout_request", 1)
		if len(reqs) != 1 || !reqs[0].Signed || !reqs[0].Known || reqs[0].NameID != redirectLogin.NameID || reqs[0].SessionIndex != redirectLogin.SessionIndex {
			t.Errorf("samlify saw LogoutRequests %+v, want one signed naming NameID %q SessionIndex %q", reqs, redirectLogin.NameID, redirectLogin.SessionIndex)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(rg.Out.String(), "saml_logout_confirmed") && time.Now().Before(deadline) {
			time.Sleep(25 * time.Millisecond)
		}
		if !strings.Contains(rg.Out.String(), "saml_logout_confirmed") || strings.Contains(rg.Out.String(), "saml_logout_unconfirmed") {
			t.Errorf("realmgate did not accept samlify's LogoutResponse (no saml_logout_confirmed audit event)")
		}
		b.visits = nil
		signIn(t, b, "post")
		if !wentUpstream(b) {
			t.Errorf("after the logout the sign-in did not go upstream (session not ended); visits:\n%s", strings.Join(b.visits, "\n"))
		}
	})
}
