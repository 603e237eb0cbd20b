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

// mdServer is a loopback IdP metadata host that counts fetches and serves
// what the test sets.
type mdServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    string
	status  int
	hold    chan struct{} // when set, a fetch waits until it is closed
	fetches int
}

func newMDServer(t *testing.T, body string) *mdServer {
	t.Helper()
	m := &mdServer{body: body}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.fetches++
		body, status, hold := m.body, m.status, m.hold
		m.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			http.Error(w, "down", status)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mdServer) set(body string, status int) {
	m.mu.Lock()
	m.body, m.status = body, status
	m.mu.Unlock()
}

func (m *mdServer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fetches
}

// manualClock is a connector clock the test moves by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (k *manualClock) Now() time.Time { k.mu.Lock(); defer k.mu.Unlock(); return k.now }

func (k *manualClock) advance(d time.Duration) { k.mu.Lock(); k.now = k.now.Add(d); k.mu.Unlock() }

// withValidUntil puts validUntil (and cacheDuration, when not empty) on the
// EntityDescriptor of idpMetadataXML-shaped metadata.
func withValidUntil(md string, until time.Time, cacheDuration string) string {
	attrs := `validUntil="` + until.UTC().Format(time.RFC3339) + `"`
	if cacheDuration != "" {
		attrs += ` cacheDuration="` + cacheDuration + `"`
	}
	return strings.Replace(md, `<EntityDescriptor ID="_md"`, `<EntityDescriptor `+attrs+` ID="_md"`, 1)
}

// inEntities wraps an EntityDescriptor document in an EntitiesDescriptor
// with the given attributes.
func inEntities(md, attrs string) string {
	md = strings.Replace(md, `<?xml version="1.0" encoding="utf-8"?>`, "", 1)
	return `<EntitiesDescriptor ` + attrs + ` xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + md + `</EntitiesDescriptor>`
}

// TestMetadata_S41_ExpiredRefused: IdP metadata past its validUntil, on
// the EntityDescriptor or on the EntitiesDescriptor around it, is refused
// with ErrMetadataExpired and a message naming validUntil: inline at New,
// from a URL when fetched, and a copy that was valid stops being used when
// its validUntil passes.
func TestMetadata_S41_ExpiredRefused(t *testing.T) {
	testKeys(t)
	clock := &manualClock{now: time.Now()}
	past, future := clock.Now().Add(-time.Hour), clock.Now().Add(time.Hour)
	good := idpMetadataXML(idpCertA)
	stamp := func(t time.Time) string { return `validUntil="` + t.UTC().Format(time.RFC3339) + `"` }
	for _, tc := range []struct {
		name, md, pin string
	}{
		{"entity validUntil past", withValidUntil(good, past, ""), ""},
		{"entity validUntil past, cacheDuration ahead", withValidUntil(good, past, "P1D"), ""},
		{"EntitiesDescriptor validUntil past", inEntities(withValidUntil(good, future, ""), stamp(past)), testIdPEntity},
		{"EntitiesDescriptor past, entity without", inEntities(good, stamp(past)), testIdPEntity},
	} {
		t.Run(tc.name+" inline", func(t *testing.T) {
			_, err := New(Config{ID: "contoso-adfs", ACSURL: testACS, MetadataURL: testSPEntity,
				IdPMetadata: []byte(tc.md), IdPEntityID: tc.pin, Now: clock.Now})
			if !errors.Is(err, ErrConfig) || !errors.Is(err, ErrMetadataExpired) || !strings.Contains(err.Error(), "validUntil") {
				t.Errorf("New(inline %s) = %v, want ErrConfig and ErrMetadataExpired naming validUntil", tc.name, err)
			}
		})
		t.Run(tc.name+" from a URL", func(t *testing.T) {
			m := newMDServer(t, tc.md)
			c := newTestConnector(t, func(cfg *Config) {
				cfg.IdPMetadata, cfg.IdPMetadataURL, cfg.IdPEntityID, cfg.Now = nil, m.srv.URL, tc.pin, clock.Now
			})
			_, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "s"})
			if !errors.Is(err, providers.ErrUnavailable) || !errors.Is(err, ErrMetadataExpired) {
				t.Errorf("LoginURL with expired metadata at the URL = %v, want ErrUnavailable and ErrMetadataExpired", err)
			}
		})
	}
	// A valid inline copy is used until its validUntil, and refused after.
	c := newTestConnector(t, func(cfg *Config) {
		cfg.IdPMetadata, cfg.Now = []byte(withValidUntil(good, clock.Now().Add(time.Hour), "")), clock.Now
	})
	if _, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL with valid inline metadata = %v", err)
	}
	clock.advance(2 * time.Hour)
	if _, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "s"}); !errors.Is(err, ErrMetadataExpired) {
		t.Errorf("LoginURL after the inline metadata's validUntil = %v, want ErrMetadataExpired", err)
	}
}

// TestMetadata_S41_LastGoodKeptWhenRefreshReturnsJunk: a refresh that
// fails, or returns junk or metadata past its validUntil, keeps the last
// good copy (its certificate still verifies, the refresh's does not) until
// that copy's own validUntil.
func TestMetadata_S41_LastGoodKeptWhenRefreshReturnsJunk(t *testing.T) {
	testKeys(t)
	for _, tc := range []struct {
		name   string
		body   func(now time.Time) string
		status int
	}{
		{"http 500", func(time.Time) string { return "" }, http.StatusInternalServerError},
		{"not xml", func(time.Time) string { return "<html>maintenance" }, 0},
		{"no signing certificate", func(time.Time) string { return idpMetadataXML() }, 0},
		{"expired, with another certificate", func(now time.Time) string {
			return withValidUntil(idpMetadataXML(idpCertB), now.Add(-time.Minute), "")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &manualClock{now: time.Now()}
			m := newMDServer(t, withValidUntil(idpMetadataXML(idpCertA), clock.Now().Add(48*time.Hour), ""))
			c := newTestConnector(t, func(cfg *Config) {
				cfg.IdPMetadata, cfg.IdPMetadataURL, cfg.RefreshInterval, cfg.Now = nil, m.srv.URL, time.Hour, clock.Now
			})
			prev := crewjam.TimeNow
			crewjam.TimeNow = clock.Now
			t.Cleanup(func() { crewjam.TimeNow = prev })
			login := func(k *resp) error {
				k.now, k.inResponseTo, k.signAssertion = clock.Now().UTC(), reqID, true
				_, err := call(t, c, encodeDoc(t, k.build(t)))
				return err
			}
			if err := login(&resp{}); err != nil {
				t.Fatalf("first login: %v", err)
			}
			m.set(tc.body(clock.Now().Add(2*time.Hour)), tc.status)
			clock.advance(2 * time.Hour) // due for a refresh
			for i := range 3 {
				if err := login(&resp{}); err != nil {
					t.Fatalf("login %d after a bad refresh: %v, want the last good copy", i, err)
				}
				c.idp.bg.Wait()
			}
			if err := login(&resp{key: idpKeyB, cert: idpCertB}); !errors.Is(err, providers.ErrInvalidResponse) {
				t.Errorf("login signed by the bad refresh's key = %v, want refusal", err)
			}
			if n := m.count(); n != 2 {
				t.Errorf("metadata fetched %d times, want 2 (first use, one refresh; retried only after %s)", n, metadataRetry)
			}
			// The last good copy ends at its own validUntil.
			clock.advance(47 * time.Hour)
			if err := login(&resp{}); !errors.Is(err, providers.ErrUnavailable) {
				t.Errorf("login past the last good copy's validUntil = %v, want ErrUnavailable", err)
			}
		})
	}
}
