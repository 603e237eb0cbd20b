package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenBytes is the entropy of every state, code, session id and refresh
// secret: 256 bits, above the 128 bits SECURITY S17 asks for.
const tokenBytes = 32

// randomToken returns a base64url string of n bytes from crypto/rand (S17).
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// itself on failure); keep the guard explicit.
		panic("broker: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// keyer derives store keys: every record is keyed by HMAC-SHA256(server key,
// secret value), never by the raw value, so a dump of the store yields
// nothing that can be presented to the broker (S17).
type keyer struct{ secret []byte }

// key returns kind + ":" + base64url(HMAC-SHA256(k, secret)).
func (k keyer) key(kind, secret string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return kind + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// mac returns the raw HMAC of a value under a derived purpose.
func (k keyer) mac(purpose, value string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// derive returns a sub-key of secret for one purpose (HKDF-like, one block).
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("realmgate/" + purpose))
	return m.Sum(nil)
}
