package oidc

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

var tokenResponseCases = []string{
	`{"access_token":"at","token_type":"Bearer","id_token":"a.b.c","expires_in":3600,"scope":"openid email"}`,
	`{"error":"invalid_grant","error_description":"code \"used\""}`,
	`{"ACCESS_TOKEN":"upper","Id_Token":"mixed","access_token":"exact"}`,
	`{"access_token":"exact","ACCESS_TOKEN":"upper after"}`,
	"{\"access_to\u212aen\":\"kelvin\",\"id_to\\u212aen\":\"escaped kelvin\",\"error_de\u017fcription\":\"long s\"}",
	`{"access_token":null}`, `{"access_token":"a","access_token":null}`, `{"id_token":"x","id_token":"y"}`,
	`{"access_token":5}`, `{"access_token":true}`, `{"access_token":["a"]}`, `{"access_token":{"a":1}}`,
	`{"access_token":1e400}`, `{"unknown":1e400,"access_token":"a"}`, `{"access_token":1,"x":}`,
	`{"u":{"a":[1,{"b":[]},{}],"c":{}},"access_token":"a"}`, `{"u":[1,]}`, `{"u":{"a":1,}}`, `{"u":tru}`,
	"{\"access_token\":\"caf\xc3\xa9 \xff \\ud83d\"}", "{\"acc\xffess_token\":\"bad key\"}",
	`null`, ` null `, `nul`, `[]`, `["a"]`, `"s"`, `1`, `true`, ``, ` `, `{}`, `{} {}`, `{}x`, `{"a":1}` + "\n",
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{'a':1}`, `{a:1}`, `{,}`, `{"a"}`, `{"a":1`, `{"id_token":"x`,
}

func TestDecodeTokenResponse_SameAsUnmarshal(t *testing.T) {
	deep := `{"u":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `,"id_token":"d"}`
	deeper := `{"u":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`
	for _, in := range append(tokenResponseCases, deep, deeper) {
		name := in
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		var want, got tokenResponse
		wantErr := json.Unmarshal([]byte(in), &want)
		err := decodeTokenResponse([]byte(in), &got)
		if (err == nil) != (wantErr == nil) {
			t.Errorf("decodeTokenResponse(%q) error = %v, json.Unmarshal error = %v", name, err, wantErr)
			continue
		}
		if err == nil && got != want {
			t.Errorf("decodeTokenResponse(%q) = %+v, want %+v", name, got, want)
		}
	}
}

func FuzzDecodeTokenResponse(f *testing.F) {
	for _, c := range tokenResponseCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got tokenResponse
		wantErr := json.Unmarshal(b, &want)
		err := decodeTokenResponse(b, &got)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeTokenResponse(%q) error = %v, json.Unmarshal error = %v", b, err, wantErr)
		}
		if err == nil && got != want {
			t.Fatalf("decodeTokenResponse(%q) = %+v, want %+v", b, got, want)
		}
	})
}

func BenchmarkDecodeTokenResponse(b *testing.B) {
	body := []byte(`{"access_token":"` + strings.Repeat("a", 43) + `","token_type":"Bearer","expires_in":300,"scope":"openid profile email",` +
		`"id_token":"` + strings.Repeat("h", 100) + "." + strings.Repeat("p", 600) + "." + strings.Repeat("s", 86) + `"}`)
	b.Run("decodeTokenResponse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var tr tokenResponse
			if err := decodeTokenResponse(body, &tr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var tr tokenResponse
			if err := json.Unmarshal(body, &tr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTokenForm_SameAsValuesEncode: the token request body is what
// url.Values.Encode gave for the same fields.
func TestTokenForm_SameAsValuesEncode(t *testing.T) {
	for _, tt := range []struct {
		name   string
		client []string
	}{{"basic", nil}, {"public", []string{"app id"}}, {"public, empty id", []string{""}}, {"post", []string{"app", "s3cr&t=+/ é"}}} {
		t.Run(tt.name, func(t *testing.T) {
			code, ru, ver := "c0de+/=&x", "https://rg.test/cb?a=b&c=d é", "v-._~"
			want := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}, "code_verifier": {ver}}
			if len(tt.client) > 0 {
				want.Set("client_id", tt.client[0])
			}
			if len(tt.client) > 1 {
				want.Set("client_secret", tt.client[1])
			}
			if got := tokenForm(code, ru, ver, tt.client); got != want.Encode() {
				t.Errorf("tokenForm = %q, want %q", got, want.Encode())
			}
		})
	}
}

func BenchmarkTokenForm(b *testing.B) {
	code, ru, ver := strings.Repeat("c", 43), "http://127.0.0.1:8080/callback", strings.Repeat("v", 43)
	b.Run("tokenForm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = tokenForm(code, ru, ver, nil)
		}
	})
	b.Run("url.Values", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}, "code_verifier": {ver}}.Encode()
		}
	})
}
