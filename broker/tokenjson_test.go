package broker

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestTokenResponseJSON_EveryField: appendJSON writes what json.Marshal
// writes, with every field of tokenResponse set (by reflection, so a field
// added later without a place in appendJSON fails here) and with values
// that need escaping.
func TestTokenResponseJSON_EveryField(t *testing.T) {
	fill := func(s string, n int) *tokenResponse {
		r := new(tokenResponse)
		v := reflect.ValueOf(r).Elem()
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(v.Type().Field(i).Name + s)
			case reflect.Int:
				f.SetInt(int64(n + i))
			default:
				t.Fatalf("tokenResponse.%s: kind %s has no case here nor in appendJSON", v.Type().Field(i).Name, f.Kind())
			}
		}
		return r
	}
	tests := []struct {
		name string
		r    *tokenResponse
	}{
		{"plain", fill(".eyJhbGciOiJFUzI1NiJ9.sig-_", 3600)},
		{"escapes", fill("\"\\<>&\n\t\x01\u2028é\xff", -1)},
		{"empty", &tokenResponse{}},
		{"typical", &tokenResponse{AccessToken: "a.b.c", TokenType: "DPoP", ExpiresIn: 300, IDToken: "d.e.f",
			Scope: "openid profile email"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.r.appendJSON(nil); string(got) != string(want) {
				t.Errorf("appendJSON(%+v) = %s, want json.Marshal's %s", tc.r, got, want)
			}
		})
	}
}
