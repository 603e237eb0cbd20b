package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/store"
)

// switchHandler serves through whichever broker instance is current, so a
// test can move the issuer to another instance sharing the store.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

// storedAdminState returns every stored admin record (each tenant and
// client as stored), one per line.
func storedAdminState(t *testing.T, st broker.Store) []byte {
	t.Helper()
	var out []byte
	cursor := ""
	for {
		page, next, err := st.(store.RecordStore).ScanRecords(t.Context(), "admin", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			out = append(append(out, r.Value...), '\n')
		}
		if cursor = next; cursor == "" {
			return out
		}
	}
}

// TestAdminSecrets_SignInWithEncryptedSecrets: a client and a tenant
// created through the admin API have their secrets encrypted in the store
// (keys.secret is set), and a whole sign-in still works with them: the
// upstream IdP accepts the tenant's client_secret, the broker's /token
// accepts the API client's secret. It keeps working after replaces that
// leave the secrets out, and on another instance that reads the store.
// Another keys.secret, or none, cannot read them: a clear error.
func TestAdminSecrets_SignInWithEncryptedSecrets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lnB, lnIdP := listen(t), listen(t)
	c := &cluster{issuer: "http://" + lnB.Addr().String(), devidp: "http://" + lnIdP.Addr().String(),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const upstreamSecret = "newco-upstream-secret"
	idp, err := devidp.New(devidp.Options{BaseURL: c.devidp, DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{{Name: "newco", Clients: []devidp.Client{{ID: "realmgate", Secret: upstreamSecret,
			RedirectURIs: []string{c.issuer + "/callback/newco-idp"}}},
			Users: []devidp.User{{Subject: "n-1", Email: "nina@newco.test", EmailVerified: true, Name: "Nina N"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lnIdP, idp.Handler())
	c.cfg, err = config.Parse("test.yaml", []byte(fmt.Sprintf(`issuer: %s
store:
  type: memory
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_loopback: true # the development IdP is on loopback
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
`, c.issuer, testOpToken)), nil)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	start := func() (*broker.Server, *adminAPI) { return startWithAdmin(t, ctx, cancel, c.cfg, store, c.logger) }
	srv, a := start()
	front := &switchHandler{}
	front.set(srv.Handler())
	serve(t, lnB, front)
	adminA := "http://" + a.Addr

	app := admin.Client{Client: config.Client{ID: "app", Secret: appSecret, RedirectURIs: []string{appCallback}, AllowedTenants: []string{"*"}}}
	for _, step := range []struct {
		name   string
		change func(t *testing.T)
	}{
		{"created through the API", func(t *testing.T) {
			if got := api(t, adminA, testOpToken, "POST", "/v1/clients", app, nil); got != http.StatusCreated {
				t.Fatalf("create client = %d", got)
			}
			if got := api(t, adminA, testOpToken, "POST", "/v1/tenants", c.newcoTenant(), nil); got != http.StatusCreated {
				t.Fatalf("create tenant = %d", got)
			}
		}},
		{"tenant replaced without its secret", func(t *testing.T) {
			var tn admin.Tenant
			if got := api(t, adminA, testOpToken, "GET", "/v1/tenants/newco", nil, &tn); got != http.StatusOK {
				t.Fatalf("get tenant = %d", got)
			}
			tn.Name, tn.Source, tn.Revision = "NewCo Renamed", "", ""
			if got := api(t, adminA, testOpToken, "PUT", "/v1/tenants/newco", tn, nil); got != http.StatusOK {
				t.Fatalf("replace tenant = %d", got)
			}
		}},
		{"client replaced without its secret", func(t *testing.T) {
			cl := app
			cl.Secret = ""
			cl.PostLogoutRedirectURIs = []string{appCallback}
			if got := api(t, adminA, testOpToken, "PUT", "/v1/clients/app", cl, nil); got != http.StatusOK {
				t.Fatalf("replace client = %d", got)
			}
		}},
		{"another instance reads the store", func(t *testing.T) {
			srv, b := start()
			if v := b.Service.Version(); v != 4 {
				t.Fatalf("new instance loaded version %d, want 4", v)
			}
			front.set(srv.Handler())
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change(t)
			doc := storedAdminState(t, store)
			for _, plain := range []string{upstreamSecret, appSecret} {
				if strings.Contains(string(doc), plain) {
					t.Errorf("the store holds %q in plaintext", plain)
				}
			}
			if n := strings.Count(string(doc), `"enc:v1:`); n != 2 {
				t.Errorf("%d encrypted secrets in the store, want 2", n)
			}
			var claims map[string]any
			within(t, pollDeadline, "sign-in", func() (err error) {
				claims, err = signIn(c.issuer, "nina@newco.test")
				return err
			})
			if claims["tid"] != "newco" || claims["aud"] != "app" {
				t.Fatalf("claims = %v, want tid newco, aud app", claims)
			}
		})
	}

	for _, tc := range []struct {
		name, secret string
		warned       bool
	}{
		{"another keys.secret", "another-secret-0123456789abcdef0123456789", false},
		{"no keys.secret", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := *c.cfg
			cfg.Keys.Secret = tc.secret
			var logs bytes.Buffer
			svc, err := newAdminService(&cfg, store, srv, slog.New(slog.NewTextHandler(&logs, nil)), c.logger)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logs.String(), "stored unencrypted"); got != tc.warned {
				t.Errorf("warned that secrets are stored unencrypted: %v, want %v (logs: %s)", got, tc.warned, logs.String())
			}
			err = svc.Load(ctx)
			if !errors.Is(err, admin.ErrSecret) || !strings.Contains(err.Error(), `client "app"`) {
				t.Fatalf("Load() = %v, want admin.ErrSecret naming client \"app\"", err)
			}
			if v := svc.Version(); v != 0 {
				t.Fatalf("version %d applied from secrets that do not decrypt, want 0", v)
			}
		})
	}
}
