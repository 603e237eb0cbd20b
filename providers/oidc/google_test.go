package oidc

import (
	"context"
	"net/url"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// TestGoogle_HostedDomain: with HostedDomain set, the hd parameter is sent
// and only an ID token whose own hd claim names the domain signs in; a
// consumer account (no hd), another domain, or an hd that only the userinfo
// answer carries is refused as access denied. Without it, hd is kept for rules.
func TestGoogle_HostedDomain(t *testing.T) {
	op := newOP(t)
	googleClaims := func(req providers.LoginRequest, hd string) map[string]any {
		cl := op.claims(req)
		cl["azp"] = testClientID
		cl["email"], cl["email_verified"] = "alice@example.com", true
		if hd != "" {
			cl["hd"] = hd
		}
		return cl
	}
	restricted := op.connector(t, func(c *Config) { c.HostedDomain = "Example.com" })
	open := op.connector(t)

	au, _, err := restricted.LoginURL(context.Background(), newLoginRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(au)
	if got := u.Query().Get("hd"); got != "example.com" {
		t.Errorf("LoginURL hd = %q, want example.com", got)
	}
	au, _, _ = open.LoginURL(context.Background(), newLoginRequest(t))
	if u, _ := url.Parse(au); u.Query().Has("hd") {
		t.Errorf("LoginURL without a hosted domain sends hd: %s", au)
	}

	tests := []struct {
		name       string
		c          *Connector
		hd         string
		userinfoHD string
		wantDenied bool
	}{
		{"workspace account", restricted, "example.com", "", false},
		{"hd in another case", restricted, "EXAMPLE.COM", "", false},
		{"consumer account", restricted, "", "", true},
		{"other workspace", restricted, "evil.example", "", true},
		{"subdomain", restricted, "sub.example.com", "", true},
		{"hd only in userinfo", restricted, "", "example.com", true},
		{"no restriction keeps hd", open, "other.example", "", false},
		{"no restriction, consumer account", open, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op.set(func(op *fakeOP) {
				op.userinfo = map[string]any{"sub": "alice-sub"}
				if tt.userinfoHD != "" {
					op.userinfo["hd"] = tt.userinfoHD
				}
			})
			req := newLoginRequest(t)
			id, err := op.callback(t, tt.c, req, signRS(t, googleClaims(req, tt.hd)), nil)
			if tt.wantDenied {
				wantErr(t, tt.name, err, providers.ErrAccessDenied, "hosted domain")
				return
			}
			if err != nil {
				t.Fatalf("HandleCallback = %v, want success", err)
			}
			if tt.hd != "" && id.Claims["hd"] != tt.hd {
				t.Errorf("Claims[hd] = %v, want %q kept for rules", id.Claims["hd"], tt.hd)
			}
			if !id.EmailVerified {
				t.Errorf("EmailVerified = false, want Google's email_verified")
			}
		})
	}

	for _, bad := range []string{"a b", "x@y", " "} {
		if _, err := New(Config{ID: "g", Issuer: op.issuer, ClientID: "c", HostedDomain: bad}); err == nil {
			t.Errorf("New(HostedDomain %q) = nil error, want ErrConfig", bad)
		}
	}
}
