package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
)

// TestSecretRotation: instances started with keys.secret A write the
// signing-key set and admin API secrets; restarted with secret B alone they
// cannot read them (a clear error), with B and previous_secrets [A] they
// read both, the key set is sealed again under B at once and the admin
// secrets at the next write, after which B alone reads everything.
func TestSecretRotation(t *testing.T) {
	const (
		secretA = "secret-A-0123456789abcdef0123456789abcdef"
		secretB = "secret-B-0123456789abcdef0123456789abcdef"
	)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := memstore.New()
	parse := func(t *testing.T, secret string, previous ...string) *config.Config {
		t.Helper()
		prev := ""
		if len(previous) > 0 {
			prev = fmt.Sprintf("  previous_secrets: [%q]\n", strings.Join(previous, `", "`))
		}
		cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`issuer: http://127.0.0.1:1
store:
  type: memory
keys:
  secret: %s
%sadmin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
`, secret, prev, testOpToken)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// start builds a broker and admin service on the shared store, as serve
	// does; the admin API is served on a test server.
	var srv *broker.Server // the last one started
	start := func(t *testing.T, cfg *config.Config) (jwks, adminURL string, err error) {
		t.Helper()
		b, err := buildBroker(ctx, cfg, store, logger, logger)
		if err != nil {
			return "", "", err
		}
		srv = b
		t.Cleanup(func() { _ = b.Close() })
		svc, err := newAdminService(cfg, store, srv, logger, logger)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Load(ctx); err != nil {
			return "", "", err
		}
		hs := httptest.NewServer(svc.Handler())
		t.Cleanup(hs.Close)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/jwks", nil))
		return rec.Body.String(), hs.URL, nil
	}
	client := func(id string) admin.Client {
		return admin.Client{Client: config.Client{ID: id, Secret: "client-secret-of-" + id + "-0123456789abcdef",
			RedirectURIs: []string{"https://app.example/cb"}, AllowedTenants: []string{"*"}}}
	}

	jwksA, adminA, err := start(t, parse(t, secretA))
	if err != nil {
		t.Fatal(err)
	}
	if got := api(t, adminA, testOpToken, "POST", "/v1/clients", client("app"), nil); got != http.StatusCreated {
		t.Fatalf("create client under secret A = %d, want 201", got)
	}

	t.Run("secret B alone cannot read what A wrote", func(t *testing.T) {
		if _, _, err := start(t, parse(t, secretB)); err == nil || !strings.Contains(err.Error(), "decrypt key set") {
			t.Fatalf("start with secret B alone = %v, want a key set decryption error", err)
		}
	})
	t.Run("secret B with previous A reads both and re-seals", func(t *testing.T) {
		jwks, adminB, err := start(t, parse(t, secretB, secretA))
		if err != nil {
			t.Fatalf("start with secret B, previous [A] = %v", err)
		}
		if jwks != jwksA {
			t.Errorf("JWKS after rotation = %s, want the same keys as before %s", jwks, jwksA)
		}
		var got admin.Client
		if code := api(t, adminB, testOpToken, "GET", "/v1/clients/app", nil, &got); code != http.StatusOK {
			t.Fatalf("GET client written under A = %d, want 200", code)
		}
		// B alone: the key set is already sealed under B; the admin secrets not yet.
		svc, err := newAdminService(parse(t, secretB), store, srv, logger, logger)
		if err == nil {
			err = svc.Load(ctx)
		}
		if !errors.Is(err, admin.ErrSecret) {
			t.Fatalf("admin Load with secret B alone before a write = %v, want admin.ErrSecret", err)
		}
		if code := api(t, adminB, testOpToken, "POST", "/v1/clients", client("app2"), nil); code != http.StatusCreated {
			t.Fatalf("create client under secret B = %d, want 201", code)
		}
	})
	t.Run("secret B alone after the write", func(t *testing.T) {
		jwks, _, err := start(t, parse(t, secretB))
		if err != nil {
			t.Fatalf("start with secret B alone after re-sealing = %v", err)
		}
		if jwks != jwksA {
			t.Errorf("JWKS = %s, want the keys made under A %s", jwks, jwksA)
		}
	})
	t.Run("secret A alone no longer reads", func(t *testing.T) {
		if _, _, err := start(t, parse(t, secretA)); err == nil {
			t.Fatalf("start with the retired secret A = nil, want an error")
		}
	})
}
