package broker

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

const (
	keysetKey     = "keys:set"
	keysetLockKey = "keys:lock"
	// keysetTTL keeps the key set effectively forever; rotation replaces it.
	keysetTTL = 10 * 365 * 24 * time.Hour
	// keysReload is how often an instance re-reads the shared key set, so a
	// rotation made by any instance is picked up by all within this time.
	keysReload = 30 * time.Second
)

// signingKey is one key of the shared key set.
type signingKey struct {
	Kid     string    `json:"kid"`
	Alg     string    `json:"alg"`
	PKCS8   []byte    `json:"pkcs8"`
	Created time.Time `json:"created"`
	// Retire is when the key leaves the JWKS: set when a newer key replaces
	// it, to the moment the last token it signed expires.
	Retire time.Time `json:"retire,omitzero"`

	priv    crypto.Signer
	method  jwt.SigningMethod
	jwk     map[string]any
	headers sync.Map // typ -> encoded JOSE header
}

type keysetDoc struct {
	Keys []*signingKey `json:"keys"`
}

// keyManager keeps the signing keys in the store, shared by every instance,
// encrypted with a key derived from the server secret.
type keyManager struct {
	store       Store
	aead        cipher.AEAD   // seals the key set (keys.secret)
	previous    []cipher.AEAD // also open it (keys.previous_secrets)
	alg         string
	rotateEvery time.Duration
	maxTokenTTL time.Duration
	now         func() time.Time

	mu      sync.RWMutex
	keys    []*signingKey // newest first; keys[0] signs
	loaded  time.Time
	jwksDoc []byte
}

func newKeyManager(store Store, secret []byte, previous [][]byte, alg string, rotateEvery, maxTokenTTL time.Duration, now func() time.Time) (*keyManager, error) {
	aead, err := keysetAEAD(secret)
	if err != nil {
		return nil, err
	}
	var prev []cipher.AEAD
	for _, p := range previous {
		a, err := keysetAEAD(p)
		if err != nil {
			return nil, err
		}
		prev = append(prev, a)
	}
	switch alg {
	case "", "ES256":
		alg = "ES256"
	case "RS256":
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	return &keyManager{store: store, aead: aead, previous: prev, alg: alg, rotateEvery: rotateEvery, maxTokenTTL: maxTokenTTL, now: now}, nil
}

// keysetAEAD returns AES-256-GCM under the key-set key derived from secret.
func keysetAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(derive(secret, "keyset-encryption"))
	if err != nil {
		return nil, fmt.Errorf("keys: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: gcm: %w", err)
	}
	return aead, nil
}

func generateKey(alg string, now time.Time) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal: %w", err)
	}
	k := &signingKey{Alg: alg, PKCS8: der, Created: now.UTC()}
	if err := k.init(); err != nil {
		return nil, err
	}
	return k, nil
}

// init parses the private key and computes kid (RFC 7638 thumbprint) and JWK.
func (k *signingKey) init() error {
	p, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	if err != nil {
		return fmt.Errorf("keys: parse key: %w", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var thumb string
	switch priv := p.(type) {
	case *ecdsa.PrivateKey:
		if k.Alg != "ES256" || priv.Curve != elliptic.P256() {
			return fmt.Errorf("keys: key does not match alg %s", k.Alg)
		}
		k.priv, k.method = priv, jwt.SigningMethodES256
		pt, err := priv.PublicKey.Bytes() // SEC 1 uncompressed point: 0x04 || X || Y, 32 bytes each
		if err != nil {
			return fmt.Errorf("keys: encode public key: %w", err)
		}
		x, y := pt[1:33], pt[33:]
		// RFC 7638 §3.2: members in lexicographic order, no whitespace.
		thumb = fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(x), b64(y))
		k.jwk = map[string]any{"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}
	case *rsa.PrivateKey:
		if k.Alg != "RS256" {
			return fmt.Errorf("keys: key does not match alg %s", k.Alg)
		}
		k.priv, k.method = priv, jwt.SigningMethodRS256
		n, e := b64(priv.N.Bytes()), b64(big.NewInt(int64(priv.E)).Bytes())
		thumb = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, e, n)
		k.jwk = map[string]any{"kty": "RSA", "n": n, "e": e}
	default:
		return fmt.Errorf("keys: unsupported key type %T", p)
	}
	sum := sha256.Sum256([]byte(thumb))
	k.Kid = b64(sum[:])
	k.jwk["kid"], k.jwk["alg"], k.jwk["use"] = k.Kid, k.Alg, "sig"
	return nil
}

// sealJSON encodes v as JSON and encrypts it under the current secret's
// key, bound to the store key it is written under (ad): a blob moved to
// another key does not open.
func (m *keyManager) sealJSON(v any, ad string) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return m.aead.Seal(nonce, nonce, plain, []byte(ad)), nil
}

// openJSON decrypts blob, sealed by sealJSON under ad, with the current
// secret's key or, failing that, a previous secret's (stale reports the
// latter: the blob should be sealed again under the current secret), and
// decodes it into v.
func (m *keyManager) openJSON(blob []byte, ad string, v any) (stale bool, err error) {
	ns := m.aead.NonceSize()
	if len(blob) < ns {
		return false, errors.New("too short")
	}
	plain, err := m.aead.Open(nil, blob[:ns], blob[ns:], []byte(ad))
	for _, prev := range m.previous {
		if err == nil {
			break
		}
		plain, err = prev.Open(nil, blob[:ns], blob[ns:], []byte(ad))
		stale = true
	}
	if err != nil {
		return false, fmt.Errorf("not the current or a previous keys.secret (is it the same on every instance?): %w", err)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return false, fmt.Errorf("decode: %w", err)
	}
	return stale, nil
}

func (m *keyManager) seal(doc *keysetDoc) ([]byte, error) { return m.sealJSON(doc, keysetKey) }

// open decrypts a stored key set with the current secret's key or, failing
// that, a previous secret's; stale reports the latter (the set should be
// sealed again under the current secret).
func (m *keyManager) open(blob []byte) (doc *keysetDoc, stale bool, err error) {
	doc = &keysetDoc{}
	if stale, err = m.openJSON(blob, keysetKey, doc); err != nil {
		return nil, false, fmt.Errorf("keys: decrypt key set: %w", err)
	}
	for _, k := range doc.Keys {
		if err := k.init(); err != nil {
			return nil, false, err
		}
	}
	if len(doc.Keys) == 0 {
		return nil, false, errors.New("keys: empty key set")
	}
	return doc, stale, nil
}

// load reads the shared key set, creating it if no instance has yet, and
// rotates it when the current key is older than rotateEvery.
func (m *keyManager) load(ctx context.Context) error {
	doc, stale, err := m.fetchOrCreate(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	if m.rotateEvery > 0 && now.Sub(doc.Keys[0].Created) >= m.rotateEvery {
		if rotated, err := m.rotate(ctx, doc, now); err == nil {
			doc, stale = rotated, false
		} else if !errors.Is(err, ErrExists) {
			return err
		}
	}
	if stale {
		// Sealed under a previous secret: seal it again under the current
		// one. Best effort: on failure (another instance holds the lock, or
		// the store is down) the next load tries again.
		_ = m.reseal(ctx)
	}
	m.install(doc, now)
	return nil
}

// reseal writes the stored key set again under the current secret, if a
// previous secret still seals it. It holds the rotation lock, so it never
// overwrites a rotation.
func (m *keyManager) reseal(ctx context.Context) error {
	if err := m.store.Create(ctx, keysetLockKey, []byte("1"), time.Minute); err != nil {
		return err
	}
	defer m.store.Delete(context.WithoutCancel(ctx), keysetLockKey)
	doc, stale, err := m.fetchOrCreate(ctx)
	if err != nil || !stale {
		return err
	}
	sealed, err := m.seal(doc)
	if err != nil {
		return err
	}
	if err := m.store.Put(ctx, keysetKey, sealed, keysetTTL); err != nil {
		return fmt.Errorf("keys: write re-sealed key set: %w", err)
	}
	return nil
}

// fetchOrCreate reads the stored key set (stale: sealed under a previous
// secret), creating it when there is none.
func (m *keyManager) fetchOrCreate(ctx context.Context) (*keysetDoc, bool, error) {
	blob, err := m.store.Get(ctx, keysetKey)
	if errors.Is(err, ErrNotFound) {
		// The store lost the key set (a Redis without persistence restarted):
		// re-publish the keys this instance holds, so tokens already issued
		// keep verifying; only a fresh deployment generates a new key.
		m.mu.RLock()
		doc := &keysetDoc{Keys: m.keys}
		m.mu.RUnlock()
		if len(doc.Keys) == 0 {
			k, gerr := generateKey(m.alg, m.now())
			if gerr != nil {
				return nil, false, gerr
			}
			doc.Keys = []*signingKey{k}
		}
		sealed, serr := m.seal(doc)
		if serr != nil {
			return nil, false, serr
		}
		err = m.store.Create(ctx, keysetKey, sealed, keysetTTL)
		if err == nil {
			return doc, false, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, false, fmt.Errorf("keys: create key set: %w", err)
		}
		blob, err = m.store.Get(ctx, keysetKey) // another instance won the race
	}
	if err != nil {
		return nil, false, fmt.Errorf("keys: read key set: %w", err)
	}
	return m.open(blob)
}

// rotate puts a new key first; the previous keys stay published until the
// tokens they signed have expired. Only the instance holding the lock rotates.
func (m *keyManager) rotate(ctx context.Context, doc *keysetDoc, now time.Time) (*keysetDoc, error) {
	if err := m.store.Create(ctx, keysetLockKey, []byte("1"), time.Minute); err != nil {
		return nil, err
	}
	defer m.store.Delete(context.WithoutCancel(ctx), keysetLockKey)
	// Re-read under the lock: another instance may have rotated already.
	fresh, _, err := m.fetchOrCreate(ctx)
	if err != nil {
		return nil, err
	}
	if now.Sub(fresh.Keys[0].Created) < m.rotateEvery {
		return fresh, nil
	}
	k, err := generateKey(m.alg, now)
	if err != nil {
		return nil, err
	}
	next := &keysetDoc{Keys: []*signingKey{k}}
	for i, old := range fresh.Keys {
		if i == 0 {
			old.Retire = now.Add(m.maxTokenTTL + time.Minute)
		}
		if !old.Retire.IsZero() && now.After(old.Retire) {
			continue
		}
		next.Keys = append(next.Keys, old)
	}
	sealed, err := m.seal(next)
	if err != nil {
		return nil, err
	}
	if err := m.store.Put(ctx, keysetKey, sealed, keysetTTL); err != nil {
		return nil, fmt.Errorf("keys: write rotated key set: %w", err)
	}
	return next, nil
}

func (m *keyManager) install(doc *keysetDoc, now time.Time) {
	keys := make([]map[string]any, 0, len(doc.Keys))
	for _, k := range doc.Keys {
		keys = append(keys, k.jwk)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": keys})
	m.mu.Lock()
	m.keys, m.loaded, m.jwksDoc = doc.Keys, now, jwks
	m.mu.Unlock()
}

// refresh reloads the key set when it is older than keysReload. A store
// failure keeps the keys already loaded: signing goes on through an outage.
func (m *keyManager) refresh(ctx context.Context) {
	m.mu.RLock()
	stale := m.now().Sub(m.loaded) >= keysReload
	m.mu.RUnlock()
	if stale {
		if err := m.load(ctx); err != nil {
			m.mu.Lock()
			m.loaded = m.now() // retry after another interval, not on every request
			m.mu.Unlock()
		}
	}
}

func (m *keyManager) current() *signingKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.keys[0]
}

func (m *keyManager) byKid(kid string) *signingKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.Kid == kid {
			return k
		}
	}
	return nil
}

func (m *keyManager) jwks() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.jwksDoc
}

func (m *keyManager) algs() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, k := range m.keys {
		if !seen[k.Alg] {
			seen[k.Alg] = true
			out = append(out, k.Alg)
		}
	}
	return out
}

// sign signs claims (any value that encodes to a JSON object) with the
// current key as a compact JWS (RFC 7515 §7.1); typ is the JOSE typ header.
//
// It is the token endpoint's hot path, so it avoids the generic JWT library:
// the header is encoded once per key and typ, the JWS is built in one buffer,
// and ES256 signatures are deterministic (RFC 6979, crypto/ecdsa with a nil
// random source), which spares the hedged-nonce DRBG a quarter of the cost
// of each signature. Any ES256 verifier accepts them (RFC 7518 §3.4).
func (m *keyManager) sign(claims any, typ string) (string, error) {
	tok, _, err := m.signHalf(claims, typ, false)
	return tok, err
}

// signBufs holds the scratch buffers of signHalf: the claims' JSON and the
// signing input, reused across requests (two tokens per token response).
var signBufs = sync.Pool{New: func() any { return new(signBuf) }}

type signBuf struct {
	payload bytes.Buffer
	input   []byte
}

// signHalf is sign, and with half also the token's left-half SHA-256 hash,
// base64url (at_hash, OIDC Core §3.1.3.6), taken from the token's bytes
// before they become a string.
func (m *keyManager) signHalf(claims any, typ string, half bool) (token, halfHash string, err error) {
	k := m.current()
	sb := signBufs.Get().(*signBuf)
	defer func() {
		if sb.payload.Cap() <= 64<<10 && cap(sb.input) <= 64<<10 {
			signBufs.Put(sb)
		}
	}()
	sb.payload.Reset()
	var payload []byte
	if m, ok := claims.(map[string]any); ok { // the ID token's claims
		if payload, err = appendClaimsJSON(sb.payload.AvailableBuffer(), m); err != nil {
			return "", "", fmt.Errorf("keys: encode claims: %w", err)
		}
		sb.payload.Write(payload) // keeps the grown buffer for the next token
	} else {
		// Encode writes what json.Marshal returns, and a newline.
		if err := json.NewEncoder(&sb.payload).Encode(claims); err != nil {
			return "", "", fmt.Errorf("keys: encode claims: %w", err)
		}
		payload = bytes.TrimSuffix(sb.payload.Bytes(), []byte{'\n'})
	}
	hdr := k.header(typ)
	enc := base64.RawURLEncoding
	buf := sb.input[:0]
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := k.signInput(buf)
	if err != nil {
		return "", "", fmt.Errorf("keys: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	sb.input = buf
	if half {
		sum := sha256.Sum256(buf)
		halfHash = enc.EncodeToString(sum[:16])
	}
	return string(buf), halfHash, nil
}

// header returns the base64url JOSE header {"alg","kid","typ"} of this key
// for typ, encoding it once.
func (k *signingKey) header(typ string) string {
	if h, ok := k.headers.Load(typ); ok {
		return h.(string)
	}
	b, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{k.Alg, k.Kid, typ})
	h := base64.RawURLEncoding.EncodeToString(b)
	k.headers.Store(typ, h)
	return h
}

// signInput signs the JWS signing input: ES256 as the 64-byte R || S of
// RFC 7518 §3.4, RS256 as RSASSA-PKCS1-v1_5 with SHA-256 (§3.3).
func (k *signingKey) signInput(input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		der, err := priv.Sign(nil, digest[:], crypto.SHA256) // nil: RFC 6979
		if err != nil {
			return nil, err
		}
		return rawECDSA(der, 32)
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	}
	return nil, fmt.Errorf("unsupported key type %T", k.priv)
}

// rawECDSA converts an ASN.1 ECDSA signature to R || S, each size bytes.
func rawECDSA(der []byte, size int) ([]byte, error) {
	var r, s big.Int
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, casn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 8*size || s.BitLen() > 8*size {
		return nil, errors.New("malformed ecdsa signature")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// maxJWTSize bounds any token we parse (SECURITY S32).
const maxJWTSize = 16 << 10

// errBadToken is returned for any token that fails verification.
var errBadToken = errors.New("broker: invalid token")

// verify checks a token we issued: size and compact form first (S32), then
// the key by kid with that key's alg only (S30); jku, x5u and jwk headers are
// ignored (S31); typ must equal wantTyp (S12).
func (m *keyManager) verify(token, wantTyp string) (jwt.MapClaims, error) {
	if len(token) > maxJWTSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errBadToken, maxJWTSize)
	}
	if !compactJWS(token) {
		return nil, fmt.Errorf("%w: not a compact JWS", errBadToken)
	}
	var key *signingKey
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256", "RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(m.now),
		jwt.WithLeeway(5*time.Second),
	).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key = m.byKid(kid)
		if key == nil {
			return nil, fmt.Errorf("unknown kid")
		}
		if t.Method.Alg() != key.Alg { // S30: header alg must be the key's alg
			return nil, fmt.Errorf("alg %s does not match key", t.Method.Alg())
		}
		if typ, _ := t.Header["typ"].(string); typ != wantTyp {
			return nil, fmt.Errorf("typ %q, want %q", typ, wantTyp)
		}
		return key.priv.Public(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	return claims, nil
}

// compactJWS reports whether s has the shape header.payload.signature with
// base64url characters only.
func compactJWS(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
			if i == 0 || s[i-1] == '.' {
				return false
			}
		case base64URLByte(c):
		default:
			return false
		}
	}
	return dots == 2 && s[len(s)-1] != '.'
}

// base64URLByte reports whether c is in the base64url alphabet (RFC 4648 §5).
func base64URLByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
