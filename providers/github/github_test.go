package github

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// fakeGitHub answers like github.com's OAuth endpoints and REST API
// (shapes from GitHub's docs: "Authorizing OAuth apps", "Users", "Emails").
type fakeGitHub struct {
	emails      string // JSON body of /user/emails
	emailsCode  int
	userBody    string
	tokenBody   string // form-encoded, as GitHub answers without Accept: application/json
	gotVerifier string
}

func (f *fakeGitHub) server(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.gotVerifier = r.PostForm.Get("code_verifier")
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if r.PostForm.Get("code") != "good-code" || r.PostForm.Get("client_secret") != "s3cret" {
			// GitHub answers a bad code with 200 and an error body.
			_, _ = w.Write([]byte("error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com"))
			return
		}
		_, _ = w.Write([]byte(f.tokenBody))
	})
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			if r.Header.Get("Authorization") != "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`))
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /user", auth(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(f.userBody)) }))
	mux.HandleFunc("GET /user/emails", auth(func(w http.ResponseWriter, r *http.Request) {
		if f.emailsCode != 0 {
			w.WriteHeader(f.emailsCode)
			_, _ = w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest/users/emails","status":"404"}`))
			return
		}
		_, _ = w.Write([]byte(f.emails))
	}))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

const octocat = `{"login":"octocat","id":583231,"node_id":"MDQ6VXNlcjE=","avatar_url":"https://github.com/images/error/octocat_happy.gif",
"html_url":"https://github.com/octocat","type":"User","site_admin":false,"name":"monalisa octocat","company":"GitHub",
"email":"octocat@public-unverified.example","bio":null}`

func newConn(t *testing.T, f *fakeGitHub) *Connector {
	s := f.server(t)
	if f.tokenBody == "" {
		f.tokenBody = "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer"
	}
	if f.userBody == "" {
		f.userBody = octocat
	}
	c, err := New(Config{ID: "github", ClientID: "Iv1.abc", ClientSecret: "s3cret", AuthURL: s.URL + "/login/oauth/authorize",
		TokenURL: s.URL + "/login/oauth/access_token", APIURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var lr = providers.LoginRequest{State: "state-abc", CodeVerifier: "verifier-0123456789-0123456789-0123456789-xyz", CallbackURL: "https://login.example.test/callback/github"}

func callback(q string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "https://login.example.test/callback/github?"+q, nil)
}

func TestGitHub_LoginURL(t *testing.T) {
	c := newConn(t, &fakeGitHub{})
	u, _, err := c.LoginURL(context.Background(), lr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := url.Parse(u)
	q := p.Query()
	if q.Get("state") != lr.State || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != s256(lr.CodeVerifier) ||
		q.Get("redirect_uri") != lr.CallbackURL || q.Get("scope") != "read:user user:email" {
		t.Fatalf("LoginURL query = %v", q)
	}
}

func TestGitHub_OnlyVerifiedEmails(t *testing.T) {
	for _, tc := range []struct {
		name, emails, want string
		wantList           int
	}{
		{"primary verified", `[{"email":"other@example.com","verified":true,"primary":false,"visibility":null},{"email":"octocat@github.com","verified":true,"primary":true,"visibility":"public"}]`, "octocat@github.com", 2},
		{"primary unverified", `[{"email":"octocat@unverified.example","verified":false,"primary":true,"visibility":"public"},{"email":"second@example.com","verified":true,"primary":false,"visibility":null}]`, "second@example.com", 1},
		{"none verified", `[{"email":"octocat@unverified.example","verified":false,"primary":true,"visibility":"public"}]`, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeGitHub{emails: tc.emails}
			c := newConn(t, f)
			id, err := c.HandleCallback(context.Background(), lr, nil, callback("code=good-code&state=state-abc"))
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if id.Email != tc.want || id.EmailVerified != (tc.want != "") {
				t.Fatalf("email = %q verified %v, want %q", id.Email, id.EmailVerified, tc.want)
			}
			if l, _ := id.Claims["emails"].([]any); len(l) != tc.wantList {
				t.Errorf("emails claim = %v, want %d verified", id.Claims["emails"], tc.wantList)
			}
			if id.Subject != "583231" || id.PreferredUsername != "octocat" || id.Name != "monalisa octocat" || id.Issuer != Issuer {
				t.Errorf("identity = %+v", id)
			}
			if f.gotVerifier != lr.CodeVerifier {
				t.Errorf("token request code_verifier = %q, want the PKCE verifier", f.gotVerifier)
			}
		})
	}
}

func TestGitHub_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		f           fakeGitHub
		want        error
	}{
		{"user denied", "error=access_denied&error_description=The+user+has+denied+your+application+access.&state=state-abc", fakeGitHub{}, providers.ErrAccessDenied},
		{"state mismatch", "code=good-code&state=other", fakeGitHub{}, providers.ErrInvalidResponse},
		{"bad code (200 with error)", "code=bad-code&state=state-abc", fakeGitHub{}, providers.ErrInvalidResponse},
		{"bad credentials", "code=good-code&state=state-abc", fakeGitHub{tokenBody: "access_token=gho_revoked&token_type=bearer"}, providers.ErrInvalidResponse},
		{"user without id", "code=good-code&state=state-abc", fakeGitHub{userBody: `{"login":"x"}`}, providers.ErrInvalidResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			c := newConn(t, &f)
			_, err := c.HandleCallback(context.Background(), lr, nil, callback(tc.query))
			if !errors.Is(err, tc.want) {
				t.Fatalf("HandleCallback(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	t.Run("emails API refused: no email", func(t *testing.T) {
		f := &fakeGitHub{emailsCode: http.StatusNotFound}
		c := newConn(t, f)
		id, err := c.HandleCallback(context.Background(), lr, nil, callback("code=good-code&state=state-abc"))
		if err != nil || id.Email != "" || strings.Contains(id.Email, "public-unverified") {
			t.Fatalf("HandleCallback = %+v, %v; want no email (the public profile address is unverified)", id, err)
		}
	})
	t.Run("API down", func(t *testing.T) {
		c, _ := New(Config{ID: "github", ClientID: "a", ClientSecret: "b", TokenURL: "http://127.0.0.1:1/token", APIURL: "http://127.0.0.1:1"})
		_, err := c.HandleCallback(context.Background(), lr, nil, callback("code=good-code&state=state-abc"))
		if !errors.Is(err, providers.ErrUnavailable) {
			t.Fatalf("HandleCallback with GitHub down = %v, want ErrUnavailable", err)
		}
	})
}
