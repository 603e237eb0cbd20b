package saml

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers"
)

// TestSAML_MetadataURLRefreshAndRollover: metadata from a URL is fetched on
// first use, fetched again after the refresh interval (picking up a new
// certificate: both verify during the overlap), and kept when a refresh fails.
func TestSAML_MetadataURLRefreshAndRollover(t *testing.T) {
	testKeys(t)
	var mu sync.Mutex
	certs, fail, fetches := []*x509.Certificate{idpCertA}, false, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(idpMetadataXML(certs...)))
	}))
	defer srv.Close()
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	c := newTestConnector(t, func(cfg *Config) {
		cfg.IdPMetadata, cfg.IdPMetadataURL, cfg.RefreshInterval, cfg.Now = nil, srv.URL, time.Hour, clock
	})
	prev := crewjam.TimeNow
	crewjam.TimeNow = clock // the library's own clock for IssueInstant
	t.Cleanup(func() { crewjam.TimeNow = prev })
	signedBy := func(k *resp) string {
		k.now, k.inResponseTo, k.signAssertion = clock().UTC(), reqID, true
		return encodeDoc(t, k.build(t))
	}

	if _, err := call(t, c, signedBy(&resp{})); err != nil {
		t.Fatalf("first login: %v", err)
	}
	if _, err := call(t, c, signedBy(&resp{key: idpKeyB, cert: idpCertB})); !errors.Is(err, providers.ErrInvalidResponse) {
		t.Fatalf("new key before the IdP published it = %v, want refusal", err)
	}
	mu.Lock()
	certs = []*x509.Certificate{idpCertA, idpCertB}
	mu.Unlock()
	advance(2 * time.Hour)
	for _, k := range []*resp{{}, {key: idpKeyB, cert: idpCertB}} {
		if _, err := call(t, c, signedBy(k)); err != nil {
			t.Fatalf("during rollover overlap: %v", err)
		}
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	advance(2 * time.Hour)
	if _, err := call(t, c, signedBy(&resp{key: idpKeyB, cert: idpCertB})); err != nil {
		t.Fatalf("refresh failed, previous metadata should be kept: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fetches != 3 {
		t.Errorf("metadata fetched %d times, want 3 (first use, two refreshes)", fetches)
	}
}

func TestSAML_MetadataUnavailable(t *testing.T) {
	c := newTestConnector(t, func(cfg *Config) { cfg.IdPMetadata, cfg.IdPMetadataURL = nil, "http://127.0.0.1:1/md" })
	if _, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "s"}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("LoginURL with metadata unreachable = %v, want ErrUnavailable", err)
	}
}
