package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/internal/testcert"

	. "github.com/realmgate/realmgate/config"
)

// tlsFiles writes a CA, a server pair and a client pair for the tests.
func tlsFiles(t *testing.T) (ca *testcert.CA, server, client *testcert.Pair) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ca.Server("server", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if client, err = ca.Client("client"); err != nil {
		t.Fatal(err)
	}
	return ca, server, client
}

func TestTLS_Parse(t *testing.T) {
	ca, srv, cl := tlsFiles(t)
	c, err := Parse("tls.yaml", []byte(opsBase+fmt.Sprintf(`tls: {cert_file: %[1]q, key_file: %[2]q}
ops:
  tls: {cert_file: %[1]q, key_file: %[2]q}
admin_api:
  listen: 0.0.0.0:8443
  tls: {cert_file: %[1]q, key_file: %[2]q, client_ca_file: %[3]q}
  tokens:
    - name: ops
      token: 0123456789abcdef0123456789abcdef
keys:
  secret: current-0123456789abcdef0123456789abcdef
  previous_secrets: [older-0123456789abcdef0123456789abcdef]
store:
  type: redis
  redis:
    addrs: [127.0.0.1:6380]
    master_name: mymaster
    sentinel_username: sentinel-user
    sentinel_password: sentinel-password
    tls: {ca_file: %[3]q, cert_file: %[4]q, key_file: %[5]q, server_name: redis.internal}
`, srv.CertFile, srv.KeyFile, ca.File, cl.CertFile, cl.KeyFile)), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for name, got := range map[string]*TLS{"tls": c.TLS, "ops.tls": c.Ops.TLS, "admin_api.tls": c.AdminAPI.TLS} {
		if got == nil || got.CertFile != srv.CertFile || got.KeyFile != srv.KeyFile {
			t.Errorf("%s = %+v, want the server pair", name, got)
		}
	}
	if c.AdminAPI.TLS.ClientCAFile != ca.File {
		t.Errorf("admin_api.tls.client_ca_file = %q, want %q", c.AdminAPI.TLS.ClientCAFile, ca.File)
	}
	r := c.Store.Redis
	if r.SentinelUsername != "sentinel-user" || r.SentinelPassword != "sentinel-password" || len(c.Keys.PreviousSecrets) != 1 {
		t.Errorf("redis = %+v, keys = %+v; want sentinel credentials and one previous secret", r, c.Keys)
	}
	tc, err := r.TLS.ClientConfig()
	if err != nil {
		t.Fatalf("ClientConfig() = %v", err)
	}
	if tc.ServerName != "redis.internal" || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion < 0x0303 || tc.InsecureSkipVerify {
		t.Errorf("ClientConfig() = %+v, want server name, CA, client certificate, TLS 1.2+, verification on", tc)
	}
	if w := strings.Join(c.Warnings(), "\n"); strings.Contains(w, "admin_api.listen") {
		t.Errorf("Warnings() = %q: the admin API on a public address with TLS is not plain HTTP", w)
	}
}

func TestTLS_Problems(t *testing.T) {
	ca, srv, cl := tlsFiles(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := fmt.Sprintf("{cert_file: %q, key_file: %q}", srv.CertFile, srv.KeyFile)
	const secret = "keys:\n  secret: current-0123456789abcdef0123456789abcdef\n"
	for _, tc := range []struct {
		name, yaml, field, msg string
	}{
		{"no key file", fmt.Sprintf("tls: {cert_file: %q}\n", srv.CertFile), "tls.key_file", "is required"},
		{"no cert file", fmt.Sprintf("ops:\n  tls: {key_file: %q}\n", srv.KeyFile), "ops.tls.cert_file", "is required"},
		{"missing file", "tls: {cert_file: /nonexistent.pem, key_file: /nonexistent-key.pem}\n", "tls", "do not load"},
		{"key of another certificate", fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", srv.CertFile, cl.KeyFile), "tls", "do not load"},
		{"client CA on the main listener", fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_file: %q}\n", srv.CertFile, srv.KeyFile, ca.File),
			"tls.client_ca_file", "admin_api.tls only"},
		{"client CA not PEM", fmt.Sprintf("admin_api:\n  tls: {cert_file: %q, key_file: %q, client_ca_file: %q}\n  tokens: [{name: a, token: 0123456789abcdef0123456789abcdef}]\n",
			srv.CertFile, srv.KeyFile, junk), "admin_api.tls.client_ca_file", "no PEM certificate"},
		{"admin tls without tokens", "admin_api:\n  tls: " + pair + "\n", "admin_api.tokens", "at least one token"},
		{"redis CA not PEM", fmt.Sprintf("store:\n  type: redis\n  redis:\n    addrs: [127.0.0.1:6379]\n    tls: {ca_file: %q}\n", junk), "store.redis.tls.ca_file", "no PEM certificate"},
		{"redis cert without key", fmt.Sprintf("store:\n  type: redis\n  redis:\n    addrs: [127.0.0.1:6379]\n    tls: {cert_file: %q}\n", cl.CertFile), "store.redis.tls", "go together"},
		{"redis skip verify", "store:\n  type: redis\n  redis:\n    addrs: [127.0.0.1:6379]\n    tls: {insecure_skip_verify: true}\n", "store.redis.tls.insecure_skip_verify", "unknown field"},
		{"sentinel password without sentinel", "store:\n  type: redis\n  redis:\n    addrs: [127.0.0.1:6379]\n    sentinel_password: p\n", "store.redis.sentinel_password", "master_name"},
		{"previous secret without a secret", "keys:\n  previous_secrets: [older-0123456789abcdef0123456789abcdef]\n", "keys.previous_secrets[0]", "need keys.secret"},
		{"short previous secret", secret + "  previous_secrets: [short]\n", "keys.previous_secrets[0]", "at least 32"},
		{"previous secret is the current one", secret + "  previous_secrets: [current-0123456789abcdef0123456789abcdef]\n", "keys.previous_secrets[0]", "keys.secret itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("tls.yaml", []byte(opsBase+tc.yaml), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					if p.Line == 0 {
						t.Errorf("problem %v has no line", p)
					}
					return
				}
			}
			t.Errorf("Parse problems = %v, want %s: ...%s...", err, tc.field, tc.msg)
		})
	}
}
