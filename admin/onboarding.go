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

// Onboarder gives, by the provider's type, what the IdP's admin
// registers; cmd/realmgate implements it over the IdP type registry
// (package idp). ok is false for a type it does not know.
type Onboarder interface {
	Onboarding(issuer string, p Provider) (o Onboarding, ok bool)
}

// onboardingFor asks the Onboarder; without one, or for a type it does
// not know, the values are those of an OAuth 2.0 client, derived from the
// broker's issuer: the callback URL never changes for an IdP id (DESIGN).
func (s *Service) onboardingFor(p Provider) Onboarding {
	if s.opts.Onboarder != nil {
		if o, ok := s.opts.Onboarder.Onboarding(s.opts.Issuer, p); ok {
			return o
		}
	}
	o := Onboarding{Provider: p.ID, Type: p.Type, Scopes: p.Scopes,
		RedirectURI: strings.TrimSuffix(s.opts.Issuer, "/") + "/callback/" + url.PathEscape(p.ID)}
	o.Steps = []string{
		"Register a web application (confidential client, authorization code flow with PKCE) whose redirect URI is exactly " + o.RedirectURI + ".",
		"Give realmgate the client id and client secret in this provider.",
	}
	return o
}

func (s *Service) onboarding(c echo.Context) error {
	_, p, err := s.findProvider(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.onboardingFor(p))
}
