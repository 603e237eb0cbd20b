package oidc

import (
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestUserinfoModes: auto calls userinfo only when the ID token lacks a
// claim the requested scopes stand for (or a scope is not one it knows);
// always calls it every time, never not at all. Whenever it is called, its
// sub is still checked (S20).
func TestUserinfoModes(t *testing.T) {
	full := map[string]any{"email": "alice@example.com", "email_verified": true, "name": "Alice Liddell",
		"given_name": "Alice", "family_name": "Liddell"}
	tests := []struct {
		name    string
		mode    string
		skip    bool
		scopes  []string
		drop    string // a claim left out of the ID token
		wantHit bool
	}{
		{"auto, everything in the ID token", "", false, nil, "", false},
		{"auto explicit", UserinfoAuto, false, nil, "", false},
		{"auto, no email_verified", UserinfoAuto, false, nil, "email_verified", true},
		{"auto, no given_name", UserinfoAuto, false, nil, "given_name", true},
		{"auto, email scope only, no name", UserinfoAuto, false, []string{"openid", "email"}, "name", false},
		{"auto, a custom scope", UserinfoAuto, false, []string{"openid", "email", "api://x/read"}, "", true},
		{"auto, groups scope without groups", UserinfoAuto, false, []string{"openid", "groups"}, "", true},
		{"always", UserinfoAlways, false, nil, "", true},
		{"never", UserinfoNever, false, nil, "email", false},
		{"SkipUserinfo", "", true, nil, "email", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := newOP(t)
			c := op.connector(t, func(cfg *Config) { cfg.Userinfo, cfg.SkipUserinfo, cfg.Scopes = tt.mode, tt.skip, tt.scopes })
			req := newLoginRequest(t)
			cl := op.claims(req)
			for k, v := range full {
				if k != tt.drop {
					cl[k] = v
				}
			}
			op.set(func(op *fakeOP) { op.userinfo = map[string]any{"sub": "alice-sub", "groups": []string{"g"}} })
			if _, err := op.callback(t, c, req, sign(t, jwt.SigningMethodES256, ecKey, "ec-1", cl, nil), nil); err != nil {
				t.Fatalf("HandleCallback = %v", err)
			}
			if got := op.userinfoHits.Load() > 0; got != tt.wantHit {
				t.Fatalf("userinfo called = %v, want %v", got, tt.wantHit)
			}
		})
	}
	t.Run("S20 sub still checked when called", func(t *testing.T) {
		op := newOP(t)
		c := op.connector(t)
		req := newLoginRequest(t)
		cl := op.claims(req) // no profile or email claims: auto calls userinfo
		op.set(func(op *fakeOP) { op.userinfo = map[string]any{"sub": "mallory"} })
		_, err := op.callback(t, c, req, sign(t, jwt.SigningMethodES256, ecKey, "ec-1", cl, nil), nil)
		if err == nil {
			t.Fatal("HandleCallback with another userinfo sub = nil, want an error")
		}
	})
	t.Run("bad mode", func(t *testing.T) {
		_, err := New(Config{ID: "x", Issuer: "https://op.example", ClientID: "c", Userinfo: "sometimes"})
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("New(userinfo: sometimes) = %v, want ErrConfig", err)
		}
	})
}
