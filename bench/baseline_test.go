package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// TestBaselineSign checks the baseline's tokens for each -alg: the header
// names the algorithm and the JWKS's key, and the signature verifies with
// that key, so the baseline does the signing work realmgate does.
func TestBaselineSign(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			var b baseline
			if err := b.makeKey(alg); err != nil {
				t.Fatalf("makeKey(%q): %v", alg, err)
			}
			tok := b.sign(b.headerID, []byte(`{"sub":"alice"}`))
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("sign = %q, want three parts", tok)
			}
			var hdr struct{ Alg, Kid string }
			raw, _ := b64.DecodeString(parts[0])
			if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Alg != alg {
				t.Fatalf("header %s: alg %q, want %q (%v)", raw, hdr.Alg, alg, err)
			}
			var set struct{ Keys []map[string]string }
			if err := json.Unmarshal(b.jwks, &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != hdr.Kid || set.Keys[0]["alg"] != alg {
				t.Fatalf("jwks %s does not hold the header's key %q for %s (%v)", b.jwks, hdr.Kid, alg, err)
			}
			sig, _ := b64.DecodeString(parts[2])
			h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			switch alg {
			case "ES256":
				if len(sig) != 64 || !ecdsa.Verify(&b.priv.PublicKey, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
					t.Errorf("ES256 signature does not verify")
				}
			case "RS256":
				if err := rsa.VerifyPKCS1v15(&b.rsaPriv.PublicKey, crypto.SHA256, h[:], sig); err != nil {
					t.Errorf("RS256 signature does not verify: %v", err)
				}
			}
		})
	}
	var b baseline
	if err := b.makeKey("HS256"); err == nil {
		t.Errorf("makeKey(%q) = nil, want an error", "HS256")
	}
}
