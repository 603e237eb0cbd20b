package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// compactJWS is an ID token parsed once (RFC 7515 §7.1 compact
// serialization) for verifyIDToken: the header's alg and kid, the signing
// input, the decoded payload and signature. It replaces go-jose's parse on
// the callback's path, which decoded the header into its generic JSON
// form, kept every part twice and encoded them again to verify.
type compactJWS struct {
	alg, kid string
	input    string // header.payload, what the signature covers
	payload  []byte
	sig      []byte
}

// decodeJWSHeader reads what the connector uses of a JWS header: alg and
// kid, and whether crit or b64 is there. jku, x5u, x5c and jwk are never
// used (S31); crit and b64 are refused by the caller, since the connector
// implements no extension (RFC 7515 §4.1.11: a critical extension the
// recipient does not understand makes the JWS invalid; RFC 7797's
// unencoded payload never applies to an ID token). It gives the result
// json.Unmarshal into a struct of alg and kid strings and crit and b64
// json.RawMessages gives (decodeObject: names case-folded, the last
// duplicate, null keeping a string, crit and b64 present with any value,
// null included), in one pass without reflection: json.Unmarshal was
// about 9 µs of a sign-in's callback in the bench's login profile
// (FuzzDecodeJWSHeader compares the two).
func decodeJWSHeader(b []byte) (alg, kid string, ext bool, err error) {
	var crit, b64 bool
	err = decodeObject(b, func(name []byte) (*string, *bool) {
		switch n := string(name); {
		case strings.EqualFold(n, "alg"):
			return &alg, nil
		case strings.EqualFold(n, "kid"):
			return &kid, nil
		case strings.EqualFold(n, "crit"):
			return nil, &crit
		case strings.EqualFold(n, "b64"):
			return nil, &b64
		}
		return nil, nil
	})
	return alg, kid, crit || b64, err
}

// errJWSHeader reports a header that is not a JSON object of strings
// where the connector reads strings.
var errJWSHeader = errors.New("header is not json")

// algError is an alg not on the allow-list.
type algError struct{ alg string }

func (e algError) Error() string { return fmt.Sprintf("alg %q not allowed", clip(e.alg)) }

// parseCompact parses raw, already checked by checkCompact (S32: three
// non-empty base64url parts, bounded size), whose alg must be on algs
// (S30).
func parseCompact(raw string, algs []string) (*compactJWS, error) {
	i := strings.IndexByte(raw, '.')
	j := i + 1 + strings.IndexByte(raw[i+1:], '.')
	hb, err := base64.RawURLEncoding.DecodeString(raw[:i])
	if err != nil {
		return nil, errors.New("header is not base64url")
	}
	alg, kid, ext, err := decodeJWSHeader(hb)
	if err != nil {
		return nil, errJWSHeader
	}
	if !slices.Contains(algs, alg) {
		return nil, algError{alg}
	}
	if ext {
		return nil, errors.New("jws extensions (crit, b64) are not supported")
	}
	payload, err := base64.RawURLEncoding.DecodeString(raw[i+1 : j])
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	sig, err := base64.RawURLEncoding.DecodeString(raw[j+1:])
	if err != nil {
		return nil, errors.New("signature is not base64url")
	}
	return &compactJWS{alg: alg, kid: kid, input: raw[:j], payload: payload, sig: sig}, nil
}

// verifyCompact returns the payload of jws if a key of the OP's JWKS
// verifies it: the same key choice (kid, use, the JWK's alg, S30) and the
// same rotation refetch (at most once per jwksMinRefresh, S63) as verify.
func (ks *keySet) verifyCompact(ctx context.Context, jws *compactJWS) ([]byte, error) {
	if !slices.Contains(ks.algs, jose.SignatureAlgorithm(jws.alg)) {
		return nil, fmt.Errorf("oidc: alg %q not allowed", clip(jws.alg))
	}
	return ks.verifyBy(ctx, jws.kid, jws.alg, func(k *jose.JSONWebKey) bool {
		return verifySignature(k.Key, jws.alg, jws.input, jws.sig) == nil
	}, jws.payload)
}

// verifySignature checks sig over input with key for alg (RFC 7518 §3):
// the key's type must be the alg's, and an EC key's curve the alg's.
func verifySignature(key any, alg, input string, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case "RS256", "PS256", "ES256":
		h = crypto.SHA256
	case "RS384", "PS384", "ES384":
		h = crypto.SHA384
	case "RS512", "PS512", "ES512":
		h = crypto.SHA512
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return errors.New("key is not an ed25519 key")
		}
		if !ed25519.Verify(k, []byte(input), sig) {
			return errors.New("signature does not verify")
		}
		return nil
	default:
		return fmt.Errorf("alg %q not supported", clip(alg))
	}
	hh := h.New()
	hh.Write([]byte(input))
	digest := hh.Sum(nil)
	switch alg[0] {
	case 'R':
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return errors.New("key is not an rsa key")
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig)
	case 'P':
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return errors.New("key is not an rsa key")
		}
		return rsa.VerifyPSS(k, h, digest, sig, nil) // salt length auto, as go-jose
	}
	k, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("key is not an ec key")
	}
	var curve elliptic.Curve
	switch alg {
	case "ES256":
		curve = elliptic.P256()
	case "ES384":
		curve = elliptic.P384()
	default:
		curve = elliptic.P521()
	}
	if k.Curve != curve {
		return errors.New("key is not on the alg's curve")
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return fmt.Errorf("signature of %d bytes, want %d", len(sig), 2*size)
	}
	r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(k, digest, r, s) {
		return errors.New("signature does not verify")
	}
	return nil
}
