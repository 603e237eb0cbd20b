package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
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
	m := k.get()
	sum := m.sum(kind, secret)
	m.out = append(append(m.out[:0], kind...), ':')
	m.out = base64.RawURLEncoding.AppendEncode(m.out, sum)
	key := string(m.out)
	macPool.Put(m)
	return key
}

// mac returns the raw HMAC of a value under a derived purpose.
func (k keyer) mac(purpose, value string) []byte {
	m := k.get()
	out := append(make([]byte, 0, sha256.Size), m.sum(purpose, value)...)
	macPool.Put(m)
	return out
}

// pooledMAC is an HMAC keyed with key (compared by identity) and scratch
// buffers. The HMAC objects are pooled: a reset HMAC restores its keyed
// state instead of hashing the key pads again, and the scratch buffers keep
// a store key's computation to the one allocation of its result.
type pooledMAC struct {
	key       []byte
	h         hash.Hash
	in, out   []byte
	sumBuffer []byte
}

var macPool sync.Pool

// get returns a pooled HMAC keyed with k's secret; Put it back after use.
func (k keyer) get() *pooledMAC {
	m, _ := macPool.Get().(*pooledMAC)
	if m == nil || len(m.key) != len(k.secret) || len(k.secret) == 0 || &m.key[0] != &k.secret[0] {
		// First use, or a MAC of another keyer (tests run several servers).
		return &pooledMAC{key: k.secret, h: hmac.New(sha256.New, k.secret)}
	}
	m.h.Reset()
	return m
}

// sum returns HMAC(label || 0 || value) in m's scratch space.
func (m *pooledMAC) sum(label, value string) []byte {
	m.in = append(append(append(m.in[:0], label...), 0), value...)
	m.h.Write(m.in)
	m.sumBuffer = m.h.Sum(m.sumBuffer[:0])
	return m.sumBuffer
}

// derive returns a sub-key of secret for one purpose (HKDF-like, one block).
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("realmgate/" + purpose))
	return m.Sum(nil)
}
