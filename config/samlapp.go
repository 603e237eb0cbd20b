package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SAML bindings, as clients[].saml names them.
const (
	// SAMLBindingPost is HTTP-POST (SAML Bindings §3.5).
	SAMLBindingPost = "post"
	// SAMLBindingRedirect is HTTP-Redirect (SAML Bindings §3.4).
	SAMLBindingRedirect = "redirect"
)

// How a SAML app's responses are signed (SAMLApp.Sign).
const (
	// SAMLSignAssertion signs the Assertion only (the default).
	SAMLSignAssertion = "assertion"
	// SAMLSignResponse signs the Response only.
	SAMLSignResponse = "response"
	// SAMLSignBoth signs the Assertion and the Response around it.
	SAMLSignBoth = "both"
)

// NameID formats (SAML Core §8.3), by the short names clients[].saml.name_id_format takes.
var SAMLNameIDFormats = map[string]string{
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"email":       "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
	"transient":   "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
}

// Attribute name formats (SAML Core §8.2), by the short names
// clients[].saml.attributes[].name_format takes.
var SAMLAttrNameFormats = map[string]string{
	"uri":         "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
	"basic":       "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
	"unspecified": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
}

// Defaults of a SAML app.
const (
	// DefaultSAMLAssertionLifetime is how long an issued assertion is valid.
	DefaultSAMLAssertionLifetime = Duration(5 * time.Minute)
	// MaxSAMLAssertionLifetime bounds saml.assertion_lifetime.
	MaxSAMLAssertionLifetime = Duration(time.Hour)
	// maxSAMLEndpoints bounds saml.acs.
	maxSAMLEndpoints = 32
	// maxSAMLAttributes bounds saml.attributes.
	maxSAMLAttributes = 64
)

// SAMLApp registers a client as a SAML 2.0 service provider: realmgate is
// its identity provider (docs/saml-idp.md). A client with saml set is a
// SAML app and not an OIDC client: it has no secret, redirect_uris,
// post_logout_redirect_uris, backchannel_logout_uri, exchange_audiences or
// claims, but allowed_tenants and allowed_idps narrow it exactly as they
// narrow an OIDC client, and its id names it in the audit and in its
// app-launch URL <issuer>/saml-idp/launch/<id>.
type SAMLApp struct {
	// EntityID is the service provider's entityID: the Issuer of its
	// AuthnRequests and LogoutRequests and the Audience of every assertion
	// issued to it. Unique among SAML apps.
	EntityID string `yaml:"entity_id" json:"entity_id"`
	// ACS are the service provider's AssertionConsumerService endpoints.
	// An AuthnRequest's AssertionConsumerServiceURL must equal one of them
	// byte for byte (SAML Core §3.4.1, SECURITY S01), or its
	// AssertionConsumerServiceIndex name one; a request naming neither
	// gets the default endpoint. At least one.
	ACS []SAMLEndpoint `yaml:"acs" json:"acs"`
	// SLO is the service provider's SingleLogoutService endpoint, where
	// realmgate sends LogoutRequests when the user's realmgate session ends
	// and LogoutResponses to its own LogoutRequests. Unset: the app takes
	// part in no single logout.
	SLO *SAMLLogoutEndpoint `yaml:"slo,omitempty" json:"slo,omitempty"`
	// SigningCert is the service provider's signing certificate: PEM (one
	// or more CERTIFICATE blocks, all trusted, for a rollover) or the
	// base64 DER of one certificate as SAML metadata carries it. Signed
	// AuthnRequests and LogoutRequests are verified against it
	// (RSA-SHA256 or stronger; SHA-1 is refused).
	SigningCert string `yaml:"signing_cert,omitempty" json:"signing_cert,omitempty"`
	// RequireSignedRequests refuses AuthnRequests and LogoutRequests that
	// are not signed by SigningCert (an XML signature with HTTP-POST, the
	// query signature with HTTP-Redirect). Needs signing_cert. Without it a
	// signature, when present, is still verified.
	RequireSignedRequests bool `yaml:"require_signed_requests,omitempty" json:"require_signed_requests,omitempty"`
	// EncryptionCert, when set, encrypts every assertion to the service
	// provider with this certificate's RSA key (PEM or base64 DER; RSA-OAEP
	// key transport, AES-128-CBC content: what SPs commonly decrypt).
	EncryptionCert string `yaml:"encryption_cert,omitempty" json:"encryption_cert,omitempty"`
	// NameIDFormat is the format of the assertion's NameID: "persistent"
	// (default), "email", "unspecified" or "transient", or that format's
	// full URN. An AuthnRequest's NameIDPolicy asking for another format is
	// refused with InvalidNameIDPolicy.
	NameIDFormat string `yaml:"name_id_format,omitempty" json:"name_id_format,omitempty"`
	// NameIDClaim names the claim whose value is the NameID: default "sub"
	// (the stable, opaque subject OIDC apps also see), or "email" when
	// name_id_format is email. A sign-in whose claims lack it is refused.
	// Ignored for transient NameIDs, which are random for each assertion.
	NameIDClaim string `yaml:"name_id_claim,omitempty" json:"name_id_claim,omitempty"`
	// Attributes are the assertion's AttributeStatement, each attribute
	// from one of realmgate's claims after the tenant's rules (tid, roles,
	// email, name, sub, idp, amr, acr, or a claim rules add). These are
	// the claims released to the app (SECURITY S75); a claim the user does
	// not have is left out. Empty: no attributes.
	Attributes []SAMLAttribute `yaml:"attributes,omitempty" json:"attributes,omitempty"`
	// Sign says what realmgate signs: "assertion" (default), "response" or
	// "both". Always RSA-SHA256 with the IdP signing key published in
	// <issuer>/saml-idp/metadata.
	Sign string `yaml:"sign,omitempty" json:"sign,omitempty"`
	// AssertionLifetime is how long an assertion may be presented
	// (NotOnOrAfter). Default 5m, at most 1h.
	AssertionLifetime Duration `yaml:"assertion_lifetime,omitempty" json:"assertion_lifetime,omitempty"`
	// IdPInitiated lets users start at <issuer>/saml-idp/launch/<client
	// id>: realmgate signs them in and posts an unsolicited Response to the
	// default ACS. Off by default: many SPs refuse unsolicited responses.
	IdPInitiated bool `yaml:"idp_initiated,omitempty" json:"idp_initiated,omitempty"`
	// DefaultRelayState is the RelayState sent with IdP-initiated responses
	// (where the SP takes the user afterwards, such as its home page).
	DefaultRelayState string `yaml:"default_relay_state,omitempty" json:"default_relay_state,omitempty"`
}

// SAMLEndpoint is one AssertionConsumerService of a SAML app.
type SAMLEndpoint struct {
	// URL is the endpoint's Location: https (http only on a loopback
	// host), no fragment; a query is kept as it is.
	URL string `yaml:"url" json:"url"`
	// Binding is how the Response is delivered: "post" (HTTP-POST, the
	// default and the only binding realmgate sends Responses with).
	Binding string `yaml:"binding,omitempty" json:"binding,omitempty"`
	// Index is the endpoint's index, which an AuthnRequest may name
	// (AssertionConsumerServiceIndex). Default: its position in the list,
	// from 0. Unique within the app.
	Index *int `yaml:"index,omitempty" json:"index,omitempty"`
	// Default marks the endpoint used when a request names none, and for
	// IdP-initiated sign-ins. At most one; default: the first.
	Default bool `yaml:"default,omitempty" json:"default,omitempty"`
}

// SAMLLogoutEndpoint is the SingleLogoutService of a SAML app.
type SAMLLogoutEndpoint struct {
	// URL is where LogoutRequests are sent: https (http only on a loopback
	// host), no fragment.
	URL string `yaml:"url" json:"url"`
	// ResponseURL is where LogoutResponses are sent, when the SP names a
	// different place (ResponseLocation). Default: URL.
	ResponseURL string `yaml:"response_url,omitempty" json:"response_url,omitempty"`
	// Binding is "redirect" (HTTP-Redirect, the default) or "post" (HTTP-POST).
	Binding string `yaml:"binding,omitempty" json:"binding,omitempty"`
	// SOAPURL is the service provider's SingleLogoutService with the SOAP
	// binding (SAML Bindings §3.2), if it has one: https (http only on a
	// loopback host). When the realmgate session ends without the user's
	// browser (an upstream IdP's back-channel logout or its SAML
	// IdP-initiated logout), realmgate POSTs a signed LogoutRequest there,
	// server to server, through the outbound HTTP client (outbound.*), and
	// checks the LogoutResponse. Unset: the app hears of such a logout only
	// at its next request (front-channel logout needs the browser).
	SOAPURL string `yaml:"soap_url,omitempty" json:"soap_url,omitempty"`
}

// SAMLAttribute is one attribute of a SAML app's assertions.
type SAMLAttribute struct {
	// Name is the attribute's Name, such as
	// http://schemas.microsoft.com/ws/2008/06/identity/claims/role or
	// "roles". Unique within the app.
	Name string `yaml:"name" json:"name"`
	// NameFormat is "uri", "basic" or "unspecified", or the format's full
	// URN. Default: "uri" when Name is a URI (has a ':'), otherwise "basic".
	NameFormat string `yaml:"name_format,omitempty" json:"name_format,omitempty"`
	// FriendlyName is the optional human-readable name (FriendlyName).
	FriendlyName string `yaml:"friendly_name,omitempty" json:"friendly_name,omitempty"`
	// Claim is the claim the value comes from: a list claim (roles, amr)
	// gives the attribute one AttributeValue per element.
	Claim string `yaml:"claim" json:"claim"`
}

// NameIDFormatURN returns the app's NameID format as a URN (the default
// persistent when unset); "" when it is neither a known short name nor a URN.
func (a *SAMLApp) NameIDFormatURN() string {
	f := a.NameIDFormat
	if f == "" {
		f = "persistent"
	}
	if u, ok := SAMLNameIDFormats[f]; ok {
		return u
	}
	for _, u := range SAMLNameIDFormats {
		if u == f {
			return u
		}
	}
	return ""
}

// NameIDSource returns the claim that feeds the NameID: NameIDClaim, or its default.
func (a *SAMLApp) NameIDSource() string {
	if a.NameIDClaim != "" {
		return a.NameIDClaim
	}
	if a.NameIDFormatURN() == SAMLNameIDFormats["email"] {
		return "email"
	}
	return "sub"
}

// NameFormatURN returns the attribute's name format as a URN, applying the
// default; "" when it is neither a known short name nor a URN.
func (at *SAMLAttribute) NameFormatURN() string {
	f := at.NameFormat
	if f == "" {
		if strings.Contains(at.Name, ":") {
			f = "uri"
		} else {
			f = "basic"
		}
	}
	if u, ok := SAMLAttrNameFormats[f]; ok {
		return u
	}
	if strings.HasPrefix(f, "urn:") {
		return f
	}
	return ""
}

// IndexAt returns the index of the i-th ACS endpoint: its Index, or i.
func (a *SAMLApp) IndexAt(i int) int {
	if p := a.ACS[i].Index; p != nil {
		return *p
	}
	return i
}

// DefaultACS returns the position of the default ACS endpoint: the one
// marked default, or the first.
func (a *SAMLApp) DefaultACS() int {
	for i, e := range a.ACS {
		if e.Default {
			return i
		}
	}
	return 0
}

// SignMode returns Sign with its default.
func (a *SAMLApp) SignMode() string {
	if a.Sign == "" {
		return SAMLSignAssertion
	}
	return a.Sign
}

// Lifetime returns AssertionLifetime with its default.
func (a *SAMLApp) Lifetime() time.Duration {
	if a.AssertionLifetime == 0 {
		return DefaultSAMLAssertionLifetime.Duration()
	}
	return a.AssertionLifetime.Duration()
}

// ParseCertificates reads certificates as clients[].saml takes them: PEM
// (one or more CERTIFICATE blocks) or the base64 DER of one certificate.
func ParseCertificates(s string) ([]*x509.Certificate, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("config: no certificate")
	}
	if !strings.HasPrefix(s, "-----") {
		der, err := base64.StdEncoding.DecodeString(whitespace.ReplaceAllString(s, ""))
		if err != nil {
			return nil, fmt.Errorf("config: certificate is neither PEM nor base64: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("config: parse certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("config: PEM block %q is not a CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("config: parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("config: not a PEM certificate")
	}
	return out, nil
}

var whitespace = regexp.MustCompile(`\s+`)

// checkSAMLURL checks an SP endpoint: absolute http(s), https unless on a
// loopback host, no user info, fragment or wildcard. A query is allowed (SPs
// such as python3-saml's use ?acs).
func checkSAMLURL(s string) string { return checkEndpointURL(s, true) }

// samlApp checks clients[i].saml; entityIDs collects the entity IDs seen.
func (k *checker) samlApp(cl *Client, path string, entityIDs map[string]string) {
	a := cl.SAML
	path += ".saml"
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"secret", cl.Secret != ""}, {"redirect_uris", len(cl.RedirectURIs) > 0},
		{"post_logout_redirect_uris", len(cl.PostLogoutRedirectURIs) > 0},
		{"backchannel_logout_uri", cl.BackchannelLogoutURI != ""},
		{"exchange_audiences", len(cl.ExchangeAudiences) > 0}, {"claims", len(cl.Claims) > 0},
		{"require_pushed_authorization_requests", cl.RequirePushedAuthorizationRequests},
		{"dpop_bound_access_tokens", cl.DPoPBoundAccessTokens},
	} {
		if f.set {
			k.add(strings.TrimSuffix(path, ".saml")+"."+f.name, "a SAML app (saml set) has no %s: it is an OIDC client setting (a SAML app releases the claims saml.attributes name)", f.name)
		}
	}
	switch other, dup := entityIDs[a.EntityID]; {
	case strings.TrimSpace(a.EntityID) == "":
		k.add(path+".entity_id", "is required: the service provider's entityID")
	case len(a.EntityID) > 1024:
		k.add(path+".entity_id", "is longer than 1024 characters (SAML Core §8.3.6)")
	case dup:
		k.add(path+".entity_id", "entity ID %q is already used by %s", a.EntityID, other)
	default:
		entityIDs[a.EntityID] = path
	}
	if len(a.ACS) == 0 {
		k.add(path+".acs", "at least one assertion consumer service URL is required")
	}
	if len(a.ACS) > maxSAMLEndpoints {
		k.add(path+".acs", "at most %d endpoints", maxSAMLEndpoints)
	}
	indexes := map[int]int{}
	defaults := 0
	for i, e := range a.ACS {
		p := fmt.Sprintf("%s.acs[%d]", path, i)
		if msg := checkSAMLURL(e.URL); msg != "" {
			k.add(p+".url", "%s", msg)
		}
		switch e.Binding {
		case "", SAMLBindingPost:
		case SAMLBindingRedirect:
			k.add(p+".binding", "realmgate delivers SAML Responses with HTTP-POST only: use \"post\"")
		default:
			k.add(p+".binding", "unknown binding %q: want post", e.Binding)
		}
		idx := a.IndexAt(i)
		if idx < 0 || idx > 65535 {
			k.add(p+".index", "%d is out of range 0 to 65535", idx)
		} else if j, dup := indexes[idx]; dup {
			k.add(p+".index", "index %d is already used by acs[%d]", idx, j)
		} else {
			indexes[idx] = i
		}
		if e.Default {
			defaults++
		}
	}
	if defaults > 1 {
		k.add(path+".acs", "at most one endpoint is the default")
	}
	if s := a.SLO; s != nil {
		if msg := checkSAMLURL(s.URL); msg != "" {
			k.add(path+".slo.url", "%s", msg)
		}
		if s.ResponseURL != "" {
			if msg := checkSAMLURL(s.ResponseURL); msg != "" {
				k.add(path+".slo.response_url", "%s", msg)
			}
		}
		switch s.Binding {
		case "", SAMLBindingRedirect, SAMLBindingPost:
		default:
			k.add(path+".slo.binding", "unknown binding %q: want redirect or post (a SOAP endpoint goes in soap_url)", s.Binding)
		}
		if s.SOAPURL != "" {
			if msg := checkSAMLURL(s.SOAPURL); msg != "" {
				k.add(path+".slo.soap_url", "%s", msg)
			}
		}
	}
	if a.SigningCert != "" {
		if _, err := ParseCertificates(a.SigningCert); err != nil {
			k.add(path+".signing_cert", "%v", strings.TrimPrefix(err.Error(), "config: "))
		}
	} else if a.RequireSignedRequests {
		k.add(path+".require_signed_requests", "needs signing_cert: the certificate requests are verified against")
	}
	if a.EncryptionCert != "" {
		if cs, err := ParseCertificates(a.EncryptionCert); err != nil {
			k.add(path+".encryption_cert", "%v", strings.TrimPrefix(err.Error(), "config: "))
		} else if len(cs) != 1 {
			k.add(path+".encryption_cert", "give exactly one certificate")
		} else if cs[0].PublicKeyAlgorithm != x509.RSA {
			k.add(path+".encryption_cert", "must hold an RSA key (assertions are encrypted with RSA-OAEP)")
		}
	}
	if a.NameIDFormatURN() == "" {
		k.add(path+".name_id_format", "unknown NameID format %q: want persistent, email, unspecified, transient or one of their URNs", a.NameIDFormat)
	}
	if a.NameIDClaim != "" && !claimName.MatchString(a.NameIDClaim) {
		k.add(path+".name_id_claim", "%q is not a claim name", a.NameIDClaim)
	}
	if len(a.Attributes) > maxSAMLAttributes {
		k.add(path+".attributes", "at most %d attributes", maxSAMLAttributes)
	}
	names := map[string]int{}
	for i, at := range a.Attributes {
		p := fmt.Sprintf("%s.attributes[%d]", path, i)
		switch j, dup := names[at.Name]; {
		case strings.TrimSpace(at.Name) == "" || len(at.Name) > 1024:
			k.add(p+".name", "is required, at most 1024 characters")
		case dup:
			k.add(p+".name", "attribute %q is already sent by attributes[%d]", at.Name, j)
		default:
			names[at.Name] = i
		}
		if at.NameFormatURN() == "" {
			k.add(p+".name_format", "unknown name format %q: want uri, basic, unspecified or a URN", at.NameFormat)
		}
		if !claimName.MatchString(at.Claim) {
			k.add(p+".claim", "%q is not a claim name: name the claim the value comes from, such as tid or roles", at.Claim)
		}
	}
	switch a.Sign {
	case "", SAMLSignAssertion, SAMLSignResponse, SAMLSignBoth:
	default:
		k.add(path+".sign", "unknown value %q: want assertion, response or both", a.Sign)
	}
	if a.AssertionLifetime < 0 || a.AssertionLifetime > MaxSAMLAssertionLifetime {
		k.add(path+".assertion_lifetime", "%s is out of range: at most %s", a.AssertionLifetime, MaxSAMLAssertionLifetime)
	}
	if a.DefaultRelayState != "" && len(a.DefaultRelayState) > 80 {
		// SAML Bindings §3.4.3 and §3.5.3: RelayState MUST NOT exceed 80 bytes.
		k.add(path+".default_relay_state", "is longer than 80 bytes (SAML Bindings §3.5.3)")
	}
}

// claimName is what a claim name may look like in a SAML app's mapping.
var claimName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$`)
