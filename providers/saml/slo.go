package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/realmgate/realmgate/providers"
)

// Single Logout (SAML Profiles §4.4). realmgate, as SP, sends a
// LogoutRequest when the user signs out of realmgate (SP-initiated), and
// answers an IdP's LogoutRequest by ending the user's realmgate session
// (IdP-initiated). Both directions meet at the SLO endpoint, which the
// broker serves beside the ACS: <issuer>/saml/<id>/slo.
//
// Outbound messages use the HTTP-Redirect binding (SAML Bindings §3.4),
// signed over the query string when the SP has a key. Inbound messages are
// accepted with the HTTP-Redirect binding (GET, signature over the query)
// or the HTTP-POST binding (POST, enveloped XML signature); unsigned ones
// are refused: Profiles §4.4.4.1 and §4.4.4.2 require a LogoutRequest and a
// LogoutResponse to be signed or otherwise authenticated, and the front
// channel authenticates nothing.

// Query signature algorithms (XML DSig More, RFC 6931 §2.3.2). SHA-1 is refused.
const (
	sigAlgRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	sigAlgRSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
)

// SLOURL returns realmgate's Single Logout endpoint for this IdP: the ACS
// URL with its last segment "acs" replaced by "slo", or "" when the ACS URL
// does not end in /acs (then Single Logout is off).
func (c *Connector) SLOURL() string {
	s := c.acs.String()
	if !strings.HasSuffix(s, "/acs") {
		return ""
	}
	return strings.TrimSuffix(s, "/acs") + "/slo"
}

// sloEndpoints are the SingleLogoutService entries of the SP metadata
// (SAML Metadata §2.4.2): both bindings the SLO endpoint accepts.
func (c *Connector) sloEndpoints() []crewjam.Endpoint {
	u := c.SLOURL()
	if u == "" {
		return nil
	}
	return []crewjam.Endpoint{{Binding: BindingRedirect, Location: u}, {Binding: BindingPOST, Location: u}}
}

// idpSLO returns the IdP's HTTP-Redirect SingleLogoutService: where requests
// go (Location) and where responses go (ResponseLocation, default Location).
func idpSLO(md *idpMetadata) (request, response string) {
	for _, d := range md.entity.IDPSSODescriptors {
		for _, s := range d.SingleLogoutServices {
			if s.Binding == BindingRedirect && s.Location != "" {
				response = s.Location
				if s.ResponseLocation != "" {
					response = s.ResponseLocation
				}
				return s.Location, response
			}
		}
	}
	return "", ""
}

// idpCerts returns every signing certificate of the IdP metadata.
func idpCerts(md *idpMetadata) []*x509.Certificate {
	var out []*x509.Certificate
	for _, d := range md.entity.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, xc := range k.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					continue
				}
				if cert, err := x509.ParseCertificate(der); err == nil {
					out = append(out, cert)
				}
			}
		}
	}
	return out
}

func messageID() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "id-" + hex.EncodeToString(b), nil
}

// LogoutRequestURL builds an SP-initiated LogoutRequest (SAML Core §3.7.1)
// for the upstream session described by ident (its name_id, name_id_format
// and session_index claims, as HandleCallback set them) and returns the
// HTTP-Redirect URL to send the browser to, with relayState, and the
// request ID a LogoutResponse must answer (InResponseTo). It returns an
// empty URL and no error when the IdP publishes no HTTP-Redirect
// SingleLogoutService or this SP has no SLO endpoint.
func (c *Connector) LogoutRequestURL(ctx context.Context, ident providers.Identity, relayState string) (to, requestID string, err error) {
	md, err := c.idp.get(ctx)
	if err != nil {
		return "", "", err
	}
	dest, _ := idpSLO(md)
	if dest == "" || c.SLOURL() == "" {
		return "", "", nil
	}
	nameID, _ := ident.Claims["name_id"].(string)
	if nameID == "" && c.cfg.SubjectAttribute == "" {
		nameID = ident.Subject
	}
	if nameID == "" {
		return "", "", fmt.Errorf("saml: idp %s: the session has no NameID to log out", c.cfg.ID)
	}
	id, err := messageID()
	if err != nil {
		return "", "", err
	}
	format, _ := ident.Claims["name_id_format"].(string)
	req := crewjam.LogoutRequest{ID: id, Version: "2.0", IssueInstant: c.now().UTC(), Destination: dest,
		Issuer: &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: c.cfg.EntityID},
		NameID: &crewjam.NameID{Format: format, Value: nameID}}
	if si, _ := ident.Claims["session_index"].(string); si != "" {
		req.SessionIndex = &crewjam.SessionIndex{Value: si}
	}
	to, err = c.redirectURL(dest, "SAMLRequest", req.Element(), relayState)
	if err != nil {
		return "", "", fmt.Errorf("saml: idp %s: encode LogoutRequest: %w", c.cfg.ID, err)
	}
	return to, id, nil
}

// LogoutResponseURL builds the Success LogoutResponse (SAML Core §3.7.2)
// to the IdP's LogoutRequest inResponseTo, and returns its HTTP-Redirect
// URL carrying relayState back unchanged (SAML Bindings §3.4.3).
func (c *Connector) LogoutResponseURL(ctx context.Context, inResponseTo, relayState string) (string, error) {
	md, err := c.idp.get(ctx)
	if err != nil {
		return "", err
	}
	_, dest := idpSLO(md)
	if dest == "" {
		return "", fmt.Errorf("saml: idp %s: metadata has no HTTP-Redirect SingleLogoutService: %w", c.cfg.ID, providers.ErrUnavailable)
	}
	id, err := messageID()
	if err != nil {
		return "", err
	}
	resp := crewjam.LogoutResponse{ID: id, InResponseTo: inResponseTo, Version: "2.0", IssueInstant: c.now().UTC(),
		Destination: dest, Issuer: &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: c.cfg.EntityID},
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}}}
	to, err := c.redirectURL(dest, "SAMLResponse", resp.Element(), relayState)
	if err != nil {
		return "", fmt.Errorf("saml: idp %s: encode LogoutResponse: %w", c.cfg.ID, err)
	}
	return to, nil
}

// redirectURL encodes el for the HTTP-Redirect binding (SAML Bindings
// §3.4.4.1): DEFLATE, base64, URL-encode; with an SP key, SigAlg and a
// Signature over "param=...&RelayState=...&SigAlg=..." in that order.
func (c *Connector) redirectURL(dest, param string, el *etree.Element, relayState string) (string, error) {
	raw, err := xmlBytes(el)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := fw.Write(raw); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if key, ok := c.cfg.Key.(*rsa.PrivateKey); ok && key != nil {
		q += "&SigAlg=" + url.QueryEscape(sigAlgRSASHA256)
		h := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
		if err != nil {
			return "", err
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	return dest + sep + q, nil
}

// HandleLogoutResponse validates the IdP's LogoutResponse (SAML Core
// §3.7.2) arriving at the SLO endpoint (GET: HTTP-Redirect; POST:
// HTTP-POST) for the LogoutRequest requestID: signature by a key of the
// IdP metadata, Issuer, Destination, InResponseTo, IssueInstant, and status
// Success. A PartialLogout or other non-success status is
// providers.ErrAccessDenied; every other failure is
// providers.ErrInvalidResponse.
func (c *Connector) HandleLogoutResponse(ctx context.Context, r *http.Request, requestID string) error {
	md, err := c.idp.get(ctx)
	if err != nil {
		return err
	}
	root, err := c.readSLO(r, "SAMLResponse", "LogoutResponse", md)
	if err != nil {
		return err
	}
	if requestID == "" || root.SelectAttrValue("InResponseTo", "") != requestID {
		return c.invalid("LogoutResponse InResponseTo does not match the LogoutRequest")
	}
	if code := statusCode(root); code != crewjam.StatusSuccess {
		if nested := nestedStatus(root); nested != "" {
			code += " / " + nested
		}
		return fmt.Errorf("saml: idp %s: logout status %s: %w", c.cfg.ID, code, providers.ErrAccessDenied)
	}
	return nil
}

// HandleLogoutRequest validates an IdP-initiated LogoutRequest (SAML Core
// §3.7.1, Profiles §4.4.4.1) arriving at the SLO endpoint: signature,
// Issuer, Destination, IssueInstant, NotOnOrAfter, a plain NameID, and a
// first use of its ID (the replay cache, until it could no longer be
// accepted). It returns whom to log out: Subject is the NameID when the
// NameID is the connector's subject (no SubjectAttribute), SID the first
// SessionIndex, JTI the request ID (for the response's InResponseTo).
func (c *Connector) HandleLogoutRequest(ctx context.Context, r *http.Request) (providers.LogoutClaims, error) {
	md, err := c.idp.get(ctx)
	if err != nil {
		return providers.LogoutClaims{}, err
	}
	root, err := c.readSLO(r, "SAMLRequest", "LogoutRequest", md)
	if err != nil {
		return providers.LogoutClaims{}, err
	}
	now := c.now()
	until := now.Add(crewjam.MaxIssueDelay + 2*c.cfg.ClockSkew)
	if v := root.SelectAttrValue("NotOnOrAfter", ""); v != "" {
		na, err := parseTime(v)
		if err != nil {
			return providers.LogoutClaims{}, c.invalid("LogoutRequest NotOnOrAfter: %v", err)
		}
		if !now.Before(na.Add(c.cfg.ClockSkew)) {
			return providers.LogoutClaims{}, c.invalid("LogoutRequest expired at %s", na.Format(time.RFC3339))
		}
		if e := na.Add(c.cfg.ClockSkew); e.After(until) {
			until = e
		}
	}
	if until.After(now.Add(24 * time.Hour)) {
		until = now.Add(24 * time.Hour)
	}
	for _, ch := range root.ChildElements() {
		if ch.Tag == "EncryptedID" || ch.Tag == "BaseID" {
			return providers.LogoutClaims{}, c.invalid("LogoutRequest with %s is not supported", ch.Tag)
		}
	}
	nameEl := one(root, "NameID")
	if nameEl == nil || nameEl.NamespaceURI() != nsAssertion || strings.TrimSpace(nameEl.Text()) == "" {
		return providers.LogoutClaims{}, c.invalid("LogoutRequest without one NameID")
	}
	lc := providers.LogoutClaims{JTI: root.SelectAttrValue("ID", ""), Expiry: until}
	if c.cfg.SubjectAttribute == "" {
		lc.Subject = strings.TrimSpace(nameEl.Text())
	}
	for _, si := range root.SelectElements("SessionIndex") {
		if si.NamespaceURI() == nsProtocol && strings.TrimSpace(si.Text()) != "" {
			lc.SID = strings.TrimSpace(si.Text())
			break
		}
	}
	rc := c.replayCache()
	if rc == nil {
		return providers.LogoutClaims{}, fmt.Errorf("saml: idp %s: %w", c.cfg.ID, ErrNoReplayCache)
	}
	seen, err := rc.Seen(ctx, "slo\x00"+md.entity.EntityID+"\x00"+lc.JTI, until)
	if err != nil {
		return providers.LogoutClaims{}, fmt.Errorf("saml: idp %s: replay cache: %w: %w", c.cfg.ID, providers.ErrUnavailable, err)
	}
	if seen {
		return providers.LogoutClaims{}, c.invalid("LogoutRequest %q was already used (replay)", lc.JTI)
	}
	return lc, nil
}

// readSLO reads the message param (SAMLRequest or SAMLResponse) of r,
// verifies its signature for its binding, and checks what every logout
// message must hold: the root element want in the protocol namespace,
// Version 2.0, an ID, Issuer = the IdP's entityID, Destination = our SLO
// URL, and a fresh IssueInstant. It returns the verified root element.
func (c *Connector) readSLO(r *http.Request, param, want string, md *idpMetadata) (*etree.Element, error) {
	slo := c.SLOURL()
	if slo == "" {
		return nil, c.invalid("single logout is off: the ACS URL does not end in /acs")
	}
	certs := idpCerts(md)
	var root *etree.Element
	var err error
	switch r.Method {
	case http.MethodGet:
		root, err = c.readRedirect(r.URL.RawQuery, param, certs)
	case http.MethodPost:
		root, err = c.readPost(r, param, certs)
	default:
		err = c.invalid("logout message by %s", r.Method)
	}
	if err != nil {
		return nil, err
	}
	if root.Tag != want || root.NamespaceURI() != nsProtocol {
		return nil, c.invalid("root element is %s, not samlp:%s", root.Tag, want)
	}
	if v := root.SelectAttrValue("Version", ""); v != "2.0" {
		return nil, c.invalid("%s version %q", want, v)
	}
	if root.SelectAttrValue("ID", "") == "" {
		return nil, c.invalid("%s without ID", want)
	}
	if iss := one(root, "Issuer"); iss == nil || iss.NamespaceURI() != nsAssertion || strings.TrimSpace(iss.Text()) != md.entity.EntityID {
		return nil, c.invalid("%s issuer is not %q", want, md.entity.EntityID)
	}
	if d := root.SelectAttrValue("Destination", ""); d != slo {
		return nil, c.invalid("%s destination %q is not our SLO URL", want, d)
	}
	// A non-empty request id: the solicited window (MaxIssueDelay + skew).
	if err := c.checkInstant(root, want, c.now()); err != nil {
		return nil, err
	}
	return root, nil
}

// parseMessage bounds, decodes (inflating the redirect binding's DEFLATE)
// and parses one logout message (S45).
func (c *Connector) parseMessage(encoded string) (*etree.Element, error) {
	raw, err := decodeResponse(encoded, c.limits)
	if err != nil {
		return nil, c.invalid("%v", err)
	}
	if err := scanXML(raw, c.limits); err != nil {
		return nil, c.invalid("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, c.invalid("not XML")
	}
	return doc.Root(), nil
}

// readRedirect verifies an HTTP-Redirect message (SAML Bindings
// §3.4.4.1): the signature covers the URL-encoded param, RelayState and
// SigAlg exactly as they appear in the query, in that order.
func (c *Connector) readRedirect(rawQuery, param string, certs []*x509.Certificate) (*etree.Element, error) {
	parts := map[string]string{}
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case param, "RelayState", "SigAlg", "Signature":
			if _, dup := parts[k]; dup {
				return nil, c.invalid("%s given twice", k)
			}
			parts[k] = v
		}
	}
	msg, err := url.QueryUnescape(parts[param])
	if err != nil || msg == "" {
		return nil, c.invalid("exactly one %s is required", param)
	}
	if parts["Signature"] == "" || parts["SigAlg"] == "" {
		return nil, c.invalid("unsigned %s (Profiles §4.4.4 requires a signature)", param)
	}
	alg, err1 := url.QueryUnescape(parts["SigAlg"])
	sigB64, err2 := url.QueryUnescape(parts["Signature"])
	sig, err3 := base64.StdEncoding.DecodeString(sigB64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, c.invalid("signature encoding: %v", err)
	}
	signed := param + "=" + parts[param]
	if rs, ok := parts["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + parts["SigAlg"]
	var hash crypto.Hash
	var digest []byte
	switch alg {
	case sigAlgRSASHA256:
		h := sha256.Sum256([]byte(signed))
		hash, digest = crypto.SHA256, h[:]
	case sigAlgRSASHA512:
		h := sha512.Sum512([]byte(signed))
		hash, digest = crypto.SHA512, h[:]
	default:
		return nil, c.invalid("signature algorithm %q is not accepted", alg)
	}
	ok := false
	for _, cert := range certs {
		if pub, isRSA := cert.PublicKey.(*rsa.PublicKey); isRSA && rsa.VerifyPKCS1v15(pub, hash, digest, sig) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return nil, c.invalid("%s signature does not verify with the IdP's keys", param)
	}
	return c.parseMessage(msg)
}

// readPost verifies an HTTP-POST message (SAML Bindings §3.5.4): one
// enveloped signature, a direct child of the root, with one Reference to
// the root's ID (no signature wrapping, S40), made by a key of the metadata.
func (c *Connector) readPost(r *http.Request, param string, certs []*x509.Certificate) (*etree.Element, error) {
	if err := r.ParseForm(); err != nil {
		return nil, c.invalid("read form: %v", err)
	}
	v := r.PostForm[param]
	if len(v) != 1 || v[0] == "" {
		return nil, c.invalid("exactly one %s is required", param)
	}
	root, err := c.parseMessage(v[0])
	if err != nil {
		return nil, err
	}
	id := root.SelectAttrValue("ID", "")
	sigs := 0
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if el.Tag == "Signature" {
			sigs++
			refs := el.FindElements("./SignedInfo/Reference")
			if el.Parent() != root || el.NamespaceURI() != nsDSig || len(refs) != 1 || id == "" ||
				refs[0].SelectAttrValue("URI", "") != "#"+id {
				return c.invalid("signature under %s does not sign the %s", tagOf(el.Parent()), param)
			}
		}
		if el.Tag == "Object" && el.NamespaceURI() == nsDSig {
			return c.invalid("ds:Object is not accepted")
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
	if sigs != 1 {
		return nil, c.invalid("%s needs one enveloped signature, has %d", param, sigs)
	}
	if len(certs) == 0 {
		return nil, c.invalid("no IdP signing certificate")
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	vc.IdAttribute = "ID"
	verified, err := validateGuard(vc, root)
	if err != nil {
		return nil, c.invalid("%s signature: %v", param, err)
	}
	return verified, nil
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
