package saml_test

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/saml"
)

// A tenant's AD FS, from its federation metadata: realmgate's SP entityID
// and ACS URL derive from the issuer and the IdP id, and the login starts
// with an HTTP-Redirect AuthnRequest whose RelayState is the login state.
func Example() {
	md, err := os.ReadFile("../../testdata/saml/adfs-metadata.xml")
	if err != nil {
		panic(err)
	}
	base := "https://login.example.test/saml/contoso-adfs"
	c, err := saml.New(saml.Config{ID: "contoso-adfs", EntityID: base + "/metadata", ACSURL: base + "/acs",
		MetadataURL: base + "/metadata", IdPMetadata: md})
	if err != nil {
		panic(err)
	}
	target, _, err := c.LoginURL(context.Background(), providers.LoginRequest{State: "state-123"})
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse(target)
	fmt.Println(u.Host+u.Path, u.Query().Get("RelayState"), u.Query().Get("SAMLRequest") != "")
	// Output: adfs.contoso.com/adfs/ls/ state-123 true
}
