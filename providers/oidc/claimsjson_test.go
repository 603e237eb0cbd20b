package oidc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// unmarshalClaims is what verifyIDToken did before decodeClaims: a nil
// map (JSON null) counts as a failure.
func unmarshalClaims(b []byte) (map[string]any, bool) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

var claimsCases = []string{
	`{"iss":"https://idp.test","sub":"u1","aud":["a","b"],"exp":1800000000,"iat":1.8e9,"n":-0.5e-3,"ok":true,"no":false,"x":null}`,
	`{"nested":{"a":[1,{"b":[]},{}],"c":{}},"empty":""}`,
	` {"a" : 1 } `,
	"{\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u2028\\ud83d\\ude00\"}",
	`{"lone":"\ud83d x","lone2":"\ude00","pair_then_bad":"\ud83d\u0041","hi_hi":"\ud83d\ud83d"}`,
	"{\"raw\":\"caf\xc3\xa9 \xff \xed\xa0\x80 \xe2\x80\xa8\"}",
	`{"dup":1,"dup":"two"}`,
	`{"big":1e308,"small":1e-400,"zero":-0,"frac":0.1}`,
	`{"huge":1e400}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{"a":1`, `{"a":"x`, "{\"a\":\"\x01\"}", `{"a":"\x"}`, `{"a":"\u12"}`,
	`{'a':1}`, `{a:1}`, `[]`, `[1]`, `null`, `"s"`, `1`, ``, ` `, `{} {}`, `{}x`, `{}`, "{\"a\":1}\u00a0",
	`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":{"b":1,}}`, `{"a":1}` + "\n",
}

func TestDecodeClaims_SameAsUnmarshal(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	deeper := strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001)
	arr := `{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "}"
	arr2 := `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}"
	for _, in := range append(claimsCases, deep, deeper, arr, arr2) {
		want, wantOK := unmarshalClaims([]byte(in))
		got, err := decodeClaims([]byte(in))
		name := in
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		if (err == nil) != wantOK {
			t.Errorf("decodeClaims(%q) error = %v, json.Unmarshal ok = %v", name, err, wantOK)
			continue
		}
		if wantOK && !reflect.DeepEqual(got, want) {
			t.Errorf("decodeClaims(%q) = %#v, want %#v", name, got, want)
		}
	}
}

func FuzzDecodeClaims(f *testing.F) {
	for _, c := range claimsCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantOK := unmarshalClaims(b)
		got, err := decodeClaims(b)
		if (err == nil) != wantOK {
			t.Fatalf("decodeClaims(%q) error = %v, json.Unmarshal ok = %v", b, err, wantOK)
		}
		if wantOK && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeClaims(%q) = %#v, want %#v", b, got, want)
		}
	})
}

func BenchmarkDecodeClaims(b *testing.B) {
	payload := []byte(`{"iss":"https://login.idp.example/acme","sub":"acme-u-1001","aud":"realmgate","exp":1800000600,"iat":1800000000,` +
		`"auth_time":1800000000,"nonce":"n-0123456789abcdef0123456789abcdef","at_hash":"x4Yl3cJdWJ6sdrq3eSnBvA","email":"alice@acme.test",` +
		`"email_verified":true,"name":"Alice Anders","groups":["Finance-Admins"]}`)
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			unmarshalClaims(payload)
		}
	})
	b.Run("decodeClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeClaims(payload)
		}
	})
}
