package admin

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// Onboarding is what the admin of the upstream IdP registers there.
type Onboarding struct {
	// Provider and Type name the IdP.
	Provider string `json:"provider"`
	Type     string `json:"type"`
	// RedirectURI is the callback to register for OIDC and OAuth2 IdPs
	// (the client's "redirect URI" / "reply URL").
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Scopes are what realmgate asks for (OIDC and OAuth2).
	Scopes []string `json:"scopes,omitempty"`
	// SAML service provider values (AD FS relying party trust, Entra
	// enterprise application): the entityID (AD FS "relying party
	// identifier", Entra "Identifier"), the ACS URL (AD FS "SAML assertion
	// consumer endpoint", Entra "Reply URL") with its binding, and the SP
	// metadata URL that both can import instead.
	EntityID    string `json:"entity_id,omitempty"`
	ACSURL      string `json:"acs_url,omitempty"`
	ACSBinding  string `json:"acs_binding,omitempty"`
	MetadataURL string `json:"metadata_url,omitempty"`
	// NameIDFormat is the NameID format realmgate requests, when set.
	NameIDFormat string `json:"name_id_format,omitempty"`
	// Steps says in words what to do.
	Steps []string `json:"steps"`
}

// onboardingFor derives the values to register from the broker's issuer:
// the URLs never change for an IdP id (DESIGN: callback and SAML paths).
func onboardingFor(issuer string, p Provider) Onboarding {
	base := strings.TrimSuffix(issuer, "/")
	o := Onboarding{Provider: p.ID, Type: p.Type}
	if p.Type == "saml" {
		sp := base + "/saml/" + url.PathEscape(p.ID)
		o.EntityID, o.MetadataURL = sp+"/metadata", sp+"/metadata"
		o.ACSURL, o.ACSBinding = sp+"/acs", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
		o.NameIDFormat = p.NameIDFormat
		o.Steps = []string{
			"AD FS: Add Relying Party Trust > Import data about the relying party published online: " + o.MetadataURL +
				" (or enter the identifier " + o.EntityID + " and the SAML 2.0 WebSSO endpoint " + o.ACSURL + ").",
			"Entra ID: Enterprise applications > New application > Single sign-on > SAML: Identifier (Entity ID) " +
				o.EntityID + ", Reply URL (Assertion Consumer Service URL) " + o.ACSURL + ".",
			"Send the email (or UPN) and the group claims your rules map; then give realmgate your federation metadata URL as metadata_url.",
		}
		return o
	}
	o.RedirectURI = base + "/callback/" + url.PathEscape(p.ID)
	o.Scopes = p.Scopes
	if len(o.Scopes) == 0 && (p.Type == "oidc" || p.Type == "google" || p.Type == "microsoft") {
		o.Scopes = []string{"openid", "profile", "email"}
	}
	o.Steps = []string{
		"Register a web application (confidential client, authorization code flow with PKCE) whose redirect URI is exactly " + o.RedirectURI + ".",
		"Entra ID: App registrations > New registration > Redirect URI (Web) " + o.RedirectURI + "; AD FS: Application Groups > Server application with that redirect URI.",
		"Give realmgate the issuer, client id and client secret in this provider.",
	}
	return o
}

func (s *Service) onboarding(c echo.Context) error {
	_, p, err := s.findProvider(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, onboardingFor(s.opts.Issuer, p))
}
