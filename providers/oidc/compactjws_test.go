package oidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

// testAlgKeys returns, per asymmetric alg, a signing method and a private
// key of the alg's type (the EC keys on the alg's curve).
func testAlgKeys(t *testing.T) map[string]struct {
	method jwt.SigningMethod
	priv   crypto.Signer
} {
	t.Helper()
	testKeys(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	type mk = struct {
		method jwt.SigningMethod
		priv   crypto.Signer
	}
	return map[string]mk{
		"RS256": {jwt.SigningMethodRS256, rsaKey2}, "RS384": {jwt.SigningMethodRS384, rsaKey2}, "RS512": {jwt.SigningMethodRS512, rsaKey2},
		"PS256": {jwt.SigningMethodPS256, rsaKey2}, "PS384": {jwt.SigningMethodPS384, rsaKey2}, "PS512": {jwt.SigningMethodPS512, rsaKey2},
		"ES256": {jwt.SigningMethodES256, ecKey}, "ES384": {jwt.SigningMethodES384, p384}, "ES512": {jwt.SigningMethodES512, p521},
		"EdDSA": {jwt.SigningMethodEdDSA, ed},
	}
}

// TestCallback_S30_EveryAlg: an ID token of each asymmetric alg verifies
// with its key, and fails with its signature altered; the connector's
// parse agrees with go-jose's verification on both.
func TestCallback_S30_EveryAlg(t *testing.T) {
	for alg, k := range testAlgKeys(t) {
		t.Run(alg, func(t *testing.T) {
			op := newOP(t)
			op.set(func(op *fakeOP) {
				op.algs = []string{alg}
				op.jwks = []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: "k-" + alg, Algorithm: alg, Use: "sig"}}
			})
			c := op.connector(t)
			req := newLoginRequest(t)
			tok := sign(t, k.method, k.priv, "k-"+alg, op.claims(req), nil)
			if _, err := op.callback(t, c, req, tok, nil); err != nil {
				t.Fatalf("%s: HandleCallback = %v, want success", alg, err)
			}
			parts := strings.Split(tok, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 1
			bad := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			for name, raw := range map[string]string{"good": tok, "altered signature": bad} {
				cj, err := parseCompact(raw, []string{alg})
				if err != nil {
					t.Fatalf("parseCompact(%s) = %v", name, err)
				}
				ours := verifySignature(k.priv.Public(), alg, cj.input, cj.sig)
				jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				_, theirs := jws.Verify(k.priv.Public())
				if (ours == nil) != (theirs == nil) {
					t.Errorf("%s %s: verifySignature = %v, go-jose Verify = %v; want both to agree", alg, name, ours, theirs)
				}
				if name == "good" && ours != nil {
					t.Errorf("%s: verifySignature(good) = %v", alg, ours)
				}
			}
			req = newLoginRequest(t)
			op.set(func(op *fakeOP) {})
			_, err := op.callback(t, c, req, bad, nil)
			wantErr(t, alg+" altered signature", err, providers.ErrInvalidResponse, "")
		})
	}
}

// TestVerifySignature_KeyMustFitAlg: a key of another type, or an EC key
// on another curve than the alg's, never verifies (RFC 7518 §3.4).
func TestVerifySignature_KeyMustFitAlg(t *testing.T) {
	keys := testAlgKeys(t)
	input := "eyJhbGciOiJFUzI1NiJ9.e30"
	for alg, k := range keys {
		sig, err := k.method.Sign(input, k.priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySignature(k.priv.Public(), alg, input, sig); err != nil {
			t.Fatalf("verifySignature(%s, own key) = %v", alg, err)
		}
		for other, ok := range keys {
			if ok.priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.priv.Public()) {
				continue // RS* and PS* share a key
			}
			if err := verifySignature(ok.priv.Public(), alg, input, sig); err == nil {
				t.Errorf("verifySignature(%s signature, %s's key) = nil, want an error", alg, other)
			}
		}
	}
	// An ES256 signature checked as ES384 with a P-256 key: the curve is not the alg's.
	es := keys["ES256"]
	sig, _ := es.method.Sign(input, es.priv)
	if err := verifySignature(es.priv.Public(), "ES384", input, sig); err == nil {
		t.Errorf("verifySignature(ES384, P-256 key) = nil, want an error")
	}
	if err := verifySignature(es.priv.Public(), "ES256", input, sig[:63]); err == nil {
		t.Errorf("verifySignature(ES256, 63-byte signature) = nil, want an error")
	}
	if err := verifySignature(es.priv.Public(), "HS256", input, sig); err == nil {
		t.Errorf("verifySignature(HS256) = nil, want an error")
	}
}

// TestCallback_S30_CriticalHeaderRefused: a header naming a critical
// extension (RFC 7515 §4.1.11) or an unencoded payload (RFC 7797) is
// refused, whatever the signature.
func TestCallback_S30_CriticalHeaderRefused(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	for name, hdr := range map[string]map[string]any{
		"crit exp":         {"crit": []string{"exp"}, "exp": 1},
		"crit b64":         {"crit": []string{"b64"}, "b64": true},
		"b64 without crit": {"b64": false},
		"empty crit":       {"crit": []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			req := newLoginRequest(t)
			tok := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", op.claims(req), hdr)
			_, err := op.callback(t, c, req, tok, nil)
			wantErr(t, name, err, providers.ErrInvalidResponse, "not supported")
		})
	}
	// Control: the same token without them verifies.
	req := newLoginRequest(t)
	if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestParseCompact_BadParts(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"RS256","kid":"k"}`))
	for name, raw := range map[string]string{
		"header not json":       enc([]byte(`{"alg":`)) + ".e30.c2ln",
		"header alg not string": enc([]byte(`{"alg":1}`)) + ".e30.c2ln",
		"header kid not string": enc([]byte(`{"alg":"RS256","kid":{}}`)) + ".e30.c2ln",
		"header array":          enc([]byte(`["RS256"]`)) + ".e30.c2ln",
		"alg none":              enc([]byte(`{"alg":"none"}`)) + ".e30.c2ln",
		"payload not base64url": hdr + ".e.c2ln",
		"signature not base64":  hdr + ".e30.c",
		"header not base64url":  "e.e30.c2ln",
		"alg case":              enc([]byte(`{"alg":"rs256"}`)) + ".e30.c2ln",
	} {
		if _, err := parseCompact(raw, []string{"RS256"}); err == nil {
			t.Errorf("parseCompact(%s: %q) = nil error, want one", name, raw)
		}
	}
	got, err := parseCompact(hdr+".e30.c2ln", []string{"RS256"})
	if err != nil || got.alg != "RS256" || got.kid != "k" || string(got.payload) != "{}" || string(got.sig) != "sig" || got.input != hdr+".e30" {
		t.Errorf("parseCompact(good) = %+v, %v", got, err)
	}
}
