package redistest

import (
	"bufio"
	"crypto/tls"
	"testing"
	"time"
)

// tlsPing sends PING over a TLS connection made with tc.
func tlsPing(addr string, tc *tls.Config) (string, error) {
	conn, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

func TestStartTLS(t *testing.T) {
	s := StartTLS(t, TLSOptions{RequireClientCert: true})
	tc, err := s.TLS().ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tlsPing(s.TLS().Addr, tc); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS with a client certificate = %q, %v; want PONG", got, err)
	}
	noCert := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.TLS().CA.Pool()}
	if got, err := tlsPing(s.TLS().Addr, noCert); err == nil {
		t.Errorf("PING over TLS without a client certificate = %q, want an error (tls-auth-clients yes)", got)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := tlsPing(s.TLS().Addr, tc); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS after Restart = %q, %v; want PONG", got, err)
	}
}
