package config_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
	"github.com/realmgate/realmgate/idp/saml"
)

// TestDuration_JSON: a Duration is written to and read from JSON as the
// same text the file uses ("15m", "30d"), not as nanoseconds.
func TestDuration_JSON(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		out  string
	}{
		{`"15m"`, Duration(15 * time.Minute), `"15m"`},
		{`"1h30m"`, Duration(90 * time.Minute), `"1h30m"`},
		{`"30d"`, Duration(720 * time.Hour), `"720h"`},
		{`"90s"`, Duration(90 * time.Second), `"1m30s"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			if err := json.Unmarshal([]byte(tc.in), &d); err != nil || d != tc.want {
				t.Fatalf("Unmarshal(%s) = %v, %v, want %v", tc.in, d, err, tc.want)
			}
			b, err := json.Marshal(d)
			if err != nil || string(b) != tc.out {
				t.Errorf("Marshal(%v) = %s, %v, want %s", d, b, err, tc.out)
			}
		})
	}
	for _, bad := range []string{`900000000000`, `"15 minutes"`, `""`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, d)
		}
	}
	// In a struct, with omitempty: unset stays out, set is text.
	b, _ := json.Marshal(Impersonation{OperatorRoles: []string{"ops"}})
	if strings.Contains(string(b), "lifetime") {
		t.Errorf("Marshal(zero lifetime) = %s, want lifetime left out", b)
	}
	b, _ = json.Marshal(Impersonation{OperatorRoles: []string{"ops"}, Lifetime: Duration(5 * time.Minute)})
	if !strings.Contains(string(b), `"lifetime":"5m"`) {
		t.Errorf("Marshal(lifetime 5m) = %s, want \"lifetime\":\"5m\"", b)
	}
}

// TestModel_JSONTagsEqualYAML: every field of the tenant and client model
// (what the admin API reads and writes as JSON) has a JSON name equal to
// its YAML name, so the API and the file spell every setting alike.
func TestModel_JSONTagsEqualYAML(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeFor[Config]().PkgPath() || seen[typ] {
			return
		}
		seen[typ] = true
		if _, ok := reflect.New(typ).Interface().(interface{ UnmarshalText([]byte) error }); ok {
			return // written as text (Rate, Duration)
		}
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			y, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y == "" || j != y {
				t.Errorf("%s.%s: yaml %q, json %q: want both, equal", typ.Name(), f.Name, y, j)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Tenant]())
	walk(reflect.TypeFor[Client]())
	if len(seen) < 7 {
		t.Fatalf("walked %d types, want Tenant, Provider, Member, Rule, MapRule, Impersonation, TenantRateLimits, Client", len(seen))
	}
}

// TestModel_JSONRoundTrip: a tenant with every kind of setting survives
// JSON as it is, durations and rates as text.
func TestModel_JSONRoundTrip(t *testing.T) {
	starts := Rate{Limit: 50, Window: Duration(time.Minute)}
	in := Tenant{ID: "acme", Default: true, RequireMFA: true,
		Impersonation: &Impersonation{OperatorRoles: []string{"support"}, Lifetime: Duration(10 * time.Minute)},
		RateLimits:    TenantRateLimits{StartsPerTenant: &starts, FailuresPerTenant: &RateOff},
		Providers: []Provider{{ID: "acme-saml", Type: ProviderSAML, Metadata: "<x/>", ClockSkew: Duration(time.Minute),
			SPKey: "key", SPCert: "cert", UpstreamLogout: true}},
		Rules: []Rule{{Name: "r", Map: &MapRule{From: "upstream.groups", To: "roles", Table: map[string]string{"a": "b"}}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"clock_skew":"1m"`, `"starts_per_tenant":"50/1m"`, `"failures_per_tenant":"off"`,
		`"lifetime":"10m"`, `"sp_key":"key"`, `"upstream_logout":true`, `"default":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Marshal = %s, want %s in it", b, want)
		}
	}
	var out Tenant
	if err := json.Unmarshal(b, &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Errorf("round trip = %+v, %v, want %+v", out, err, in)
	}
	if b, _ := json.Marshal(Tenant{ID: "x"}); string(b) != `{"id":"x"}` {
		t.Errorf("Marshal(empty tenant) = %s, want {\"id\":\"x\"}", b)
	}
}

// spPair returns a PEM RSA key and its self-signed certificate.
func spPair(t *testing.T) (keyPEM, certPEM string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t, k, time.Now().Add(24*time.Hour))}))
}

// TestValidate_SAMLInlineKey: sp_key and sp_cert give the SP key pair as
// PEM text (what the admin API can set), checked like the files.
func TestValidate_SAMLInlineKey(t *testing.T) {
	key, cert := spPair(t)
	otherKey, _ := spPair(t)
	samlConfig := func(mod func(p *Provider)) *Config {
		c := &Config{Issuer: "https://login.example.com", Tenants: []Tenant{{ID: "acme",
			Providers: []Provider{{ID: "acme-saml", Type: ProviderSAML, Metadata: "<EntityDescriptor/>"}}}}}
		mod(&c.Tenants[0].Providers[0])
		c.ApplyDefaults()
		return c
	}
	tests := []struct {
		name             string
		mod              func(p *Provider)
		wantField, wantM string
	}{
		{"pair", func(p *Provider) { p.SPKey, p.SPCert, p.SignRequests = key, cert, true }, "", ""},
		{"key alone", func(p *Provider) { p.SPKey = key }, "tenants[0].providers[0].sp_cert", "is required with sp_key"},
		{"cert alone", func(p *Provider) { p.SPCert = cert }, "tenants[0].providers[0].sp_key", "is required with sp_cert"},
		{"key of another certificate", func(p *Provider) { p.SPKey, p.SPCert = otherKey, cert }, "tenants[0].providers[0].sp_key", "private key does not match"},
		{"not PEM", func(p *Provider) { p.SPKey, p.SPCert = "secret-not-pem", cert }, "tenants[0].providers[0].sp_key", "sp_key and sp_cert"},
		{"inline and files", func(p *Provider) { p.SPKey, p.SPCert, p.SPKeyFile, p.SPCertFile = key, cert, "k", "c" },
			"tenants[0].providers[0].sp_key", "not both"},
		{"on oidc", func(p *Provider) {
			*p = Provider{ID: "acme-saml", Type: ProviderOIDC, Issuer: "https://idp.test", ClientID: "x", Scopes: []string{"openid"}, SPKey: key}
		}, "tenants[0].providers[0].sp_key", "is not used by providers of type \"oidc\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := samlConfig(tc.mod)
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				_, p := c.Provider("acme-saml")
				k, crt, err := saml.SPKeyPair(p)
				if err != nil || k == nil || !k.PublicKey.Equal(crt.PublicKey) {
					t.Errorf("SPKeyPair() = %v, want the inline pair", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want problems", err)
			}
			found := false
			for _, p := range ve.Problems {
				if p.Field == tc.wantField && strings.Contains(p.Message, tc.wantM) {
					found = true
				}
				if strings.Contains(p.Message, "PRIVATE KEY") || strings.Contains(p.Message, "secret-not-pem") {
					t.Errorf("problem %q quotes the key", p)
				}
			}
			if !found {
				t.Errorf("Validate() = %v, want %s: ...%s...", err, tc.wantField, tc.wantM)
			}
		})
	}
}
