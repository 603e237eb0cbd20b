package main

import (
	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/idp"
	_ "github.com/realmgate/realmgate/idp/builtin" // every IdP type of this build: one line there per type
)

// idpOnboarder gives the admin API each IdP type's onboarding values from
// the type registry.
type idpOnboarder struct{}

var _ admin.Onboarder = idpOnboarder{}

// Onboarding implements admin.Onboarder.
func (idpOnboarder) Onboarding(issuer string, p admin.Provider) (admin.Onboarding, bool) {
	o, ok := idp.OnboardingFor(issuer, &p)
	return o, ok
}
