package oidc

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/providers"
)

func TestNew_ConfigValidation(t *testing.T) {
	ok := Config{ID: "idp", Issuer: "https://login.example", ClientID: "c"}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"valid loopback http", func(c *Config) { c.Issuer = "http://127.0.0.1:8080/realms/x" }, true},
		{"valid entra template", func(c *Config) {
			c.Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
			c.AllowedTenants = []string{"11111111-2222-3333-4444-555555555555"}
		}, true},
		{"no id", func(c *Config) { c.ID = "" }, false},
		{"no client id", func(c *Config) { c.ClientID = "" }, false},
		{"no issuer", func(c *Config) { c.Issuer = "" }, false},
		{"relative issuer", func(c *Config) { c.Issuer = "/login" }, false},
		{"http issuer", func(c *Config) { c.Issuer = "http://login.example" }, false},
		{"issuer with query", func(c *Config) { c.Issuer = "https://login.example?x=1" }, false},
		{"issuer with fragment", func(c *Config) { c.Issuer = "https://login.example#x" }, false},
		{"placeholder in host", func(c *Config) { c.Issuer = "https://{tenantid}.example/v2.0" }, false},
		{"two placeholders", func(c *Config) { c.Issuer = "https://l.example/{tenantid}/{tenantid}" }, false},
		{"allowed tenants without template", func(c *Config) { c.AllowedTenants = []string{"11111111-2222-3333-4444-555555555555"} }, false},
		{"allowed tenant not a guid", func(c *Config) {
			c.Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
			c.AllowedTenants = []string{"contoso.com"}
		}, false},
		{"reserved extra param", func(c *Config) { c.ExtraAuthParams = map[string]string{"nonce": "x"} }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, false},
		{"bad scope", func(c *Config) { c.Scopes = []string{"openid email"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(cfg)
			if tt.ok && err != nil {
				t.Fatalf("New(%+v) = %v, want success", cfg, err)
			}
			if !tt.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("New(%+v) = %v, want ErrConfig", cfg, err)
			}
		})
	}
}

func TestNew_ScopesAndTimeoutDefaults(t *testing.T) {
	c, err := New(Config{ID: "idp", Issuer: "https://login.example", ClientID: "c", Scopes: []string{"email"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.scopes) != 2 || c.scopes[0] != "openid" || c.scopes[1] != "email" {
		t.Errorf("scopes = %q, want [openid email]", c.scopes)
	}
	if c.timeout != DefaultTimeout || c.client.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v / client %v, want %v", c.timeout, c.client.Timeout, DefaultTimeout)
	}
	// A caller's client without a timeout gets ours; the caller's is untouched.
	hc := &http.Client{}
	c, err = New(Config{ID: "idp", Issuer: "https://login.example", ClientID: "c", HTTPClient: hc, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.client.Timeout != time.Second || hc.Timeout != 0 {
		t.Errorf("client timeout = %v (caller's %v), want 1s (caller's 0)", c.client.Timeout, hc.Timeout)
	}
}

// TestDiscovery_LazyAndRetried proves an IdP that is down when the broker
// starts does not stop it: New makes no call, a login fails with
// ErrUnavailable, and a later login retries discovery and then caches it.
func TestDiscovery_LazyAndRetried(t *testing.T) {
	op := newOP(t)
	op.set(func(op *fakeOP) { op.discoveryStatus = http.StatusServiceUnavailable })
	c := op.connector(t)
	if n := op.discoveryHits.Load(); n != 0 {
		t.Fatalf("New made %d discovery calls, want 0", n)
	}
	_, _, err := c.LoginURL(context.Background(), newLoginRequest(t))
	wantErr(t, "IdP down", err, providers.ErrUnavailable, "discovery")

	op.set(func(op *fakeOP) { op.discoveryStatus = 0 })
	for i := range 3 {
		if _, _, err := c.LoginURL(context.Background(), newLoginRequest(t)); err != nil {
			t.Fatalf("LoginURL #%d after recovery: %v", i, err)
		}
	}
	if n := op.discoveryHits.Load(); n != 2 {
		t.Errorf("discovery calls = %d, want 2 (one failed, one cached)", n)
	}
}

func TestDiscovery_Hang(t *testing.T) {
	op := newOP(t)
	op.set(func(op *fakeOP) { op.discoveryHang = true })
	c := op.connector(t, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	start := time.Now()
	_, _, err := c.LoginURL(context.Background(), newLoginRequest(t))
	wantErr(t, "discovery hang", err, providers.ErrUnavailable, "")
	// Under DefaultTimeout (10 s): the bound tells the configured timeout
	// from the default with room for a busy machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hanging discovery took %v, want about the 200ms timeout", d)
	}
	// A caller whose own context ends first returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err = c.LoginURL(ctx, newLoginRequest(t))
	wantErr(t, "caller deadline", err, providers.ErrUnavailable, "")
}

func TestDiscovery_NotReachable(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	op.srv.Close()
	_, _, err := c.LoginURL(context.Background(), newLoginRequest(t))
	wantErr(t, "closed server", err, providers.ErrUnavailable, "")
}

func TestCallback_Concurrent(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	reqs := make([]providers.LoginRequest, 8)
	for i := range reqs {
		reqs[i] = newLoginRequest(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.LoginURL(context.Background(), reqs[i]); err != nil {
				errs[i] = err
				return
			}
			// Verification shares the key set; the fake OP's token endpoint
			// is single-valued, so verify the ID tokens directly.
			md, err := c.discover(context.Background())
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.verifyIDToken(context.Background(), md, signRS(t, op.claims(reqs[i])), reqs[i].Nonce, testAccessToken)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("login %d: %v", i, err)
		}
	}
	if n := op.discoveryHits.Load(); n != 1 {
		t.Errorf("discovery calls = %d for concurrent logins, want 1", n)
	}
}
