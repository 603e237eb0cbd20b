// Package saml registers the "saml" IdP type: any SAML 2.0 identity
// provider (AD FS, Entra, Okta, Shibboleth...), realmgate being its
// service provider at <issuer>/saml/<id>/.
package saml

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/saml"
)

// Name is the type's name in providers[].type.
const Name = "saml"

// Values of Provider.Binding.
const (
	// BindingRedirect sends the AuthnRequest with the HTTP-Redirect binding.
	BindingRedirect = "redirect"
	// BindingPOST sends the AuthnRequest with the HTTP-POST binding.
	BindingPOST = "post"
)

// MaxClockSkew bounds Provider.ClockSkew.
const MaxClockSkew = config.Duration(conn.MaxClockSkew)

// maxMetadataFile bounds a SAML metadata file (AD FS publishes ~60 KiB).
const maxMetadataFile = 2 << 20

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name,
			Fields: []string{"metadata_url", "metadata", "metadata_file", "entity_id", "idp_initiated", "relay_state_allowlist",
				"sp_key_file", "sp_cert_file", "sp_key", "sp_cert", "sign_requests", "binding", "name_id_format", "subject_attribute", "clock_skew"},
			Check: check, Warn: warn},
		New:        connector,
		Onboarding: onboarding,
	})
}

// nameIDFormats maps the short NameID format names to their URNs (SAML Core §8.3).
var nameIDFormats = map[string]string{
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"email":       "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}

// NameIDFormat returns the URN of p's name_id_format ("" when unset), and
// whether the value is a supported format.
func NameIDFormat(p *config.Provider) (string, bool) {
	if p.NameIDFormat == "" {
		return "", true
	}
	if urn, ok := nameIDFormats[p.NameIDFormat]; ok {
		return urn, true
	}
	for _, urn := range nameIDFormats {
		if p.NameIDFormat == urn {
			return urn, true
		}
	}
	return "", false
}

// MetadataXML returns the IdP metadata given inline (metadata) or in
// metadata_file; nil when it comes from metadata_url.
func MetadataXML(p *config.Provider) ([]byte, error) {
	if p.Metadata != "" {
		return []byte(p.Metadata), nil
	}
	if p.MetadataFile == "" {
		return nil, nil
	}
	b, err := readBounded(p.MetadataFile, maxMetadataFile)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) {
		return nil, fmt.Errorf("%s is not XML metadata", p.MetadataFile)
	}
	return b, nil
}

// SPKeyPair reads the SP key and certificate, inline (sp_key, sp_cert) or
// from sp_key_file and sp_cert_file: PEM, an RSA key (AD FS and Entra sign
// and encrypt with RSA) and the certificate of that key. It returns nil,
// nil, nil when none is set.
func SPKeyPair(p *config.Provider) (*rsa.PrivateKey, *x509.Certificate, error) {
	inline := p.SPKey != "" || p.SPCert != ""
	files := p.SPKeyFile != "" || p.SPCertFile != ""
	var keyPEM, certPEM []byte
	keyName, certName := "sp_key", "sp_cert"
	switch {
	case !inline && !files:
		return nil, nil, nil
	case inline && files:
		return nil, nil, errors.New("give sp_key and sp_cert, or sp_key_file and sp_cert_file, not both")
	case inline:
		if p.SPKey == "" || p.SPCert == "" {
			return nil, nil, errors.New("sp_key and sp_cert go together")
		}
		keyPEM, certPEM = []byte(p.SPKey), []byte(p.SPCert)
	default:
		if p.SPKeyFile == "" || p.SPCertFile == "" {
			return nil, nil, errors.New("sp_key_file and sp_cert_file go together")
		}
		var err error
		if keyPEM, err = readBounded(p.SPKeyFile, 64<<10); err != nil {
			return nil, nil, err
		}
		if certPEM, err = readBounded(p.SPCertFile, 64<<10); err != nil {
			return nil, nil, err
		}
		keyName, certName = p.SPKeyFile, p.SPCertFile
	}
	// tls.X509KeyPair parses PKCS #1, PKCS #8 and SEC 1 keys and checks that
	// the certificate's public key is the key's. Its errors never quote the key.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s and %s: %w", keyName, certName, err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: want an RSA key (SAML IdPs sign and encrypt with RSA), got %T", keyName, pair.PrivateKey)
	}
	if key.N.BitLen() < 2048 {
		return nil, nil, fmt.Errorf("%s: RSA key of %d bits, want at least 2048", keyName, key.N.BitLen())
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certName, err)
	}
	return key, cert, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// check checks the SAML settings of a provider.
func check(c *config.ProviderCheck) {
	p := c.P
	given := 0
	for _, v := range []string{p.MetadataURL, p.Metadata, p.MetadataFile} {
		if v != "" {
			given++
		}
	}
	switch {
	case given == 0:
		c.Problem("metadata_url", "type saml needs metadata_url or metadata (inline XML) or metadata_file")
	case given > 1:
		f := "metadata"
		if p.MetadataFile != "" {
			f = "metadata_file"
		}
		c.Problem(f, "give one of metadata_url, metadata and metadata_file, not both")
	case p.Metadata != "" && !strings.HasPrefix(strings.TrimSpace(p.Metadata), "<"):
		c.Problem("metadata", "must be the IdP's metadata XML")
	case p.MetadataFile != "":
		if _, err := MetadataXML(p); err != nil {
			c.Problem("metadata_file", "%v", err)
		}
	}
	inline := p.SPKey != "" || p.SPCert != ""
	switch {
	case inline && (p.SPKeyFile != "" || p.SPCertFile != ""):
		c.Problem("sp_key", "give sp_key and sp_cert, or sp_key_file and sp_cert_file, not both")
	case p.SPKey == "" && p.SPCert != "":
		c.Problem("sp_key", "is required with sp_cert")
	case p.SPKey != "" && p.SPCert == "":
		c.Problem("sp_cert", "is required with sp_key")
	case p.SPKeyFile == "" && p.SPCertFile != "":
		c.Problem("sp_key_file", "is required with sp_cert_file")
	case p.SPKeyFile != "" && p.SPCertFile == "":
		c.Problem("sp_cert_file", "is required with sp_key_file")
	case inline || p.SPKeyFile != "":
		if _, _, err := SPKeyPair(p); err != nil {
			f := "sp_key_file"
			if inline {
				f = "sp_key"
			}
			c.Problem(f, "%v", err)
		}
	case p.SignRequests:
		c.Problem("sign_requests", "needs sp_key_file and sp_cert_file (or sp_key and sp_cert) to sign with")
	}
	switch p.Binding {
	case "", BindingRedirect, BindingPOST:
	default:
		c.Problem("binding", "unknown binding %q: want redirect or post", p.Binding)
	}
	if _, ok := NameIDFormat(p); !ok {
		c.Problem("name_id_format", "unsupported NameID format %q: want persistent, email or unspecified", p.NameIDFormat)
	}
	if p.SubjectAttribute != "" && strings.TrimSpace(p.SubjectAttribute) != p.SubjectAttribute {
		c.Problem("subject_attribute", "must not start or end with spaces")
	}
	if c.Explicit("clock_skew") || p.ClockSkew != 0 {
		if p.ClockSkew <= 0 || p.ClockSkew > MaxClockSkew {
			c.Problem("clock_skew", "must be greater than 0 and at most %s, got %s", MaxClockSkew, p.ClockSkew)
		}
	}
	if p.IdPInitiated && len(p.RelayStateAllowlist) == 0 {
		c.Problem("relay_state_allowlist", "is required with idp_initiated: list the URLs an IdP-initiated sign-in may go to (SECURITY S44)")
	}
	for i, u := range p.RelayStateAllowlist {
		f := fmt.Sprintf("relay_state_allowlist[%d]", i)
		if msg := config.CheckRedirectURI(u); msg != "" {
			c.Problem(f, "%s", msg)
		} else if pu, _ := url.Parse(u); pu.Scheme != "https" && pu.Scheme != "http" {
			c.Problem(f, "%q must be an https URL", u)
		}
	}
}

// warn advises on IdP-initiated sign-in and an expired SP certificate.
func warn(c *config.ProviderCheck) {
	p := c.P
	if p.IdPInitiated {
		c.Problem("idp_initiated", "IdP-initiated SAML is weaker against login CSRF; enable it only if the tenant needs it")
	}
	if len(p.RelayStateAllowlist) > 0 && !p.IdPInitiated {
		c.Problem("relay_state_allowlist", "has no effect without idp_initiated: true")
	}
	if p.SPCertFile != "" || p.SPCert != "" {
		f := "sp_cert_file"
		if p.SPCert != "" {
			f = "sp_cert"
		}
		if _, cert, err := SPKeyPair(p); err == nil && time.Now().After(cert.NotAfter) {
			c.Problem(f, "certificate expired on %s: IdPs that check it will refuse signed requests", cert.NotAfter.Format(time.DateOnly))
		}
	}
}

// bindings maps the configuration's binding names to the connector's.
var bindings = map[string]string{"": "", BindingRedirect: conn.BindingRedirect, BindingPOST: conn.BindingPOST}

// spBase is the base of the SP's stable URLs for provider id, which the
// tenant admin registers: <issuer>/saml/<id>.
func spBase(issuer, id string) string {
	return strings.TrimSuffix(issuer, "/") + "/saml/" + url.PathEscape(id)
}

// connector builds a SAML SP for one IdP. Its URLs are <base>/metadata
// (also the SP entityID), <base>/acs and <base>/post.
func connector(p *config.Provider, env idp.Env) (providers.Connector, error) {
	base := spBase(env.Issuer, p.ID)
	binding, ok := bindings[p.Binding]
	if !ok {
		return nil, fmt.Errorf("provider %q: unknown binding %q", p.ID, p.Binding)
	}
	nameID, ok := NameIDFormat(p)
	if !ok {
		return nil, fmt.Errorf("provider %q: unsupported name_id_format %q", p.ID, p.NameIDFormat)
	}
	cfg := conn.Config{ID: p.ID, HTTPClient: env.HTTP, EntityID: base + "/metadata", ACSURL: base + "/acs", MetadataURL: base + "/metadata",
		PostURL: base + "/post", IdPMetadataURL: p.MetadataURL, IdPEntityID: p.EntityID, IdPInitiated: p.IdPInitiated,
		RelayStateAllowList: p.RelayStateAllowlist, Binding: binding, NameIDFormat: nameID,
		SubjectAttribute: p.SubjectAttribute, ClockSkew: p.ClockSkew.Duration(), SignRequests: p.SignRequests,
		Logger: env.Logger}
	md, err := MetadataXML(p)
	if err != nil {
		return nil, fmt.Errorf("provider %q: metadata: %w", p.ID, err)
	}
	cfg.IdPMetadata = md
	key, cert, err := SPKeyPair(p)
	if err != nil {
		return nil, fmt.Errorf("provider %q: sp key: %w", p.ID, err)
	}
	if key != nil { // a nil *rsa.PrivateKey must not become a non-nil crypto.Signer
		cfg.Key, cfg.Certificate = key, cert
	}
	return conn.New(cfg)
}

// onboarding is what an AD FS or Entra admin registers: the SP's
// entityID, ACS and metadata URL (DESIGN: stable per IdP id).
func onboarding(issuer string, p *config.Provider) idp.Onboarding {
	sp := spBase(issuer, p.ID)
	o := idp.Onboarding{Provider: p.ID, Type: p.Type, EntityID: sp + "/metadata", MetadataURL: sp + "/metadata",
		ACSURL: sp + "/acs", ACSBinding: "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", NameIDFormat: p.NameIDFormat}
	o.Steps = []string{
		"AD FS: Add Relying Party Trust > Import data about the relying party published online: " + o.MetadataURL +
			" (or enter the identifier " + o.EntityID + " and the SAML 2.0 WebSSO endpoint " + o.ACSURL + ").",
		"Entra ID: Enterprise applications > New application > Single sign-on > SAML: Identifier (Entity ID) " +
			o.EntityID + ", Reply URL (Assertion Consumer Service URL) " + o.ACSURL + ".",
		"Send the email (or UPN) and the group claims your rules map; then give realmgate your federation metadata URL as metadata_url.",
	}
	return o
}
