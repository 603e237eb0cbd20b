package broker_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/realm"
)

// The SAML IdP key is sealed under keys.secret. A key that opens only
// with one of keys.previous_secrets is sealed again under keys.secret as
// soon as an instance starts, atomically, so removing the previous secret
// afterwards keeps the key the service providers trust.

var (
	secretOld = []byte("old-secret-0123456789abcdef012345")
	secretNew = []byte("new-secret-0123456789abcdef012345")
)

// idpCertOn starts a broker on st with secret (and previous) and returns
// the signing certificate its IdP metadata publishes, or the status of the
// metadata request when it is not 200.
func idpCertOn(t *testing.T, st broker.Store, secret []byte, previous ...[]byte) (string, int, error) {
	res, err := realm.New(harnessTenants(), realm.Options{BaseDomain: "login.test"})
	if err != nil {
		return "", 0, err
	}
	b, err := broker.New(context.Background(), broker.Config{Issuer: "https://login.test", Secret: secret, PreviousSecrets: previous,
		Resolver: res, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
	if err != nil {
		return "", 0, err
	}
	defer b.Close()
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://login.test/saml-idp/metadata", nil))
	if rec.Code != http.StatusOK {
		return "", rec.Code, nil
	}
	var md crewjam.EntityDescriptor
	if err := xml.Unmarshal(rec.Body.Bytes(), &md); err != nil {
		return "", 0, err
	}
	return md.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data, http.StatusOK, nil
}

// TestSAMLIdP_KeyResealedUnderCurrentSecret: a key made under the old
// secret is re-sealed when an instance starts with the new secret and the
// old one as previous: the stored blob changes, and an instance with the
// new secret alone then publishes the same certificate.
func TestSAMLIdP_KeyResealedUnderCurrentSecret(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	ctx := context.Background()
	cert, code, err := idpCertOn(t, ms, secretOld)
	if err != nil || code != http.StatusOK {
		t.Fatalf("metadata under the old secret = %d, %v", code, err)
	}
	before, err := ms.Get(ctx, "keys:saml-idp")
	if err != nil {
		t.Fatalf("stored SAML key: %v", err)
	}

	// Rotation step 1: new secret, old one kept as previous. The instance
	// starts and re-seals; it publishes the same key.
	got, code, err := idpCertOn(t, ms, secretNew, secretOld)
	if err != nil || code != http.StatusOK || got != cert {
		t.Fatalf("metadata with the new secret and the old as previous = %d %v, same cert %v; want 200 and the same cert", code, err, got == cert)
	}
	after, _ := ms.Get(ctx, "keys:saml-idp")
	if bytes.Equal(before, after) {
		t.Errorf("the stored SAML key was not re-sealed")
	}

	// Rotation step 2: the previous secret removed. The key still opens.
	got, code, err = idpCertOn(t, ms, secretNew)
	if err != nil || code != http.StatusOK || got != cert {
		t.Errorf("metadata with the new secret alone = %d %v, same cert %v; want 200 and the key made under the old secret", code, err, got == cert)
	}
}

// TestSAMLIdP_KeyResealRace: instances starting at once with the new
// secret (the old one previous) all publish the original key, and after
// their re-sealing the new secret alone opens it: no instance replaced it
// or lost it.
func TestSAMLIdP_KeyResealRace(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	cert, code, err := idpCertOn(t, ms, secretOld)
	if err != nil || code != http.StatusOK {
		t.Fatalf("metadata under the old secret = %d, %v", code, err)
	}
	const n = 6
	certs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			certs[i], _, errs[i] = idpCertOn(t, ms, secretNew, secretOld)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || certs[i] != cert {
			t.Errorf("instance %d: err %v, same cert %v; want the original key", i, errs[i], certs[i] == cert)
		}
	}
	if got, code, err := idpCertOn(t, ms, secretNew); err != nil || code != http.StatusOK || got != cert {
		t.Errorf("metadata with the new secret alone after the race = %d %v, same cert %v; want the original key", code, err, got == cert)
	}
}

// TestSAMLIdP_KeyNotReplacedUnderUnknownSecret: an instance whose secrets
// do not open the stored key fails; it never replaces the key with a new one.
func TestSAMLIdP_KeyNotReplacedUnderUnknownSecret(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	cert, _, err := idpCertOn(t, ms, secretOld)
	if err != nil {
		t.Fatal(err)
	}
	if _, code, _ := idpCertOn(t, ms, secretNew); code == http.StatusOK {
		t.Errorf("metadata with a secret that does not open the key = 200, want an error")
	}
	if got, _, _ := idpCertOn(t, ms, secretOld); got != cert {
		t.Errorf("the key changed after an instance with another secret started")
	}
}
