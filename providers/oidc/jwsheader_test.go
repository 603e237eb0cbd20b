package oidc

import (
	"encoding/json"
	"testing"
)

// jwsHeader is the struct parseCompact decoded the header into with
// json.Unmarshal before decodeJWSHeader: what the tests compare it with.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

var jwsHeaderCases = []string{
	`{"alg":"ES256","kid":"k1","typ":"JWT"}`,
	`{"alg":"RS256","kid":"abc","x5t":"t","jku":"https://evil.example/jwks","jwk":{"kty":"RSA"}}`,
	`{"ALG":"ES256","Kid":"mixed"}`, `{"alg":"ES256","ALG":"none"}`, `{"ALG":"none","alg":"ES256"}`,
	"{\"\u212aid\":\"kelvin\",\"alg\":\"ES256\"}", "{\"b6\\u0034\":false,\"alg\":\"ES256\"}",
	`{"alg":"ES256","crit":["exp"]}`, `{"alg":"ES256","crit":null}`, `{"alg":"ES256","CRIT":[]}`,
	`{"alg":"ES256","b64":false}`, `{"alg":"ES256","B64":null}`, `{"alg":"ES256","crit":1e400}`,
	`{"alg":null,"kid":null}`, `{"alg":"ES256","alg":null}`, `{"alg":5}`, `{"alg":["ES256"]}`,
	`{"kid":{"a":1},"alg":"ES256"}`, `{"alg":"ES256","kid":true}`, `{"alg":"ES256",}`, `{"alg":"ES256"`,
	"{\"alg\":\"ES\xff256\"}", `{"alg":"ES\u0032\u00356"}`, `null`, `[]`, `"alg"`, `1`, ``, `{}`, `{} {}`,
}

// TestDecodeJWSHeader_SameAsUnmarshal: the callback's one-pass header
// decoding gives what json.Unmarshal into jwsHeader gave before it: the
// same alg and kid, the same verdict on crit and b64 (present with any
// value, null included, is refused: S30's "crit refused"), the same errors.
func TestDecodeJWSHeader_SameAsUnmarshal(t *testing.T) {
	for _, in := range jwsHeaderCases {
		t.Run(in, func(t *testing.T) { compareJWSHeader(t, []byte(in)) })
	}
}

func compareJWSHeader(t *testing.T, b []byte) {
	t.Helper()
	var h jwsHeader
	wantErr := json.Unmarshal(b, &h)
	alg, kid, ext, err := decodeJWSHeader(b)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("decodeJWSHeader(%q) error = %v, json.Unmarshal error = %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if wantExt := h.Crit != nil || h.B64 != nil; alg != h.Alg || kid != h.Kid || ext != wantExt {
		t.Fatalf("decodeJWSHeader(%q) = %q, %q, ext %v; want %q, %q, ext %v", b, alg, kid, ext, h.Alg, h.Kid, wantExt)
	}
}

func FuzzDecodeJWSHeader(f *testing.F) {
	for _, c := range jwsHeaderCases {
		f.Add([]byte(c))
	}
	f.Fuzz(compareJWSHeader)
}

func BenchmarkDecodeJWSHeader(b *testing.B) {
	hdr := []byte(`{"alg":"ES256","kid":"Q2d7Vn1jXzNMk7s0xUCe3kHsm5cXg0wGm6xU1o1lXqA","typ":"JWT"}`)
	b.Run("decodeJWSHeader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := decodeJWSHeader(hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var h jwsHeader
			if err := json.Unmarshal(hdr, &h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
