package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

// selfSigned returns a self-signed certificate for key, as PEM and as base64 DER.
func samlCert(t *testing.T, key any, pub any) (pemText, b64 string) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), base64.StdEncoding.EncodeToString(der)
}

// samlConfig is validConfig with one SAML app.
func samlConfig(rsaPEM string) *Config {
	c := validConfig()
	c.Clients = append(c.Clients, Client{ID: "wiki", AllowedTenants: []string{"acme"}, SAML: &SAMLApp{
		EntityID:    "https://wiki.example.com/saml",
		ACS:         []SAMLEndpoint{{URL: "https://wiki.example.com/saml/acs"}},
		SLO:         &SAMLLogoutEndpoint{URL: "https://wiki.example.com/saml/slo"},
		SigningCert: rsaPEM, RequireSignedRequests: true,
		Attributes: []SAMLAttribute{{Name: "tid", Claim: "tid"},
			{Name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", Claim: "roles"}},
	}})
	return c
}

func TestValidate_SAMLApp(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPEM, rsaB64 := samlCert(t, rk, &rk.PublicKey)
	ecPEM, _ := samlCert(t, ek, &ek.PublicKey)
	one, two := 1, 1
	tests := []struct {
		name      string
		mutate    func(a *SAMLApp, cl *Client)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"valid", func(a *SAMLApp, cl *Client) {}, "", ""},
		{"base64 DER cert", func(a *SAMLApp, cl *Client) { a.SigningCert = rsaB64 }, "", ""},
		{"ACS with query on loopback", func(a *SAMLApp, cl *Client) { a.ACS[0].URL = "http://127.0.0.1:8000/?acs" }, "", ""},
		{"encryption cert", func(a *SAMLApp, cl *Client) { a.EncryptionCert = rsaPEM }, "", ""},
		{"all options", func(a *SAMLApp, cl *Client) {
			a.NameIDFormat, a.NameIDClaim, a.Sign = "email", "email", "both"
			a.AssertionLifetime, a.IdPInitiated, a.DefaultRelayState = Duration(time.Minute), true, "/home"
			a.ACS = append(a.ACS, SAMLEndpoint{URL: "https://wiki.example.com/acs2", Index: &one, Default: true})
		}, "", ""},
		{"NameID format URN", func(a *SAMLApp, cl *Client) { a.NameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient" }, "", ""},
		{"entity id missing", func(a *SAMLApp, cl *Client) { a.EntityID = "" }, "clients[1].saml.entity_id", "is required"},
		{"no ACS", func(a *SAMLApp, cl *Client) { a.ACS = nil }, "clients[1].saml.acs", "at least one"},
		{"ACS http remote", func(a *SAMLApp, cl *Client) { a.ACS[0].URL = "http://wiki.example.com/acs" }, "clients[1].saml.acs[0].url", "must use https"},
		{"ACS relative", func(a *SAMLApp, cl *Client) { a.ACS[0].URL = "/acs" }, "clients[1].saml.acs[0].url", "absolute"},
		{"ACS fragment", func(a *SAMLApp, cl *Client) { a.ACS[0].URL = "https://wiki.example.com/acs#x" }, "clients[1].saml.acs[0].url", "fragment"},
		{"ACS wildcard", func(a *SAMLApp, cl *Client) { a.ACS[0].URL = "https://*.example.com/acs" }, "clients[1].saml.acs[0].url", "wildcards"},
		{"ACS redirect binding", func(a *SAMLApp, cl *Client) { a.ACS[0].Binding = "redirect" }, "clients[1].saml.acs[0].binding", "HTTP-POST only"},
		{"ACS unknown binding", func(a *SAMLApp, cl *Client) { a.ACS[0].Binding = "artifact" }, "clients[1].saml.acs[0].binding", "unknown binding"},
		{"ACS duplicate index", func(a *SAMLApp, cl *Client) {
			a.ACS = append(a.ACS, SAMLEndpoint{URL: "https://wiki.example.com/a2", Index: &one}, SAMLEndpoint{URL: "https://wiki.example.com/a3", Index: &two})
		}, "clients[1].saml.acs[2].index", "already used by acs[1]"},
		{"two defaults", func(a *SAMLApp, cl *Client) {
			a.ACS[0].Default = true
			a.ACS = append(a.ACS, SAMLEndpoint{URL: "https://wiki.example.com/a2", Default: true})
		}, "clients[1].saml.acs", "at most one"},
		{"SLO bad binding", func(a *SAMLApp, cl *Client) { a.SLO.Binding = "soap" }, "clients[1].saml.slo.binding", "unknown binding"},
		{"SLO http remote", func(a *SAMLApp, cl *Client) { a.SLO.URL = "http://wiki.example.com/slo" }, "clients[1].saml.slo.url", "must use https"},
		{"SLO SOAP https", func(a *SAMLApp, cl *Client) { a.SLO.SOAPURL = "https://wiki.example.com/slo/soap" }, "", ""},
		{"SLO SOAP http remote", func(a *SAMLApp, cl *Client) { a.SLO.SOAPURL = "http://wiki.example.com/slo/soap" }, "clients[1].saml.slo.soap_url", "must use https"},
		{"signing cert garbage", func(a *SAMLApp, cl *Client) { a.SigningCert = "not a cert!" }, "clients[1].saml.signing_cert", "certificate"},
		{"signing cert private key", func(a *SAMLApp, cl *Client) {
			a.SigningCert = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}, "clients[1].saml.signing_cert", "not a CERTIFICATE"},
		{"signed requests without cert", func(a *SAMLApp, cl *Client) { a.SigningCert = "" }, "clients[1].saml.require_signed_requests", "needs signing_cert"},
		{"encryption cert EC", func(a *SAMLApp, cl *Client) { a.EncryptionCert = ecPEM }, "clients[1].saml.encryption_cert", "RSA"},
		{"unknown NameID format", func(a *SAMLApp, cl *Client) { a.NameIDFormat = "kerberos" }, "clients[1].saml.name_id_format", "unknown NameID format"},
		{"bad NameID claim", func(a *SAMLApp, cl *Client) { a.NameIDClaim = "a b" }, "clients[1].saml.name_id_claim", "not a claim name"},
		{"attribute without claim", func(a *SAMLApp, cl *Client) { a.Attributes[0].Claim = "" }, "clients[1].saml.attributes[0].claim", "not a claim name"},
		{"attribute duplicate", func(a *SAMLApp, cl *Client) { a.Attributes[1].Name = "tid" }, "clients[1].saml.attributes[1].name", "already sent"},
		{"attribute name format", func(a *SAMLApp, cl *Client) { a.Attributes[0].NameFormat = "x500" }, "clients[1].saml.attributes[0].name_format", "unknown name format"},
		{"sign unknown", func(a *SAMLApp, cl *Client) { a.Sign = "none" }, "clients[1].saml.sign", "want assertion, response or both"},
		{"lifetime too long", func(a *SAMLApp, cl *Client) { a.AssertionLifetime = Duration(2 * time.Hour) }, "clients[1].saml.assertion_lifetime", "out of range"},
		{"relay state too long", func(a *SAMLApp, cl *Client) { a.DefaultRelayState = strings.Repeat("x", 81) }, "clients[1].saml.default_relay_state", "80 bytes"},
		{"OIDC setting on a SAML app", func(a *SAMLApp, cl *Client) { cl.RedirectURIs = []string{"https://wiki.example.com/cb"} }, "clients[1].redirect_uris", "a SAML app"},
		{"secret on a SAML app", func(a *SAMLApp, cl *Client) { cl.Secret = "0123456789abcdef0123456789abcdef" }, "clients[1].secret", "a SAML app"},
		{"unknown tenant", func(a *SAMLApp, cl *Client) { cl.AllowedTenants = []string{"nope"} }, "clients[1].allowed_tenants[0]", "unknown tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := samlConfig(rsaPEM)
			cl := &c.Clients[1]
			tc.mutate(cl.SAML, cl)
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a ValidationError on %s", err, tc.wantField)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.wantField && strings.Contains(p.Message, tc.wantMsg) {
					return
				}
			}
			t.Errorf("Validate() = %v, want %s: ...%s...", err, tc.wantField, tc.wantMsg)
		})
	}
}

// TestValidate_SAMLEntityIDUnique: two SAML apps cannot share an entity ID
// (an AuthnRequest's Issuer picks the app).
func TestValidate_SAMLEntityIDUnique(t *testing.T) {
	c := samlConfig("")
	c.Clients[1].SAML.RequireSignedRequests = false
	dup := c.Clients[1]
	dup.ID = "wiki2"
	c.Clients = append(c.Clients, dup)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "clients[2].saml.entity_id: entity ID \"https://wiki.example.com/saml\" is already used by clients[1].saml") {
		t.Errorf("Validate() = %v, want the duplicate entity ID named", err)
	}
}

// TestParse_SAMLApp: the file form of a SAML app, with its defaults.
func TestParse_SAMLApp(t *testing.T) {
	const file = `
issuer: https://login.example.com
clients:
  - id: wiki
    allowed_tenants: ["*"]
    saml:
      entity_id: https://wiki.example.com/saml
      acs:
        - url: https://wiki.example.com/saml/acs
        - url: https://wiki.example.com/saml/acs2
          index: 5
          default: true
      attributes:
        - {name: tid, claim: tid}
        - {name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.7", friendly_name: eduPersonEntitlement, claim: roles}
tenants:
  - id: acme
    providers:
      - {id: acme-oidc, type: oidc, issuer: https://idp.acme.com, client_id: rg, client_secret: s}
`
	c, err := Parse("t.yaml", []byte(file), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse() error:\n%v", err)
	}
	a := c.Client("wiki").SAML
	if got := a.DefaultACS(); got != 1 {
		t.Errorf("DefaultACS() = %d, want 1", got)
	}
	if got := a.IndexAt(0); got != 0 {
		t.Errorf("IndexAt(0) = %d, want 0", got)
	}
	if got := a.IndexAt(1); got != 5 {
		t.Errorf("IndexAt(1) = %d, want 5", got)
	}
	if got, want := a.NameIDFormatURN(), "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"; got != want {
		t.Errorf("NameIDFormatURN() = %q, want %q", got, want)
	}
	if got := a.NameIDSource(); got != "sub" {
		t.Errorf("NameIDSource() = %q, want sub", got)
	}
	if got := a.SignMode(); got != SAMLSignAssertion {
		t.Errorf("SignMode() = %q, want assertion", got)
	}
	if got, want := a.Attributes[0].NameFormatURN(), SAMLAttrNameFormats["basic"]; got != want {
		t.Errorf("NameFormatURN(tid) = %q, want %q", got, want)
	}
	if got, want := a.Attributes[1].NameFormatURN(), SAMLAttrNameFormats["uri"]; got != want {
		t.Errorf("NameFormatURN(urn:oid) = %q, want %q", got, want)
	}
}
