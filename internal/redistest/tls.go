package redistest

import (
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/realmgate/realmgate/internal/testcert"
)

// TLS describes the TLS side of a server StartTLS started.
type TLS struct {
	// Addr is the host:port of the TLS port.
	Addr string
	// CA is the CA that issued the server's certificate (for 127.0.0.1)
	// and Client's.
	CA *testcert.CA
	// Client is a client certificate the server accepts.
	Client *testcert.Pair
}

// ClientConfig returns a tls.Config that trusts the server's CA and
// presents Client's certificate.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	pair, err := t.Client.TLS()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: t.CA.Pool(), Certificates: []tls.Certificate{pair}}, nil
}

// TLSOptions configure StartTLS.
type TLSOptions struct {
	// RequireClientCert makes the server refuse connections without a
	// certificate issued by the CA (tls-auth-clients yes).
	RequireClientCert bool
}

// StartTLS is Start with a TLS port as well: a certificate for 127.0.0.1
// issued by a fresh CA. The plain port stays open for the package's own
// readiness checks; clients under test should dial TLS().Addr. External
// servers (EnvAddr) are not used: the test needs to know the certificates.
func StartTLS(t testing.TB, opts TLSOptions) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal(ErrNoRedis)
	}
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "redis")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("redis-server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.Client("redis-client")
	if err != nil {
		t.Fatal(err)
	}
	auth := "no"
	if opts.RequireClientCert {
		auth = "yes"
	}
	var tlsAddr string
	s, err := startServer(dir, false, func(int) []string {
		port, err := freePort()
		if err != nil {
			return nil
		}
		tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return []string{"--tls-port", strconv.Itoa(port), "--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
			"--tls-ca-cert-file", ca.File, "--tls-auth-clients", auth}
	})
	if err != nil {
		t.Fatal(fmt.Errorf("redistest: start with TLS (is redis-server built with TLS?): %w", err))
	}
	s.tls = &TLS{Addr: tlsAddr, CA: ca, Client: cl}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop redis %s: %v", s.addr, err)
		}
	})
	return s
}

// TLS returns the TLS side of a server StartTLS started; nil otherwise.
func (s *Server) TLS() *TLS { return s.tls }
