package admin

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/idp"
)

// Onboarding is what the admin of the upstream IdP registers there; each IdP
// type says it through the registry (package idp).
type Onboarding = idp.Onboarding

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
