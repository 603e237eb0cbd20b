package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/scim"
	"github.com/realmgate/realmgate/users"
)

// TestSCIM_MainListener: a token made through the admin API provisions a
// user on <issuer>/scim/v2/<tenant>/ of the main listener, where the
// broker's own routes still answer; another tenant's path refuses it.
func TestSCIM_MainListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	yaml := `issuer: ` + ts.URL + `
keys:
  secret: 0123456789abcdef0123456789abcdef-test
clients:
  - id: app
    secret: app-secret-0123456789abcdef
    redirect_uris: [https://app.test/cb]
tenants:
  - id: filecorp
    domains: [file.test]
    providers:
      - id: file-idp
        type: oidc
        issuer: https://idp.file.test
        client_id: realmgate
        client_secret: file-upstream-secret
  - id: othercorp
    domains: [other.test]
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: ` + testOpToken + `
`
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	srv, api := startWithAdmin(t, ctx, cancel, cfg, st, logger)
	h = mainHandler(cfg, st, srv, logger, logger)

	call := func(method, url, token string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, url, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, created := call("POST", "http://"+api.Addr+"/v1/tenants/filecorp/scim/tokens", testOpToken, map[string]string{"name": "entra"})
	if status != http.StatusCreated {
		t.Fatalf("create token = %d %v", status, created)
	}
	token, endpoint := created["token"].(string), created["endpoint"].(string)
	if endpoint != ts.URL+"/scim/v2/filecorp" {
		t.Errorf("endpoint = %q", endpoint)
	}
	status, u := call("POST", endpoint+"/Users", token, map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "fred@file.test",
		"emails": []map[string]any{{"value": "fred@file.test", "primary": true}}})
	if status != http.StatusCreated || u["id"] == nil {
		t.Fatalf("POST /Users = %d %v", status, u)
	}
	// The endpoint writes through the broker's own directory (one per
	// process): what its revoker sees is what SCIM deprovisions.
	rec := &recordingRevoker{}
	srv.Users().SetRevoker(rec)
	status, _ = call("PATCH", endpoint+"/Users/"+u["id"].(string), token, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "Replace", "path": "active", "value": "False"}}})
	if status != http.StatusOK {
		t.Fatalf("PATCH active False = %d", status)
	}
	if got := rec.list(); len(got) != 1 || got[0] != u["id"].(string)+" deprovisioned" {
		t.Errorf("the broker directory's revoker saw %q, want the SCIM deprovisioning of %s", got, u["id"])
	}
	srv.Users().SetRevoker(srv)
	if status, _ := call("GET", ts.URL+"/scim/v2/othercorp/Users", token, nil); status != http.StatusUnauthorized {
		t.Errorf("filecorp's token on othercorp = %d, want 401", status)
	}
	resp, err := http.Get(ts.URL + "/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery next to SCIM: %v %v", resp, err)
	}
	resp.Body.Close()
}

// recordingRevoker records the users a directory revokes.
type recordingRevoker struct {
	mu  sync.Mutex
	got []string
}

func (r *recordingRevoker) RevokeUser(_ context.Context, u *users.User, _, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, u.ID+" "+reason)
	return nil
}

func (r *recordingRevoker) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestSCIM_LimitsFromConfig: the file's scim section sets the endpoint's
// throttles: with failures_per_ip 2/1m the third request with a wrong
// token from one IP gets 429 (the default allows 30).
func TestSCIM_LimitsFromConfig(t *testing.T) {
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	yaml := `issuer: ` + ts.URL + `
keys:
  secret: 0123456789abcdef0123456789abcdef-test
scim:
  failures_per_ip: 2/1m
  requests_per_tenant: off
tenants:
  - id: filecorp
    domains: [file.test]
`
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := scimLimits(cfg.SCIM); got.FailuresPerIP.Limit != 2 || got.FailuresPerIP.Window != time.Minute || got.RequestsPerTenant.Limit != -1 {
		t.Fatalf("scimLimits = %+v, want failures 2/1m and requests off", got)
	}
	if got := scimLimits(config.DefaultSCIM); *got != scim.DefaultLimits {
		t.Errorf("the file's defaults = %+v, want scim.DefaultLimits %+v", *got, scim.DefaultLimits)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memstore.New()
	srv, err := buildBroker(t.Context(), cfg, st, logger, logger)
	if err != nil {
		t.Fatal(err)
	}
	h = mainHandler(cfg, st, srv, logger, logger)
	var got []int
	for range 3 {
		req, _ := http.NewRequest("GET", ts.URL+"/scim/v2/filecorp/Users", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, resp.StatusCode)
	}
	if got[0] != http.StatusUnauthorized || got[2] != http.StatusTooManyRequests {
		t.Errorf("three requests with a wrong token = %v, want 401 first and 429 third", got)
	}
}
