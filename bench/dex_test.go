package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDexConfig checks that the Dex the login flow is compared with signs in
// at the same upstream, with PKCE and without a userinfo call, as realmgate
// does, keeps its state in memory, and redirects to the benchmark's client
// without an approval screen.
func TestDexConfig(t *testing.T) {
	e := &env{dexURL: "http://127.0.0.1:5556", idpURL: "http://127.0.0.1:5557", clientSecret: "bench-client-secret-x"}
	var c struct {
		Issuer  string `yaml:"issuer"`
		Storage struct {
			Type string `yaml:"type"`
		} `yaml:"storage"`
		Web struct {
			HTTP string `yaml:"http"`
		} `yaml:"web"`
		OAuth2 struct {
			SkipApprovalScreen bool `yaml:"skipApprovalScreen"`
		} `yaml:"oauth2"`
		StaticClients []struct {
			ID           string   `yaml:"id"`
			Secret       string   `yaml:"secret"`
			RedirectURIs []string `yaml:"redirectURIs"`
		} `yaml:"staticClients"`
		Connectors []struct {
			Type   string `yaml:"type"`
			ID     string `yaml:"id"`
			Config struct {
				Issuer        string   `yaml:"issuer"`
				ClientID      string   `yaml:"clientID"`
				ClientSecret  string   `yaml:"clientSecret"`
				RedirectURI   string   `yaml:"redirectURI"`
				PKCEChallenge string   `yaml:"pkceChallenge"`
				GetUserInfo   bool     `yaml:"getUserInfo"`
				Scopes        []string `yaml:"scopes"`
			} `yaml:"config"`
		} `yaml:"connectors"`
	}
	if err := yaml.Unmarshal([]byte(e.dexConfig()), &c); err != nil {
		t.Fatalf("dexConfig is not YAML: %v\n%s", err, e.dexConfig())
	}
	if len(c.StaticClients) != 1 || len(c.Connectors) != 1 {
		t.Fatalf("dexConfig has %d clients and %d connectors, want 1 and 1", len(c.StaticClients), len(c.Connectors))
	}
	cl, conn := c.StaticClients[0], c.Connectors[0]
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "http://127.0.0.1:5556/dex"},
		{"storage.type", c.Storage.Type, "memory"},
		{"web.http", c.Web.HTTP, "127.0.0.1:5556"},
		{"oauth2.skipApprovalScreen", c.OAuth2.SkipApprovalScreen, true},
		{"client id", cl.ID, benchClientID},
		{"client secret", cl.Secret, e.clientSecret},
		{"client redirect URI", strings.Join(cl.RedirectURIs, " "), benchRedirectURI},
		{"connector type", conn.Type, "oidc"},
		{"connector issuer", conn.Config.Issuer, e.idpURL + "/" + upstreamRealm},
		{"connector client", conn.Config.ClientID, upstreamClient},
		{"connector secret", conn.Config.ClientSecret, upstreamSecret},
		{"connector redirect URI", conn.Config.RedirectURI, e.dexIssuer() + "/callback"},
		{"connector PKCE", conn.Config.PKCEChallenge, "S256"},
		{"connector userinfo", conn.Config.GetUserInfo, false},
		{"connector scopes", strings.Join(conn.Config.Scopes, " "), "profile email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("dexConfig %s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

// TestBenchmarkDex runs the login flow against a real Dex when BENCH_DEX
// names its binary (docs/performance.md, "Against Dex", says how to build
// one; CI has none, so there it is skipped): Dex signs the benchmark's user
// in through the same upstream without an error, and the report compares the
// CPU per sign-in.
func TestBenchmarkDex(t *testing.T) {
	dex := os.Getenv("BENCH_DEX")
	if dex == "" || testing.Short() {
		t.Skip("set BENCH_DEX to a Dex binary (docs/performance.md, \"Against Dex\")")
	}
	text := runBench(t, "-flows", "login", "-dex", dex, "-memory=false", "-duration", "600ms",
		"-warmup", "200ms", "-rounds", "1", "-login-concurrency", "4")
	for _, re := range []string{
		`(?m)^login +dex +max +\d+ req/s .* errors 0$`,
		`(?m)^  (PASS|FAIL) realmgate \+ its Redis CPU per brokered sign-in: \d+ µs .* Dex's \d+ µs`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("output does not match %s:\n%s", re, text)
		}
	}
}
