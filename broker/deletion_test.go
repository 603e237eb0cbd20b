package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/realm"
)

// sameIssuerPair is env A on a real Redis and a second broker B of the same
// configuration on the same Redis behind its own listener; b is env A
// pointed at B.
func sameIssuerPair(t *testing.T, opts ...envOpt) (a, b *env) {
	t.Helper()
	srv := redistest.Start(t)
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "del" + strings.ReplaceAll(t.Name(), "/", "-") + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	var cfg broker.Config
	a = newEnvOn(t, &recordingStore{Store: rs}, append(opts, func(c *broker.Config) { cfg = *c })...)
	second, err := broker.New(context.Background(), cfg, &recordingStore{Store: rs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	hs := httptest.NewServer(second.Handler())
	t.Cleanup(hs.Close)
	bb := *a
	bb.broker, bb.issuer = second, hs.URL
	return a, &bb
}

// TestDeletion_S68_EndsSessionsOnEveryInstance: deleting a tenant, an
// IdP, a client or a membership on instance A ends the affected refresh
// tokens on instance B, whose configuration still has it (a file not
// reloaded there yet), ends the SSO session and sends the application a
// back-channel logout token. The "incremental" cases apply the change as
// the admin API does, through ReconfigureTenants.
func TestDeletion_S68_EndsSessionsOnEveryInstance(t *testing.T) {
	memberSignIn := func(e *env) (tokenResp, *browser) {
		b := e.browser()
		v := authParams(s256(authVerifier))
		v.Set("tenant", "globex")
		q := e.login(b, v)
		return e.exchange(q.Get("code"), authVerifier), b
	}
	deleteTenant := func(_ *env, ts *[]realm.Tenant, ps *[]broker.IdP, _ *broker.Directory) {
		*ts = slicesDelete(*ts, func(t realm.Tenant) bool { return t.ID == "acme" })
		*ps = slicesDelete(*ps, func(p broker.IdP) bool { return p.Tenant == "acme" })
	}
	deleteIdP := func(_ *env, ts *[]realm.Tenant, ps *[]broker.IdP, _ *broker.Directory) {
		for i := range *ts {
			if (*ts)[i].ID == "acme" {
				(*ts)[i].IdPs = nil
			}
		}
		*ps = slicesDelete(*ps, func(p broker.IdP) bool { return p.ID == "acme-idp" })
	}
	for _, tc := range []struct {
		name        string
		signIn      func(e *env) (tokenResp, *browser)
		mod         func(e *env, ts *[]realm.Tenant, ps *[]broker.IdP, d *broker.Directory)
		incremental bool
	}{
		{"tenant", nil, deleteTenant, false},
		{"tenant incremental", nil, deleteTenant, true},
		{"idp incremental", nil, deleteIdP, true},
		{"idp", nil, func(_ *env, ts *[]realm.Tenant, ps *[]broker.IdP, _ *broker.Directory) {
			for i := range *ts {
				if (*ts)[i].ID == "acme" {
					(*ts)[i].IdPs = nil
				}
			}
			*ps = slicesDelete(*ps, func(p broker.IdP) bool { return p.ID == "acme-idp" })
		}, false},
		{"client", nil, func(e *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Clients = []broker.Client{{ID: "app-b", Secret: secretB, RedirectURIs: []string{"https://app-b.example/callback"}, AllowedTenants: []string{"*"}}}
		}, false},
		{"membership", memberSignIn, func(_ *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Memberships = []broker.Membership{{Tenant: "initech", IdP: "acme-idp", Subject: "alice-upstream", Reauth: true}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc, uri := newLogoutCatcher(t)
			opts := []envOpt{withBackchannel(uri)}
			signIn := tc.signIn
			if signIn == nil {
				signIn = func(e *env) (tokenResp, *browser) { return e.signIn() }
			} else {
				opts = append(opts, withMemberships)
			}
			a, b := sameIssuerPair(t, opts...)
			tr, br := signIn(b)
			r := b.refresh(tr.str("refresh_token"), "app-a", secretA)
			if r.status != http.StatusOK {
				t.Fatalf("refresh on B before the deletion = %d %v", r.status, r.body)
			}
			rt := r.str("refresh_token")
			d := a.harnessDirectory(func(ts *[]realm.Tenant, ps *[]broker.IdP, d *broker.Directory) {
				tc.mod(a, ts, ps, d)
			})
			d.Actor = "admin:ops"
			if tc.incremental {
				// The directory A serves as the base, then the change of
				// tenant acme alone (the admin API's path).
				base := a.harnessDirectory(func(*[]realm.Tenant, *[]broker.IdP, *broker.Directory) {})
				if err := a.broker.Reconfigure(base); err != nil {
					t.Fatal(err)
				}
				if err := a.broker.ReconfigureTenants(base.Resolver, d, []string{"acme"}, false); err != nil {
					t.Fatal(err)
				}
			} else if err := a.broker.Reconfigure(d); err != nil {
				t.Fatal(err)
			}
			// B's configuration still has what A deleted: the session
			// marker A wrote is what ends the family there.
			deadline := time.Now().Add(10 * time.Second)
			for {
				r = b.refresh(rt, "app-a", secretA)
				if r.status != http.StatusOK {
					break
				}
				rt = r.str("refresh_token")
				if time.Now().After(deadline) {
					t.Fatalf("refresh on B still works 10 s after the %s was deleted on A", tc.name)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if r.str("error") != "invalid_grant" {
				t.Fatalf("refresh on B after the deletion = %d %v, want invalid_grant", r.status, r.body)
			}
			select {
			case <-lc.got:
			case <-time.After(10 * time.Second):
				t.Fatalf("no back-channel logout token after the %s was deleted", tc.name)
			}
			lc.mu.Lock()
			tok := lc.tokens[0]
			lc.mu.Unlock()
			if _, c := claimsOf(t, tok); c["sid"] == nil || c["aud"] != "app-a" {
				t.Fatalf("logout token claims = %v, want app-a's with the session id", c)
			}
			// The SSO session is gone on B as well: no code without signing in again.
			v := authParams(s256(authVerifier))
			if tc.signIn != nil {
				v.Set("tenant", "globex")
			}
			resp := br.get(b.authorizeURL(v))
			if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") && strings.HasPrefix(loc, appCB) {
				t.Fatalf("SSO on B after the %s was deleted issued a code: %s", tc.name, loc)
			}
		})
	}
}

// TestDeletion_UnrelatedSessionsSurvive: deleting another tenant ends
// nobody else's session.
func TestDeletion_UnrelatedSessionsSurvive(t *testing.T) {
	lc, uri := newLogoutCatcher(t)
	a, _ := sameIssuerPair(t, withBackchannel(uri))
	tr, _ := a.signIn()
	// Deleting another tenant's IdP and another client leaves alice alone.
	if err := a.broker.Reconfigure(a.harnessDirectory(func(ts *[]realm.Tenant, ps *[]broker.IdP, d *broker.Directory) {
		*ts = slicesDelete(*ts, func(t realm.Tenant) bool { return t.ID == "globex" })
		*ps = slicesDelete(*ps, func(p broker.IdP) bool { return p.Tenant == "globex" })
	})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if r := a.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusOK {
		t.Fatalf("refresh after an unrelated deletion = %d %v", r.status, r.body)
	}
	select {
	case <-lc.got:
		t.Fatal("a logout token for an unrelated deletion")
	default:
	}
}
