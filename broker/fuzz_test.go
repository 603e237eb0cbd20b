package broker

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fuzzTypes are the token types verify is asked for.
var fuzzTypes = []string{"at+jwt", "JWT", "logout+jwt"}

// FuzzVerify feeds arbitrary strings to the verifier of the tokens realmgate
// issues (SECURITY S30-S32), seeded with genuine ES256 and RS256 tokens and
// classic forgeries. It must never panic, and it may accept a token only if
// its signing input (header and payload) is one realmgate signed: no edit of
// a header or payload survives, whatever the encoding tricks.
//
//	go test ./broker -run '^$' -fuzz FuzzVerify -fuzztime 10m
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	es, err := generateKey("ES256", now)
	if err != nil {
		f.Fatal(err)
	}
	rs, err := generateKey("RS256", now)
	if err != nil {
		f.Fatal(err)
	}
	m := &keyManager{keys: []*signingKey{es, rs}, now: func() time.Time { return now }}
	signedInputs := map[string]bool{}
	sign := func(k *signingKey, typ string, claims map[string]any) string {
		one := &keyManager{keys: []*signingKey{k}}
		tok, err := one.sign(claims, typ)
		if err != nil {
			f.Fatal(err)
		}
		signedInputs[tok[:strings.LastIndexByte(tok, '.')]] = true
		return tok
	}
	claims := map[string]any{"iss": "https://login.example.test", "sub": "s", "aud": "app",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	b64 := base64.RawURLEncoding.EncodeToString
	var seeds []string
	for i, k := range []*signingKey{es, rs} {
		tok := sign(k, fuzzTypes[i], claims)
		if _, err := m.verify(tok, fuzzTypes[i]); err != nil {
			f.Fatalf("verify of a genuine %s token: %v", k.Alg, err) // else the target proves little
		}
		parts := strings.Split(tok, ".")
		seeds = append(seeds, tok,
			// alg none, alg switched to HS256 keyed with the public key, kid removed
			b64([]byte(`{"alg":"none","kid":"`+k.Kid+`","typ":"at+jwt"}`))+"."+parts[1]+".",
			b64([]byte(`{"alg":"HS256","kid":"`+k.Kid+`","typ":"at+jwt"}`))+"."+parts[1]+"."+parts[2],
			b64([]byte(`{"alg":"`+k.Alg+`","typ":"at+jwt","jku":"https://evil.example/jwks"}`))+"."+parts[1]+"."+parts[2],
			parts[0]+"."+b64([]byte(`{"sub":"admin","exp":99999999999}`))+"."+parts[2],
			tok+"=", tok[:len(tok)-1], strings.Repeat(tok, 3))
	}
	seeds = append(seeds, "", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30", strings.Repeat("A", maxJWTSize+1))
	for _, s := range seeds {
		for i := range fuzzTypes {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, token string, typ uint8) {
		want := fuzzTypes[int(typ)%len(fuzzTypes)]
		got, err := m.verify(token, want)
		if err != nil {
			return
		}
		if !signedInputs[token[:max(strings.LastIndexByte(token, '.'), 0)]] {
			t.Fatalf("verify(%q, %q) accepted a token realmgate never signed: %v", token, want, got)
		}
		if _, ok := got["exp"]; !ok {
			t.Fatalf("verify(%q, %q) accepted a token without exp", token, want)
		}
	})
}

// compactRE is the definition compactJWS implements: three non-empty
// base64url segments (RFC 7515 §7.1, unpadded).
var compactRE = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// FuzzCompactJWS checks the hand-written shape check against the regular
// expression it stands for.
//
//	go test ./broker -run '^$' -fuzz FuzzCompactJWS -fuzztime 10m
func FuzzCompactJWS(f *testing.F) {
	for _, s := range []string{"a.b.c", "a..c", ".b.c", "a.b.", "a.b.c.d", "a.b", "", "a.b.c=", "a.b.c\n", "é.b.c", "A-_.0.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := compactJWS(s), compactRE.MatchString(s); got != want {
			t.Fatalf("compactJWS(%q) = %v, want %v", s, got, want)
		}
	})
}
