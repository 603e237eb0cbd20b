package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// signer holds one realm's signing key, generated at start, with its JWS
// header precomputed so the hot path only hashes and signs.
type signer struct {
	alg    string
	kid    string
	header string // base64url of the protected header, RFC 7515 §7.1
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	jwk    map[string]any
}

func newSigner(alg string) (*signer, error) {
	s := &signer{alg: alg}
	var thumb string
	switch alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		s.rsa = k
		n := b64(k.N.Bytes())
		e := b64(big.NewInt(int64(k.E)).Bytes())
		// RFC 7638 §3.2: required members in lexicographic order.
		thumb = `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
		s.jwk = map[string]any{"kty": "RSA", "n": n, "e": e}
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate EC key: %w", err)
		}
		s.ec = k
		pub, err := k.PublicKey.Bytes() // SEC 1 uncompressed: 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("encode EC key: %w", err)
		}
		x, y := b64(pub[1:33]), b64(pub[33:65])
		thumb = `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
		s.jwk = map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	sum := sha256.Sum256([]byte(thumb))
	s.kid = b64(sum[:])
	s.jwk["kid"] = s.kid
	s.jwk["alg"] = alg
	s.jwk["use"] = "sig"
	s.header = b64([]byte(`{"alg":"` + alg + `","kid":"` + s.kid + `","typ":"JWT"}`))
	return s, nil
}

func (s *signer) jwks() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []any{s.jwk}}) // strings only: cannot fail
	return b
}

// sign returns the compact JWS of payload (RFC 7515 §7.1).
func (s *signer) sign(payload []byte) (string, error) {
	buf := make([]byte, 0, len(s.header)+1+base64.RawURLEncoding.EncodedLen(len(payload))+1+342)
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	var sig []byte
	switch {
	case s.rsa != nil:
		var err error
		sig, err = rsa.SignPKCS1v15(nil, s.rsa, crypto.SHA256, digest[:])
		if err != nil {
			return "", fmt.Errorf("sign RS256: %w", err)
		}
	default:
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, digest[:])
		if err != nil {
			return "", fmt.Errorf("sign ES256: %w", err)
		}
		// RFC 7518 §3.4: R || S, each 32 bytes big-endian.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	return string(buf), nil
}

// idToken builds and signs the ID token for a redeemed code (OIDC Core 1.0 §2).
// The user's claims were marshalled once in New; only the per-login claims are
// encoded here.
func (rm *realm) idToken(ce *codeEntry, clientID, atHash string, now time.Time) (string, error) {
	p := make([]byte, 0, 256+len(ce.user.fragmentMFA)+len(ce.nonce))
	p = append(p, `{"iss":`...)
	p = appendJSONString(p, rm.issuer)
	p = append(p, `,"aud":`...)
	p = appendJSONString(p, clientID)
	p = append(p, `,"exp":`...)
	p = strconv.AppendInt(p, now.Add(idTokenTTL).Unix(), 10)
	p = append(p, `,"iat":`...)
	p = strconv.AppendInt(p, now.Unix(), 10)
	p = append(p, `,"auth_time":`...)
	p = strconv.AppendInt(p, ce.authTime.Unix(), 10)
	if ce.nonce != "" {
		p = append(p, `,"nonce":`...)
		p = appendJSONString(p, ce.nonce)
	}
	p = append(p, `,"at_hash":"`...)
	p = append(p, atHash...)
	p = append(p, `",`...)
	if ce.mfa { // acr_values asked for more than a password
		p = append(p, ce.user.fragmentMFA...)
	} else {
		p = append(p, ce.user.fragment...)
	}
	p = append(p, '}')
	return rm.key.sign(p)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
