package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var exampleEnv = []string{"NOTES_APP_SECRET", "REDIS_PASSWORD", "CONTOSO_ENTRA_SECRET", "FABRIKAM_SECRET",
	"GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"}

func TestCheckConfig(t *testing.T) {
	for _, k := range exampleEnv {
		t.Setenv(k, "value-of-"+k)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`issuer: ftp://example.com
clients:
  - id: app
    redirect_uris: ["http://evil.example/cb"]
tenants:
  - id: a
    domains: ["dup.example"]
  - id: b
    domains: ["dup.example"]
    providers:
      - id: x
        type: oidc
`), 0o600)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"example file", []string{"check-config", "../../testdata/config/realmgate.example.yaml"}, 0, []string{"ok (3 tenants, 1 client)"}},
		{"dev file", []string{"check-config", "dev.yaml"}, 0, []string{"ok (2 tenants, 2 clients)"}},
		{"bad file reports every problem with file:line", []string{"check-config", bad}, 1,
			[]string{"bad.yaml:1:", "bad.yaml:4:", "bad.yaml:9:", "bad.yaml:11: tenants[1].providers[0].issuer"}},
		{"missing file", []string{"check-config", filepath.Join(t.TempDir(), "none.yaml")}, 1, []string{"none.yaml"}},
		{"no file", []string{"check-config"}, 2, []string{"usage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.wantCode {
				t.Fatalf("run(%q) = %d, want %d; output:\n%s", tc.args, code, tc.wantCode, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("run(%q) output lacks %q:\n%s", tc.args, w, all)
				}
			}
		})
	}
}

// TestDev_ClickThrough is the README's demo as a person does it: demo app ->
// alice@acme.test -> ACME's IdP -> pick Alice -> back -> tid acme.
func TestDev_ClickThrough(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- runDev(ctx, io.Discard, io.Discard, "text") }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("runDev exited %d", code)
		}
	}()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	var home *http.Response
	var err error
	for i := 0; i < 50; i++ {
		if home, err = c.Get("http://127.0.0.1:9000/"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("demo app not up: %v", err)
	}
	home.Body.Close()
	for _, tc := range []struct{ email, user, tid, role string }{
		{"alice@acme.test", "acme-u-1001", "acme", "admin"},
		{"carol@globex.test", "globex-u-2001", "globex", "member"},
	} {
		t.Run(tc.email, func(t *testing.T) {
			resp, err := c.Get("http://127.0.0.1:9000/login?login_hint=" + url.QueryEscape(tc.email) + "&prompt=login")
			if err != nil {
				t.Fatal(err)
			}
			page := readAll(t, resp)
			if !strings.HasPrefix(resp.Request.URL.String(), "http://127.0.0.1:8081/"+tc.tid+"/authorize") {
				t.Fatalf("landed on %s, want the %s IdP", resp.Request.URL, tc.tid)
			}
			if !strings.Contains(page, "DEVELOPMENT") {
				t.Errorf("development IdP page is not marked as such")
			}
			rid := regexp.MustCompile(`name="request_id" value="([^"]+)"`).FindStringSubmatch(page)
			if rid == nil {
				t.Fatalf("no request_id on the IdP page")
			}
			resp, err = c.PostForm("http://127.0.0.1:8081/"+tc.tid+"/select", url.Values{"request_id": {rid[1]}, "user": {tc.user}})
			if err != nil {
				t.Fatal(err)
			}
			result := readAll(t, resp)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), "http://127.0.0.1:9000/callback") {
				t.Fatalf("after picking the user: %d at %s", resp.StatusCode, resp.Request.URL)
			}
			for _, want := range []string{`<td class="big">` + tc.tid + `</td>`, tc.role, tc.email} {
				if !strings.Contains(result, want) {
					t.Errorf("demo app page lacks %q", want)
				}
			}
		})
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
