package transform

import (
	"reflect"
	"testing"
)

func TestFilterClaims(t *testing.T) {
	claims := map[string]any{
		"iss": "https://login.example.test", "sub": "s", "aud": "notes-app", "exp": int64(2), "iat": int64(1),
		"tid": "contoso", "idp": "contoso-adfs", "amr": []any{"pwd"}, "nonce": "n",
		"name": "Alice Smith", "given_name": "Alice", "preferred_username": "alice",
		"email": "alice@contoso.com", "email_verified": true,
		"roles":      []any{"admin"},
		"department": "Finance", "employee_number": "4211",
	}
	always := map[string]any{"iss": "https://login.example.test", "sub": "s", "aud": "notes-app", "exp": int64(2), "iat": int64(1),
		"tid": "contoso", "idp": "contoso-adfs", "amr": []any{"pwd"}, "nonce": "n"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range always {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		scopes  []string
		granted []string
		want    map[string]any
	}{
		{name: "openid only", scopes: []string{"openid"}, want: always},
		{name: "profile", scopes: []string{"openid", "profile"}, want: with(map[string]any{"name": "Alice Smith", "given_name": "Alice", "preferred_username": "alice"})},
		{name: "email", scopes: []string{"openid", "email"}, want: with(map[string]any{"email": "alice@contoso.com", "email_verified": true})},
		{name: "roles", scopes: []string{"openid", "roles"}, want: with(map[string]any{"roles": []any{"admin"}})},
		{name: "custom claim granted", scopes: []string{"openid"}, granted: []string{"department", "absent"}, want: with(map[string]any{"department": "Finance"})},
		{name: "unknown scope releases nothing", scopes: []string{"openid", "department"}, want: always},
		{name: "everything", scopes: []string{"openid", "profile", "email", "roles"}, granted: []string{"department", "employee_number"}, want: claims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FilterClaims(claims, tc.scopes, tc.granted)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FilterClaims(%v, %v) = %v, want %v", tc.scopes, tc.granted, got, tc.want)
			}
		})
	}
	if len(claims) != 17 {
		t.Errorf("FilterClaims modified its input: %d claims, want 17", len(claims))
	}
}
