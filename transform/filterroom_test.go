package transform

import (
	"reflect"
	"testing"
)

// TestFilterClaimsRoom: the same claims as FilterClaims, and the room asked
// for takes that many more entries without the map growing.
func TestFilterClaimsRoom(t *testing.T) {
	all := map[string]any{"email": "a@b.test", "name": "A", "amr": []any{"pwd"}, "dept": "x", "roles": []any{"r"}}
	scopes, granted := []string{"openid", "email", "profile"}, []string{"dept"}
	want := FilterClaims(all, scopes, granted)
	if got := FilterClaimsRoom(all, scopes, granted, 16); !reflect.DeepEqual(got, want) {
		t.Fatalf("FilterClaimsRoom = %v, want FilterClaims's %v", got, want)
	}
	keys := []string{"iss", "sub", "aud", "azp", "iat", "exp", "auth_time", "tid", "idp", "sid", "roles", "acrs",
		"risk_level", "at_hash", "nonce", "k16"}
	allocs := testing.AllocsPerRun(20, func() {
		out := FilterClaimsRoom(all, scopes, granted, len(keys))
		for _, k := range keys {
			out[k] = true
		}
	})
	grown := testing.AllocsPerRun(20, func() {
		out := FilterClaims(all, scopes, granted)
		for _, k := range keys {
			out[k] = true
		}
	})
	if allocs >= grown {
		t.Errorf("allocations with room for %d entries = %v, want fewer than without room (%v)", len(keys), allocs, grown)
	}
}
