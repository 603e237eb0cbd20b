package saml

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers"
)

// The fixtures in testdata/saml are AD FS- and Entra-shaped metadata and
// responses, signed with testdata/saml/idp-a.key. They are written by
//
//	REALMGATE_WRITE_SAML_FIXTURES=1 go test ./providers/saml -run TestSAML_Fixtures
//
// and checked on every run at the instant they were issued.
const fixtureDir = "../../testdata/saml"

var fixtureTime = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

const (
	adfsEntity  = "http://adfs.contoso.com/adfs/services/trust"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraEntity = "https://sts.windows.net/" + entraTenant + "/"
	fixtureReq  = "id-7a3b5f0e2c9d4e8fa1b26c3d4e5f60718293a4b5"
)

type fixture struct {
	name, entity, sso, metadataExtra string
	r                                resp
}

func fixtures() []fixture {
	return []fixture{{
		name: "adfs", entity: adfsEntity, sso: "https://adfs.contoso.com/adfs/ls/",
		metadataExtra: `<Attribute xmlns="urn:oasis:names:tc:SAML:2.0:assertion" Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="UPN"/>`,
		r: resp{issuer: adfsEntity, nameID: "AJ0zcL8qfVUd3e8jVbVQ8n1Ty9I=", nameIDFormat: NameIDPersistent,
			attrs: [][2]string{
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "alice@contoso.com"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "Alice.Liddell@contoso.com"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Alice"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "Liddell"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groupsid", "S-1-5-21-3623811015-3361044348-30300820-513"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groupsid", "S-1-5-21-3623811015-3361044348-30300820-1104"},
				{"http://schemas.xmlsoap.org/claims/Group", "Domain Users"},
				{"http://schemas.xmlsoap.org/claims/Group", "Finance-Admins"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Finance-Admins"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/windowsaccountname", "CONTOSO\\alice"},
			}},
	}, {
		name: "entra", entity: entraEntity, sso: "https://login.microsoftonline.com/" + entraTenant + "/saml2",
		r: resp{issuer: entraEntity, nameID: "alice@contoso.com", nameIDFormat: NameIDEmail,
			attrs: [][2]string{
				{"http://schemas.microsoft.com/identity/claims/tenantid", entraTenant},
				{"http://schemas.microsoft.com/identity/claims/objectidentifier", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
				{"http://schemas.microsoft.com/identity/claims/displayname", "Alice Liddell"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "5f2a3c7e-1b4d-4e8f-9a0b-c1d2e3f4a5b6"},
				{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "8d9e0f1a-2b3c-4d5e-6f70-8192a3b4c5d6"},
				{"http://schemas.microsoft.com/identity/claims/identityprovider", entraEntity},
				{"http://schemas.microsoft.com/claims/authnmethodsreferences", "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"},
				{"http://schemas.microsoft.com/claims/authnmethodsreferences", "http://schemas.microsoft.com/claims/multipleauthn"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Alice"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "Liddell"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "alice@contoso.com"},
				{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "alice@contoso.com"},
			}},
	}}
}

func fixtureMetadata(f fixture) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_b1e2c3d4-%s" entityID="%s" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>%s</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="%s"/>
    <NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>
    <NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat>
    <NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</NameIDFormat>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="%s"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="%s"/>
    %s
  </IDPSSODescriptor>
</EntityDescriptor>
`, f.name, f.entity, base64.StdEncoding.EncodeToString(idpCertA.Raw), f.sso, f.sso, f.sso, f.metadataExtra)
}

func TestSAML_Fixtures(t *testing.T) {
	testKeys(t)
	write := os.Getenv("REALMGATE_WRITE_SAML_FIXTURES") != ""
	// crewjam/saml reads its own clock for IssueInstant.
	prev := crewjam.TimeNow
	crewjam.TimeNow = func() time.Time { return fixtureTime.Add(5 * time.Second) }
	t.Cleanup(func() { crewjam.TimeNow = prev })
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			mdPath := filepath.Join(fixtureDir, f.name+"-metadata.xml")
			rPath := filepath.Join(fixtureDir, f.name+"-response.xml")
			if write {
				r := f.r
				r.now, r.respID, r.assertionID, r.inResponseTo, r.signAssertion = fixtureTime, "_"+f.name+"-response-1", "_"+f.name+"-assertion-1", fixtureReq, true
				b, err := r.build(t).WriteToBytes()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(rPath, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(mdPath, []byte(fixtureMetadata(f)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			md, err := os.ReadFile(mdPath)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(rPath)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(Config{ID: "contoso-adfs", ACSURL: testACS, MetadataURL: testSPEntity, IdPMetadata: md,
				Now: func() time.Time { return fixtureTime.Add(5 * time.Second) }})
			if err != nil {
				t.Fatalf("New(%s metadata): %v", f.name, err)
			}
			c.SetReplayCache(&memReplay{})
			id, err := c.HandleCallback(context.Background(), providers.LoginRequest{}, loginDataFor(fixtureReq),
				acsRequest(base64.StdEncoding.EncodeToString(raw), "st"))
			if err != nil {
				t.Fatalf("HandleCallback(%s fixture): %v", f.name, err)
			}
			if id.Issuer != f.entity || id.Subject != f.r.nameID {
				t.Errorf("identity issuer/subject = %q %q", id.Issuer, id.Subject)
			}
			switch f.name {
			case "adfs":
				if id.Claims["upn"] != "alice@contoso.com" || id.PreferredUsername != "alice@contoso.com" {
					t.Errorf("upn = %v, preferred_username %q", id.Claims["upn"], id.PreferredUsername)
				}
				if sids, _ := id.Claims["groupsid"].([]any); len(sids) != 2 {
					t.Errorf("groupsid = %#v, want two SIDs", id.Claims["groupsid"])
				}
				if g, _ := id.Claims["Group"].([]any); len(g) != 2 {
					t.Errorf("Group = %#v, want two groups", id.Claims["Group"])
				}
			case "entra":
				if id.Claims["tenantid"] != entraTenant || id.Name != "Alice Liddell" {
					t.Errorf("tenantid = %v, name %q", id.Claims["tenantid"], id.Name)
				}
				if g, _ := id.Claims["groups"].([]any); len(g) != 2 {
					t.Errorf("groups = %#v, want two object ids", id.Claims["groups"])
				}
				if len(id.AMR) != 2 || id.AMR[1] != "mfa" {
					t.Errorf("AMR = %v, want [pwd mfa]", id.AMR)
				}
			}
			// Ten minutes later the same response is refused (expired issue instant).
			late, _ := New(Config{ID: "late", ACSURL: testACS, MetadataURL: testSPEntity, IdPMetadata: md,
				Now: func() time.Time { return fixtureTime.Add(10 * time.Minute) }})
			late.SetReplayCache(&memReplay{})
			if _, err := late.HandleCallback(context.Background(), providers.LoginRequest{}, loginDataFor(fixtureReq),
				acsRequest(base64.StdEncoding.EncodeToString(raw), "st")); err == nil {
				t.Error("a ten-minute-old response was accepted")
			}
		})
	}
}
