package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"sync"
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
	var sum [sha256.Size]byte
	k.sum(sum[:0], kind, secret)
	out := make([]byte, 0, len(kind)+1+base64.RawURLEncoding.EncodedLen(sha256.Size))
	out = append(out, kind...)
	out = append(out, ':')
	out = base64.RawURLEncoding.AppendEncode(out, sum[:])
	return string(out)
}

// mac returns the raw HMAC of a value under a derived purpose.
func (k keyer) mac(purpose, value string) []byte {
	return k.sum(make([]byte, 0, sha256.Size), purpose, value)
}

// sum appends HMAC-SHA256(k, label || 0 || value) to dst. The HMAC objects
// are pooled: a reset HMAC restores its keyed state instead of hashing the
// key pads again, and nothing is allocated per call.
func (k keyer) sum(dst []byte, label, value string) []byte {
	m, _ := macPool.Get().(*pooledMAC)
	if m == nil || len(m.key) != len(k.secret) || len(k.secret) == 0 || &m.key[0] != &k.secret[0] {
		// First use, or a MAC of another keyer (tests run several servers).
		m = &pooledMAC{key: k.secret, h: hmac.New(sha256.New, k.secret)}
	} else {
		m.h.Reset()
	}
	io.WriteString(m.h, label)
	m.h.Write(zeroByte)
	io.WriteString(m.h, value)
	dst = m.h.Sum(dst)
	macPool.Put(m)
	return dst
}

// pooledMAC is an HMAC keyed with key (compared by identity).
type pooledMAC struct {
	key []byte
	h   hash.Hash
}

var (
	macPool  sync.Pool
	zeroByte = []byte{0}
)

// derive returns a sub-key of secret for one purpose (HKDF-like, one block).
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("realmgate/" + purpose))
	return m.Sum(nil)
}
