package samlidp

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers/saml"
)

// Back-channel single logout over the SAML SOAP binding (SAML Bindings
// §3.2): realmgate, as requester, POSTs a signed LogoutRequest in a SOAP
// 1.1 envelope to the SP's SOAP SingleLogoutService and reads the
// LogoutResponse from the HTTP response; no browser takes part, so a
// session that ends without one (an upstream back-channel logout) can
// still end at the SP.

const (
	// BindingSOAP is the SOAP binding's URI (SAML Bindings §3.2.1).
	BindingSOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
	// SOAPContentType is the media type of a SOAP 1.1 message (SAML
	// Bindings §3.2.3.1 uses SOAP 1.1).
	SOAPContentType = "text/xml; charset=utf-8"
	// SOAPAction is the SOAPAction header a SAML requester sends (SAML
	// Bindings §3.2.3.1).
	SOAPAction = "http://www.oasis-open.org/committees/security"

	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

// MaxSOAPResponse bounds the SP's SOAP answer read (S45): a
// LogoutResponse is small.
const MaxSOAPResponse = 32 << 10

// soapLimits bound a SOAP answer (the envelope adds two levels).
var soapLimits = saml.Limits{MaxEncoded: MaxSOAPResponse, MaxBytes: MaxSOAPResponse, MaxDepth: 18, MaxElements: 256, MaxAttrs: 24}

// logoutRequestElement is the LogoutRequest (SAML Core §3.7.1) for the
// NameID and SessionIndex realmgate issued sp, to dest, with an enveloped
// signature when sign is set; and its ID.
func (idp *IdP) logoutRequestElement(sp *SP, dest, nameID, sessionIndex string, sign bool) (*etree.Element, string, error) {
	now := idp.now()
	until := now.Add(maxIssueDelay)
	nid := &crewjam.NameID{Format: sp.NameIDFormat, Value: nameID}
	if sp.NameIDFormat == NameIDPersistent || sp.NameIDFormat == NameIDTransient {
		nid.NameQualifier, nid.SPNameQualifier = idp.EntityID, sp.EntityID
	}
	req := &crewjam.LogoutRequest{ID: newID(), Version: "2.0", IssueInstant: now, NotOnOrAfter: &until,
		Destination: dest, Issuer: idp.issuer(), NameID: nid}
	if sessionIndex != "" {
		req.SessionIndex = &crewjam.SessionIndex{Value: sessionIndex}
	}
	el := req.Element()
	if sign {
		sig, err := idp.signature(el)
		if err != nil {
			return nil, "", err
		}
		req.Signature = sig
		el = req.Element()
	}
	return el, req.ID, nil
}

// SOAPLogoutRequest builds the SOAP message that tells sp, server to
// server, that the session realmgate issued nameID and sessionIndex in has
// ended: a LogoutRequest with an enveloped RSA-SHA256 signature (SAML
// Profiles §4.4.4.1: signed, whatever the binding), Destination the SP's
// SOAP endpoint, in a SOAP 1.1 Body (SAML Bindings §3.2.3.1). It returns
// the body to POST and the request's ID, which the answer must name.
func (idp *IdP) SOAPLogoutRequest(sp *SP, nameID, sessionIndex string) ([]byte, string, error) {
	if sp.SLO == nil || sp.SLO.SOAPURL == "" {
		return nil, "", fmt.Errorf("samlidp: %q has no SOAP SingleLogoutService", sp.EntityID)
	}
	el, id, err := idp.logoutRequestElement(sp, sp.SLO.SOAPURL, nameID, sessionIndex, true)
	if err != nil {
		return nil, "", err
	}
	env := etree.NewElement("SOAP-ENV:Envelope")
	env.CreateAttr("xmlns:SOAP-ENV", nsSOAP11)
	env.CreateElement("SOAP-ENV:Body").AddChild(el)
	b, err := xmlBytes(env)
	if err != nil {
		return nil, "", err
	}
	return b, id, nil
}

// ReadSOAPLogoutResponse reads sp's answer to the SOAP LogoutRequest
// requestID: bounded (S45), a SOAP Envelope whose Body holds one
// samlp:LogoutResponse (a SOAP Fault is an error), whose enveloped
// signature, when present, verifies with sp's certificates (only the
// signed content is read: S40), with Issuer sp's entityID and
// InResponseTo requestID. It returns the top-level status code. An
// unsigned answer is accepted: over the SOAP binding the responder is
// authenticated by the TLS connection realmgate opened to the registered
// https endpoint (SAML Bindings §3.2.3.3; SAML Profiles §4.4.4.2).
func (idp *IdP) ReadSOAPLogoutResponse(body []byte, sp *SP, requestID string) (string, error) {
	if len(body) > MaxSOAPResponse {
		return "", invalid("SOAP answer of %d bytes is over the limit", len(body))
	}
	if err := saml.CheckXML(body, soapLimits); err != nil {
		return "", invalid("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		return "", invalid("SOAP answer is not XML")
	}
	env := doc.Root()
	if env.Tag != "Envelope" || env.NamespaceURI() != nsSOAP11 {
		return "", invalid("SOAP answer is not a SOAP 1.1 Envelope")
	}
	bodyEl := child(env, "Body", nsSOAP11)
	if bodyEl == nil {
		return "", invalid("SOAP answer without one Body")
	}
	kids := bodyEl.ChildElements()
	if len(kids) != 1 {
		return "", invalid("SOAP Body with %d elements, want one LogoutResponse", len(kids))
	}
	if kids[0].Tag == "Fault" && kids[0].NamespaceURI() == nsSOAP11 {
		msg := ""
		if fs := kids[0].SelectElement("faultstring"); fs != nil {
			msg = strings.TrimSpace(fs.Text())
		}
		return "", invalid("SOAP Fault: %.200s", msg)
	}
	root := detach(kids[0])
	if hasSignature(root) {
		verified, err := verifyXML(root, sp.SigningCerts)
		if err != nil {
			return "", err
		}
		root = verified
	}
	if root.Tag != "LogoutResponse" || root.NamespaceURI() != nsProtocol {
		return "", invalid("SOAP Body holds %s, not samlp:LogoutResponse", root.Tag)
	}
	if iss := child(root, "Issuer", nsAssertion); iss == nil || strings.TrimSpace(iss.Text()) != sp.EntityID {
		return "", invalid("LogoutResponse issuer is not %q", sp.EntityID)
	}
	return CheckLogoutResponse(root, requestID)
}

// detach returns a copy of el as the root of its own document, with the
// namespace declarations it inherited from its ancestors (the SOAP
// envelope may declare the prefixes it uses), so it reads and verifies as
// the message it is.
func detach(el *etree.Element) *etree.Element {
	out := el.Copy()
	declared := map[string]bool{}
	for _, a := range out.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			declared[a.FullKey()] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if (a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")) && !declared[a.FullKey()] {
				declared[a.FullKey()] = true
				out.CreateAttr(a.FullKey(), a.Value)
			}
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(out)
	return doc.Root()
}
