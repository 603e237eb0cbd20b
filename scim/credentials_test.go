package scim

import (
	"net/http"
	"slices"
	"testing"
)

// TestSCIM_PasswordSetIsTold: a password a provisioning client sets (PUT,
// or PATCH in the shapes Entra and Okta send) is discarded and reported to
// the CredentialObserver once per request; other changes are not.
func TestSCIM_PasswordSetIsTold(t *testing.T) {
	e := newEnv(t, nil)
	st, u, _ := e.do("create", "POST", "/Users", e.acme, map[string]any{
		"schemas": []string{UserSchema}, "userName": "pat@acme.test", "password": "initial-Secret1", "active": true})
	if st != http.StatusCreated {
		t.Fatalf("create = %d %v", st, u)
	}
	id := u["id"].(string)
	patch := func(ops ...map[string]any) map[string]any {
		return map[string]any{"schemas": []string{PatchOpSchema}, "Operations": ops}
	}
	tests := []struct {
		name   string
		method string
		body   any
		told   bool
	}{
		{"entra replace path password", "PATCH", patch(map[string]any{"op": "Replace", "path": "password", "value": "New-Secret2"}), true},
		{"okta replace value object", "PATCH", patch(map[string]any{"op": "replace", "value": map[string]any{"password": "New-Secret3"}}), true},
		{"put with password", "PUT", map[string]any{"schemas": []string{UserSchema}, "userName": "pat@acme.test", "password": "New-Secret4", "active": true}, true},
		{"patch of the display name", "PATCH", patch(map[string]any{"op": "replace", "path": "displayName", "value": "Pat"}), false},
		{"put without password", "PUT", map[string]any{"schemas": []string{UserSchema}, "userName": "pat@acme.test", "active": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.mu.Lock()
			e.creds = nil
			e.mu.Unlock()
			if st, body, _ := e.do(tt.name, tt.method, "/Users/"+id, e.acme, tt.body); st != http.StatusOK {
				t.Fatalf("%s = %d %v", tt.method, st, body)
			}
			_, got, _ := e.do("read", "GET", "/Users/"+id, e.acme, nil)
			if got["password"] != nil {
				t.Errorf("GET returns password %v; it is never stored", got["password"])
			}
			e.mu.Lock()
			creds := slices.Clone(e.creds)
			e.mu.Unlock()
			want := []string(nil)
			if tt.told {
				want = []string{"acme/" + id + " by scim:entra"}
			}
			if !slices.Equal(creds, want) {
				t.Errorf("CredentialChanged calls = %q, want %q", creds, want)
			}
		})
	}
}
