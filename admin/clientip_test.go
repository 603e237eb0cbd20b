package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
)

// TestAdmin_S73_ForwardedForOnlyFromTrustedProxies: the IP an admin audit
// event names is the connection's peer; a client's X-Forwarded-For or
// X-Real-IP is believed only when the peer is a configured trusted proxy
// (the broker's rule), for changes and for denied requests alike.
func TestAdmin_S73_ForwardedForOnlyFromTrustedProxies(t *testing.T) {
	const spoofed, real = "203.0.113.66", "198.51.100.7"
	for i, tc := range []struct {
		name    string
		trusted []netip.Prefix
		headers map[string]string
		wantIP  string
	}{
		{"no trusted proxies, spoofed X-Forwarded-For", nil,
			map[string]string{"X-Forwarded-For": spoofed}, "127.0.0.1"},
		{"no trusted proxies, spoofed X-Real-IP", nil,
			map[string]string{"X-Real-IP": spoofed}, "127.0.0.1"},
		{"peer is not the trusted proxy", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			map[string]string{"X-Forwarded-For": spoofed}, "127.0.0.1"},
		{"trusted proxy forwards the client", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			map[string]string{"X-Forwarded-For": real}, real},
		{"trusted proxy appends to a client's forged header", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			map[string]string{"X-Forwarded-For": spoofed + ", " + real}, real},
		{"trusted proxy, X-Real-IP is never read", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			map[string]string{"X-Real-IP": spoofed}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.trusted = tc.trusted
			a := e.instance()
			do := func(token, method, path string, body any) int {
				t.Helper()
				b, _ := json.Marshal(body)
				req, _ := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				resp, err := a.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			id := "t" + string(rune('a'+i))
			if got := do(opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: id, RedirectURIs: []string{"https://c.test/cb"}}}); got != http.StatusCreated {
				t.Fatalf("POST /v1/clients = %d, want 201", got)
			}
			if got := do(alphaToken, "GET", "/v1/tenants/filecorp", nil); got != http.StatusForbidden {
				t.Fatalf("alpha admin reading filecorp = %d, want 403", got)
			}
			seen := map[string]bool{}
			for _, ev := range a.audit.events(t) {
				switch ev["event"] {
				case "admin.change":
					seen["change"] = true
					if ev["ip"] != tc.wantIP {
						t.Errorf("admin.change ip = %v, want %s", ev["ip"], tc.wantIP)
					}
				case "admin.denied":
					seen["denied"] = true
					if ev["ip"] != tc.wantIP {
						t.Errorf("admin.denied ip = %v, want %s", ev["ip"], tc.wantIP)
					}
				}
			}
			if !seen["change"] || !seen["denied"] {
				t.Fatalf("audit events seen %v, want an admin.change and an admin.denied:\n%s", seen, a.audit)
			}
		})
	}
}
