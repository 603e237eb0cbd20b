package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// The SAML IdP signing key. Service providers pin the certificate they
// imported from the IdP metadata and seldom fetch it again, so unlike the
// token keys (keys.go, rotated daily) it is one long-lived RSA key with a
// self-signed certificate valid for ten years: made by the first instance
// that needs it, kept in the store sealed under the server secret like the
// token key set (the same AEAD, its own associated data), and read by every
// other instance, so all of them sign with the same key and a restart
// changes nothing. If the store loses it (a Redis without persistence
// restarted), an instance that holds it writes it back. When it opens only
// with one of keys.previous_secrets, it is sealed again under keys.secret
// at once (resealSAMLKey), so that dropping the previous secret later does
// not lock every instance out of the key the SPs trust.

const (
	samlKeyKey = "keys:saml-idp"
	// samlKeyLockKey is held while one instance re-seals the key.
	samlKeyLockKey = "keys:saml-idp:lock"
	// samlCertLifetime is the validity of the self-signed certificate;
	// SAML trusts the key, not the dates (SAML Metadata §2.4.1.1), but
	// some SPs look at them.
	samlCertLifetime = 10 * 365 * 24 * time.Hour
	// samlKeyBits is the RSA modulus size.
	samlKeyBits = 2048
)

// samlIdPKey is the stored form of the SAML IdP key.
type samlIdPKey struct {
	PKCS8 []byte `json:"pkcs8"`
	Cert  []byte `json:"cert"` // DER

	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// samlKeyCache holds the key once loaded.
type samlKeyCache struct {
	mu     sync.Mutex
	loaded *samlIdPKey
	// checked is when the store was last read.
	checked time.Time
}

// samlSigningKey returns the SAML IdP key, loading or creating it on first
// use and re-reading the store every keysReload (another instance may have
// written it back after a store loss).
func (s *Server) samlSigningKey(ctx context.Context) (*samlIdPKey, error) {
	kc := &s.samlKey
	kc.mu.Lock()
	defer kc.mu.Unlock()
	now := s.now()
	if kc.loaded != nil && now.Sub(kc.checked) < keysReload {
		return kc.loaded, nil
	}
	k, err := s.loadSAMLKey(ctx, kc.loaded)
	if err != nil {
		if kc.loaded != nil {
			kc.checked = now // signing goes on through a store outage
			return kc.loaded, nil
		}
		return nil, err
	}
	kc.loaded, kc.checked = k, now
	return k, nil
}

// loadSAMLKey reads the stored key; when there is none it stores held
// (the key this instance signs with) or, on a fresh deployment, a new one.
func (s *Server) loadSAMLKey(ctx context.Context, held *samlIdPKey) (*samlIdPKey, error) {
	blob, err := s.store.Get(ctx, samlKeyKey)
	if errors.Is(err, ErrNotFound) {
		k := held
		if k == nil {
			if k, err = newSAMLKey(s.cfg.Issuer, s.now()); err != nil {
				return nil, err
			}
		}
		sealed, serr := s.sealSAMLKey(k)
		if serr != nil {
			return nil, serr
		}
		switch cerr := s.store.Create(ctx, samlKeyKey, sealed, keysetTTL); {
		case cerr == nil:
			return k, nil
		case !errors.Is(cerr, ErrExists):
			return nil, storeErr("create saml idp key", cerr)
		}
		blob, err = s.store.Get(ctx, samlKeyKey) // another instance won the race
	}
	if err != nil {
		return nil, storeErr("read saml idp key", err)
	}
	k, stale, err := s.openSAMLKey(blob)
	if err != nil {
		return nil, err
	}
	if stale {
		if err := s.resealSAMLKey(ctx, blob, k); err != nil {
			// The next load tries again (keysReload); the key still opens.
			s.log.Warn("saml idp key: sealed under a previous secret; re-sealing failed", "err", err)
		}
	}
	return k, nil
}

// resealSAMLKey seals the stored key again under the current secret, in
// place: stale is the blob read (sealed under a previous secret), k its
// content. It is one overwrite (Put), never a delete and a create, so no
// instance ever finds the key missing and makes a new one; it holds a lock
// and re-reads the blob under it, so of instances racing only one writes,
// and only while the stored key is still the one it opened (another may
// have re-sealed or, after a store loss, written it back meanwhile).
func (s *Server) resealSAMLKey(ctx context.Context, stale []byte, k *samlIdPKey) error {
	switch err := s.store.Create(ctx, samlKeyLockKey, []byte("1"), time.Minute); {
	case errors.Is(err, ErrExists):
		return nil // another instance is re-sealing it
	case err != nil:
		return storeErr("saml idp key lock", err)
	}
	defer s.store.Delete(context.WithoutCancel(ctx), samlKeyLockKey)
	cur, err := s.store.Get(ctx, samlKeyKey)
	if err != nil {
		return storeErr("read saml idp key", err)
	}
	if !bytes.Equal(cur, stale) {
		return nil
	}
	sealed, err := s.sealSAMLKey(k)
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, samlKeyKey, sealed, keysetTTL); err != nil {
		return storeErr("re-seal saml idp key", err)
	}
	s.log.Info("saml idp key: re-sealed under the current keys.secret")
	return nil
}

// resealSAMLKeyAtStart opens the stored SAML IdP key, if there is one, when
// the server starts, so a key sealed under a previous secret is re-sealed
// at once rather than at the first SAML request. A deployment that never
// made one gets none; an error is logged (the first use reports it again).
func (s *Server) resealSAMLKeyAtStart(ctx context.Context) {
	if _, err := s.store.Get(ctx, samlKeyKey); err != nil {
		return
	}
	if _, err := s.samlSigningKey(ctx); err != nil {
		s.log.Warn("saml idp key", "err", err)
	}
}

// newSAMLKey makes a key and its self-signed certificate.
func newSAMLKey(issuer string, now time.Time) (*samlIdPKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, samlKeyBits)
	if err != nil {
		return nil, fmt.Errorf("saml idp key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	cn := issuer
	if len(cn) > 64 { // X.520 ub-common-name
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"realmgate SAML IdP"}},
		NotBefore: now.Add(-time.Hour).UTC(), NotAfter: now.Add(samlCertLifetime).UTC(),
		KeyUsage: x509.KeyUsageDigitalSignature, SignatureAlgorithm: x509.SHA256WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("saml idp certificate: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	k := &samlIdPKey{PKCS8: p8, Cert: der}
	return k, k.init()
}

func (k *samlIdPKey) init() error {
	p, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	if err != nil {
		return fmt.Errorf("saml idp key: %w", err)
	}
	rk, ok := p.(*rsa.PrivateKey)
	if !ok {
		return fmt.Errorf("saml idp key: %T is not RSA", p)
	}
	cert, err := x509.ParseCertificate(k.Cert)
	if err != nil {
		return fmt.Errorf("saml idp certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&rk.PublicKey) {
		return errors.New("saml idp certificate does not match its key")
	}
	k.key, k.cert = rk, cert
	return nil
}

// sealSAMLKey encrypts k under the key-set AEAD (keys.secret).
func (s *Server) sealSAMLKey(k *samlIdPKey) ([]byte, error) { return s.keys.sealJSON(k, samlKeyKey) }

// openSAMLKey decrypts a stored key with the current secret or a previous
// one; stale reports the latter (the key should be sealed again).
func (s *Server) openSAMLKey(blob []byte) (k *samlIdPKey, stale bool, err error) {
	k = &samlIdPKey{}
	if stale, err = s.keys.openJSON(blob, samlKeyKey, k); err != nil {
		return nil, false, fmt.Errorf("saml idp key: decrypt: %w", err)
	}
	return k, stale, k.init()
}
