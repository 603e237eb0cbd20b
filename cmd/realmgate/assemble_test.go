package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/providers"
)

// assembleFile is a file whose tenant "same" has settings the admin API
// can express too; "logout" has an IdP with upstream_logout.
const assembleFile = `issuer: https://login.example.test
tenants:
  - id: same
    name: Same Corp
    domains: [same.test]
    subdomain: same
    ip_ranges: ["198.51.100.0/24"]
    require_mfa: true
    impersonation:
      operator_roles: [support]
      operator_tenants: [logout]
      lifetime: 5m
    rate_limits:
      starts_per_tenant: 50/1m
      failures_per_tenant: "off"
    providers:
      - id: same-oidc
        type: oidc
        name: Same OIDC
        issuer: ${OIDC_ISSUER}
        client_id: oidc-client
        client_secret: oidc-secret
        upstream_logout: true
      - id: same-saml
        type: saml
        name: Same SAML
        metadata_url: https://idp.same.test/saml/metadata
        sp_key_file: ${SP_KEY_FILE}
        sp_cert_file: ${SP_CERT_FILE}
        sign_requests: true
        name_id_format: email
        clock_skew: 90s
      - id: same-gh
        type: github
        name: Same GitHub
        client_id: gh-client
        client_secret: gh-secret
        mfa_acr_values: ["urn:okta:loa:2fa:any"]
      - id: same-oauth
        type: oauth2
        name: Same SSO
        client_id: o-client
        client_secret: o-secret
        auth_url: https://idp.same.test/authorize
        token_url: https://idp.same.test/token
        userinfo_url: https://idp.same.test/userinfo
        scopes: [openid, email]
    members:
      - idp: logout-idp
        email: pat@logout.test
    rules:
      - name: leads
        map: {from: upstream.groups, to: roles, table: {Eng-Leads: lead}}
  - id: logout
    domains: [logout.test]
    providers:
      - id: logout-idp
        type: github
        client_id: x
        client_secret: y
        upstream_logout: true
outbound:
  allow_loopback: true # the OIDC IdP's discovery is served on loopback
rules:
  - name: everyone
    add: {roles: '"member"'}
`

// parseAssembleFile parses assembleFile with an SP key pair written to
// files, and returns the pair's PEM too.
func parseAssembleFile(t *testing.T) (cfg *config.Config, keyPEM, certPEM string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realmgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	dir := t.TempDir()
	env := map[string]string{"SP_KEY_FILE": filepath.Join(dir, "sp.key"), "SP_CERT_FILE": filepath.Join(dir, "sp.crt"),
		"OIDC_ISSUER": discoveryServer(t)}
	if err := os.WriteFile(env["SP_KEY_FILE"], []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env["SP_CERT_FILE"], []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = config.Parse("t.yaml", []byte(assembleFile), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg, keyPEM, certPEM
}

// discoveryServer serves an OpenID Provider's discovery document on
// loopback and returns its issuer.
func discoveryServer(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q,`+
			`"response_types_supported":["code"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}`,
			srv.URL, srv.URL+"/authorize", srv.URL+"/token", srv.URL+"/jwks")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// compiledIdPs compiles the file through the admin API's compiler with st
// as the API's state, as serve does (the file's tenants as the broker
// built them: assemble.WithBoot), and returns the directory's IdPs by id.
// The compiler compiling the file's tenants itself must give the same IdPs
// (connectors aside).
func compiledIdPs(t *testing.T, cfg *config.Config, st *admin.State) (broker.Directory, map[string]broker.IdP) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	boot := &assemble.Boot{}
	if _, err := assemble.BrokerConfig(cfg, upstreamClient(cfg), logger, logger, assemble.KeepBoot(boot)); err != nil {
		t.Fatal(err)
	}
	var dirs []broker.Directory
	for _, ac := range []*assemble.Compiler{newAdminCompiler(cfg, logger, assemble.WithBoot(boot)), newAdminCompiler(cfg, logger)} {
		c, err := ac.Compile(context.Background(), st, false)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, c.Directory)
	}
	withoutConnectors := func(in []broker.IdP) []broker.IdP {
		out := slices.Clone(in)
		for i := range out {
			out[i].Connector = nil
		}
		return out
	}
	if got, want := withoutConnectors(dirs[0].IdPs), withoutConnectors(dirs[1].IdPs); !reflect.DeepEqual(got, want) {
		t.Errorf("IdPs from the broker's file tenants =\n%+v\nwant (compiled by the compiler)\n%+v", got, want)
	}
	idps := map[string]broker.IdP{}
	for _, p := range dirs[0].IdPs {
		idps[p.ID] = p
	}
	return dirs[0], idps
}

// TestAssemble_FileIdPKeepsUpstreamLogoutUnderAdminAPI is the regression
// the issue found: with the admin API on, its compiler rebuilt the file's
// tenants without UpstreamLogout, so upstream_logout: true was lost.
func TestAssemble_FileIdPKeepsUpstreamLogoutUnderAdminAPI(t *testing.T) {
	cfg, _, _ := parseAssembleFile(t)
	_, idps := compiledIdPs(t, cfg, &admin.State{Version: 1})
	if !idps["logout-idp"].UpstreamLogout {
		t.Fatalf("file IdP logout-idp compiled by the admin API's compiler: UpstreamLogout = false, want true")
	}
}

// TestAssemble_APITenantEqualsFileTenant: a tenant with the same settings
// compiles to the same broker objects whether it comes from the file or
// from the admin API (another id, domain, subdomain and IP range, as these
// must be unique): realm tenant, IdPs (connectors compared by what they
// do: the login URL they build for one request), policy, members, rules.
func TestAssemble_APITenantEqualsFileTenant(t *testing.T) {
	cfg, keyPEM, certPEM := parseAssembleFile(t)
	fileDir, fileIdPs := compiledIdPs(t, cfg, &admin.State{Version: 1})
	// The same tenant, by the API, under another id (ids are unique): the
	// file's copy is renamed so both live in one compilation. The SP key
	// pair the file names by path, the API gives inline.
	starts := config.Rate{Limit: 50, Window: config.Duration(time.Minute)}
	api := admin.Tenant{Tenant: config.Tenant{ID: "twin", Name: "Same Corp", Subdomain: "twin", IPRanges: []string{"203.0.113.0/24"}, RequireMFA: true,
		Impersonation: &config.Impersonation{OperatorRoles: []string{"support"}, OperatorTenants: []string{"logout"},
			Lifetime: config.Duration(5 * time.Minute)},
		RateLimits: config.TenantRateLimits{StartsPerTenant: &starts, FailuresPerTenant: &config.RateOff},
		Providers: []admin.Provider{
			{ID: "twin-oidc", Type: "oidc", Name: "Same OIDC", Issuer: cfg.Tenant("same").Providers[0].Issuer, ClientID: "oidc-client", ClientSecret: "oidc-secret",
				UpstreamLogout: true},
			{ID: "twin-saml", Type: "saml", Name: "Same SAML", MetadataURL: "https://idp.same.test/saml/metadata", SPKey: keyPEM, SPCert: certPEM,
				SignRequests: true, NameIDFormat: "email", ClockSkew: config.Duration(90 * time.Second)},
			{ID: "twin-gh", Type: "github", Name: "Same GitHub", ClientID: "gh-client", ClientSecret: "gh-secret",
				MFAACRValues: []string{"urn:okta:loa:2fa:any"}},
			{ID: "twin-oauth", Type: "oauth2", Name: "Same SSO", ClientID: "o-client", ClientSecret: "o-secret",
				AuthURL: "https://idp.same.test/authorize", TokenURL: "https://idp.same.test/token",
				UserInfoURL: "https://idp.same.test/userinfo", Scopes: []string{"openid", "email"}},
		},
		Members: []admin.Member{{IdP: "logout-idp", Email: "pat@logout.test"}},
		Rules: []admin.Rule{{Name: "leads", Map: &admin.MapRule{From: "upstream.groups", To: "roles",
			Table: map[string]string{"Eng-Leads": "lead"}}}}},
		Domains: []admin.Domain{{Name: "twin.test", Verified: true}}}
	apiDir, apiIdPs := compiledIdPs(t, cfg, &admin.State{Version: 1, Tenants: []*admin.Tenant{&api}})

	fileT, _ := fileDir.Resolver.Tenant("same")
	apiT, _ := apiDir.Resolver.Tenant("twin")
	// What must differ (ids, routing) is cleared; the rest must be equal.
	fileT.ID, fileT.Subdomain, fileT.Domains, fileT.IdPs, fileT.IPRanges = "", "", nil, nil, nil
	apiT.ID, apiT.Subdomain, apiT.Domains, apiT.IdPs, apiT.IPRanges = "", "", nil, nil, nil
	if !reflect.DeepEqual(fileT, apiT) {
		t.Errorf("realm tenant: file %+v, API %+v", fileT, apiT)
	}
	if !reflect.DeepEqual(fileDir.Policies["same"], apiDir.Policies["twin"]) {
		t.Errorf("policy: file %+v, API %+v", fileDir.Policies["same"], apiDir.Policies["twin"])
	}
	var fileM, apiM []broker.Membership
	for _, m := range fileDir.Memberships {
		if m.Tenant == "same" {
			m.Tenant = ""
			fileM = append(fileM, m)
		}
	}
	for _, m := range apiDir.Memberships {
		if m.Tenant == "twin" {
			m.Tenant = ""
			apiM = append(apiM, m)
		}
	}
	if !reflect.DeepEqual(fileM, apiM) || len(fileM) != 1 {
		t.Errorf("members: file %+v, API %+v", fileM, apiM)
	}
	if (fileDir.Rules["same"] == nil) != (apiDir.Rules["twin"] == nil) || fileDir.Rules["same"] == nil {
		t.Errorf("rules: file %v, API %v", fileDir.Rules["same"], apiDir.Rules["twin"])
	}
	if !apiIdPs["twin-oidc"].UpstreamLogout {
		t.Errorf("API IdP twin-oidc: UpstreamLogout = false, want true")
	}
	req := providers.LoginRequest{State: "state-0123456789abcdef", Nonce: "nonce-0123456789", CodeVerifier: "verifier-0123456789abcdef0123456789abcdef012",
		CallbackURL: "https://login.example.test/callback/x"}
	if pol := apiDir.Policies["twin"]; pol.Impersonation == nil || pol.RateLimits == nil || pol.RateLimits.StartsPerTenant.Limit != 50 {
		t.Errorf("API policy %+v: want impersonation and the tenant's rate limits", pol)
	}
	for _, pair := range [][2]string{{"same-gh", "twin-gh"}, {"same-oauth", "twin-oauth"}, {"same-oidc", "twin-oidc"}, {"same-saml", "twin-saml"}} {
		f, a := fileIdPs[pair[0]], apiIdPs[pair[1]]
		if f.Connector == nil || a.Connector == nil {
			t.Errorf("%s vs %s: connectors %v, %v: want both compiled", pair[0], pair[1], f.Connector, a.Connector)
			continue
		}
		if fm, ok := f.Connector.(providers.MetadataPublisher); ok {
			// SAML: the SP metadata (entityID, ACS, the signing certificate,
			// AuthnRequestsSigned, NameID format) is what an IdP sees of it.
			am := a.Connector.(providers.MetadataPublisher)
			fb, ferr := fm.Metadata(context.Background())
			ab, aerr := am.Metadata(context.Background())
			norm := func(b []byte, id string) string {
				return validUntil.ReplaceAllString(strings.ReplaceAll(string(b), id, "ID"), "")
			}
			if ferr != nil || aerr != nil || norm(fb, pair[0]) != norm(ab, pair[1]) || !strings.Contains(string(ab), `AuthnRequestsSigned="true"`) {
				t.Errorf("%s vs %s: SP metadata\n%s (%v)\nvs\n%s (%v)", pair[0], pair[1], fb, ferr, ab, aerr)
			}
		} else {
			fu, _, ferr := f.Connector.LoginURL(context.Background(), req)
			au, _, aerr := a.Connector.LoginURL(context.Background(), req)
			if ferr != nil || aerr != nil || fu != au {
				t.Errorf("%s vs %s: login URL %q (%v) vs %q (%v)", pair[0], pair[1], fu, ferr, au, aerr)
			}
		}
		f.ID, f.Tenant, f.Connector = "", "", nil
		a.ID, a.Tenant, a.Connector = "", "", nil
		if !reflect.DeepEqual(f, a) {
			t.Errorf("IdP %s: file %+v, API %+v", pair[0], f, a)
		}
	}
}

// validUntil is the SP metadata's expiry, computed when it is written.
var validUntil = regexp.MustCompile(` validUntil="[^"]*"`)

// TestAssemble_APITenantChecksLikeFile: what the file's validation refuses
// in the settings the API gained is refused for an API tenant too, named
// by id: a second default tenant, an SP key that is not its certificate's
// (without quoting the key), a bad per-tenant rate; and a file path, which
// only the file may name. These are the checks of a change (probe set); a
// state read back from the store was checked by the instance that wrote it.
func TestAssemble_APITenantChecksLikeFile(t *testing.T) {
	cfg, keyPEM, _ := parseAssembleFile(t)
	_, _, otherCert := parseAssembleFile(t)
	zero := config.Rate{Limit: 0, Window: config.Duration(time.Minute)}
	tenant := func(id string, mod func(ct *config.Tenant)) admin.Tenant {
		ct := config.Tenant{ID: id, Providers: []admin.Provider{{ID: id + "-gh", Type: "github", ClientID: "a", ClientSecret: "b"}}}
		mod(&ct)
		return admin.Tenant{Tenant: ct}
	}
	for _, tc := range []struct {
		name    string
		tenants []admin.Tenant
		field   string
		msg     string
	}{
		{"two defaults", []admin.Tenant{tenant("d1", func(ct *config.Tenant) { ct.Default = true }), tenant("d2", func(ct *config.Tenant) { ct.Default = true })},
			"tenants[d2].default", "both default"},
		{"sp key of another certificate", []admin.Tenant{tenant("k", func(ct *config.Tenant) {
			ct.Providers = []admin.Provider{{ID: "k-saml", Type: "saml", MetadataURL: "https://idp.k.test/md", SPKey: keyPEM, SPCert: otherCert}}
		})}, "tenants[k].providers[0].sp_key", "private key does not match"},
		{"rate of zero", []admin.Tenant{tenant("r", func(ct *config.Tenant) { ct.RateLimits.StartsPerTenant = &zero })},
			"tenants[r].rate_limits.starts_per_tenant", "at least 1"},
		{"file path", []admin.Tenant{tenant("f", func(ct *config.Tenant) {
			ct.Providers = []admin.Provider{{ID: "f-saml", Type: "saml", MetadataFile: "/etc/passwd"}}
		})}, "tenants[f].providers[0].metadata_file", "names a file on the server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac := newAdminCompiler(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			_, err := ac.Compile(context.Background(), &admin.State{Version: 1, Tenants: ptrs(tc.tenants)}, true)
			var ve *admin.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compile = %v, want problems", err)
			}
			found := false
			for _, p := range ve.Problems {
				found = found || p.Field == tc.field && strings.Contains(p.Message, tc.msg)
				if strings.Contains(p.Message, "PRIVATE KEY") || strings.Contains(p.Message, "root:") {
					t.Errorf("problem %+v quotes a secret or a server file", p)
				}
			}
			if !found {
				t.Errorf("Compile problems %+v, want %s: ...%s...", ve.Problems, tc.field, tc.msg)
			}
		})
	}
}

// ptrs returns pointers to the tenants of ts (admin.State's form).
func ptrs(ts []admin.Tenant) []*admin.Tenant {
	out := make([]*admin.Tenant, len(ts))
	for i := range ts {
		out[i] = &ts[i]
	}
	return out
}
