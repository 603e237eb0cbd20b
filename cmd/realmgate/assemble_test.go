package main

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
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
    providers:
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
rules:
  - name: everyone
    add: {roles: '"member"'}
`

// compiledIdPs compiles the file through the admin API's compiler with st
// as the API's state, and returns the directory's IdPs by id.
func compiledIdPs(t *testing.T, cfg *config.Config, st *admin.State) (broker.Directory, map[string]broker.IdP) {
	t.Helper()
	ac := newAdminCompiler(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := ac.Compile(context.Background(), st, false)
	if err != nil {
		t.Fatal(err)
	}
	idps := map[string]broker.IdP{}
	for _, p := range c.Directory.IdPs {
		idps[p.ID] = p
	}
	return c.Directory, idps
}

// TestAssemble_FileIdPKeepsUpstreamLogoutUnderAdminAPI is the regression
// the issue found: with the admin API on, its compiler rebuilt the file's
// tenants without UpstreamLogout, so upstream_logout: true was lost.
func TestAssemble_FileIdPKeepsUpstreamLogoutUnderAdminAPI(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(assembleFile), nil)
	if err != nil {
		t.Fatal(err)
	}
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
	cfg, err := config.Parse("t.yaml", []byte(assembleFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	fileDir, fileIdPs := compiledIdPs(t, cfg, &admin.State{Version: 1})
	// The same tenant, by the API, under another id (ids are unique): the
	// file's copy is renamed so both live in one compilation.
	api := admin.Tenant{ID: "twin", Name: "Same Corp", Subdomain: "twin", IPRanges: []string{"203.0.113.0/24"}, RequireMFA: true,
		Domains: []admin.Domain{{Name: "twin.test", Verified: true}},
		Providers: []admin.Provider{
			{ID: "twin-gh", Type: "github", Name: "Same GitHub", ClientID: "gh-client", ClientSecret: "gh-secret",
				MFAACRValues: []string{"urn:okta:loa:2fa:any"}},
			{ID: "twin-oauth", Type: "oauth2", Name: "Same SSO", ClientID: "o-client", ClientSecret: "o-secret",
				AuthURL: "https://idp.same.test/authorize", TokenURL: "https://idp.same.test/token",
				UserInfoURL: "https://idp.same.test/userinfo", Scopes: []string{"openid", "email"}},
		},
		Members: []admin.Member{{IdP: "logout-idp", Email: "pat@logout.test"}},
		Rules: []admin.Rule{{Name: "leads", Map: &admin.MapRule{From: "upstream.groups", To: "roles",
			Table: map[string]string{"Eng-Leads": "lead"}}}}}
	apiDir, apiIdPs := compiledIdPs(t, cfg, &admin.State{Version: 1, Tenants: []admin.Tenant{api}})

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
	req := providers.LoginRequest{State: "state-0123456789abcdef", Nonce: "nonce-0123456789", CodeVerifier: "verifier-0123456789abcdef0123456789abcdef012",
		CallbackURL: "https://login.example.test/callback/x"}
	for _, pair := range [][2]string{{"same-gh", "twin-gh"}, {"same-oauth", "twin-oauth"}} {
		f, a := fileIdPs[pair[0]], apiIdPs[pair[1]]
		fu, _, ferr := f.Connector.LoginURL(context.Background(), req)
		au, _, aerr := a.Connector.LoginURL(context.Background(), req)
		if ferr != nil || aerr != nil || fu != au {
			t.Errorf("%s vs %s: login URL %q (%v) vs %q (%v)", pair[0], pair[1], fu, ferr, au, aerr)
		}
		f.ID, f.Tenant, f.Connector = "", "", nil
		a.ID, a.Tenant, a.Connector = "", "", nil
		if !reflect.DeepEqual(f, a) {
			t.Errorf("IdP %s: file %+v, API %+v", pair[0], f, a)
		}
	}
}
