package broker

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSignHalf: the pooled signing path writes the payload json.Marshal
// gives, verifies with the key, gives at_hash as halfHash of the token,
// and leaves no trace of one token in the next (the buffers are reused).
func TestSignHalf(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k, err := generateKey(alg, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			m := &keyManager{keys: []*signingKey{k}, now: time.Now}
			now := time.Now().Unix()
			long := &accessClaims{Iss: "https://login.example.test", Sub: strings.Repeat("s", 2000), Aud: "app",
				ClientID: "app", Iat: now, Exp: now + 600, Jti: "j1", Scope: "openid <&>", Roles: []any{"admin"}}
			short := &accessClaims{Iss: "https://login.example.test", Sub: "u", Aud: "app", ClientID: "app",
				Iat: now, Exp: now + 600, Jti: "j2"}
			for _, c := range []*accessClaims{long, short, long} {
				tok, half, err := m.signHalf(c, "at+jwt", true)
				if err != nil {
					t.Fatalf("signHalf(sub of %d bytes) error %v", len(c.Sub), err)
				}
				if want := halfHash(tok); half != want {
					t.Errorf("signHalf half hash = %q, want halfHash(token) %q", half, want)
				}
				parts := strings.Split(tok, ".")
				if len(parts) != 3 {
					t.Fatalf("token has %d parts, want 3", len(parts))
				}
				payload, err := base64.RawURLEncoding.DecodeString(parts[1])
				if err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(c)
				if string(payload) != string(want) {
					t.Errorf("payload = %s, want json.Marshal's %s", payload, want)
				}
				got, err := m.verify(tok, "at+jwt")
				if err != nil {
					t.Fatalf("verify(signed token) error %v", err)
				}
				if got["sub"] != c.Sub || got["jti"] != c.Jti {
					t.Errorf("verified sub, jti = %v, %v, want %q, %q", got["sub"], got["jti"], c.Sub, c.Jti)
				}
				if tok2, half2, _ := m.signHalf(c, "at+jwt", false); half2 != "" || tok2 == "" {
					t.Errorf("signHalf(half false) = %q, %q, want a token and no hash", tok2, half2)
				}
			}
		})
	}
}
