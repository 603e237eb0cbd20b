package broker

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestAppendClaimsJSON: byte for byte what json.Marshal writes, for every
// kind of value claims hold and for the ones left to json.Marshal.
func TestAppendClaimsJSON(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]any
	}{
		{"empty", map[string]any{}},
		{"id token", map[string]any{"iss": "https://login.example.test", "sub": "u1", "aud": "app", "azp": "app",
			"iat": int64(1700000000), "exp": int64(1700000300), "auth_time": int64(1699999999), "tid": "acme",
			"idp": "acme-idp", "sid": "s", "roles": []any{"admin", "user"}, "at_hash": "x-_", "nonce": "n<>&\"",
			"email": "alice@acme.test", "email_verified": true, "amr": []any{"pwd"}}},
		{"escapes in keys and values", map[string]any{"k\"\\<>&\n": "v\u2028\u2029\x01\xffé", "é": "ü"}},
		{"numbers", map[string]any{"i": 42, "neg": int64(-7), "u": uint64(math.MaxUint64), "f": 1.5, "z": 0.0,
			"small": 1e-7, "big": 1e21, "mid": 123456789.125, "negf": -0.000001}},
		{"null and nesting", map[string]any{"n": nil, "l": []any{nil, 1.0, "a", []any{}, map[string]any{"b": false}},
			"nl": []any(nil), "nm": map[string]any(nil), "ss": []string{"a", "<b>"}, "nss": []string(nil),
			"o": map[string]any{"z": 1.0, "a": map[string]any{"deep": []any{"x"}}}}},
		{"left to json.Marshal", map[string]any{"t": time.Unix(1700000000, 0).UTC(), "num": json.Number("12.50"),
			"raw": json.RawMessage(`{"a":1}`), "i32": int32(5), "f32": float32(0.1), "strs": map[string]string{"b": "c"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendClaimsJSON(nil, tc.m)
			if err != nil {
				t.Fatalf("appendClaimsJSON error %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("appendClaimsJSON = %s\nwant json.Marshal's %s", got, want)
			}
		})
	}
	t.Run("errors as json.Marshal does", func(t *testing.T) {
		for _, v := range []any{math.NaN(), math.Inf(1), func() {}} {
			if _, err := appendClaimsJSON(nil, map[string]any{"x": v}); err == nil {
				t.Errorf("appendClaimsJSON({x: %T}) = nil error, want json.Marshal's error", v)
			}
		}
	})
}

// FuzzAppendClaimsJSON compares with json.Marshal on claims decoded from
// arbitrary JSON (the form every stored claim set has).
func FuzzAppendClaimsJSON(f *testing.F) {
	f.Add(`{"a":"b","n":1.25,"l":[1,"x",null,{"z":true}],"e":1e-9,"big":1e300}`)
	f.Add(`{"<":"\u2028","k":-0,"x":123456789012345678901234567890}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var m map[string]any
		if json.Unmarshal([]byte(doc), &m) != nil || m == nil {
			return
		}
		want, err := json.Marshal(m)
		if err != nil {
			return
		}
		got, err := appendClaimsJSON(nil, m)
		if err != nil || string(got) != string(want) {
			t.Fatalf("appendClaimsJSON(%s) = %s, %v, want %s", doc, got, err, want)
		}
	})
}

// TestSignHalf_MapClaims: an ID token's claims map signed through the
// pooled path carries json.Marshal's payload, one token after another.
func TestSignHalf_MapClaims(t *testing.T) {
	k, err := generateKey("ES256", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := &keyManager{keys: []*signingKey{k}, now: time.Now}
	now := time.Now().Unix()
	for _, c := range []map[string]any{
		{"sub": strings.Repeat("u", 3000), "iat": now, "exp": now + 60, "roles": []any{"a"}},
		{"sub": "v", "iat": now, "exp": now + 60},
	} {
		tok, _, err := m.signHalf(c, "JWT", false)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(c); string(payload) != string(want) {
			t.Errorf("payload = %.80s, want json.Marshal's %.80s", payload, want)
		}
		if _, err := m.verify(tok, "JWT"); err != nil {
			t.Errorf("verify(signed map claims) error %v", err)
		}
	}
}
