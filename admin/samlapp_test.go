package admin_test

import (
	"net/http"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
)

// TestAPI_SAMLApp registers a SAML app through the API (clients with
// saml set): it compiles into the broker's client set with its SAML
// registration; one without an ACS is refused with 422.
func TestAPI_SAMLApp(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	app := admin.Client{Client: config.Client{ID: "wiki", AllowedTenants: []string{"*"}, SAML: &config.SAMLApp{
		EntityID: "https://wiki.test/saml", ACS: []config.SAMLEndpoint{{URL: "https://wiki.test/acs"}},
		Attributes: []config.SAMLAttribute{{Name: "tid", Claim: "tid"}, {Name: "roles", Claim: "roles"}},
	}}}
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", app, nil)
	var compiled bool
	for _, cl := range a.last.Load().Clients {
		if cl.ID == "wiki" {
			compiled = cl.SAML != nil && cl.SAML.EntityID == "https://wiki.test/saml" && cl.SAML.ACS[0].URL == "https://wiki.test/acs" &&
				cl.SAML.NameIDClaim == "sub" && len(cl.SAML.Attributes) == 2
		}
	}
	if !compiled {
		t.Fatal("SAML app wiki not compiled with its registration")
	}
	// Refused (the API's compiler runs config validation, TestValidate_SAMLApp
	// covers each rule): a SAML app without an ACS.
	bad := config.Client{ID: "bad", AllowedTenants: []string{"*"}, SAML: &config.SAMLApp{EntityID: "https://bad.test"}}
	a.must(t, http.StatusUnprocessableEntity, opToken, "POST", "/v1/clients", admin.Client{Client: bad}, nil)
}
