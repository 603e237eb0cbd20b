package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
)

// spKeyText stands for a SAML SP private key (the test compiler does not
// parse it: secret handling goes by field, whatever the provider type).
const spKeyText = "-----BEGIN PRIVATE KEY-----\nsp-key-material-0123456789\n-----END PRIVATE KEY-----\n"

// TestAdminSecrets_SPKeyLikeClientSecret: sp_key, the SAML SP key the API
// takes inline, is a secret like client_secret: encrypted at rest with a
// server secret, redacted on every read and in the audit, kept by a
// read-modify-write that sends the marker back, and refused when it looks
// encrypted already.
func TestAdminSecrets_SPKeyLikeClientSecret(t *testing.T) {
	for _, tc := range serverSecretCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.secret = tc.secret
			a := e.instance()
			x := tenantDoc("alpha", "alpha.test")
			x.Providers[0].SPKey, x.Providers[0].SPCert = spKeyText, "certificate-is-public"
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", x, nil)

			stored := func(when string) {
				t.Helper()
				_, doc := rawState(t, e)
				if got := strings.Contains(string(doc), "sp-key-material"); got == tc.protected {
					t.Errorf("%s: stored document holds the SP key in plaintext: %v, want %v", when, got, !tc.protected)
				}
				if want := map[bool]int{true: 2}[tc.protected]; strings.Count(string(doc), `"enc:v1:`) != want {
					t.Errorf("%s: %d encrypted values stored, want %d (client_secret and sp_key)", when, strings.Count(string(doc), `"enc:v1:`), want)
				}
				for _, in := range []*instance{a, e.instance()} {
					st, _ := in.svc.Applied()
					if got := st.Tenants[0].Providers[0].SPKey; got != spKeyText {
						t.Errorf("%s: applied sp_key %q, want the key", when, got)
					}
				}
			}
			stored("after create")

			var got admin.Tenant
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &got)
			if p := got.Providers[0]; p.SPKey != "[redacted]" || p.SPCert != "certificate-is-public" {
				t.Errorf("GET: sp_key %q, sp_cert %q; want [redacted] and the certificate", p.SPKey, p.SPCert)
			}
			var prov admin.Provider
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha/providers/alpha-idp", nil, &prov)
			if prov.SPKey != "[redacted]" {
				t.Errorf("GET provider: sp_key %q, want [redacted]", prov.SPKey)
			}
			// Read-modify-write: the marker keeps the stored key.
			got.Name, got.Source, got.Revision = "Alpha Renamed", "", ""
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", got, nil)
			stored("after PUT with the marker")
			prov.Name = "Renamed IdP"
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha/providers/alpha-idp", prov, &prov)
			if prov.SPKey != "[redacted]" {
				t.Errorf("PUT provider answers sp_key %q, want [redacted]", prov.SPKey)
			}
			stored("after provider PUT with the marker")

			if log := a.audit.String(); strings.Contains(log, "sp-key-material") || !strings.Contains(log, `"sp_key":"[redacted]"`) {
				t.Errorf("audit log shows the SP key, or not its marker: %.600s", log)
			}

			bad := tenantDoc("beta", "beta.test")
			bad.Providers[0].SPKey = "enc:v1:looks-sealed"
			var body apiErr
			if code := a.call(t, opToken, "POST", "/v1/tenants", bad, &body); code != http.StatusUnprocessableEntity ||
				len(body.Problems) != 1 || body.Problems[0].Field != "tenants[beta].providers[0].sp_key" {
				t.Errorf("sp_key starting enc:v1: = %d %+v, want 422 naming tenants[beta].providers[0].sp_key", code, body.Problems)
			}
		})
	}
}

// TestAdminAPI_RefusesServerFileSettings: settings that name a file on the
// server (metadata_file, sp_key_file, sp_cert_file) are refused with what
// to give instead, on a tenant and on a provider: the API must not make
// the server read its own files.
func TestAdminAPI_RefusesServerFileSettings(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	withFiles := admin.Provider{ID: "alpha-saml", Type: "saml", MetadataFile: "/etc/passwd",
		SPKeyFile: "/etc/realmgate/secret.key", SPCertFile: "/etc/realmgate/sp.crt"}
	x := tenantDoc("beta", "beta.test")
	x.Providers = append(x.Providers, withFiles)
	for _, tc := range []struct {
		name, method, path string
		body               any
		prefix             string
	}{
		{"tenant", "POST", "/v1/tenants", x, "tenants[beta].providers[1]."},
		{"provider", "POST", "/v1/tenants/alpha/providers", withFiles, "tenants[alpha].providers[1]."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body apiErr
			if code := a.call(t, opToken, tc.method, tc.path, tc.body, &body); code != http.StatusUnprocessableEntity {
				t.Fatalf("%s %s = %d %+v, want 422", tc.method, tc.path, code, body)
			}
			want := map[string]string{"metadata_file": "metadata_url", "sp_key_file": "sp_key", "sp_cert_file": "sp_cert"}
			for _, p := range body.Problems {
				f := strings.TrimPrefix(p.Field, tc.prefix)
				if instead, ok := want[f]; ok && strings.Contains(p.Message, "names a file on the server") && strings.Contains(p.Message, instead) {
					delete(want, f)
				}
			}
			if len(want) > 0 {
				t.Errorf("problems %+v do not refuse %v", body.Problems, want)
			}
		})
	}
	st, _ := a.svc.Applied()
	if len(st.Tenants) != 1 || len(st.Tenants[0].Providers) != 1 {
		t.Errorf("state after refused writes = %+v, want alpha with its one provider", st.Tenants)
	}
}

// TestAdminAPI_OperatorOnlyRoutingAndLimits: like subdomain and ip_ranges,
// default (which routes every unknown domain) and rate_limits (what the
// tenant may take of the shared broker) are an operator's to set, not the
// tenant admin's; settings of the tenant's own sign-in are the admin's.
func TestAdminAPI_OperatorOnlyRoutingAndLimits(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	get := func() admin.Tenant {
		var x admin.Tenant
		a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &x)
		x.Source, x.Revision, x.Incarnation = "", "", ""
		return x
	}
	off := config.RateOff
	for _, tc := range []struct {
		name string
		mod  func(x *admin.Tenant)
	}{
		{"default", func(x *admin.Tenant) { x.Default = true }},
		{"rate_limits", func(x *admin.Tenant) { x.RateLimits.StartsPerTenant = &off }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := get()
			tc.mod(&x)
			var body apiErr
			if code := a.call(t, alphaToken, "PUT", "/v1/tenants/alpha", x, &body); code != http.StatusForbidden || !strings.Contains(body.Message, tc.name) {
				t.Errorf("tenant admin sets %s = %d %+v, want 403 naming it", tc.name, code, body)
			}
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", x, nil)
			// Unchanged, the tenant admin may write the tenant back.
			y := get()
			y.Name = "Alpha by its admin"
			a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha", y, nil)
		})
	}
	x := get()
	x.RequireMFA = true
	x.Impersonation = &config.Impersonation{OperatorRoles: []string{"support"}}
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/tenants/alpha", x, nil)
	if got := get(); !got.RequireMFA || got.Impersonation == nil || !got.Default || got.RateLimits.StartsPerTenant == nil {
		t.Errorf("tenant after the writes = %+v, want every setting kept", got)
	}
}
