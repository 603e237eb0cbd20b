package samlidp

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
)

// Outgoing is a message on its way to a service provider through the
// browser: with HTTP-Redirect, URL is where to send the browser; with
// HTTP-POST, the browser posts Fields to URL (an auto-submitting form).
type Outgoing struct {
	// URL is the redirect URL (Post false) or the form action (Post true).
	URL string
	// Post selects the HTTP-POST binding.
	Post bool
	// Fields are the form fields: SAMLRequest or SAMLResponse, and RelayState.
	Fields map[string]string
	// ID is the message's ID (a LogoutRequest's, for the InResponseTo of
	// its answer).
	ID string
}

// newID returns a fresh message ID: an xs:ID (it starts with a letter)
// with 160 random bits.
func newID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand never fails (Go 1.24)
	return "_" + hex.EncodeToString(b)
}

func (idp *IdP) issuer() *crewjam.Issuer {
	return &crewjam.Issuer{Format: nameIDEntity, Value: idp.EntityID}
}

// signer returns a signing context: RSA-SHA256, SHA-256 digests,
// exclusive C14N with an empty prefix list, the certificate in KeyInfo.
func (idp *IdP) signer() (*dsig.SigningContext, error) {
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{idp.Cert.Raw}, PrivateKey: idp.Key, Leaf: idp.Cert})
	sc := dsig.NewDefaultSigningContext(ks)
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	return sc, nil
}

// signature signs el (an enveloped signature) and returns the ds:Signature
// element, for the caller to place where the schema wants it (after Issuer).
func (idp *IdP) signature(el *etree.Element) (*etree.Element, error) {
	sc, err := idp.signer()
	if err != nil {
		return nil, err
	}
	signed, err := sc.SignEnveloped(el)
	if err != nil {
		return nil, fmt.Errorf("samlidp: sign: %w", err)
	}
	kids := signed.ChildElements()
	return kids[len(kids)-1], nil
}

// Assertion is what a successful Response asserts.
type Assertion struct {
	// SP is the audience.
	SP *SP
	// ACS is the endpoint the Response goes to (Recipient, Destination).
	ACS string
	// InResponseTo is the AuthnRequest's ID; empty for an IdP-initiated response.
	InResponseTo string
	// Claims are realmgate's claims for the user and app (after the rules).
	Claims map[string]any
	// SessionIndex names the user's session at realmgate for this SP.
	SessionIndex string
	// AuthnInstant is when the user authenticated (zero: now).
	AuthnInstant time.Time
	// MFA says the authentication was multi-factor.
	MFA bool
}

// NameID returns the NameID the assertion carries: a fresh random value
// for the transient format, else the value of the app's NameID claim;
// ErrNoNameID when the claims have none.
func NameID(sp *SP, claims map[string]any) (string, error) {
	if sp.NameIDFormat == NameIDTransient {
		return newID(), nil
	}
	vals := claimValues(claims[sp.NameIDClaim])
	if len(vals) != 1 || vals[0] == "" {
		return "", fmt.Errorf("%w: %s", ErrNoNameID, sp.NameIDClaim)
	}
	return vals[0], nil
}

// claimValues renders a claim's value as attribute values: a list gives
// one value per element; nil or an empty list gives none.
func claimValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []string:
		return slices.Clone(x)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, claimValues(e)...)
		}
		return out
	case bool:
		return []string{strconv.FormatBool(x)}
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}
	case int:
		return []string{strconv.Itoa(x)}
	case int64:
		return []string{strconv.FormatInt(x, 10)}
	}
	return []string{fmt.Sprint(v)}
}

// Response builds the signed (and, when the SP registered an encryption
// certificate, encrypted) Response for a successful sign-in, posted to
// a.ACS (SAML Profiles §4.1.4.2): Destination and Recipient = the ACS,
// Audience = the SP's entityID, InResponseTo the request's ID, a bearer
// SubjectConfirmation valid for the SP's assertion lifetime.
func (idp *IdP) Response(a Assertion, nameID, relayState string) (*Outgoing, error) {
	sp := a.SP
	now := idp.now()
	until := now.Add(sp.Lifetime)
	authn := a.AuthnInstant.UTC()
	if authn.IsZero() || authn.After(now) {
		authn = now
	}
	ac := ACUnspecified
	if a.MFA {
		ac = ACMFA
	}
	nid := &crewjam.NameID{Format: sp.NameIDFormat, Value: nameID}
	if sp.NameIDFormat == NameIDPersistent || sp.NameIDFormat == NameIDTransient {
		nid.NameQualifier, nid.SPNameQualifier = idp.EntityID, sp.EntityID
	}
	as := &crewjam.Assertion{
		ID: newID(), IssueInstant: now, Version: "2.0", Issuer: *idp.issuer(),
		Subject: &crewjam.Subject{NameID: nid, SubjectConfirmations: []crewjam.SubjectConfirmation{{
			Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
			SubjectConfirmationData: &crewjam.SubjectConfirmationData{
				NotOnOrAfter: until, Recipient: a.ACS, InResponseTo: a.InResponseTo},
		}}},
		Conditions: &crewjam.Conditions{NotBefore: now.Add(-time.Minute), NotOnOrAfter: until,
			AudienceRestrictions: []crewjam.AudienceRestriction{{Audience: crewjam.Audience{Value: sp.EntityID}}}},
		AuthnStatements: []crewjam.AuthnStatement{{AuthnInstant: authn, SessionIndex: a.SessionIndex,
			AuthnContext: crewjam.AuthnContext{AuthnContextClassRef: &crewjam.AuthnContextClassRef{Value: ac}}}},
	}
	var attrs []crewjam.Attribute
	for _, at := range sp.Attributes {
		vals := claimValues(a.Claims[at.Claim])
		if len(vals) == 0 {
			continue
		}
		x := crewjam.Attribute{Name: at.Name, NameFormat: at.NameFormat, FriendlyName: at.FriendlyName}
		for _, v := range vals {
			x.Values = append(x.Values, crewjam.AttributeValue{Type: "xs:string", Value: v})
		}
		attrs = append(attrs, x)
	}
	if len(attrs) > 0 {
		as.AttributeStatements = []crewjam.AttributeStatement{{Attributes: attrs}}
	}
	assertionEl := as.Element()
	if sp.Sign == SignAssertion || sp.Sign == SignBoth || sp.Sign == "" {
		sig, err := idp.signature(assertionEl)
		if err != nil {
			return nil, err
		}
		as.Signature = sig
		assertionEl = as.Element()
	}
	if sp.EncryptionCert != nil {
		enc, err := encrypt(assertionEl, sp)
		if err != nil {
			return nil, err
		}
		assertionEl = enc
	}
	return idp.response(sp, a.ACS, a.InResponseTo, crewjam.Status{StatusCode: crewjam.StatusCode{Value: StatusSuccess}},
		assertionEl, sp.Sign == SignResponse || sp.Sign == SignBoth, relayState)
}

// encrypt wraps a (signed) assertion in an EncryptedAssertion for sp's
// encryption certificate: RSA-OAEP key transport, AES-128-CBC content, what
// service providers commonly decrypt (XML Encryption §5.2.1, §5.4.2).
func encrypt(assertionEl *etree.Element, sp *SP) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.SetRoot(assertionEl.Copy())
	plain, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	e := xmlenc.OAEP()
	e.BlockCipher = xmlenc.AES128CBC
	e.DigestMethod = &xmlenc.SHA1
	data, err := e.Encrypt(sp.EncryptionCert, plain, nil)
	if err != nil {
		return nil, fmt.Errorf("samlidp: encrypt assertion for %q: %w", sp.EntityID, err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	out := etree.NewElement("saml:EncryptedAssertion")
	out.CreateAttr("xmlns:saml", nsAssertion)
	out.AddChild(data)
	return out, nil
}

// response wraps assertionEl (nil for an error status) in a Response,
// signed when sign is set, as an HTTP-POST form.
func (idp *IdP) response(sp *SP, acs, inResponseTo string, st crewjam.Status, assertionEl *etree.Element, sign bool, relayState string) (*Outgoing, error) {
	resp := &crewjam.Response{ID: newID(), InResponseTo: inResponseTo, Version: "2.0", IssueInstant: idp.now(),
		Destination: acs, Issuer: idp.issuer(), Status: st}
	el := resp.Element()
	if assertionEl != nil {
		el.AddChild(assertionEl)
	}
	if sign {
		sig, err := idp.signature(el)
		if err != nil {
			return nil, err
		}
		resp.Signature = sig
		el = resp.Element()
		if assertionEl != nil {
			el.AddChild(assertionEl)
		}
	}
	b, err := xmlBytes(el)
	if err != nil {
		return nil, err
	}
	out := &Outgoing{URL: acs, Post: true, ID: resp.ID, Fields: map[string]string{"SAMLResponse": base64.StdEncoding.EncodeToString(b)}}
	if relayState != "" {
		out.Fields["RelayState"] = relayState
	}
	return out, nil
}

// ErrorResponse builds a signed Response with an error status (SAML Core
// §3.2.2.2): top is Requester or Responder, second the second-level code.
func (idp *IdP) ErrorResponse(sp *SP, acs, inResponseTo, top, second, message, relayState string) (*Outgoing, error) {
	st := crewjam.Status{StatusCode: crewjam.StatusCode{Value: top}}
	if second != "" {
		st.StatusCode.StatusCode = &crewjam.StatusCode{Value: second}
	}
	if message != "" {
		st.StatusMessage = &crewjam.StatusMessage{Value: message}
	}
	return idp.response(sp, acs, inResponseTo, st, nil, true, relayState)
}

// LogoutRequest builds a LogoutRequest (SAML Core §3.7.1) to sp's
// SingleLogoutService for the NameID and SessionIndex realmgate issued it,
// in the SP's binding, signed (the query signature, or an enveloped XML
// signature).
func (idp *IdP) LogoutRequest(sp *SP, nameID, sessionIndex, relayState string) (*Outgoing, error) {
	if sp.SLO == nil {
		return nil, fmt.Errorf("samlidp: %q has no SingleLogoutService", sp.EntityID)
	}
	el, id, err := idp.logoutRequestElement(sp, sp.SLO.URL, nameID, sessionIndex, sp.SLO.Binding == BindingPost)
	if err != nil {
		return nil, err
	}
	out, err := idp.outgoing(sp.SLO.Binding, sp.SLO.URL, "SAMLRequest", el, relayState)
	if err != nil {
		return nil, err
	}
	out.ID = id
	return out, nil
}

// LogoutResponse builds the LogoutResponse (SAML Core §3.7.2) to sp's
// LogoutRequest inResponseTo, in the SP's binding, signed. status is ""
// or StatusSuccess for a full logout, or a second-level code under Success
// (PartialLogout, SAML Core §3.2.2.2) when not every participant confirmed.
func (idp *IdP) LogoutResponse(sp *SP, inResponseTo, status, relayState string) (*Outgoing, error) {
	if sp.SLO == nil {
		return nil, fmt.Errorf("samlidp: %q has no SingleLogoutService", sp.EntityID)
	}
	dest := sp.SLO.ResponseURL
	if dest == "" {
		dest = sp.SLO.URL
	}
	st := crewjam.Status{StatusCode: crewjam.StatusCode{Value: StatusSuccess}}
	if status != "" && status != StatusSuccess {
		st.StatusCode.StatusCode = &crewjam.StatusCode{Value: status}
	}
	resp := &crewjam.LogoutResponse{ID: newID(), InResponseTo: inResponseTo, Version: "2.0", IssueInstant: idp.now(),
		Destination: dest, Issuer: idp.issuer(), Status: st}
	el := resp.Element()
	if sp.SLO.Binding == BindingPost {
		sig, err := idp.signature(el)
		if err != nil {
			return nil, err
		}
		resp.Signature = sig
		el = resp.Element()
	}
	return idp.outgoing(sp.SLO.Binding, dest, "SAMLResponse", el, relayState)
}

// outgoing encodes el for binding: HTTP-Redirect (DEFLATE, base64, and a
// query signature over param, RelayState and SigAlg in that order, SAML
// Bindings §3.4.4.1) or HTTP-POST (base64 of the signed XML, §3.5.4).
func (idp *IdP) outgoing(binding, dest, param string, el *etree.Element, relayState string) (*Outgoing, error) {
	raw, err := xmlBytes(el)
	if err != nil {
		return nil, err
	}
	if binding == BindingPost {
		out := &Outgoing{URL: dest, Post: true, Fields: map[string]string{param: base64.StdEncoding.EncodeToString(raw)}}
		if relayState != "" {
			out.Fields["RelayState"] = relayState
		}
		return out, nil
	}
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(raw); err != nil {
		return nil, err
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(sigAlgRSASHA256)
	h := sha256.Sum256([]byte(q))
	sig, err := rsa.SignPKCS1v15(nil, idp.Key, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("samlidp: sign query: %w", err)
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	return &Outgoing{URL: dest + sep + q}, nil
}

// xmlBytes serializes el as a document.
func xmlBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("samlidp: serialize: %w", err)
	}
	return b, nil
}
