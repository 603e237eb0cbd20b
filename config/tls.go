package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// TLS serves a listener over HTTPS (TLS 1.2 or newer). Each listener has
// its own block (tls, admin_api.tls, ops.tls); without one it speaks plain
// HTTP. The certificate and key files are read again when they change (a
// renewal by cert-manager or certbot takes effect without a restart); a new
// pair that does not load is logged and the previous one kept.
type TLS struct {
	// CertFile is the PEM certificate chain: the server certificate first,
	// then any intermediates.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the certificate.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, on admin_api.tls only, turns on client-certificate
	// authentication: a PEM bundle of the CAs that issue admin clients'
	// certificates. Every connection must then present a certificate
	// issued by one of them (the handshake fails otherwise), in addition
	// to a bearer token. Read at start.
	ClientCAFile string `yaml:"client_ca_file,omitempty"`
}

// RedisTLS connects to Redis (every node and sentinel) over TLS. An empty
// block (tls: {}) verifies the servers against the system's CAs.
// Certificate verification cannot be turned off: name the servers' CA in
// ca_file instead.
type RedisTLS struct {
	// CAFile is a PEM bundle of the CAs that issue the Redis servers'
	// certificates; empty: the system's CAs.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile is a PEM client certificate, for a Redis that authenticates
	// clients by certificate (tls-auth-clients yes); set with KeyFile.
	CertFile string `yaml:"cert_file,omitempty"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file,omitempty"`
	// ServerName is the name the servers' certificates must carry; empty:
	// the host of each address (sentinels' and cluster nodes' included).
	ServerName string `yaml:"server_name,omitempty"`
}

// ClientConfig returns the tls.Config that connects to Redis with r.
func (r *RedisTLS) ClientConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.ServerName}
	if r.CAFile != "" {
		pool, err := LoadCAPool(r.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if r.CertFile != "" || r.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// LoadCAPool reads a PEM bundle of CA certificates.
func LoadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// listenerTLS checks one listener's tls block at path; clientCA tells
// whether client_ca_file is allowed there.
func (k *checker) listenerTLS(t *TLS, path string, clientCA bool) {
	if t == nil {
		return
	}
	ok := true
	if strings.TrimSpace(t.CertFile) == "" {
		k.add(path+".cert_file", "is required: the PEM certificate chain to serve")
		ok = false
	}
	if strings.TrimSpace(t.KeyFile) == "" {
		k.add(path+".key_file", "is required: the PEM private key of cert_file")
		ok = false
	}
	if ok {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			k.add(path, "certificate and key do not load: %v", err)
		}
	}
	switch {
	case t.ClientCAFile == "":
	case !clientCA:
		k.add(path+".client_ca_file", "is supported on admin_api.tls only")
	default:
		if _, err := LoadCAPool(t.ClientCAFile); err != nil {
			k.add(path+".client_ca_file", "%v", err)
		}
	}
}

// redisTLS checks store.redis.tls.
func (k *checker) redisTLS() {
	r := k.c.Store.Redis.TLS
	if r == nil {
		return
	}
	const path = "store.redis.tls"
	if r.CAFile != "" {
		if _, err := LoadCAPool(r.CAFile); err != nil {
			k.add(path+".ca_file", "%v", err)
		}
	}
	switch {
	case r.CertFile == "" && r.KeyFile == "":
	case r.CertFile == "" || r.KeyFile == "":
		k.add(path, "cert_file and key_file go together: set both for a client certificate, or neither")
	default:
		if _, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile); err != nil {
			k.add(path, "client certificate and key do not load: %v", err)
		}
	}
}

// tlsSettings checks every tls block and the previous secrets.
func (k *checker) tlsSettings() {
	k.listenerTLS(k.c.TLS, "tls", false)
	k.listenerTLS(k.c.AdminAPI.TLS, "admin_api.tls", true)
	k.listenerTLS(k.c.Ops.TLS, "ops.tls", false)
	k.redisTLS()
	if k.c.Store.Redis.SentinelPassword != "" && k.c.Store.Redis.MasterName == "" {
		k.add("store.redis.sentinel_password", "has no effect without master_name (Sentinel mode)")
	}
	if k.c.Store.Redis.SentinelUsername != "" && k.c.Store.Redis.MasterName == "" {
		k.add("store.redis.sentinel_username", "has no effect without master_name (Sentinel mode)")
	}
	for i, s := range k.c.Keys.PreviousSecrets {
		p := fmt.Sprintf("keys.previous_secrets[%d]", i)
		switch {
		case k.c.Keys.Secret == "":
			k.add(p, "previous secrets need keys.secret: the current secret that new writes use")
		case len(s) < 32:
			k.add(p, "must be at least 32 characters, like keys.secret")
		case s == k.c.Keys.Secret:
			k.add(p, "is keys.secret itself: list only secrets used before it")
		}
	}
}
