package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Values of Provider.Accounts (microsoft).
const (
	// AccountsAny takes work or school accounts and personal Microsoft
	// accounts through the common endpoint (the default).
	AccountsAny = "any"
	// AccountsWork takes work or school accounts only (the organizations endpoint).
	AccountsWork = "work"
	// AccountsPersonal takes personal Microsoft accounts only.
	AccountsPersonal = "personal"
)

// MicrosoftConsumerTenant is the Entra tenant id (tid) of every personal
// Microsoft account.
const MicrosoftConsumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// TenantPlaceholder marks a multi-tenant issuer template
// (https://login.microsoftonline.com/{tenantid}/v2.0).
const TenantPlaceholder = "{tenantid}"

// Values of Provider.Binding (saml).
const (
	// BindingRedirect sends the AuthnRequest with the HTTP-Redirect binding.
	BindingRedirect = "redirect"
	// BindingPOST sends the AuthnRequest with the HTTP-POST binding.
	BindingPOST = "post"
)

// MaxClockSkew bounds Provider.ClockSkew.
const MaxClockSkew = Duration(3 * time.Minute)

// maxMetadataFile bounds a SAML metadata file (AD FS publishes ~60 KiB).
const maxMetadataFile = 2 << 20

// nameIDFormats maps the short NameID format names to their URNs (SAML Core §8.3).
var nameIDFormats = map[string]string{
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"email":       "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}

// SAMLNameIDFormat returns the URN of NameIDFormat ("" when unset), and
// whether the value is a supported format.
func (p *Provider) SAMLNameIDFormat() (string, bool) {
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

// IdPMetadataXML returns the SAML IdP metadata given inline (Metadata) or in
// MetadataFile; nil when it comes from MetadataURL.
func (p *Provider) IdPMetadataXML() ([]byte, error) {
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

// SPKeyPair reads the SAML SP key and certificate, inline (SPKey, SPCert)
// or from SPKeyFile and SPCertFile: PEM, an RSA key (AD FS and Entra sign
// and encrypt with RSA) and the certificate of that key. It returns nil,
// nil, nil when none is set.
func (p *Provider) SPKeyPair() (*rsa.PrivateKey, *x509.Certificate, error) {
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

// HasSPKey reports whether the provider has an SP key, inline or in a file.
func (p *Provider) HasSPKey() bool {
	return p.SPKey != "" || p.SPCert != "" || p.SPKeyFile != "" || p.SPCertFile != ""
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

// multiTenant reports whether the provider signs in users of many Entra
// tenants: microsoft without a pinned issuer, or an issuer with {tenantid}.
func (p *Provider) multiTenant() bool {
	return strings.Contains(p.Issuer, TenantPlaceholder) || (p.Type == ProviderMicrosoft && p.Issuer == "")
}

// resolvePaths makes the provider file paths relative to dir.
func (c *Config) resolvePaths(dir string) {
	if dir == "" || dir == "." {
		return
	}
	for i := range c.Tenants {
		for j := range c.Tenants[i].Providers {
			p := &c.Tenants[i].Providers[j]
			for _, f := range []*string{&p.MetadataFile, &p.SPKeyFile, &p.SPCertFile} {
				if *f != "" && !filepath.IsAbs(*f) {
					*f = filepath.Join(dir, *f)
				}
			}
		}
	}
}
