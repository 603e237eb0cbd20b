package config_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
	"github.com/realmgate/realmgate/idp/saml"
)

func TestValidate_ProviderOptions(t *testing.T) {
	saml := func(mod func(p *Provider)) func(c *Config) {
		return func(c *Config) {
			p := Provider{ID: "s", Type: ProviderSAML, MetadataURL: "https://idp.acme.com/md"}
			mod(&p)
			c.Tenants[0].Providers[0] = p
		}
	}
	ms := func(mod func(p *Provider)) func(c *Config) {
		return func(c *Config) {
			p := Provider{ID: "m", Type: ProviderMicrosoft, ClientID: "x", ClientSecret: "y", Scopes: DefaultScopes}
			mod(&p)
			c.Tenants[1].Providers[0] = p
		}
	}
	google := func(hd string) func(c *Config) {
		return func(c *Config) {
			c.Tenants[1].Providers[0] = Provider{ID: "g", Type: ProviderGoogle, ClientID: "x", ClientSecret: "y", Scopes: DefaultScopes, HostedDomain: hd}
		}
	}
	const tidA = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"saml all options", saml(func(p *Provider) {
			p.Binding, p.NameIDFormat, p.SubjectAttribute, p.ClockSkew = BindingPOST, "persistent", "uid", Duration(3*time.Minute)
			p.IdPInitiated, p.RelayStateAllowlist = true, []string{"https://app.example.com/login", "http://127.0.0.1:9000/"}
		}), "", ""},
		{"saml name id urn", saml(func(p *Provider) { p.NameIDFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" }), "", ""},
		{"saml name id transient", saml(func(p *Provider) { p.NameIDFormat = "transient" }), "tenants[0].providers[0].name_id_format", "unsupported"},
		{"saml binding artifact", saml(func(p *Provider) { p.Binding = "artifact" }), "tenants[0].providers[0].binding", "want redirect or post"},
		{"saml clock skew too big", saml(func(p *Provider) { p.ClockSkew = Duration(5 * time.Minute) }), "tenants[0].providers[0].clock_skew", "at most 3m"},
		{"saml clock skew negative", saml(func(p *Provider) { p.ClockSkew = Duration(-time.Second) }), "tenants[0].providers[0].clock_skew", "greater than 0"},
		{"saml subject attribute spaces", saml(func(p *Provider) { p.SubjectAttribute = " uid" }), "tenants[0].providers[0].subject_attribute", "spaces"},
		{"S44 idp initiated without allow-list", saml(func(p *Provider) { p.IdPInitiated = true }), "tenants[0].providers[0].relay_state_allowlist", "is required with idp_initiated"},
		{"S44 relay state javascript", saml(func(p *Provider) {
			p.IdPInitiated, p.RelayStateAllowlist = true, []string{"javascript:alert(1)"}
		}), "tenants[0].providers[0].relay_state_allowlist[0]", "not allowed"},
		{"S44 relay state private scheme", saml(func(p *Provider) {
			p.IdPInitiated, p.RelayStateAllowlist = true, []string{"com.example.app:/cb"}
		}), "tenants[0].providers[0].relay_state_allowlist[0]", "https URL"},
		{"S44 relay state http remote", saml(func(p *Provider) {
			p.IdPInitiated, p.RelayStateAllowlist = true, []string{"http://app.example.com/"}
		}), "tenants[0].providers[0].relay_state_allowlist[0]", "must use https"},
		{"saml sign requests without key", saml(func(p *Provider) { p.SignRequests = true }), "tenants[0].providers[0].sign_requests", "needs sp_key_file"},
		{"saml cert without key", saml(func(p *Provider) { p.SPCertFile = "sp.crt" }), "tenants[0].providers[0].sp_key_file", "is required with sp_cert_file"},
		{"saml key without cert", saml(func(p *Provider) { p.SPKeyFile = "sp.key" }), "tenants[0].providers[0].sp_cert_file", "is required with sp_key_file"},
		{"saml missing key file", saml(func(p *Provider) { p.SPKeyFile, p.SPCertFile = "/nonexistent/sp.key", "/nonexistent/sp.crt" }), "tenants[0].providers[0].sp_key_file", "no such file"},
		{"saml metadata url and file", saml(func(p *Provider) { p.MetadataFile = "idp.xml" }), "tenants[0].providers[0].metadata_file", "not both"},
		{"saml missing metadata file", saml(func(p *Provider) { p.MetadataURL, p.MetadataFile = "", "/nonexistent/idp.xml" }), "tenants[0].providers[0].metadata_file", "no such file"},
		{"saml option on oidc", func(c *Config) { c.Tenants[0].Providers[0].SubjectAttribute = "uid" }, "tenants[0].providers[0].subject_attribute", "not used"},
		{"google hosted domain", google("acme.com"), "", ""},
		{"google hosted domain invalid", google("acme"), "tenants[1].providers[0].hosted_domain", "not a domain name"},
		{"hosted domain on github", func(c *Config) { c.Tenants[1].Providers[0].HostedDomain = "acme.com" }, "tenants[1].providers[0].hosted_domain", "not used"},
		{"microsoft defaults", ms(func(p *Provider) {}), "", ""},
		{"microsoft work tenants", ms(func(p *Provider) { p.Accounts, p.AllowedTenants = AccountsWork, []string{tidA} }), "", ""},
		{"microsoft personal", ms(func(p *Provider) { p.Accounts = AccountsPersonal }), "", ""},
		{"microsoft national cloud template", ms(func(p *Provider) {
			p.Issuer, p.Accounts = "https://login.microsoftonline.us/{tenantid}/v2.0", AccountsWork
		}), "", ""},
		{"microsoft accounts unknown", ms(func(p *Provider) { p.Accounts = "both" }), "tenants[1].providers[0].accounts", "want any, work or personal"},
		{"microsoft tenant not a guid", ms(func(p *Provider) { p.AllowedTenants = []string{"contoso.com"} }), "tenants[1].providers[0].allowed_tenants[0]", "not an Entra tenant id"},
		{"microsoft work lists consumers", ms(func(p *Provider) {
			p.Accounts, p.AllowedTenants = AccountsWork, []string{MicrosoftConsumerTenant}
		}), "tenants[1].providers[0].allowed_tenants[0]", "personal-accounts tenant"},
		{"microsoft personal with tenants", ms(func(p *Provider) {
			p.Accounts, p.AllowedTenants = AccountsPersonal, []string{tidA}
		}), "tenants[1].providers[0].allowed_tenants", "no effect"},
		{"microsoft pinned with tenants", ms(func(p *Provider) {
			p.Issuer, p.AllowedTenants = "https://login.microsoftonline.com/"+tidA+"/v2.0", []string{tidA}
		}), "tenants[1].providers[0].allowed_tenants", "multi-tenant issuer"},
		{"microsoft pinned with accounts", ms(func(p *Provider) {
			p.Issuer, p.Accounts = "https://login.microsoftonline.com/"+tidA+"/v2.0", AccountsWork
		}), "tenants[1].providers[0].accounts", "multi-tenant issuer"},
		{"oidc template with tenants", func(c *Config) {
			c.Tenants[0].Providers[0].Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
			c.Tenants[0].Providers[0].AllowedTenants = []string{tidA}
		}, "", ""},
		{"oidc single issuer with tenants", func(c *Config) { c.Tenants[0].Providers[0].AllowedTenants = []string{tidA} }, "tenants[0].providers[0].allowed_tenants", "multi-tenant issuer"},
		{"accounts on oidc", func(c *Config) {
			c.Tenants[0].Providers[0].Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
			c.Tenants[0].Providers[0].Accounts = AccountsWork
		}, "tenants[0].providers[0].accounts", "not used"},
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
			if p := ve.Problems[0]; p.Field != tc.wantField || !strings.Contains(p.Message, tc.wantMsg) {
				t.Errorf("Validate() = %q, want %s: ...%s...", p, tc.wantField, tc.wantMsg)
			}
		})
	}
}

// writePEM writes a PEM block to dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned returns a DER certificate for key valid until notAfter.
func selfSigned(t *testing.T, key crypto.Signer, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realmgate-sp"},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestParse_SAMLFiles: key, certificate and metadata files are read and
// checked at load, relative to the configuration file; a key that is not
// the certificate's, or not RSA, is refused with file:line.
func TestParse_SAMLFiles(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	writePEM(t, dir, "sp.key", "PRIVATE KEY", pkcs8)
	writePEM(t, dir, "sp-pkcs1.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	writePEM(t, dir, "sp.crt", "CERTIFICATE", selfSigned(t, rsaKey, time.Now().Add(24*time.Hour)))
	writePEM(t, dir, "expired.crt", "CERTIFICATE", selfSigned(t, rsaKey, time.Now().Add(-time.Hour)))
	writePEM(t, dir, "other.crt", "CERTIFICATE", selfSigned(t, otherKey, time.Now().Add(24*time.Hour)))
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	writePEM(t, dir, "ec.key", "EC PRIVATE KEY", ecDER)
	writePEM(t, dir, "ec.crt", "CERTIFICATE", selfSigned(t, ecKey, time.Now().Add(24*time.Hour)))
	if err := os.WriteFile(filepath.Join(dir, "idp.xml"), []byte(`<EntityDescriptor entityID="https://idp.example"/>`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idp.json"), []byte(`{"not": "xml"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	const tmpl = `issuer: https://login.example.com
tenants:
  - id: acme
    providers:
      - id: acme-saml
        type: saml
        metadata_file: %s
        sp_key_file: %s
        sp_cert_file: %s
`
	file := filepath.Join(dir, "realmgate.yaml")
	tests := []struct {
		name          string
		md, key, cert string
		wantLine      int // 0: valid
		wantField     string
		wantMsg       string
	}{
		{"pkcs8 key", "idp.xml", "sp.key", "sp.crt", 0, "", ""},
		{"pkcs1 key, absolute path", filepath.Join(dir, "idp.xml"), "sp-pkcs1.key", filepath.Join(dir, "sp.crt"), 0, "", ""},
		{"key of another certificate", "idp.xml", "sp.key", "other.crt", 8, "tenants[0].providers[0].sp_key_file", "private key does not match public key"},
		{"ec key", "idp.xml", "ec.key", "ec.crt", 8, "tenants[0].providers[0].sp_key_file", "want an RSA key"},
		{"certificate as key", "idp.xml", "sp.crt", "sp.crt", 8, "tenants[0].providers[0].sp_key_file", "sp.crt"},
		{"missing key", "idp.xml", "none.key", "sp.crt", 8, "tenants[0].providers[0].sp_key_file", "none.key"},
		{"metadata not xml", "idp.json", "sp.key", "sp.crt", 7, "tenants[0].providers[0].metadata_file", "not XML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(file, fmt.Appendf(nil, tmpl, tc.md, tc.key, tc.cert), nil)
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("Parse = %v, want nil", err)
				}
				_, p := c.Provider("acme-saml")
				if want := filepath.Join(dir, "sp.crt"); p.SPCertFile != want {
					t.Errorf("SPCertFile = %q, want %q (relative to the config file)", p.SPCertFile, want)
				}
				key, cert, err := saml.SPKeyPair(p)
				if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
					t.Errorf("SPKeyPair() = %v, %v, want the pair", cert, err)
				}
				if md, err := saml.MetadataXML(p); err != nil || !strings.Contains(string(md), "https://idp.example") {
					t.Errorf("IdPMetadataXML() = %q, %v, want the file", md, err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("Parse = %v, want one problem", err)
			}
			if p := ve.Problems[0]; p.Line != tc.wantLine || p.Field != tc.wantField || !strings.Contains(p.Message, tc.wantMsg) {
				t.Errorf("Parse = %q, want line %d %s: ...%s...", p, tc.wantLine, tc.wantField, tc.wantMsg)
			}
		})
	}

	t.Run("expired certificate warns", func(t *testing.T) {
		c, err := Parse(file, fmt.Appendf(nil, tmpl, "idp.xml", "sp.key", "expired.crt"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "realmgate.yaml:9: tenants[0].providers[0].sp_cert_file: certificate expired") {
			t.Errorf("Warnings() = %q, want the expired certificate at line 9", w)
		}
	})
}

func TestParse_SAMLOptionsFromYAML(t *testing.T) {
	data := `issuer: https://login.example.com
tenants:
  - id: acme
    providers:
      - id: acme-adfs
        type: saml
        metadata: <EntityDescriptor/>
        binding: post
        name_id_format: email
        subject_attribute: http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn
        clock_skew: 90s
        idp_initiated: true
        relay_state_allowlist: ["https://notes.example.com/login"]
`
	c, err := Parse("f.yaml", []byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, p := c.Provider("acme-adfs")
	if p.Binding != BindingPOST || p.ClockSkew.Duration() != 90*time.Second || !p.IdPInitiated ||
		len(p.RelayStateAllowlist) != 1 || p.SubjectAttribute == "" {
		t.Errorf("provider = %+v, want every option read", p)
	}
	if urn, ok := saml.NameIDFormat(p); !ok || urn != "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" {
		t.Errorf("SAMLNameIDFormat() = %q, %v, want the email URN", urn, ok)
	}
	// An explicit zero skew is reported, not replaced by the default.
	_, err = Parse("f.yaml", []byte(strings.Replace(data, "90s", "0s", 1)), nil)
	if err == nil || !strings.Contains(err.Error(), "f.yaml:11: tenants[0].providers[0].clock_skew: must be greater than 0") {
		t.Errorf("Parse(clock_skew: 0s) = %v, want a problem at line 11", err)
	}
}
