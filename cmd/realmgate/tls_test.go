package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/testcert"
)

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tlsGet makes one request on a new connection with tc and returns the
// status and the serial number of the certificate the server presented.
func tlsGet(url, token string, tc *tls.Config) (int, *big.Int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return 0, nil, fmt.Errorf("GET %s: not over TLS", url)
	}
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// TestServe_TLS is the acceptance: serve answers over TLS on the
// main, admin and ops listeners with a generated certificate, and when the
// certificate and key files are replaced, new connections get the new
// certificate without a restart; a replacement that does not load keeps
// the previous one. TLS 1.1 is refused. The admin listener with
// client_ca_file refuses a client without a certificate, or with one from
// another CA, and serves one with a certificate from its CA.
func TestServe_TLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	certA, err := ca.Server("cert-a", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certB, err := ca.Server("cert-b", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := testcert.NewCA(dir, "admins")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientCA.Client("admin")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testcert.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := otherCA.Client("stranger")
	if err != nil {
		t.Fatal(err)
	}
	// The files serve reads: cert A first.
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	install := func(p *testcert.Pair) {
		t.Helper()
		if err := os.WriteFile(certFile, p.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install(certA)

	mainAddr, adminAddr, opsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgFile := filepath.Join(dir, "realmgate.yaml")
	tlsBlock := fmt.Sprintf("{cert_file: %q, key_file: %q}", certFile, keyFile)
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`issuer: https://%[1]s
listen: %[1]s
tls: %[4]s
store:
  type: memory
keys:
  secret: 0123456789abcdef0123456789abcdef-tls-test
admin_api:
  listen: %[2]s
  tls: {cert_file: %[5]q, key_file: %[6]q, client_ca_file: %[7]q}
  tokens:
    - name: ops
      token: %[8]s
ops:
  listen: %[3]s
  tls: %[4]s
`, mainAddr, adminAddr, opsAddr, tlsBlock, certFile, keyFile, clientCA.File, testOpToken)), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var logs e2etest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- serveUntil(ctx, []string{"--config", cfgFile, "--log-format", "text"}, io.Discard, &logs)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d; logs:\n%s", code, logs.Tail(3000))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop within 30s of its context ending")
		}
	}()

	adminPair, err := admin.TLS()
	if err != nil {
		t.Fatal(err)
	}
	strangerPair, err := stranger.TLS()
	if err != nil {
		t.Fatal(err)
	}
	trust := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	urls := map[string]string{
		"main":  "https://" + mainAddr + "/.well-known/openid-configuration",
		"admin": "https://" + adminAddr + "/v1/status",
		"ops":   "https://" + opsAddr + "/healthz",
	}
	// serves returns nil once every listener answers 200 with the certificate of want.
	serves := func(want *x509.Certificate) error {
		for name, url := range urls {
			code, serial, err := tlsGet(url, testOpToken, trust(adminPair))
			if err != nil {
				return fmt.Errorf("%s listener: %w", name, err)
			}
			if code != http.StatusOK {
				return fmt.Errorf("%s listener: GET %s = %d, want 200", name, url, code)
			}
			if serial.Cmp(want.SerialNumber) != 0 {
				return fmt.Errorf("%s listener serves certificate %x, want %x", name, serial, want.SerialNumber)
			}
		}
		return nil
	}
	const deadline = 30 * time.Second // generous: a busy machine; the reload itself takes a second at most

	within(t, deadline, "serving certificate A on every listener", func() error { return serves(certA.Cert) })

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		for name, url := range urls {
			tc := trust(adminPair)
			tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			if code, _, err := tlsGet(url, testOpToken, tc); err == nil {
				t.Errorf("%s listener: TLS 1.1 request = %d, want a handshake failure", name, code)
			}
		}
	})
	t.Run("admin client certificates", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			certs []tls.Certificate
			ok    bool
		}{
			{"none", nil, false},
			{"from another CA", []tls.Certificate{strangerPair}, false},
			{"from client_ca_file", []tls.Certificate{adminPair}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, err := tlsGet(urls["admin"], testOpToken, trust(tc.certs...))
				if tc.ok && (err != nil || code != http.StatusOK) {
					t.Fatalf("GET /v1/status with a client certificate = %d, %v; want 200", code, err)
				}
				if !tc.ok && err == nil {
					t.Fatalf("GET /v1/status = %d, want a TLS failure", code)
				}
			})
		}
		// The other listeners ask for no client certificate.
		if code, _, err := tlsGet(urls["ops"], "", trust()); err != nil || code != http.StatusOK {
			t.Errorf("ops listener without a client certificate = %d, %v; want 200", code, err)
		}
	})
	t.Run("certificate replaced without restart", func(t *testing.T) {
		install(certB)
		within(t, deadline, "serving certificate B on every listener", func() error { return serves(certB.Cert) })
	})
	t.Run("a replacement that does not load keeps the previous certificate", func(t *testing.T) {
		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Each handshake may look at the files; every listener logs the bad pair once.
		within(t, deadline, "the bad certificate logged by every listener", func() error {
			if err := serves(certB.Cert); err != nil {
				t.Fatalf("after a bad replacement: %v, want certificate B still served", err)
			}
			if n := strings.Count(logs.String(), "new TLS certificate does not load"); n != len(urls) {
				return fmt.Errorf("%d listeners logged the bad certificate, want %d", n, len(urls))
			}
			return nil
		})
	})
}
