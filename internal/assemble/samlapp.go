package assemble

import (
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/samlidp"
)

// SAMLApp is the broker's form of a client's saml registration; nil when
// the client is not a SAML app. Certificates that do not parse (which
// config validation reports) are left out, so a request that must be
// signed is refused rather than trusted, and an app whose assertions
// must be encrypted gets none.
func SAMLApp(a *config.SAMLApp) *samlidp.SP {
	if a == nil {
		return nil
	}
	sp := &samlidp.SP{EntityID: a.EntityID, RequireSigned: a.RequireSignedRequests,
		NameIDFormat: a.NameIDFormatURN(), NameIDClaim: a.NameIDSource(), Sign: a.SignMode(), Lifetime: a.Lifetime(),
		IdPInitiated: a.IdPInitiated, DefaultRelayState: a.DefaultRelayState}
	def := a.DefaultACS()
	for i, e := range a.ACS {
		sp.ACS = append(sp.ACS, samlidp.Endpoint{URL: e.URL, Index: a.IndexAt(i), Default: i == def})
	}
	if s := a.SLO; s != nil {
		b := samlidp.BindingRedirect
		if s.Binding == config.SAMLBindingPost {
			b = samlidp.BindingPost
		}
		sp.SLO = &samlidp.LogoutEndpoint{URL: s.URL, ResponseURL: s.ResponseURL, Binding: b, SOAPURL: s.SOAPURL}
	}
	if a.SigningCert != "" {
		sp.SigningCerts, _ = config.ParseCertificates(a.SigningCert)
	}
	if a.EncryptionCert != "" {
		if cs, err := config.ParseCertificates(a.EncryptionCert); err == nil && len(cs) == 1 {
			sp.EncryptionCert = cs[0]
		} else {
			sp.ACS = nil // never send in clear what must be encrypted: no ACS, no assertion
		}
	}
	for _, at := range a.Attributes {
		sp.Attributes = append(sp.Attributes, samlidp.Attribute{Name: at.Name, NameFormat: at.NameFormatURN(),
			FriendlyName: at.FriendlyName, Claim: at.Claim})
	}
	return sp
}
