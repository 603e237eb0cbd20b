package registration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/registration"
)

// fakeClients keeps clients in memory and refuses an http redirect URI, as
// the configuration's validation would.
type fakeClients struct {
	mu sync.Mutex
	m  map[string]config.Client
}

func (f *fakeClients) RegisterClient(_ context.Context, tenant string, c config.Client) error {
	for _, u := range c.RedirectURIs {
		if strings.HasPrefix(u, "http:") {
			return &registration.MetadataError{Code: "invalid_redirect_uri", Message: "redirect_uris[0]: must use https"}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[c.ID] = c
	return nil
}

func (f *fakeClients) ReplaceRegisteredClient(ctx context.Context, tenant string, c config.Client) error {
	return f.RegisterClient(ctx, tenant, c)
}

func (f *fakeClients) DeleteRegisteredClient(_ context.Context, tenant, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, id)
	return nil
}

func (f *fakeClients) RegisteredClient(tenant, id string) (config.Client, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[id]
	if !ok || c.Tenant != tenant {
		return config.Client{}, false
	}
	c.Secret = ""
	return c, true
}

type fixture struct {
	srv     *httptest.Server
	tokens  *registration.Tokens
	clients *fakeClients
}

func newFixture(t *testing.T, perIP int64) *fixture {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	f := &fixture{tokens: registration.NewTokens(st, []byte("server-secret-0123456789abcdef012345")), clients: &fakeClients{m: map[string]config.Client{}}}
	h, err := registration.New(registration.Options{Issuer: "https://login.example.test", Tokens: f.tokens, Clients: f.clients, Store: st,
		PerIP: perIP, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestRegistration_RFC7591(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	acme, _, err := f.tokens.CreateInitial(ctx, "acme", "acme-admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revoked, info, _ := f.tokens.CreateInitial(ctx, "acme", "acme-admin", time.Hour)
	if err := f.tokens.RevokeInitial(ctx, "globex", info.ID); err == nil {
		t.Errorf("RevokeInitial by another tenant = nil, want an error")
	}
	if err := f.tokens.RevokeInitial(ctx, "acme", info.ID); err != nil {
		t.Fatalf("RevokeInitial = %v", err)
	}
	machine := map[string]any{"grant_types": []string{"client_credentials"}, "scope": "orders.read", "client_name": "ignored"}

	refused := []struct {
		name, path, token string
		body              any
		status            int
		code              string
	}{
		{"no token", "/register/acme", "", machine, 401, "invalid_token"},
		{"token of another tenant", "/register/globex", acme, machine, 401, "invalid_token"},
		{"revoked token", "/register/acme", revoked, machine, 401, "invalid_token"},
		{"garbage token", "/register/acme", "rgiat_nope", machine, 401, "invalid_token"},
		{"not JSON", "/register/acme", acme, "{", 400, "invalid_client_metadata"},
		{"implicit response type", "/register/acme", acme, map[string]any{"response_types": []string{"token"}}, 400, "invalid_client_metadata"},
		{"private key in jwks", "/register/acme", acme, map[string]any{"token_endpoint_auth_method": "private_key_jwt",
			"jwks": map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}}}}, 400, "invalid_client_metadata"},
		{"refused redirect URI", "/register/acme", acme, map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, 400, "invalid_redirect_uri"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.call(t, "POST", tt.path, tt.token, tt.body)
			if status != tt.status || body["error"] != tt.code {
				t.Errorf("POST %s = %d %v, want %d %s", tt.path, status, body, tt.status, tt.code)
			}
		})
	}

	status, reg := f.call(t, "POST", "/register", acme, machine) // the token names the tenant
	if status != http.StatusCreated {
		t.Fatalf("registration = %d %v", status, reg)
	}
	id, _ := reg["client_id"].(string)
	rat, _ := reg["registration_access_token"].(string)
	uri, _ := reg["registration_client_uri"].(string)
	stored := f.clients.m[id]
	if !strings.HasPrefix(id, "dcr-") || reg["client_secret"] == "" || stored.Secret != reg["client_secret"] || stored.Tenant != "acme" ||
		stored.TokenEndpointAuthMethod != "client_secret_basic" || len(stored.Scopes) != 1 || uri != "https://login.example.test/register/acme/"+id {
		t.Fatalf("registration = %v, stored %+v", reg, stored)
	}
	path := strings.TrimPrefix(uri, "https://login.example.test")
	t.Run("read with the registration access token", func(t *testing.T) {
		if status, body := f.call(t, "GET", path, rat, nil); status != 200 || body["client_id"] != id || body["client_secret"] != nil {
			t.Errorf("GET = %d %v, want 200 without the secret", status, body)
		}
	})
	for _, tok := range []string{"", acme, "rgrat_forged"} {
		if status, _ := f.call(t, "GET", path, tok, nil); status != 401 {
			t.Errorf("GET with token %q = %d, want 401", tok, status)
		}
	}
	t.Run("update", func(t *testing.T) {
		if status, _ := f.call(t, "PUT", path, rat, map[string]any{"client_id": "other"}); status != 400 {
			t.Errorf("PUT with another client_id = %d, want 400", status)
		}
		status, body := f.call(t, "PUT", path, rat, map[string]any{"client_id": id, "grant_types": []string{"client_credentials"}, "scope": "a b"})
		if status != 200 || body["scope"] != "a b" {
			t.Errorf("PUT = %d %v", status, body)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if status, _ := f.call(t, "DELETE", path, rat, nil); status != 204 {
			t.Fatalf("DELETE = %d, want 204", status)
		}
		if _, ok := f.clients.m[id]; ok {
			t.Errorf("client still stored after DELETE")
		}
		if status, _ := f.call(t, "GET", path, rat, nil); status != 401 {
			t.Errorf("GET after DELETE = %d, want 401", status)
		}
	})
}

func TestRegistration_S60_TenantBudgetNeedsAToken(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	tokens := registration.NewTokens(st, []byte("server-secret-0123456789abcdef012345"))
	h, err := registration.New(registration.Options{Issuer: "https://login.example.test", Tokens: tokens,
		Clients: &fakeClients{m: map[string]config.Client{}}, Store: st, PerIP: 1000, PerTenant: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: httptest.NewServer(h), tokens: tokens}
	t.Cleanup(f.srv.Close)
	// Unauthenticated requests naming acme do not use up acme's budget.
	for range 5 {
		if status, _ := f.call(t, "POST", "/register/acme", "", map[string]any{}); status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated registration = %d, want 401", status)
		}
	}
	tok, _, _ := tokens.CreateInitial(context.Background(), "acme", "x", time.Hour)
	machine := map[string]any{"grant_types": []string{"client_credentials"}}
	for i := range 3 {
		want := http.StatusCreated
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if status, body := f.call(t, "POST", "/register/acme", tok, machine); status != want {
			t.Errorf("registration %d = %d %v, want %d", i+1, status, body, want)
		}
	}
}

func TestRegistration_S60_RateLimited(t *testing.T) {
	f := newFixture(t, 3)
	for i := range 5 {
		status, body := f.call(t, "POST", "/register/acme", "", map[string]any{})
		want := http.StatusUnauthorized
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		if status != want {
			t.Errorf("request %d = %d %v, want %d", i+1, status, body, want)
		}
	}
}

func TestRegistration_InitialTokenLifetime(t *testing.T) {
	f := newFixture(t, 100)
	for _, d := range []time.Duration{time.Second, 31 * 24 * time.Hour} {
		if _, _, err := f.tokens.CreateInitial(context.Background(), "acme", "x", d); err == nil {
			t.Errorf("CreateInitial(%s) = nil, want an out of range error", d)
		}
	}
}
