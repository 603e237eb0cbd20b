package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/e2etest"
)

// TestAdmin_S73_ServeAppliesTrustedProxies: the admin API that serve starts
// takes the client IP by the broker's rule from the same trusted_proxies:
// a spoofed X-Forwarded-For from an untrusted peer is not what the admin
// audit event records; the same header from a trusted proxy is.
func TestAdmin_S73_ServeAppliesTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, wantIP string
	}{
		{"no trusted proxies", "", "127.0.0.1"},
		{"another network trusted", "trusted_proxies: [10.0.0.0/8]\n", "127.0.0.1"},
		{"loopback proxy trusted", "trusted_proxies: [127.0.0.1/32]\n", "203.0.113.66"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := fmt.Sprintf(`issuer: http://127.0.0.1:9
%skeys:
  secret: 0123456789abcdef0123456789abcdef-test
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
`, tc.trusted, testOpToken)
			cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			var logs e2etest.SyncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			st := memstore.New()
			t.Cleanup(func() { st.Close() })
			_, a := startWithAdmin(t, ctx, cancel, cfg, st, slog.New(slog.NewJSONHandler(&logs, nil)))

			body, _ := json.Marshal(map[string]any{"id": "app", "redirect_uris": []string{"https://app.test/cb"}})
			req, _ := http.NewRequest(http.MethodPost, "http://"+a.Addr+"/v1/clients", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testOpToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", "203.0.113.66")
			req.Header.Set("X-Real-IP", "203.0.113.77")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST /v1/clients = %d, want 201", resp.StatusCode)
			}
			found := false
			for _, line := range strings.Split(logs.String(), "\n") {
				var ev map[string]any
				if json.Unmarshal([]byte(line), &ev) != nil || ev["event"] != "admin.change" {
					continue
				}
				found = true
				if ev["ip"] != tc.wantIP {
					t.Errorf("admin.change ip = %v, want %s", ev["ip"], tc.wantIP)
				}
			}
			if !found {
				t.Fatalf("no admin.change event in:\n%s", logs.String())
			}
		})
	}
}
