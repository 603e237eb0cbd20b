package portal

import (
	"strings"

	"github.com/realmgate/realmgate/admin"
)

// Forms of the connect step.
const (
	formOIDC  = "oidc"  // issuer, client id, client secret
	formOAuth = "oauth" // client id and secret of a type with a fixed issuer
	formSAML  = "saml"  // metadata URL or uploaded metadata XML
)

// kind is one kind of IdP the portal explains: its provider type, the
// form that connects it and the steps at the IdP (catalog messages).
type kind struct {
	// ID is the kind in URLs (/setup/idp/<id>).
	ID string
	// Name is the product's name (not translated).
	Name string
	// Type is the provider type created (idp registry).
	Type string
	// Form is formOIDC, formOAuth or formSAML.
	Form string
	// Steps are what to do at the IdP, in order.
	Steps []string
	// IssuerHint is an example issuer (oidc forms).
	IssuerHint string
}

// kinds are the IdP kinds the portal offers, in the order shown.
var kinds = []kind{
	{ID: "entra", Name: "Microsoft Entra ID", Type: "oidc", Form: formOIDC, IssuerHint: "https://login.microsoftonline.com/<tenant id>/v2.0", Steps: []string{
		"In the Microsoft Entra admin center, open App registrations and choose New registration.",
		"Under Redirect URI, choose Web and enter the redirect URI shown below.",
		"Under Certificates & secrets, create a client secret and copy its value.",
		"On the Overview page, copy the Application (client) ID and the Directory (tenant) ID.",
		"Enter the issuer (with your directory ID), the client ID and the client secret in the form below.",
	}},
	{ID: "adfs", Name: "AD FS", Type: "saml", Form: formSAML, Steps: []string{
		"In AD FS Management, add a Relying Party Trust (claims aware).",
		"Import the data about the relying party from the service provider metadata URL below, or enter the identifier and the reply URL by hand.",
		"Add claim rules that send the email address (or UPN) as Name ID and the group memberships.",
		"Enter your federation metadata URL in the form below, or upload the metadata file.",
	}},
	{ID: "okta", Name: "Okta", Type: "oidc", Form: formOIDC, IssuerHint: "https://<your domain>.okta.com", Steps: []string{
		"In the Okta Admin Console, open Applications and create an app integration: OIDC, Web Application.",
		"Enter the redirect URI shown below as the sign-in redirect URI.",
		"Assign the people or groups who may sign in.",
		"Enter your Okta issuer, the client ID and the client secret in the form below.",
	}},
	{ID: "google", Name: "Google Workspace", Type: "google", Form: formOAuth, Steps: []string{
		"In the Google Cloud console, open APIs & Services, then Credentials, and create an OAuth client ID of type Web application.",
		"Enter the redirect URI shown below as an authorized redirect URI.",
		"Enter the client ID and the client secret in the form below.",
	}},
	{ID: "onelogin", Name: "OneLogin", Type: "oidc", Form: formOIDC, IssuerHint: "https://<your subdomain>.onelogin.com/oidc/2", Steps: []string{
		"In OneLogin Administration, open Applications and add the OpenId Connect (OIDC) application.",
		"On its Configuration tab, enter the redirect URI shown below.",
		"On its SSO tab, set the token endpoint authentication to POST and copy the client ID and the client secret.",
		"Enter your OneLogin issuer, the client ID and the client secret in the form below.",
	}},
	{ID: "ping", Name: "PingFederate", Type: "saml", Form: formSAML, Steps: []string{
		"In PingFederate, create an SP connection for browser SSO with the SAML 2.0 profile.",
		"Import the service provider metadata URL below, or enter the entity ID and the ACS URL by hand.",
		"Map the email address to the subject and add the group memberships as an attribute.",
		"Enter your PingFederate metadata URL in the form below, or upload the metadata file.",
	}},
	{ID: "saml", Name: "SAML 2.0", Type: "saml", Form: formSAML, Steps: []string{
		"At your identity provider, register a SAML 2.0 service provider with the entity ID and the ACS URL below (HTTP-POST binding), or import the service provider metadata URL.",
		"Send the email address as Name ID and the group memberships as an attribute.",
		"Enter your identity provider's metadata URL in the form below, or upload the metadata file.",
	}},
	{ID: "oidc", Name: "OpenID Connect", Type: "oidc", Form: formOIDC, IssuerHint: "https://idp.example.com", Steps: []string{
		"At your identity provider, register a web application (confidential client, authorization code flow) with the redirect URI shown below.",
		"Allow the scopes openid, profile and email.",
		"Enter the issuer, the client ID and the client secret in the form below.",
	}},
}

// kindByID returns the kind with id, or nil.
func kindByID(id string) *kind {
	for i := range kinds {
		if kinds[i].ID == id {
			return &kinds[i]
		}
	}
	return nil
}

// providerID is the id of the IdP the portal creates for tenant and kind:
// lower case letters, digits, '-' and '_', at most 63 characters.
func providerID(tenant, kindID string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(tenant) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	id := b.String()
	if len(id) > 63-len(kindID)-1 {
		id = id[:63-len(kindID)-1]
	}
	return id + "-" + kindID
}

// value is one value to enter at the IdP, with a copy button.
type value struct {
	// ID is the field's id; Label a catalog message.
	ID, Label, Value string
}

// values are the onboarding values of kind k for provider id pid.
func values(a *admin.Service, k *kind, pid string) []value {
	o := a.SetupOnboarding(admin.Provider{ID: pid, Type: k.Type})
	var out []value
	add := func(id, label, v string) {
		if v != "" {
			out = append(out, value{ID: id, Label: label, Value: v})
		}
	}
	add("v-redirect", "Redirect URI (reply URL, callback URL)", o.RedirectURI)
	add("v-entity", "Entity ID (identifier)", o.EntityID)
	add("v-acs", "Reply URL (ACS URL, sign-on URL)", o.ACSURL)
	add("v-metadata", "Service provider metadata URL", o.MetadataURL)
	if len(o.Scopes) > 0 {
		add("v-scopes", "Scopes", strings.Join(o.Scopes, " "))
	}
	return out
}
