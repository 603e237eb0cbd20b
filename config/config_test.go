package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

const exampleFile = "../testdata/config/realmgate.example.yaml"

// exampleEnv sets every variable the example file references.
var exampleEnv = map[string]string{
	"REDIS_PASSWORD":       "redis-pw",
	"NOTES_APP_SECRET":     "notes-app-secret-0123456789abcdef0123",
	"CONTOSO_ENTRA_SECRET": "entra-secret",
	"FABRIKAM_SECRET":      "fabrikam-secret",
	"GITHUB_CLIENT_ID":     "gh-id",
	"GITHUB_CLIENT_SECRET": "gh-secret",
	"GOOGLE_CLIENT_ID":     "google-id",
	"GOOGLE_CLIENT_SECRET": "google-secret",
}

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func parseExample(t *testing.T) *Config {
	t.Helper()
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(exampleFile, data, lookupMap(exampleEnv))
	if err != nil {
		t.Fatalf("Parse(example) error:\n%v", err)
	}
	return c
}

func TestLoad_Example(t *testing.T) {
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	c, err := Load(exampleFile)
	if err != nil {
		t.Fatalf("Load(%q) error:\n%v", exampleFile, err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "http://127.0.0.1:8080"},
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"base_domain", c.BaseDomain, "login.example.test"},
		{"store.type", c.Store.Type, StoreRedis},
		{"store.redis.addrs", c.Store.Redis.Addrs, []string{"127.0.0.1:6379"}},
		{"store.redis.password", c.Store.Redis.Password, "redis-pw"},
		{"keys.algorithm", c.Keys.Algorithm, AlgES256},
		{"keys.rotate_every", c.Keys.RotateEvery.Duration(), 24 * time.Hour},
		{"session.lifetime", c.Session.Lifetime.Duration(), 8 * time.Hour},
		{"tokens.access_token_lifetime", c.Tokens.AccessTokenLifetime.Duration(), 10 * time.Minute},
		{"tokens.refresh_token_lifetime", c.Tokens.RefreshTokenLifetime.Duration(), 720 * time.Hour},
		{"clients[0].secret", c.Clients[0].Secret, exampleEnv["NOTES_APP_SECRET"]},
		{"clients[0].allowed_tenants", c.Clients[0].AllowedTenants, []string{"*"}},
		{"len(tenants)", len(c.Tenants), 3},
		{"tenants[0].domains", c.Tenants[0].Domains, []string{"contoso.com", "*.contoso.com"}},
		{"tenants[0].providers[1].type", c.Tenants[0].Providers[1].Type, ProviderSAML},
		{"tenants[0].rules[1].map.table", c.Tenants[0].Rules[1].Map.Table, map[string]string{"Finance-Admins": "admin", "Finance-Readers": "reader"}},
		{"tenants[0].rules[2].deny", c.Tenants[0].Rules[2].Deny, "only employees may sign in"},
		{"tenants[1].providers[0].scopes (default)", c.Tenants[1].Providers[0].Scopes, []string{"openid", "profile", "email"}},
		{"tenants[1].providers[0].client_secret", c.Tenants[1].Providers[0].ClientSecret, "fabrikam-secret"},
		{"tenants[2].default", c.Tenants[2].Default, true},
		{"tenants[2].providers[0].name (default)", c.Tenants[2].Providers[0].Name, "GitHub"},
		{"tenants[2].providers[0].scopes (github: none)", len(c.Tenants[2].Providers[0].Scopes), 0},
		{"tenants[2].rules[0].add", c.Tenants[2].Rules[0].Add, map[string]string{"roles": `"member"`}},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, exampleFile+":16: keys.secret: not set with a redis store") {
		t.Errorf("Warnings() = %q, want the redis-without-keys.secret warning at line 16", w)
	}
}

// TestParse_S44_IdPInitiatedOffByDefault: a SAML provider that says nothing
// about IdP-initiated login does not accept it.
func TestParse_S44_IdPInitiatedOffByDefault(t *testing.T) {
	c := parseExample(t)
	tenant, p := c.Provider("contoso-adfs")
	if tenant == nil || p == nil {
		t.Fatal(`Provider("contoso-adfs") = nil`)
	}
	if p.IdPInitiated {
		t.Errorf("contoso-adfs IdPInitiated = true, want false by default")
	}
}

func TestExampleCopyMatchesShared(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "realmgate.example.yaml") // ../shared relative to the repo root
	want, err := os.ReadFile(shared)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not present", shared)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s: copy it again (cp %s %s)", exampleFile, shared, shared, exampleFile)
	}
}

func TestParse_RoundTrip(t *testing.T) {
	c := parseExample(t)
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("marshalled.yaml", out, nil)
	if err != nil {
		t.Fatalf("Parse(Marshal(example)) error:\n%v\n%s", err, out)
	}
	ClearSource(c)
	ClearSource(c2)
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("Parse(Marshal(c)) differs from c:\n%s", out)
	}
	if !bytes.Contains(out, []byte("refresh_token_lifetime: 720h\n")) {
		t.Errorf("Marshal wrote durations as %s, want 720h", out)
	}
}

func TestParse_BadFile(t *testing.T) {
	const file = "../testdata/config/bad.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(file, data, nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse(bad.yaml) error = %v, want *ValidationError", err)
	}
	want := []struct {
		line  int
		field string
		msg   string
	}{
		{3, "issuer", "must not have a query"},
		{4, "listen", "is not host:port"},
		{8, "store.redis.addrs", "at least one host:port"},
		{10, "keys.algorithm", `unknown algorithm "HS256"`},
		{11, "keys.rotate_every", "must be greater than 0"},
		{12, "keys.secret", "at least 32 characters"},
		{14, "session.lifetime", `invalid duration "10"`},
		{16, "tokens.access_token_lifetim", `unknown field "access_token_lifetim" (did you mean "access_token_lifetime"?)`},
		{19, "clients[0].redirect_uris[0]", "must not have a fragment"},
		{19, "clients[0].redirect_uris[1]", "must use https"},
		{19, "clients[0].redirect_uris[2]", `scheme "myapp" is not allowed`},
		{20, "clients[0].allowed_tenants[1]", `unknown tenant "nope"`},
		{21, "clients[1].id", `client id "app" is already used by clients[0]`},
		{23, "clients[1].post_logout_redirect_uris[0]", "must be an absolute URL"},
		{27, "tenants[0].domains[2]", `"not a domain" is not a domain name`},
		{29, "tenants[0].ip_ranges[0]", "did you mean 10.0.0.0/8?"},
		{29, "tenants[0].ip_ranges[1]", "is not a CIDR prefix"},
		{35, "tenants[0].providers[0].issuer", "must use https"},
		{36, "tenants[0].providers[1].id", `provider id "Acme_SAML" must be`},
		{36, "tenants[0].providers[1].metadata_url", "needs metadata_url or metadata"},
		{38, "tenants[1].id", `tenant id "Other" must be`},
		{39, "tenants[1].domains[0]", `claimed by two tenants: "acme" (line 27) and "Other"`},
		{40, "tenants[1].subdomain", `subdomain "acme" is already used by tenants[0]`},
		{41, "tenants[1].default", `tenants "acme" and "Other" are both default`},
		{43, "tenants[1].providers[0].id", `already used in tenant "acme"`},
		{44, "tenants[1].providers[0].type", `unknown provider type "ldap"`},
		{45, "tenants[1].providers[1].client_secret", `is required for type "github"`},
		{48, "tenants[1].providers[1].metadata_url", `is not used by providers of type "github"`},
		{50, "tenants[1].rules[0]", "rule has no action"},
		{53, "tenants[1].rules[1].map.to", "is required"},
		{53, "tenants[1].rules[1].map.table", "is required"},
		{56, "rules[0].name", "is required"},
		{57, "rules[0].set.email", "expression is empty"},
	}
	for i := 0; i < max(len(want), len(ve.Problems)); i++ {
		switch {
		case i >= len(want):
			t.Errorf("unexpected problem %v", ve.Problems[i])
		case i >= len(ve.Problems):
			t.Errorf("missing problem %d:%s: %s", want[i].line, want[i].field, want[i].msg)
		default:
			p, w := ve.Problems[i], want[i]
			if p.File != file || p.Line != w.line || p.Field != w.field || !strings.Contains(p.Message, w.msg) {
				t.Errorf("problem %d = %v, want %s:%d: %s: ...%s...", i, p, file, w.line, w.field, w.msg)
			}
		}
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	if want := file + `:3: issuer: "https://login.example.com/?x=1" must not have a query`; first != want {
		t.Errorf("first line of Error() = %q, want %q", first, want)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(ve.Problems) {
		t.Errorf("Error() has %d lines, want one per problem (%d)", n, len(ve.Problems))
	}
}

// envBase is a valid configuration whose redis password (line 6) and db
// (line 7) come from the two formatting verbs.
const envBase = `issuer: https://login.example.com
store:
  type: redis
  redis:
    addrs: ["127.0.0.1:6379"]
    password: %s
    db: %s
`

func TestParse_Env(t *testing.T) {
	env := map[string]string{
		"PW":     "s3cret",
		"DB":     "3",
		"EMPTY":  "",
		"NESTED": "${PW}",
		"TILDE":  "~",
		"INJECT": "x\nkeys:\n  algorithm: none\nissuer: https://evil.example",
		"QUOTE":  `a", "issuer": "https://evil.example`,
	}
	tests := []struct {
		name         string
		password, db string
		wantPassword string
		wantDB       int
		wantErr      string // a problem line, "" for success
	}{
		{"plain", "${PW}", "0", "s3cret", 0, ""},
		{"inside text", "pre-${PW}-post", "0", "pre-s3cret-post", 0, ""},
		{"int field", "x", "${DB}", "x", 3, ""},
		{"set but empty", "${EMPTY}", "0", "", 0, ""},
		{"dollar dollar", `"a$$b"`, "0", "a$b", 0, ""},
		{"escaped reference", `"$${PW}"`, "0", "${PW}", 0, ""},
		{"lone dollar kept", `pa$word$`, "0", "pa$word$", 0, ""},
		{"value not expanded twice", "${NESTED}", "0", "${PW}", 0, ""},
		{"yaml null text stays text", "${TILDE}", "0", "~", 0, ""},
		{"newline injection stays one value", "${INJECT}", "0", env["INJECT"], 0, ""},
		{"quote injection stays one value", `"${QUOTE}"`, "0", env["QUOTE"], 0, ""},
		{"unset", "${REDIS_PASSWORD}", "0", "", 0, "f.yaml:6: store.redis.password: environment variable REDIS_PASSWORD is not set"},
		{"two unset", "${A}${B}", "0", "", 0, "f.yaml:6: store.redis.password: environment variables A, B are not set"},
		{"unset in int", "x", "${NODB}", "", 0, "f.yaml:7: store.redis.db: environment variable NODB is not set"},
		{"int from env not a number", "x", "${PW}", "", 0, `f.yaml:7: store.redis.db: want an integer, got "s3cret"`},
		{"unterminated", `"${PW"`, "0", "", 0, `f.yaml:6: store.redis.password: unterminated "${"`},
		{"invalid name", `"${1PW}"`, "0", "", 0, `f.yaml:6: store.redis.password: invalid environment variable name "1PW"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := fmt.Sprintf(envBase, tc.password, tc.db)
			c, err := Parse("f.yaml", []byte(data), lookupMap(env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(password: %s) error = %v, want %q", tc.password, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(password: %s) error: %v", tc.password, err)
			}
			if c.Store.Redis.Password != tc.wantPassword {
				t.Errorf("password: %s gave %q, want %q", tc.password, c.Store.Redis.Password, tc.wantPassword)
			}
			if c.Store.Redis.DB != tc.wantDB {
				t.Errorf("db: %s gave %d, want %d", tc.db, c.Store.Redis.DB, tc.wantDB)
			}
			if c.Issuer != "https://login.example.com" || c.Keys.Algorithm != AlgES256 {
				t.Errorf("expansion changed structure: issuer %q, algorithm %q", c.Issuer, c.Keys.Algorithm)
			}
		})
	}
}

func TestParse_EnvNotInKeys(t *testing.T) {
	// Map keys (claim names) are not expanded; only values are.
	data := "issuer: https://login.example.com\nrules:\n  - name: r\n    set:\n      ${X}: '\"v\"'\n"
	c, err := Parse("f.yaml", []byte(data), lookupMap(map[string]string{"X": "expanded"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Rules[0].Set["${X}"]; !ok {
		t.Errorf("rules[0].set = %v, want the key ${X} kept literally", c.Rules[0].Set)
	}
}

func TestDuration(t *testing.T) {
	parse := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"15m", 15 * time.Minute, false},
		{"24h", 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"30d", 720 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"1.5s", 1500 * time.Millisecond, false},
		{"0s", 0, false},
		{"-5m", -5 * time.Minute, false},
		{"-1d", -24 * time.Hour, false},
		{"10", 0, true},
		{"", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"5x", 0, true},
		{"1d-1h", 0, true},
		{"+-1h", 0, true},
		{"--1d", 0, true},
		{"30days", 0, true},
		{"106752d", 0, true},
		{"106751d1000h", 0, true},
	}
	for _, tc := range parse {
		t.Run("parse "+tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("ParseDuration(%q) error = %v, want error %v", tc.in, err, tc.err)
			}
			if err == nil && got.Duration() != tc.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got.Duration(), tc.want)
			}
		})
	}
	format := []struct {
		d    time.Duration
		want string
	}{
		{15 * time.Minute, "15m"},
		{24 * time.Hour, "24h"},
		{720 * time.Hour, "720h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 30*time.Second, "1h30s"},
		{90*time.Second + 500*time.Millisecond, "1m30.5s"},
		{500 * time.Millisecond, "500ms"},
		{0, "0s"},
		{-5 * time.Minute, "-5m0s"},
	}
	for _, tc := range format {
		t.Run("format "+tc.want, func(t *testing.T) {
			if got := Duration(tc.d).String(); got != tc.want {
				t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
			}
			back, err := ParseDuration(tc.want)
			if err != nil || back.Duration() != tc.d {
				t.Errorf("ParseDuration(%q) = %v, %v, want %v", tc.want, back, err, tc.d)
			}
		})
	}
	// yaml.v3 uses the text (un)marshalers directly too.
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 30d\n"), &v); err != nil || v.D.Duration() != 720*time.Hour {
		t.Errorf("yaml.Unmarshal(d: 30d) = %v, %v, want 720h", v.D, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 720h\n" {
		t.Errorf("yaml.Marshal = %q, %v, want %q", out, err, "d: 720h\n")
	}
}

func TestParse_DurationsAndDefaults(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(c *Config) (got, want any)
		wantErr string
	}{
		{"defaults", "", func(c *Config) (any, any) {
			return []any{c.Listen, c.Store.Type, c.Keys.Algorithm, c.Keys.RotateEvery, c.Session.Lifetime,
					c.Tokens.AccessTokenLifetime, c.Tokens.IDTokenLifetime, c.Tokens.RefreshTokenLifetime},
				[]any{"127.0.0.1:8080", "memory", "ES256", DefaultRotateEvery, DefaultSessionLifetime,
					Duration(10 * time.Minute), Duration(10 * time.Minute), Duration(720 * time.Hour)}
		}, ""},
		{"days", "session:\n  lifetime: 2d\n", func(c *Config) (any, any) { return c.Session.Lifetime.Duration(), 48 * time.Hour }, ""},
		{"null means default", "session:\n  lifetime:\n", func(c *Config) (any, any) { return c.Session.Lifetime, DefaultSessionLifetime }, ""},
		{"explicit zero refused", "tokens:\n  id_token_lifetime: 0s\n", nil, "f.yaml:3: tokens.id_token_lifetime: must be greater than 0, got 0s"},
		{"negative refused", "tokens:\n  access_token_lifetime: -1m\n", nil, "f.yaml:3: tokens.access_token_lifetime: must be greater than 0, got -1m0s"},
		{"no unit", "keys:\n  rotate_every: 24\n", nil, `f.yaml:3: keys.rotate_every: invalid duration "24"`},
		{"mapping for duration", "keys:\n  rotate_every: {h: 1}\n", nil, "f.yaml:3: keys.rotate_every: want a value, got a mapping"},
		{"oidc scopes default", "tenants:\n  - id: t\n    providers:\n      - {id: p, type: oidc, issuer: https://idp.example, client_id: c}\n",
			func(c *Config) (any, any) { return c.Tenants[0].Providers[0].Scopes, DefaultScopes }, ""},
		{"explicit empty scopes refused", "tenants:\n  - id: t\n    providers:\n      - {id: p, type: oidc, issuer: https://idp.example, client_id: c, scopes: []}\n",
			nil, `f.yaml:5: tenants[0].providers[0].scopes: must include "openid"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte("issuer: https://login.example.com\n"+tc.yaml), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.yaml, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.yaml, err)
			}
			if got, want := tc.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q) = %v, want %v", tc.yaml, got, want)
			}
		})
	}
}

func TestParse_Structure(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // exact problem lines
	}{
		{"unknown top-level field", "issuer: https://a.example\nisuer: x\n",
			[]string{`f.yaml:2: isuer: unknown field "isuer" (did you mean "issuer"?)`}},
		{"unknown nested field", "issuer: https://a.example\ntenants:\n  - id: t\n    providers:\n      - id: p\n        type: github\n        client_id: x\n        client_secret: y\n        clientid: z\n",
			[]string{`f.yaml:9: tenants[0].providers[0].clientid: unknown field "clientid" (did you mean "client_id"?)`}},
		{"unknown field no suggestion", "issuer: https://a.example\nstore:\n  flavour: x\n",
			[]string{`f.yaml:3: store.flavour: unknown field "flavour"`}},
		{"duplicate key", "issuer: https://a.example\nlisten: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
			[]string{"f.yaml:3: listen: defined twice (first at line 2)"}},
		{"wrong kinds", "issuer: [a]\nclients: x\ntenants:\n  - id: t\n    default: maybe\n",
			[]string{`f.yaml:1: issuer: want a string, got a list`, `f.yaml:2: clients: want a list, got "x"`, `f.yaml:5: tenants[0].default: want true or false, got "maybe"`}},
		{"syntax error", "issuer: https://a.example\nstore:\n  type: [\n",
			[]string{`f.yaml:3: did not find expected node content`}},
		{"second document", "issuer: https://a.example\n---\nlisten: x\n",
			[]string{"f.yaml:2: only one YAML document is allowed"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1: want a mapping of configuration keys, got a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml), nil)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse(%q) error = %v, want *ValidationError", tc.yaml, err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q) problems =\n%s\nwant\n%s", tc.yaml, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestParse_AliasBomb: the "billion laughs" pattern through merge keys,
// each level merging ten copies of the level below, ends in a bounded
// amount of work with a clear problem instead of a hang.
func TestParse_AliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("issuer: https://a.example\nx0: &l0 {type: memory}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", i-1), 10), ","))
	}
	b.WriteString("store: *l9\n")
	start := time.Now()
	_, err := Parse("f.yaml", []byte(b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), ": document too large, too deeply nested or too many aliases") {
		t.Errorf("Parse(alias bomb) error = %v, want the too-large problem", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(alias bomb) took %v", d)
	}
}

func TestParse_MergeKeys(t *testing.T) {
	data := `issuer: https://login.example.com
x-oidc: &oidc
  type: oidc
  issuer: https://idp.example
  client_id: shared
tenants:
  - id: t
    providers:
      - <<: *oidc
        id: p1
      - <<: *oidc
        id: p2
        client_id: own
`
	_, err := Parse("f.yaml", []byte(data), nil)
	// x-oidc is not a known field: anchors must live inside known fields.
	if err == nil || !strings.Contains(err.Error(), `f.yaml:2: x-oidc: unknown field`) {
		t.Fatalf("Parse error = %v, want unknown field x-oidc", err)
	}
	data = strings.Replace(data, "x-oidc: &oidc\n  type: oidc\n  issuer: https://idp.example\n  client_id: shared\n", "", 1)
	data = strings.Replace(data, "      - <<: *oidc\n        id: p1\n", "      - &oidc\n        id: p1\n        type: oidc\n        issuer: https://idp.example\n        client_id: shared\n", 1)
	c, err := Parse("f.yaml", []byte(data), nil)
	if err != nil {
		t.Fatalf("Parse error: %v\n%s", err, data)
	}
	p := c.Tenants[0].Providers[1]
	if p.ID != "p2" || p.ClientID != "own" || p.Issuer != "https://idp.example" {
		t.Errorf("merged provider = %+v, want id p2, client_id own, issuer from the anchor", p)
	}
}

// validConfig is a small valid Config built in code.
func validConfig() *Config {
	c := &Config{
		Issuer: "https://login.example.com",
		Clients: []Client{{
			ID: "app", Secret: "0123456789abcdef0123456789abcdef",
			RedirectURIs:   []string{"https://app.example.com/cb"},
			AllowedTenants: []string{"acme"},
		}},
		Tenants: []Tenant{{
			ID: "acme", Domains: []string{"acme.com"},
			Providers: []Provider{{ID: "acme-oidc", Type: ProviderOIDC, Issuer: "https://idp.acme.com", ClientID: "rg", ClientSecret: "s"}},
			Rules:     []Rule{{Name: "member", Add: map[string]string{"roles": `"member"`}}},
		}, {
			ID: "social", Default: true,
			Providers: []Provider{{ID: "gh", Type: ProviderGitHub, ClientID: "x", ClientSecret: "y"}},
		}},
	}
	c.ApplyDefaults()
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"valid", func(c *Config) {}, "", ""},
		{"issuer missing", func(c *Config) { c.Issuer = "" }, "issuer", "is required"},
		{"issuer relative", func(c *Config) { c.Issuer = "/login" }, "issuer", "must be an absolute URL"},
		{"issuer ftp", func(c *Config) { c.Issuer = "ftp://login.example.com" }, "issuer", "must use https"},
		{"issuer http remote", func(c *Config) { c.Issuer = "http://login.example.com" }, "issuer", "http is allowed only on"},
		{"issuer http 127.0.0.1", func(c *Config) { c.Issuer = "http://127.0.0.1:8080" }, "", ""},
		{"issuer http 127.9.9.9", func(c *Config) { c.Issuer = "http://127.9.9.9" }, "", ""},
		{"issuer http ::1", func(c *Config) { c.Issuer = "http://[::1]:8080/rg" }, "", ""},
		{"issuer http localhost", func(c *Config) { c.Issuer = "http://localhost:8080" }, "", ""},
		{"issuer http lookalike", func(c *Config) { c.Issuer = "http://127.0.0.1.evil.example" }, "issuer", "must use https"},
		{"issuer fragment", func(c *Config) { c.Issuer = "https://login.example.com#x" }, "issuer", "fragment"},
		{"issuer empty query", func(c *Config) { c.Issuer = "https://login.example.com?" }, "issuer", "query"},
		{"issuer user info", func(c *Config) { c.Issuer = "https://u:p@login.example.com" }, "issuer", "user info"},
		{"listen any interface", func(c *Config) { c.Listen = ":8080" }, "", ""},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:8080" }, "", ""},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, "listen", "invalid port"},
		{"base domain", func(c *Config) { c.BaseDomain = "login_example" }, "base_domain", "not a valid host name"},
		{"store unknown", func(c *Config) { c.Store.Type = "etcd" }, "store.type", `unknown store type "etcd"`},
		{"record format json", func(c *Config) { c.Store.RecordFormat = RecordsJSON }, "", ""},
		{"record format unknown", func(c *Config) { c.Store.RecordFormat = "xml" }, "store.record_format", `"xml": want binary or json`},
		{"redis no addrs", func(c *Config) { c.Store.Type = StoreRedis }, "store.redis.addrs", "at least one"},
		{"redis bad addr", func(c *Config) { c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"redis"}}} }, "store.redis.addrs[0]", "not host:port"},
		{"redis cluster db", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379", "b.example:6379"}, DB: 2}}
		}, "store.redis.db", "only db 0"},
		{"redis sentinel db", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:26379", "b.example:26379"}, MasterName: "m", DB: 2}}
		}, "", ""},
		{"replica ack off", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReplicaAck: ReplicaAckOff, ReplicaAckTimeout: Duration(450 * time.Millisecond)}}
		}, "", ""},
		{"replica ack unknown", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReplicaAck: "never"}}
		}, "store.redis.replica_ack", `unknown value "never"`},
		{"replica ack count negative", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReplicaAckCount: -1}}
		}, "store.redis.replica_ack_count", "negative"},
		{"replica ack timeout long", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReplicaAckTimeout: Duration(time.Second)}}
		}, "store.redis.replica_ack_timeout", "out of range"},
		{"replica ack timeout under a longer read timeout", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReadTimeout: Duration(2 * time.Second), ReplicaAckTimeout: Duration(time.Second)}}
		}, "", ""},
		{"replica ack timeout past a shorter read timeout", func(c *Config) {
			c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"a.example:6379"}, ReadTimeout: Duration(200 * time.Millisecond), ReplicaAckTimeout: Duration(200 * time.Millisecond)}}
		}, "store.redis.replica_ack_timeout", "want 1ms to 150ms"},
		{"algorithm none", func(c *Config) { c.Keys.Algorithm = "none" }, "keys.algorithm", "unknown algorithm"},
		{"algorithm RS256", func(c *Config) { c.Keys.Algorithm = AlgRS256 }, "", ""},
		{"secret short", func(c *Config) { c.Keys.Secret = "short" }, "keys.secret", "at least 32"},
		{"session zero", func(c *Config) { c.Session.Lifetime = 0 }, "session.lifetime", "greater than 0"},
		{"client id empty", func(c *Config) { c.Clients[0].ID = "" }, "clients[0].id", "is required"},
		{"client id space", func(c *Config) { c.Clients[0].ID = "my app" }, "clients[0].id", "spaces"},
		{"client duplicate", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "clients[1].id", "already used"},
		{"client id reserved", func(c *Config) { c.Clients[0].ID = AccessClientID }, "clients[0].id", "reserved"},
		{"ssf push https", func(c *Config) { c.Clients[0].SSFPushURL = "https://app.example/ssf/events" }, "", ""},
		{"ssf push http loopback", func(c *Config) { c.Clients[0].SSFPushURL = "http://127.0.0.1:9000/events" }, "", ""},
		{"ssf push http remote", func(c *Config) { c.Clients[0].SSFPushURL = "http://app.example/events" }, "clients[0].ssf_push_url", "must use https"},
		{"ssf push private scheme", func(c *Config) { c.Clients[0].SSFPushURL = "com.example.app:/events" }, "clients[0].ssf_push_url", "must use https"},
		{"ssf push fragment", func(c *Config) { c.Clients[0].SSFPushURL = "https://app.example/e#x" }, "clients[0].ssf_push_url", "fragment"},
		{"access valid", func(c *Config) {
			c.Tenants[0].Access = &Access{ApproverRoles: []string{"approver"}, Roles: []AccessRole{{Name: "db-admin", MaxDuration: Duration(2 * time.Hour)}, {Name: "support", SelfActivate: true}}}
		}, "", ""},
		{"access no roles", func(c *Config) { c.Tenants[0].Access = &Access{} }, "tenants[0].access.roles", "at least one"},
		{"access role unnamed", func(c *Config) { c.Tenants[0].Access = &Access{Roles: []AccessRole{{}}} }, "tenants[0].access.roles[0].name", "is required"},
		{"access role twice", func(c *Config) { c.Tenants[0].Access = &Access{Roles: []AccessRole{{Name: "a"}, {Name: "a"}}} }, "tenants[0].access.roles[1].name", "already listed"},
		{"access too long", func(c *Config) {
			c.Tenants[0].Access = &Access{Roles: []AccessRole{{Name: "a", MaxDuration: Duration(169 * time.Hour)}}}
		}, "tenants[0].access.roles[0].max_duration", "168h"},
		{"access empty approver role", func(c *Config) {
			c.Tenants[0].Access = &Access{ApproverRoles: []string{" "}, Roles: []AccessRole{{Name: "a"}}}
		}, "tenants[0].access.approver_roles[0]", "empty"},
		{"client no redirect", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "clients[0].redirect_uris", "at least one"},
		{"redirect private scheme", func(c *Config) { c.Clients[0].RedirectURIs = []string{"com.example.app:/oauth2redirect"} }, "", ""},
		{"redirect loopback v6", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://[::1]:9000/cb"} }, "", ""},
		{"redirect query ok", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://app.example.com/cb?tenant=1"} }, "", ""},
		{"redirect wildcard", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://*.example.com/cb"} }, "clients[0].redirect_uris[0]", "wildcards"},
		{"redirect javascript", func(c *Config) { c.Clients[0].RedirectURIs = []string{"javascript:alert(1)"} }, "clients[0].redirect_uris[0]", "not allowed"},
		{"redirect https no host", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https:/cb"} }, "clients[0].redirect_uris[0]", "no host"},
		{"post logout http remote", func(c *Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"http://app.example.com/"} }, "clients[0].post_logout_redirect_uris[0]", "must use https"},
		{"allowed star with others", func(c *Config) { c.Clients[0].AllowedTenants = []string{"*", "acme"} }, "clients[0].allowed_tenants[0]", "must be the only entry"},
		{"allowed unknown", func(c *Config) { c.Clients[0].AllowedTenants = []string{"acme", "ghost"} }, "clients[0].allowed_tenants[1]", `unknown tenant "ghost"`},
		{"tenant id upper", func(c *Config) { c.Tenants[0].ID = "Acme"; c.Clients[0].AllowedTenants = []string{"*"} }, "tenants[0].id", "must be 1-63"},
		{"tenant id too long", func(c *Config) {
			c.Tenants[0].ID = strings.Repeat("a", 64)
			c.Clients[0].AllowedTenants = []string{"*"}
		}, "tenants[0].id", "must be 1-63"},
		{"tenant duplicate", func(c *Config) { c.Tenants[1].ID = "acme" }, "tenants[1].id", "already used by tenants[0]"},
		{"domain wildcard ok", func(c *Config) { c.Tenants[0].Domains = []string{"*.acme.com", "acme.com."} }, "", ""},
		{"domain tld wildcard", func(c *Config) { c.Tenants[0].Domains = []string{"*.com"} }, "tenants[0].domains[0]", "not a domain name"},
		{"domain ip", func(c *Config) { c.Tenants[0].Domains = []string{"10.0.0.1"} }, "tenants[0].domains[0]", "not a domain name"},
		{"domain unicode", func(c *Config) { c.Tenants[0].Domains = []string{"bücher.example"} }, "tenants[0].domains[0]", "xn--"},
		{"domain twice same tenant", func(c *Config) { c.Tenants[0].Domains = []string{"acme.com", "ACME.com"} }, "tenants[0].domains[1]", "listed twice"},
		{"subdomain invalid", func(c *Config) { c.Tenants[0].Subdomain = "-acme" }, "tenants[0].subdomain", "not a DNS label"},
		{"language unsupported", func(c *Config) { c.Tenants[0].Language = "pt" }, "tenants[0].language", "want one of en, de, fr, es, ja"},
		{"directory match unknown", func(c *Config) { c.Tenants[0].Directory = &TenantDirectory{Match: "phone"} }, "tenants[0].directory.match", "want external_id, user_name or email"},
		{"ip range v6", func(c *Config) { c.Tenants[0].IPRanges = []string{"2001:db8::/32"} }, "", ""},
		{"ip range bare ip", func(c *Config) { c.Tenants[0].IPRanges = []string{"10.0.0.1"} }, "tenants[0].ip_ranges[0]", "not a CIDR"},
		{"two defaults", func(c *Config) { c.Tenants[0].Default = true }, "tenants[1].default", "both default"},
		{"provider id in url", func(c *Config) { c.Tenants[0].Providers[0].ID = "acme/oidc" }, "tenants[0].providers[0].id", "callback URLs"},
		{"provider id across tenants", func(c *Config) { c.Tenants[1].Providers[0].ID = "acme-oidc" }, "tenants[1].providers[0].id", `already used in tenant "acme"`},
		{"provider type unknown", func(c *Config) { c.Tenants[0].Providers[0].Type = "OIDC" }, "tenants[0].providers[0].type", "unknown provider type"},
		{"oidc no issuer", func(c *Config) { c.Tenants[0].Providers[0].Issuer = "" }, "tenants[0].providers[0].issuer", "is required"},
		{"oidc relative issuer", func(c *Config) { c.Tenants[0].Providers[0].Issuer = "idp.acme.com" }, "tenants[0].providers[0].issuer", "absolute URL"},
		{"oidc entra multi-tenant issuer", func(c *Config) {
			c.Tenants[0].Providers[0].Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
		}, "", ""},
		{"oidc no client id", func(c *Config) { c.Tenants[0].Providers[0].ClientID = "" }, "tenants[0].providers[0].client_id", "is required"},
		{"oidc no openid scope", func(c *Config) { c.Tenants[0].Providers[0].Scopes = []string{"email"} }, "tenants[0].providers[0].scopes", "openid"},
		{"oidc bad scope", func(c *Config) { c.Tenants[0].Providers[0].Scopes = []string{"openid", "a b"} }, "tenants[0].providers[0].scopes[1]", "not a valid scope"},
		{"oidc with metadata", func(c *Config) { c.Tenants[0].Providers[0].Metadata = "<x/>" }, "tenants[0].providers[0].metadata", "not used"},
		{"saml url", func(c *Config) {
			c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, MetadataURL: "https://idp.acme.com/md"}
		}, "", ""},
		{"saml inline", func(c *Config) {
			c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, Metadata: "<EntityDescriptor/>"}
		}, "", ""},
		{"saml both", func(c *Config) {
			c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, Metadata: "<x/>", MetadataURL: "https://idp.acme.com/md"}
		}, "tenants[0].providers[0].metadata", "not both"},
		{"saml not xml", func(c *Config) { c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, Metadata: "hello"} }, "tenants[0].providers[0].metadata", "XML"},
		{"saml http metadata url", func(c *Config) {
			c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, MetadataURL: "http://idp.acme.com/md"}
		}, "tenants[0].providers[0].metadata_url", "must use https"},
		{"saml with client id", func(c *Config) {
			c.Tenants[0].Providers[0] = Provider{ID: "s", Type: ProviderSAML, MetadataURL: "https://idp.acme.com/md", ClientID: "x"}
		}, "tenants[0].providers[0].client_id", "not used"},
		{"google with issuer", func(c *Config) {
			c.Tenants[1].Providers[0] = Provider{ID: "g", Type: ProviderGoogle, ClientID: "x", ClientSecret: "y", Scopes: DefaultScopes, Issuer: "https://accounts.google.com"}
		}, "tenants[1].providers[0].issuer", "not used"},
		{"microsoft pinned issuer", func(c *Config) {
			c.Tenants[1].Providers[0] = Provider{ID: "m", Type: ProviderMicrosoft, ClientID: "x", ClientSecret: "y", Scopes: DefaultScopes, Issuer: "https://login.microsoftonline.com/x/v2.0"}
		}, "", ""},
		{"github no client id", func(c *Config) { c.Tenants[1].Providers[0].ClientID = "" }, "tenants[1].providers[0].client_id", "is required"},
		{"oauth2 missing endpoints", func(c *Config) {
			c.Tenants[1].Providers[0] = Provider{ID: "o", Type: ProviderOAuth2, ClientID: "x", AuthURL: "https://o.example/auth", TokenURL: "https://o.example/token"}
		}, "tenants[1].providers[0].userinfo_url", "is required"},
		{"oauth2 complete", func(c *Config) {
			c.Tenants[1].Providers[0] = Provider{ID: "o", Type: ProviderOAuth2, ClientID: "x", AuthURL: "https://o.example/auth", TokenURL: "https://o.example/token", UserInfoURL: "https://o.example/me"}
		}, "", ""},
		{"rule no name", func(c *Config) { c.Tenants[0].Rules[0].Name = " " }, "tenants[0].rules[0].name", "is required"},
		{"rule duplicate name", func(c *Config) { c.Tenants[0].Rules = append(c.Tenants[0].Rules, c.Tenants[0].Rules[0]) }, "tenants[0].rules[1].name", "already used"},
		{"rule no action", func(c *Config) { c.Tenants[0].Rules[0] = Rule{Name: "r", If: "true"} }, "tenants[0].rules[0]", "no action"},
		{"rule stop only", func(c *Config) { c.Tenants[0].Rules[0] = Rule{Name: "r", If: "true", Stop: true} }, "", ""},
		{"rule deny only", func(c *Config) { c.Rules = []Rule{{Name: "r", Deny: "no"}} }, "", ""},
		{"rule empty claim", func(c *Config) { c.Rules = []Rule{{Name: "r", Set: map[string]string{"": "x"}}} }, `rules[0].set[""]`, "claim name is empty"},
		{"rule remove empty", func(c *Config) { c.Rules = []Rule{{Name: "r", Remove: []string{""}}} }, "rules[0].remove[0]", "claim name is empty"},
		{"map no from", func(c *Config) {
			c.Rules = []Rule{{Name: "r", Map: &MapRule{To: "roles", Table: map[string]string{"a": "b"}}}}
		}, "rules[0].map.from", "is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if len(ve.Problems) != 1 {
				t.Errorf("Validate() reported %d problems, want 1:\n%v", len(ve.Problems), err)
			}
			p := ve.Problems[0]
			if p.Field != tc.wantField || !strings.Contains(p.Message, tc.wantMsg) {
				t.Errorf("Validate() = %q, want %s: ...%s...", p, tc.wantField, tc.wantMsg)
			}
			if p.File != "" || p.Line != 0 {
				t.Errorf("Validate() of a Config built in code = %q, want no file or line", p)
			}
		})
	}
}

// TestValidate_S52_DomainClaimedByTwoTenants: a domain belongs to one tenant
// only, compared case-insensitively, so no tenant's IdP can assert another
// tenant's users (S51, S52).
func TestValidate_S52_DomainClaimedByTwoTenants(t *testing.T) {
	data := `issuer: https://login.example.com
tenants:
  - id: contoso
    domains: ["contoso.com", "*.contoso.com"]
    providers: [{id: c, type: github, client_id: x, client_secret: y}]
  - id: fabrikam
    domains:
      - fabrikam.example
      - Contoso.COM.
      - "*.CONTOSO.com"
    providers: [{id: f, type: github, client_id: x, client_secret: y}]
`
	_, err := Parse("f.yaml", []byte(data), nil)
	want := `f.yaml:9: tenants[1].domains[1]: domain "Contoso.COM." is claimed by two tenants: "contoso" (line 4) and "fabrikam"
f.yaml:10: tenants[1].domains[2]: domain "*.CONTOSO.com" is claimed by two tenants: "contoso" (line 4) and "fabrikam"`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error =\n%v\nwant\n%s", err, want)
	}
}

func TestWarnings(t *testing.T) {
	c := validConfig()
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() of a sound config = %q, want none", w)
	}
	c.Store = Store{Type: StoreRedis, Redis: Redis{Addrs: []string{"127.0.0.1:6379"}}}
	c.Clients[0].Secret = "short"
	c.Tenants[0].Providers[0].ClientSecret = ""
	want := []string{
		"keys.secret: not set with a redis store",
		"clients[0].secret: shorter than 32 characters",
		"tenants[0].providers[0].client_secret: not set",
	}
	got := c.Warnings()
	if len(got) != len(want) {
		t.Fatalf("Warnings() = %q, want %d warnings", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("Warnings()[%d] = %q, want prefix %q", i, got[i], want[i])
		}
	}

	// The admin API without keys.secret stores client secrets unencrypted.
	c = validConfig()
	c.AdminAPI.Tokens = []AdminToken{{Name: "ops", Token: strings.Repeat("t", 40)}}
	got = c.Warnings()
	if len(got) != 1 || !strings.HasPrefix(got[0], "keys.secret: not set with the admin API on") {
		t.Errorf("Warnings() with the admin API and no keys.secret = %q, want the unencrypted-secrets warning", got)
	}
	c.Keys.Secret = strings.Repeat("s", 40)
	if got := c.Warnings(); len(got) != 0 {
		t.Errorf("Warnings() with the admin API and keys.secret = %q, want none", got)
	}
}

func TestHelpers(t *testing.T) {
	c := parseExample(t)
	if got := c.Tenant("fabrikam"); got == nil || got.Name != "Fabrikam" {
		t.Errorf(`Tenant("fabrikam") = %+v, want Fabrikam`, got)
	}
	if got := c.Tenant("nope"); got != nil {
		t.Errorf(`Tenant("nope") = %+v, want nil`, got)
	}
	if tn, p := c.Provider("google"); tn == nil || tn.ID != "consumers" || p == nil || p.ClientID != "google-id" {
		t.Errorf(`Provider("google") = %v, %v, want consumers' google`, tn, p)
	}
	if tn, p := c.Provider("nope"); tn != nil || p != nil {
		t.Errorf(`Provider("nope") = %v, %v, want nil, nil`, tn, p)
	}
	cl := c.Client("notes-app")
	if cl == nil || !cl.AllowsTenant("contoso") {
		t.Errorf(`Client("notes-app") = %+v, want one allowing contoso`, cl)
	}
	limited := Client{AllowedTenants: []string{"fabrikam"}}
	if limited.AllowsTenant("contoso") || !limited.AllowsTenant("fabrikam") {
		t.Errorf("AllowsTenant with [fabrikam] = wrong answer")
	}
	if c.Client("nope") != nil {
		t.Errorf(`Client("nope") != nil`)
	}
}

func TestLoad_Errors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want os.ErrNotExist", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(MaxFileSize+1), f.Close()); err != nil { // sparse: nothing written
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) error = %v, want too large", err)
	}
}

// TestConfig_SCIMLimits: the scim section defaults to scim.DefaultLimits'
// values, takes "off", and refuses a window out of bounds.
func TestConfig_SCIMLimits(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       SCIM
		problem    string
	}{
		{"default", "", DefaultSCIM, ""},
		{"set", "scim:\n  requests_per_tenant: 10/1s\n  failures_per_ip: off\n", SCIM{RequestsPerTenant: Rate{Limit: 10, Window: Duration(time.Second)}, FailuresPerIP: RateOff}, ""},
		{"short window", "scim:\n  failures_per_ip: 5/10ms\n", SCIM{}, "scim.failures_per_ip"},
		{"bad", "scim:\n  requests_per_tenant: many\n", SCIM{}, "invalid rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte("issuer: https://login.example.com\n"+tc.yaml), nil)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Parse = %v, want an error naming %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SCIM != tc.want {
				t.Errorf("SCIM = %+v, want %+v", c.SCIM, tc.want)
			}
		})
	}
}
