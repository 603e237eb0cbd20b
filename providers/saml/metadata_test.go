package saml

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers"
)

// TestSAML_MetadataURLRefreshAndRollover: metadata from a URL is fetched on
// first use, fetched again in the background after the refresh interval
// (picking up a new certificate: both verify during the overlap), and kept
// when a refresh fails, which is retried only after metadataRetry.
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
	// The login that finds the copy stale is served from it and starts the
	// refresh in the background.
	if _, err := call(t, c, signedBy(&resp{})); err != nil {
		t.Fatalf("login that starts the refresh: %v", err)
	}
	c.idp.bg.Wait()
	for _, k := range []*resp{{}, {key: idpKeyB, cert: idpCertB}} {
		if _, err := call(t, c, signedBy(k)); err != nil {
			t.Fatalf("during rollover overlap: %v", err)
		}
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	advance(2 * time.Hour)
	for i := range 3 {
		if _, err := call(t, c, signedBy(&resp{key: idpKeyB, cert: idpCertB})); err != nil {
			t.Fatalf("refresh failed, previous metadata should be kept (login %d): %v", i, err)
		}
		c.idp.bg.Wait()
	}
	mu.Lock()
	got := fetches
	mu.Unlock()
	if got != 3 {
		t.Errorf("metadata fetched %d times, want 3 (first use, a refresh, one failed refresh not retried yet)", got)
	}
	advance(metadataRetry)
	if _, err := call(t, c, signedBy(&resp{key: idpKeyB, cert: idpCertB})); err != nil {
		t.Fatal(err)
	}
	c.idp.bg.Wait()
	mu.Lock()
	got = fetches
	mu.Unlock()
	if got != 4 {
		t.Errorf("metadata fetched %d times, want 4 (the failed refresh retried after %s)", got, metadataRetry)
	}
}

// TestSAML_MetadataExpiry: metadata past its validUntil is not used: it is
// fetched before the login goes on, and when that fails the login fails
// as unavailable rather than trust expired keys.
func TestSAML_MetadataExpiry(t *testing.T) {
	testKeys(t)
	var mu sync.Mutex
	fail, fetches := false, 0
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		md := strings.Replace(idpMetadataXML(idpCertA), `<EntityDescriptor ID="_md"`,
			`<EntityDescriptor validUntil="`+clock().Add(time.Hour).UTC().Format(time.RFC3339)+`" ID="_md"`, 1)
		_, _ = w.Write([]byte(md))
	}))
	defer srv.Close()
	c := newTestConnector(t, func(cfg *Config) {
		cfg.IdPMetadata, cfg.IdPMetadataURL, cfg.RefreshInterval, cfg.Now = nil, srv.URL, 24*time.Hour, clock
	})
	ctx := context.Background()
	if _, _, err := c.LoginURL(ctx, providers.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("first LoginURL: %v", err)
	}
	clockMu.Lock()
	now = now.Add(90 * time.Minute) // past validUntil, well within the refresh interval
	clockMu.Unlock()
	if _, _, err := c.LoginURL(ctx, providers.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL after expiry: %v", err)
	}
	mu.Lock()
	if fetches != 2 {
		t.Errorf("metadata fetched %d times, want 2 (first use, expiry)", fetches)
	}
	fail = true
	mu.Unlock()
	clockMu.Lock()
	now = now.Add(90 * time.Minute)
	clockMu.Unlock()
	if _, _, err := c.LoginURL(ctx, providers.LoginRequest{State: "s"}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("LoginURL with expired metadata and the IdP down = %v, want ErrUnavailable", err)
	}
}

func TestSAML_MetadataUnavailable(t *testing.T) {
	c := newTestConnector(t, func(cfg *Config) { cfg.IdPMetadata, cfg.IdPMetadataURL = nil, "http://127.0.0.1:1/md" })
	if _, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "s"}); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("LoginURL with metadata unreachable = %v, want ErrUnavailable", err)
	}
}
