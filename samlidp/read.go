package samlidp

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/realmgate/realmgate/providers/saml"
)

// limits bound every message a service provider sends (S45): requests are
// small, so far tighter than the responses of the SP side.
var limits = saml.Limits{MaxEncoded: 48 << 10, MaxBytes: 32 << 10, MaxDepth: 16, MaxElements: 256, MaxAttrs: 24}

// maxRelayState bounds the RelayState read (SAML Bindings §3.4.3 lets an SP
// send 80 bytes; some send a little more).
const maxRelayState = 512

// Message is a protocol message as a binding delivered it, parsed but not
// yet verified: Issuer says whose it claims to be, Verify checks that.
type Message struct {
	// Binding is BindingRedirect or BindingPost.
	Binding string
	// RelayState is the RelayState sent with the message.
	RelayState string
	// Signed reports whether the message carries a signature (of its binding).
	Signed bool

	param string
	root  *etree.Element
	// HTTP-Redirect: the signed octets and the signature (SAML Bindings §3.4.4.1).
	signedQuery, sigAlg string
	sig                 []byte
	// xmlSigned: the signature is an enveloped XML signature.
	xmlSigned bool
}

// Root returns the tag of the message's root element.
func (m *Message) Root() string { return m.root.Tag }

// ReadMessage reads the message param ("SAMLRequest" or "SAMLResponse")
// from r: GET is HTTP-Redirect (DEFLATE, the signature in the query), POST
// is HTTP-POST (an enveloped XML signature). Sizes and XML shape are
// checked before anything else (S45).
func ReadMessage(r *http.Request, param string) (*Message, error) {
	switch r.Method {
	case http.MethodGet:
		return readRedirect(r.URL.RawQuery, param)
	case http.MethodPost:
		return readPost(r, param)
	}
	return nil, invalid("a SAML message by %s", r.Method)
}

// readRedirect reads an HTTP-Redirect message; its signature covers the
// URL-encoded param, RelayState and SigAlg exactly as they appear in the
// query, in that order (SAML Bindings §3.4.4.1).
func readRedirect(rawQuery, param string) (*Message, error) {
	parts := map[string]string{}
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature":
			if _, dup := parts[k]; dup {
				return nil, invalid("%s given twice", k)
			}
			parts[k] = v
		}
	}
	other := "SAMLResponse"
	if param == "SAMLResponse" {
		other = "SAMLRequest"
	}
	if _, both := parts[other]; both {
		return nil, invalid("both SAMLRequest and SAMLResponse")
	}
	enc, err := url.QueryUnescape(parts[param])
	if err != nil || enc == "" {
		return nil, invalid("exactly one %s is required", param)
	}
	m := &Message{Binding: BindingRedirect, param: param}
	if rs, ok := parts["RelayState"]; ok {
		if m.RelayState, err = url.QueryUnescape(rs); err != nil || len(m.RelayState) > maxRelayState {
			return nil, invalid("RelayState is not valid")
		}
	}
	if parts["Signature"] != "" || parts["SigAlg"] != "" {
		alg, err1 := url.QueryUnescape(parts["SigAlg"])
		sigB64, err2 := url.QueryUnescape(parts["Signature"])
		sig, err3 := base64.StdEncoding.DecodeString(sigB64)
		if err := errors.Join(err1, err2, err3); err != nil || alg == "" || len(sig) == 0 {
			return nil, invalid("signature encoding")
		}
		signed := param + "=" + parts[param]
		if rs, ok := parts["RelayState"]; ok {
			signed += "&RelayState=" + rs
		}
		m.signedQuery = signed + "&SigAlg=" + parts["SigAlg"]
		m.sigAlg, m.sig, m.Signed = alg, sig, true
	}
	if m.root, err = parse(enc); err != nil {
		return nil, err
	}
	// SAML Bindings §3.4.4.1 wants the XML signature removed before
	// DEFLATE, but some SPs (crewjam's) sign the XML and send it with no
	// query signature: that signature is then verified as with HTTP-POST.
	if !m.Signed && hasSignature(m.root) {
		m.Signed, m.xmlSigned = true, true
	}
	return m, nil
}

// readPost reads an HTTP-POST message (SAML Bindings §3.5.4).
func readPost(r *http.Request, param string) (*Message, error) {
	if err := r.ParseForm(); err != nil {
		return nil, invalid("read form: %v", err)
	}
	v := r.PostForm[param]
	if len(v) != 1 || v[0] == "" {
		return nil, invalid("exactly one %s is required", param)
	}
	rs := r.PostForm["RelayState"]
	if len(rs) > 1 || (len(rs) == 1 && len(rs[0]) > maxRelayState) {
		return nil, invalid("RelayState is not valid")
	}
	m := &Message{Binding: BindingPost, param: param}
	if len(rs) == 1 {
		m.RelayState = rs[0]
	}
	var err error
	if m.root, err = parse(v[0]); err != nil {
		return nil, err
	}
	m.Signed = hasSignature(m.root)
	m.xmlSigned = m.Signed
	return m, nil
}

// parse bounds, decodes and parses one message (S45).
func parse(encoded string) (*etree.Element, error) {
	raw, err := saml.DecodeMessage(encoded, limits)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if err := saml.CheckXML(raw, limits); err != nil {
		return nil, invalid("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, invalid("not XML")
	}
	return doc.Root(), nil
}

// hasSignature reports whether any ds:Signature is in el's tree.
func hasSignature(el *etree.Element) bool {
	if el.Tag == "Signature" && el.NamespaceURI() == nsDSig {
		return true
	}
	for _, ch := range el.ChildElements() {
		if hasSignature(ch) {
			return true
		}
	}
	return false
}

// Issuer returns the Issuer the message claims, unverified: it only picks
// the service provider whose keys Verify then checks, and Verify reads it
// again from the signed content.
func (m *Message) Issuer() string {
	if iss := child(m.root, "Issuer", nsAssertion); iss != nil {
		return strings.TrimSpace(iss.Text())
	}
	return ""
}

// child returns el's only child element tag in namespace ns, or nil when
// there is none or more than one.
func child(el *etree.Element, tag, ns string) *etree.Element {
	var found *etree.Element
	for _, ch := range el.ChildElements() {
		if ch.Tag == tag && ch.NamespaceURI() == ns {
			if found != nil {
				return nil
			}
			found = ch
		}
	}
	return found
}

// Verify checks the message's signature with sp's certificates and returns
// the root element to read: for HTTP-POST the content the signature covers
// (one enveloped signature, a direct child of the root, whose one
// Reference is the root's ID: no signature wrapping, S40), for
// HTTP-Redirect the message the query signature covers. An unsigned
// message is refused with ErrUnsigned when sp requires signed requests.
// Then it checks what every message must hold (root element want in the
// protocol namespace, Version 2.0, an ID, Issuer = sp's entityID, a fresh
// IssueInstant, Destination = dest when present, and present when signed).
func (idp *IdP) Verify(m *Message, sp *SP, want, dest string) (*etree.Element, error) {
	root := m.root
	switch {
	case !m.Signed && sp.RequireSigned:
		return nil, fmt.Errorf("%w: %s from %q is not signed", ErrUnsigned, want, sp.EntityID)
	case !m.Signed:
	case !m.xmlSigned:
		if err := verifyQuery(m, sp.SigningCerts); err != nil {
			return nil, err
		}
	default:
		verified, err := verifyXML(root, sp.SigningCerts)
		if err != nil {
			return nil, err
		}
		root = verified
	}
	if root.Tag != want || root.NamespaceURI() != nsProtocol {
		return nil, invalid("root element is %s, not samlp:%s", root.Tag, want)
	}
	if v := root.SelectAttrValue("Version", ""); v != "2.0" {
		return nil, invalid("%s version %q", want, v)
	}
	if id := root.SelectAttrValue("ID", ""); id == "" || len(id) > 256 {
		return nil, invalid("%s without a valid ID", want)
	}
	if iss := child(root, "Issuer", nsAssertion); iss == nil || strings.TrimSpace(iss.Text()) != sp.EntityID {
		return nil, invalid("%s issuer is not %q", want, sp.EntityID)
	}
	d, has := root.SelectAttrValue("Destination", ""), root.SelectAttr("Destination") != nil
	if has && d != dest {
		return nil, invalid("%s destination %q is not %q", want, d, dest)
	}
	if m.Signed && !has {
		// SAML Bindings §3.4.5.2, §3.5.5.2: a signed message names its destination.
		return nil, invalid("signed %s without a Destination", want)
	}
	ii, err := parseTime(root.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return nil, invalid("%s IssueInstant: %v", want, err)
	}
	now := idp.now()
	if ii.After(now.Add(DefaultClockSkew)) {
		return nil, invalid("%s issued in the future (%s)", want, ii.Format(time.RFC3339))
	}
	if now.Sub(ii) > maxIssueDelay+DefaultClockSkew {
		return nil, invalid("%s expired (issued %s)", want, ii.Format(time.RFC3339))
	}
	return root, nil
}

// verifyQuery checks an HTTP-Redirect signature: RSA with SHA-256 or
// SHA-512 (SHA-1 is refused) by one of certs.
func verifyQuery(m *Message, certs []*x509.Certificate) error {
	var hash crypto.Hash
	var digest []byte
	switch m.sigAlg {
	case sigAlgRSASHA256:
		h := sha256.Sum256([]byte(m.signedQuery))
		hash, digest = crypto.SHA256, h[:]
	case sigAlgRSASHA512:
		h := sha512.Sum512([]byte(m.signedQuery))
		hash, digest = crypto.SHA512, h[:]
	default:
		return invalid("signature algorithm %q is not accepted (RSA-SHA256 or RSA-SHA512)", m.sigAlg)
	}
	for _, cert := range certs {
		if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, hash, digest, m.sig) == nil {
			return nil
		}
	}
	return invalid("the query signature does not verify with the app's signing certificate")
}

// xmlSigAlgs are the XML signature and digest methods accepted (no SHA-1).
var xmlSigAlgs = map[string]bool{
	sigAlgRSASHA256: true, sigAlgRSASHA512: true,
	"http://www.w3.org/2001/04/xmlenc#sha256": true, "http://www.w3.org/2001/04/xmlenc#sha512": true,
}

// verifyXML checks an enveloped signature and returns the signed content.
func verifyXML(root *etree.Element, certs []*x509.Certificate) (*etree.Element, error) {
	id := root.SelectAttrValue("ID", "")
	var sig *etree.Element
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if el.Tag == "Signature" && el.NamespaceURI() == nsDSig {
			refs := el.FindElements("./SignedInfo/Reference")
			if sig != nil || el.Parent() != root || len(refs) != 1 || id == "" ||
				refs[0].SelectAttrValue("URI", "") != "#"+id {
				return invalid("a signature that does not sign the message itself (signature wrapping)")
			}
			sig = el
		}
		if el.Tag == "Object" && el.NamespaceURI() == nsDSig {
			return invalid("ds:Object is not accepted")
		}
		for _, ch := range el.ChildElements() {
			if err := walk(ch); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	if sig == nil {
		return nil, invalid("no signature")
	}
	for _, path := range []string{"./SignedInfo/SignatureMethod", "./SignedInfo/Reference/DigestMethod"} {
		el := sig.FindElement(path)
		if el == nil || !xmlSigAlgs[el.SelectAttrValue("Algorithm", "")] {
			return nil, invalid("signature algorithm is not accepted (RSA-SHA256 or RSA-SHA512, SHA-256 or SHA-512 digests)")
		}
	}
	if len(certs) == 0 {
		return nil, invalid("the app has no signing certificate to verify with")
	}
	var errs []error
	for _, cert := range certs {
		// SAML trusts the registered key itself: a certificate's dates do
		// not matter (SAML Metadata §2.4.1.1), so it is checked inside them.
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(cert.NotBefore.Add(time.Second))
		verified, err := validateGuard(vc, root)
		if err == nil {
			return verified, nil
		}
		errs = append(errs, err)
	}
	return nil, invalid("signature does not verify with the app's signing certificate: %v", errors.Join(errs...))
}

// validateGuard runs goxmldsig, turning a panic on hostile input into an
// error. The element it returns is the signed content, the only one read.
func validateGuard(vc *dsig.ValidationContext, el *etree.Element) (out *etree.Element, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return vc.Validate(el)
}

// parseTime reads an xs:dateTime in UTC (SAML Core §1.3.3).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// AuthnRequest is what realmgate acts on in a verified AuthnRequest (SAML
// Core §3.4.1).
type AuthnRequest struct {
	// ID is answered in InResponseTo.
	ID string
	// ACS is the registered endpoint the Response goes to.
	ACS string
	// ForceAuthn asks for a fresh authentication; IsPassive forbids any interaction.
	ForceAuthn, IsPassive bool
	// MFA: RequestedAuthnContext asked for multi-factor authentication.
	MFA bool
	// NameIDPolicyErr is ErrNameIDPolicy when NameIDPolicy asks for a
	// format sp is not registered for: answered at ACS with InvalidNameIDPolicy.
	NameIDPolicyErr error
}

// mfaClasses are AuthnContextClassRefs that ask for multi-factor authentication.
var mfaClasses = map[string]bool{
	ACMFA: true, "http://schemas.microsoft.com/claims/multipleauthn": true,
	"urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract": true,
	"urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken":           true,
}

// ParseAuthnRequest reads a verified AuthnRequest for sp. The ACS is
// exactly a registered one (S01): AssertionConsumerServiceURL byte for
// byte, or AssertionConsumerServiceIndex, or the default when it names
// neither; any other is refused (never redirected to). A ProtocolBinding
// other than HTTP-POST is refused.
func ParseAuthnRequest(root *etree.Element, sp *SP) (*AuthnRequest, error) {
	ar := &AuthnRequest{ID: root.SelectAttrValue("ID", "")}
	url, hasURL := root.SelectAttrValue("AssertionConsumerServiceURL", ""), root.SelectAttr("AssertionConsumerServiceURL") != nil
	idx, hasIdx := root.SelectAttrValue("AssertionConsumerServiceIndex", ""), root.SelectAttr("AssertionConsumerServiceIndex") != nil
	switch {
	case hasURL && hasIdx:
		return nil, invalid("AuthnRequest names both AssertionConsumerServiceURL and Index (SAML Core §3.4.1)")
	case hasURL:
		for _, e := range sp.ACS {
			if e.URL == url { // S01: exact match
				ar.ACS = e.URL
			}
		}
		if ar.ACS == "" {
			return nil, invalid("AssertionConsumerServiceURL %q is not registered for %q", url, sp.EntityID)
		}
	case hasIdx:
		n, err := strconv.Atoi(idx)
		if err == nil {
			for _, e := range sp.ACS {
				if e.Index == n {
					ar.ACS = e.URL
				}
			}
		}
		if ar.ACS == "" {
			return nil, invalid("AssertionConsumerServiceIndex %q is not registered for %q", idx, sp.EntityID)
		}
	default:
		e, ok := sp.DefaultACS()
		if !ok {
			return nil, invalid("%q has no ACS", sp.EntityID)
		}
		ar.ACS = e.URL
	}
	if pb := root.SelectAttrValue("ProtocolBinding", ""); pb != "" && pb != BindingPost {
		return nil, invalid("ProtocolBinding %q: realmgate answers with HTTP-POST only", pb)
	}
	var err error
	if ar.ForceAuthn, err = xsBool(root, "ForceAuthn"); err != nil {
		return nil, err
	}
	if ar.IsPassive, err = xsBool(root, "IsPassive"); err != nil {
		return nil, err
	}
	if p := child(root, "NameIDPolicy", nsProtocol); p != nil {
		f := p.SelectAttrValue("Format", "")
		if f != "" && f != nameIDUnspecified && f != sp.NameIDFormat {
			ar.NameIDPolicyErr = fmt.Errorf("%w: %q asked, %q registered", ErrNameIDPolicy, f, sp.NameIDFormat)
		}
	}
	if rac := child(root, "RequestedAuthnContext", nsProtocol); rac != nil {
		for _, ref := range rac.SelectElements("AuthnContextClassRef") {
			if mfaClasses[strings.TrimSpace(ref.Text())] {
				ar.MFA = true
			}
		}
	}
	return ar, nil
}

// xsBool reads an optional xs:boolean attribute.
func xsBool(el *etree.Element, name string) (bool, error) {
	switch v := el.SelectAttrValue(name, ""); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, invalid("%s=%q is not a boolean", name, v)
	}
}

// LogoutRequest is what realmgate acts on in a verified LogoutRequest
// (SAML Core §3.7.1).
type LogoutRequest struct {
	// ID is answered in InResponseTo.
	ID string
	// NameID is the principal's NameID as issued to the SP.
	NameID string
	// SessionIndexes name the sessions to end; empty: every session of NameID.
	SessionIndexes []string
}

// ParseLogoutRequest reads a verified LogoutRequest: a plain NameID (no
// EncryptedID or BaseID) and an unexpired NotOnOrAfter.
func (idp *IdP) ParseLogoutRequest(root *etree.Element) (*LogoutRequest, error) {
	if v := root.SelectAttrValue("NotOnOrAfter", ""); v != "" {
		na, err := parseTime(v)
		if err != nil {
			return nil, invalid("LogoutRequest NotOnOrAfter: %v", err)
		}
		if !idp.now().Before(na.Add(DefaultClockSkew)) {
			return nil, invalid("LogoutRequest expired at %s", na.Format(time.RFC3339))
		}
	}
	for _, ch := range root.ChildElements() {
		if ch.Tag == "EncryptedID" || ch.Tag == "BaseID" {
			return nil, invalid("LogoutRequest with %s is not supported", ch.Tag)
		}
	}
	n := child(root, "NameID", nsAssertion)
	if n == nil || strings.TrimSpace(n.Text()) == "" {
		return nil, invalid("LogoutRequest without one NameID")
	}
	lr := &LogoutRequest{ID: root.SelectAttrValue("ID", ""), NameID: strings.TrimSpace(n.Text())}
	for _, si := range root.SelectElements("SessionIndex") {
		if si.NamespaceURI() == nsProtocol && strings.TrimSpace(si.Text()) != "" && len(lr.SessionIndexes) < 16 {
			lr.SessionIndexes = append(lr.SessionIndexes, strings.TrimSpace(si.Text()))
		}
	}
	return lr, nil
}

// CheckLogoutResponse checks a verified LogoutResponse answers requestID;
// it returns the top-level status code.
func CheckLogoutResponse(root *etree.Element, requestID string) (string, error) {
	if requestID == "" || root.SelectAttrValue("InResponseTo", "") != requestID {
		return "", invalid("LogoutResponse InResponseTo does not match the LogoutRequest")
	}
	st := child(root, "Status", nsProtocol)
	if st == nil {
		return "", invalid("LogoutResponse without Status")
	}
	code := child(st, "StatusCode", nsProtocol)
	if code == nil {
		return "", invalid("LogoutResponse without StatusCode")
	}
	return code.SelectAttrValue("Value", ""), nil
}

// RequestID returns the ID of the message's root element, unverified (for
// the replay check, after Verify).
func RequestID(root *etree.Element) string { return root.SelectAttrValue("ID", "") }
