// Package samlidp is the protocol side of realmgate as a SAML 2.0 identity
// provider for SAML-only applications (docs/saml-idp.md): it reads and
// verifies what service providers send (AuthnRequest, LogoutRequest,
// LogoutResponse, over HTTP-Redirect and HTTP-POST), and writes what
// realmgate sends them (signed, optionally encrypted Responses; logout
// messages; IdP metadata). It keeps no state and knows nothing of sessions:
// the broker drives the flow (broker/samlidp.go) so SAML apps share the SSO
// session, home-realm discovery, the authorization decision, the claims
// pipeline and the audit with OIDC apps.
//
// Messages are built with github.com/crewjam/saml's types and signed and
// verified with github.com/russellhaering/goxmldsig (RSA-SHA256, exclusive
// C14N). Everything read is bounded first (providers/saml's limits, S45),
// and only the content a signature covers is read (no XML signature
// wrapping, S40).
package samlidp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	crewjam "github.com/crewjam/saml"
)

// XML namespaces and URIs (SAML Core §1.2, SAML Bindings §3).
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"

	// BindingRedirect is the HTTP-Redirect binding's URI.
	BindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	// BindingPost is the HTTP-POST binding's URI.
	BindingPost = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

	sigAlgRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	sigAlgRSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"

	nameIDEntity = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	// NameIDTransient is the transient NameID format (SAML Core §8.3.8).
	NameIDTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	// NameIDPersistent is the persistent NameID format (SAML Core §8.3.7).
	NameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	nameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	// NameIDEmail is the email NameID format (SAML Core §8.3.2).
	NameIDEmail = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"

	// ACMFA is the AuthnContextClassRef of a multi-factor authentication
	// (REFEDS MFA profile); ACUnspecified says nothing more (SAML Authn
	// Context §3.4.26).
	ACMFA         = "https://refeds.org/profile/mfa"
	ACUnspecified = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
)

// Second-level status codes realmgate answers with (SAML Core §3.2.2.2).
const (
	StatusRequester           = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder           = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusSuccess             = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequestDenied       = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
	StatusNoPassive           = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
	StatusAuthnFailed         = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	StatusInvalidNameIDPolicy = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
	StatusPartialLogout       = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
)

// Sign modes (SP.Sign).
const (
	SignAssertion = "assertion"
	SignResponse  = "response"
	SignBoth      = "both"
)

// Errors. Every refusal of a service provider's message wraps ErrInvalid;
// the broker shows a page (never the detail) and logs the detail.
var (
	// ErrInvalid marks a message refused: malformed, over a limit, badly
	// signed, expired, or for someone else.
	ErrInvalid = errors.New("samlidp: invalid message")
	// ErrUnsigned marks a message refused because it is not signed and
	// the service provider requires signed requests.
	ErrUnsigned = errors.New("samlidp: unsigned message")
	// ErrNameIDPolicy marks an AuthnRequest asking for a NameID format the
	// app is not registered for (answered with InvalidNameIDPolicy).
	ErrNameIDPolicy = errors.New("samlidp: NameID format not available")
	// ErrNoNameID marks a sign-in whose claims lack the NameID claim.
	ErrNoNameID = errors.New("samlidp: the claims have no value for the NameID")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Endpoint is one AssertionConsumerService of a service provider.
type Endpoint struct {
	// URL is the Location, compared byte for byte.
	URL string
	// Index is the endpoint's index.
	Index int
	// Default marks the default endpoint.
	Default bool
}

// LogoutEndpoint is a service provider's SingleLogoutService.
type LogoutEndpoint struct {
	// URL receives LogoutRequests; ResponseURL LogoutResponses.
	URL, ResponseURL string
	// Binding is BindingRedirect or BindingPost.
	Binding string
	// SOAPURL is the SOAP-binding SingleLogoutService (back-channel); "" when none.
	SOAPURL string
}

// Attribute is one attribute of the assertions to an SP.
type Attribute struct {
	// Name, NameFormat (a URN) and FriendlyName are the Attribute's XML attributes.
	Name, NameFormat, FriendlyName string
	// Claim is the claim whose value(s) the attribute carries.
	Claim string
}

// SP is a registered SAML service provider (the broker's form of
// config.SAMLApp).
type SP struct {
	// EntityID is the SP's entityID: Issuer of its requests, Audience of its assertions.
	EntityID string
	// ACS are its AssertionConsumerService endpoints (HTTP-POST).
	ACS []Endpoint
	// SLO is its SingleLogoutService; nil when it takes part in no single logout.
	SLO *LogoutEndpoint
	// SigningCerts verify its signed requests.
	SigningCerts []*x509.Certificate
	// RequireSigned refuses unsigned requests.
	RequireSigned bool
	// EncryptionCert, when set, encrypts every assertion to it.
	EncryptionCert *x509.Certificate
	// NameIDFormat is the NameID format URN.
	NameIDFormat string
	// NameIDClaim is the claim that feeds the NameID.
	NameIDClaim string
	// Attributes are the assertion's attributes.
	Attributes []Attribute
	// Sign is SignAssertion, SignResponse or SignBoth.
	Sign string
	// Lifetime bounds an assertion's validity.
	Lifetime time.Duration
	// IdPInitiated allows unsolicited responses from the app-launch URL.
	IdPInitiated bool
	// DefaultRelayState is the RelayState of IdP-initiated responses.
	DefaultRelayState string
}

// DefaultACS returns the default ACS endpoint: the one marked default, or the first.
func (sp *SP) DefaultACS() (Endpoint, bool) {
	for _, e := range sp.ACS {
		if e.Default {
			return e, true
		}
	}
	if len(sp.ACS) == 0 {
		return Endpoint{}, false
	}
	return sp.ACS[0], true
}

// DefaultClockSkew is the clock difference tolerated with service
// providers, as on the SP side (SECURITY S41).
const DefaultClockSkew = 2 * time.Minute

// maxIssueDelay is how old a request may be (crewjam's MaxIssueDelay:
// 90 s), before the clock skew.
const maxIssueDelay = 90 * time.Second

// ReplayWindow is how long a request ID must be remembered: a request is
// refused once older than this, so an ID seen within it cannot come back.
const ReplayWindow = maxIssueDelay + 2*DefaultClockSkew

// IdP is realmgate as a SAML identity provider, for one request: its
// endpoints and its signing key.
type IdP struct {
	// EntityID is the IdP's entityID, the Issuer of everything it sends.
	EntityID string
	// SSOURL and SLOURL are its SingleSignOnService and SingleLogoutService
	// (both bindings at the same URL).
	SSOURL, SLOURL string
	// Key signs; Cert is its certificate, published in the metadata.
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (idp *IdP) now() time.Time {
	if idp.Now != nil {
		return idp.Now().UTC()
	}
	return time.Now().UTC()
}

// nameIDFormats are the NameID formats the IdP can issue.
var nameIDFormats = []crewjam.NameIDFormat{NameIDPersistent, NameIDEmail, nameIDUnspecified, NameIDTransient}

// Metadata returns the IdP's metadata (SAML Metadata §2.4.3): the signing
// certificate, both bindings of SSO and SLO, the NameID formats. For one
// app (sp not nil) it also says whether that app's AuthnRequests must be
// signed (WantAuthnRequestsSigned, §2.4.3), which SP toolkits such as
// samlify compare with their own setting.
func (idp *IdP) Metadata(sp *SP) ([]byte, error) {
	cert := base64.StdEncoding.EncodeToString(idp.Cert.Raw)
	valid := idp.now().Add(7 * 24 * time.Hour)
	ed := crewjam.EntityDescriptor{
		EntityID:   idp.EntityID,
		ValidUntil: valid,
		IDPSSODescriptors: []crewjam.IDPSSODescriptor{{
			SSODescriptor: crewjam.SSODescriptor{
				RoleDescriptor: crewjam.RoleDescriptor{
					ProtocolSupportEnumeration: nsProtocol,
					KeyDescriptors: []crewjam.KeyDescriptor{{Use: "signing", KeyInfo: crewjam.KeyInfo{
						X509Data: crewjam.X509Data{X509Certificates: []crewjam.X509Certificate{{Data: cert}}}}}},
				},
				SingleLogoutServices: []crewjam.Endpoint{
					{Binding: BindingRedirect, Location: idp.SLOURL},
					{Binding: BindingPost, Location: idp.SLOURL},
				},
				NameIDFormats: nameIDFormats,
			},
			SingleSignOnServices: []crewjam.Endpoint{
				{Binding: BindingRedirect, Location: idp.SSOURL},
				{Binding: BindingPost, Location: idp.SSOURL},
			},
		}},
	}
	if sp != nil {
		want := sp.RequireSigned
		ed.IDPSSODescriptors[0].WantAuthnRequestsSigned = &want
	}
	b, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("samlidp: metadata: %w", err)
	}
	return append([]byte(xml.Header), b...), nil
}
