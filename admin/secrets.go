package admin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrSecret means a stored secret is encrypted but does not decrypt: the
// server secret is not the one it was encrypted with (or none is set), or
// the stored record was altered.
var ErrSecret = errors.New("admin: stored secret does not decrypt")

const (
	// sealedPrefix starts every encrypted secret in the store; a value
	// without it is a plaintext secret written before encryption (or
	// without a server secret).
	sealedPrefix = "enc:v1:"
	// secretsKeyInfo is the HKDF purpose of the secrets key: no other key
	// is derived from the server secret with it.
	secretsKeyInfo = "realmgate admin secrets v1"
	// revisionKeyInfo is the HKDF purpose of the key of tenant revisions.
	revisionKeyInfo = "realmgate admin revisions v1"
)

// newRevisionKey returns the HMAC key of tenant revisions derived from the
// server secret; nil when there is none.
func newRevisionKey(secret []byte) ([]byte, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	key, err := hkdf.Key(sha256.New, secret, nil, revisionKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("admin: derive revision key: %w", err)
	}
	return key, nil
}

// newSecretsAEAD returns AES-256-GCM under a key derived from the server
// secret; nil when there is no server secret (secrets stay plaintext).
func newSecretsAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	key, err := hkdf.Key(sha256.New, secret, nil, secretsKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("admin: derive secrets key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("admin: secrets cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// secretAD is the additional data binding a sealed secret to its place
// (like "tenants", id, "providers", id, "client_secret"): each part
// length-prefixed, so no two places encode alike.
func secretAD(place []string) []byte {
	ad := []byte(sealedPrefix)
	for _, p := range place {
		ad = binary.AppendUvarint(ad, uint64(len(p)))
		ad = append(ad, p...)
	}
	return ad
}

// seal encrypts a secret for the store at place: sealedPrefix +
// base64url(nonce || ciphertext). Empty secrets, and every secret when no
// server secret is set, are kept as they are.
func (s *Service) seal(value string, place ...string) (string, error) {
	if s.aead == nil || value == "" {
		return value, nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("admin: nonce: %w", err)
	}
	sealed := s.aead.Seal(nonce, nonce, []byte(value), secretAD(place))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open returns the plaintext of a stored secret read from place. A value
// without sealedPrefix is a plaintext secret stored before encryption. A
// secret sealed under a previous server secret opens too (and is sealed
// under the current one by the next writes: recordWrites seals such records
// again, staleRewrite per change). Callers hold s.mu.
func (s *Service) open(value string, place ...string) (string, error) {
	enc, ok := strings.CutPrefix(value, sealedPrefix)
	if !ok {
		s.sawStale = s.sawStale || (s.aead != nil && value != "") // to be sealed (recordWrites)
		return value, nil
	}
	if s.aead == nil {
		return "", fmt.Errorf("%w: it is encrypted and no server secret is set", ErrSecret)
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", fmt.Errorf("%w: malformed", ErrSecret)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], secretAD(place))
	for _, prev := range s.previous {
		if err == nil {
			break
		}
		if plain, err = prev.Open(nil, b[:n], b[n:], secretAD(place)); err == nil {
			s.sawStale = true // to be sealed again (recordWrites)
		}
		if err == nil && !s.staleLogged {
			s.staleLogged = true
			s.opts.Logger.Warn("admin: stored secrets are encrypted under a previous keys.secret; the next admin API write encrypts them under keys.secret (keep keys.previous_secrets until then)")
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: wrong server secret, or the record was altered", ErrSecret)
	}
	return string(plain), nil
}

// sealTenant returns t as stored: its providers' secrets encrypted
// (providerSecrets). t itself is not changed.
func (s *Service) sealTenant(t Tenant) (Tenant, error) {
	if s.aead == nil {
		return t, nil
	}
	t.Providers = slices.Clone(t.Providers)
	for i := range t.Providers {
		p := &t.Providers[i]
		for _, f := range providerSecrets(p) {
			var err error
			if *f.v, err = s.seal(*f.v, "tenants", t.ID, "providers", p.ID, f.name); err != nil {
				return Tenant{}, fmt.Errorf("tenant %q: provider %q: %s: %w", t.ID, p.ID, f.name, err)
			}
		}
	}
	return t, nil
}

// openTenant decrypts, in place, the secrets of a tenant just decoded.
func (s *Service) openTenant(t *Tenant) error {
	for i := range t.Providers {
		p := &t.Providers[i]
		for _, f := range providerSecrets(p) {
			var err error
			if *f.v, err = s.open(*f.v, "tenants", t.ID, "providers", p.ID, f.name); err != nil {
				return fmt.Errorf("tenant %q: provider %q: %s: %w", t.ID, p.ID, f.name, err)
			}
		}
	}
	return nil
}

// sealClients returns the clients as stored: their secrets encrypted.
func (s *Service) sealClients(cls []Client) ([]Client, error) {
	if s.aead == nil {
		return cls, nil
	}
	out := slices.Clone(cls)
	for i := range out {
		var err error
		if out[i].Secret, err = s.seal(out[i].Secret, "clients", out[i].ID, "secret"); err != nil {
			return nil, fmt.Errorf("client %q: secret: %w", out[i].ID, err)
		}
	}
	return out, nil
}

// openClients decrypts, in place, the secrets of clients just decoded.
func (s *Service) openClients(cls []Client) error {
	for i := range cls {
		var err error
		if cls[i].Secret, err = s.open(cls[i].Secret, "clients", cls[i].ID, "secret"); err != nil {
			return fmt.Errorf("client %q: secret: %w", cls[i].ID, err)
		}
	}
	return nil
}

// sealedLookingSecrets lists the secrets of st that start with sealedPrefix:
// refused on input, since stored as they are (no server secret) they would
// be read back as undecryptable, failing every instance's load.
func sealedLookingSecrets(st *State) []Problem {
	var probs []Problem
	msg := "must not start with " + sealedPrefix + " (reserved for encrypted secrets)"
	for _, t := range st.Tenants {
		for i := range t.Providers {
			for _, f := range providerSecrets(&t.Providers[i]) {
				if strings.HasPrefix(*f.v, sealedPrefix) {
					probs = append(probs, Problem{Field: fmt.Sprintf("tenants[%s].providers[%d].%s", t.ID, i, f.name), Message: msg})
				}
			}
		}
	}
	for _, c := range st.Clients {
		if strings.HasPrefix(c.Secret, sealedPrefix) {
			probs = append(probs, Problem{Field: fmt.Sprintf("clients[%s].secret", c.ID), Message: msg})
		}
	}
	return probs
}
