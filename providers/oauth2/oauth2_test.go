package oauth2

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// fakeProvider answers like an RFC 6749 authorization server (JSON token
// response §5.1, error response §5.2) with a userinfo endpoint.
func fakeProvider(t *testing.T, userinfo string, userinfoCode int) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.PostForm.Get("code") != "good" || r.PostForm.Get("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"code expired"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`))
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if userinfoCode != 0 {
			w.WriteHeader(userinfoCode)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(userinfo))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

var lr = providers.LoginRequest{State: "st-1", CodeVerifier: "verifier-0123456789-0123456789-0123456789-abc", CallbackURL: "https://login.example.test/callback/acme"}

func cb(q string) *http.Request {
	return httptest.NewRequest(http.MethodGet, lr.CallbackURL+"?"+q, nil)
}

func TestOAuth2_Mapping(t *testing.T) {
	for _, tc := range []struct {
		name, body       string
		m                Mapping
		sub, email, user string
		verified         bool
	}{
		{"defaults, unverified", `{"id":1234,"email":"a@x.example","name":"A"}`, Mapping{}, "1234", "a@x.example", "", false},
		{"defaults, verified", `{"sub":"u-1","email":"a@x.example","email_verified":true}`, Mapping{}, "u-1", "a@x.example", "", true},
		{"nested", `{"data":{"user":{"uuid":"9f","mail":"b@y.example","handle":"bee"}}}`,
			Mapping{Subject: "data.user.uuid", Email: "data.user.mail", PreferredUsername: "data.user.handle"}, "9f", "b@y.example", "bee", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeProvider(t, tc.body, 0)
			c, err := New(Config{ID: "acme", ClientID: "c", ClientSecret: "s", AuthURL: s.URL + "/authorize", TokenURL: s.URL + "/token",
				UserInfoURL: s.URL + "/me", Mapping: tc.m})
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.HandleCallback(context.Background(), lr, nil, cb("code=good&state=st-1"))
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if id.Subject != tc.sub || id.Email != tc.email || id.EmailVerified != tc.verified || id.PreferredUsername != tc.user {
				t.Fatalf("identity = %+v, want sub %q email %q verified %v user %q", id, tc.sub, tc.email, tc.verified, tc.user)
			}
		})
	}
}

func TestOAuth2_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, q, body string
		code          int
		want          error
	}{
		{"denied", "error=access_denied&state=st-1", `{}`, 0, providers.ErrAccessDenied},
		{"state", "code=good&state=other", `{}`, 0, providers.ErrInvalidResponse},
		{"invalid_grant", "code=bad&state=st-1", `{}`, 0, providers.ErrInvalidResponse},
		{"no subject", "code=good&state=st-1", `{"email":"a@x.example"}`, 0, providers.ErrInvalidResponse},
		{"userinfo down", "code=good&state=st-1", ``, http.StatusServiceUnavailable, providers.ErrUnavailable},
		{"userinfo not JSON", "code=good&state=st-1", `<html>`, 0, providers.ErrInvalidResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeProvider(t, tc.body, tc.code)
			c, _ := New(Config{ID: "acme", ClientID: "c", ClientSecret: "s", AuthURL: s.URL + "/authorize", TokenURL: s.URL + "/token", UserInfoURL: s.URL + "/me"})
			if _, err := c.HandleCallback(context.Background(), lr, nil, cb(tc.q)); !errors.Is(err, tc.want) {
				t.Fatalf("HandleCallback(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestOAuth2_LoginURL(t *testing.T) {
	c, err := New(Config{ID: "acme", ClientID: "c", AuthURL: "https://auth.example/authorize", TokenURL: "https://auth.example/token", UserInfoURL: "https://auth.example/me"})
	if err != nil {
		t.Fatal(err)
	}
	u, _, _ := c.LoginURL(context.Background(), lr)
	p, _ := url.Parse(u)
	if q := p.Query(); q.Get("state") != "st-1" || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		t.Fatalf("LoginURL = %s", u)
	}
	if _, err := New(Config{ID: "x", ClientID: "c", AuthURL: "/relative"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New(relative URL) = %v, want ErrConfig", err)
	}
}
