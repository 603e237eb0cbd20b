package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// benchGrant is a grant as a sign-in for the load benchmark's user leaves it.
func benchGrant() *grant {
	now := time.Now().Truncate(time.Second)
	return &grant{ClientID: "bench-app", Scopes: []string{"openid", "profile", "email"}, SID: randomToken(16),
		Subject: randomToken(24), Tenant: "acme", IdP: "acme-idp", AuthTime: now, Created: now,
		Claims: map[string]any{"amr": []any{"pwd"}, "email": "alice@acme.test", "email_verified": true,
			"family_name": "Anders", "given_name": "Alice", "name": "Alice Anders", "roles": []any{"admin"}}}
}

// BenchmarkSign measures one token signature as the token endpoint makes it
// (claims encoding, header, signature, compact serialization), for both
// algorithms, against the generic golang-jwt path it replaced.
func BenchmarkSign(b *testing.B) {
	g := benchGrant()
	for _, alg := range []string{"ES256", "RS256"} {
		k, err := generateKey(alg, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		m := &keyManager{keys: []*signingKey{k}}
		claims := &accessClaims{Iss: "https://login.example.test", Sub: g.Subject, Aud: g.ClientID, ClientID: g.ClientID,
			Iat: 1, Exp: 2, Jti: randomToken(16), Scope: "openid profile email", Tid: g.Tenant, IdP: g.IdP,
			Roles: []any{"admin"}, AuthTime: 1, SID: g.SID, GID: randomToken(16)}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.sign(claims, "at+jwt"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/golang-jwt", func(b *testing.B) {
			mc := jwt.MapClaims{}
			raw, _ := json.Marshal(claims)
			_ = json.Unmarshal(raw, &mc)
			b.ReportAllocs()
			for b.Loop() {
				t := jwt.NewWithClaims(k.method, mc)
				t.Header["kid"], t.Header["typ"] = k.Kid, "at+jwt"
				if _, err := t.SignedString(k.priv); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/verify", func(b *testing.B) {
			m.now = time.Now
			now := time.Now().Unix()
			c := *claims
			c.Iat, c.Exp = now, now+600
			tok, err := m.sign(&c, "at+jwt")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.verify(tok, "at+jwt"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreKey measures the HMAC that names every store record (S17):
// pooled (what keyer.key does) and with a new HMAC per call (what it did).
func BenchmarkStoreKey(b *testing.B) {
	k := keyer{secret: derive([]byte(strings.Repeat("s", 32)), "store-keys")}
	v := randomToken(tokenBytes)
	if got, want := k.key("cd", v), unpooledKey(k.secret, "cd", v); got != want {
		b.Fatalf("key(cd) = %q, want %q", got, want)
	}
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = k.key("cd", v)
		}
	})
	b.Run("unpooled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = unpooledKey(k.secret, "cd", v)
		}
	})
}

func unpooledKey(secret []byte, kind, v string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return kind + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// BenchmarkGrantCodec measures encoding and decoding a grant record, which
// every code exchange and refresh does.
func BenchmarkGrantCodec(b *testing.B) {
	g := benchGrant()
	blob, _ := json.Marshal(g)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(g); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out grant
			if err := decodeRecord(blob, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The binary form (grantcodec.go) the code exchange and refresh read.
	bin, err := encodeGrant(g)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode-binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeGrant(g); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A grant with its origin session, as the callback writes the code.
	withOrigin := *g
	withOrigin.Origin = codecSession()
	b.Run("encode-binary/origin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeGrant(&withOrigin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out grant
			if err := decodeGrant(bin, &out, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
