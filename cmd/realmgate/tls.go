package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/realmgate/realmgate/config"
)

// certCheckEvery is how often, at most, a handshake looks at whether the
// certificate or key file changed.
const certCheckEvery = time.Second

// certReloader serves a certificate and key pair from files, loading them
// again when either file's size or modification time changes. A changed
// pair that does not load is logged once and the previous one kept, so a
// renewal written file by file (certificate, then key) is picked up once
// both are in place.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   fileStamp // of the files cert was loaded from, or of the last failed attempt
	checked time.Time // when the files were last looked at
}

// fileStamp identifies a version of the certificate and key files.
type fileStamp struct {
	certSize, keySize int64
	certMod, keyMod   time.Time
}

// newCertReloader loads the pair once; an error here stops the start.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: logger}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	r.cert, r.stamp, r.checked = &pair, st, time.Now()
	return r, nil
}

func (r *certReloader) stat() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS certificate file: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS key file: %w", err)
	}
	return fileStamp{certSize: c.Size(), keySize: k.Size(), certMod: c.ModTime(), keyMod: k.ModTime()}, nil
}

// GetCertificate is tls.Config.GetCertificate: the current pair, loaded
// again first when the files changed.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	st, err := r.stat()
	if err != nil {
		if r.stamp != (fileStamp{}) {
			r.log.Error("TLS certificate files unreadable; serving the previous certificate", "cert_file", r.certFile, "err", err)
			r.stamp = fileStamp{}
		}
		return
	}
	if st == r.stamp {
		return
	}
	r.stamp = st // one attempt (and one log line) per version of the files
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("new TLS certificate does not load; serving the previous one", "cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return
	}
	r.cert = &pair
	r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", pair.Leaf.NotAfter)
}

// serverTLSConfig returns the TLS configuration of a listener: TLS 1.2 or
// newer, the reloaded certificate, HTTP/2 and HTTP/1.1, and with
// client_ca_file a required, verified client certificate.
func serverTLSConfig(t *config.TLS, logger *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(t.CertFile, t.KeyFile, logger)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
	if t.ClientCAFile != "" {
		pool, err := config.LoadCAPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// withTLS wraps ln in TLS when the listener's tls block is set, and
// returns ln as it is otherwise.
func withTLS(ln net.Listener, t *config.TLS, logger *slog.Logger) (net.Listener, error) {
	if t == nil {
		return ln, nil
	}
	tc, err := serverTLSConfig(t, logger)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, tc), nil
}
