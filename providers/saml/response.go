package saml

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"

	"github.com/realmgate/realmgate/providers"
)

// XML namespaces (SAML Core §1.2, XML DSig, XML Enc).
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"

	bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// Status codes that mean the user or the IdP refused (SAML Core §3.2.2.2).
var deniedStatus = map[string]bool{
	"urn:oasis:names:tc:SAML:2.0:status:Requester":           true,
	"urn:oasis:names:tc:SAML:2.0:status:AuthnFailed":         true,
	"urn:oasis:names:tc:SAML:2.0:status:NoPassive":           true,
	"urn:oasis:names:tc:SAML:2.0:status:RequestDenied":       true,
	"urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext":      true,
	"urn:oasis:names:tc:SAML:2.0:status:NoAvailableIDP":      true,
	"urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal":    true,
	"urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy": true,
}

// invalid wraps a validation failure as providers.ErrInvalidResponse.
func (c *Connector) invalid(format string, args ...any) error {
	return fmt.Errorf("saml: idp %s: %w: %s", c.cfg.ID, providers.ErrInvalidResponse, fmt.Sprintf(format, args...))
}

// validate runs every check on a SAMLResponse form value. requestID is the
// AuthnRequest ID for an SP-initiated login, empty for an unsolicited one.
func (c *Connector) validate(ctx context.Context, encoded string, requestID string) (providers.Identity, error) {
	raw, err := decodeResponse(encoded, c.limits)
	if err != nil {
		return providers.Identity{}, c.invalid("%v", err)
	}
	sp, md, err := c.serviceProvider(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	resp, assertionEl, err := c.checkShape(raw)
	if err != nil {
		return providers.Identity{}, err
	}
	// Status first: a refusal carries no assertion.
	if code := statusCode(resp); code != crewjam.StatusSuccess {
		if deniedStatus[code] || deniedStatus[nestedStatus(resp)] {
			return providers.Identity{}, fmt.Errorf("saml: idp %s: status %s: %w", c.cfg.ID, code, providers.ErrAccessDenied)
		}
		return providers.Identity{}, c.invalid("status %q", code)
	}
	if assertionEl == nil {
		return providers.Identity{}, c.invalid("no assertion")
	}
	now := c.now()
	if err := c.checkEnvelope(resp, md, requestID, now); err != nil {
		return providers.Identity{}, err
	}
	if err := c.checkAssertion(assertionEl, md, requestID, now); err != nil {
		return providers.Identity{}, err
	}
	// The library verifies the signatures (response or assertion; an
	// unsigned assertion in an unsigned response is refused), decrypts, and
	// repeats the basic checks.
	possible := []string{requestID}
	if requestID == "" {
		sp.AllowIDPInitiated = true
		possible = nil
	}
	a, err := parseWithLibrary(sp, raw, possible, *c.acs)
	if err != nil {
		return providers.Identity{}, c.invalid("%v", err)
	}
	// The assertion the library verified is the one we inspected.
	if a.ID != assertionEl.SelectAttrValue("ID", "") {
		return providers.Identity{}, c.invalid("verified assertion is not the inspected one")
	}
	// S43: each assertion once, kept until it could no longer be accepted.
	rc := c.replayCache()
	if rc == nil {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: %w", c.cfg.ID, ErrNoReplayCache)
	}
	until := replayUntil(a, c.cfg.ClockSkew, now)
	seen, err := rc.Seen(ctx, md.entity.EntityID+"\x00"+a.ID, until)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: replay cache: %w: %w", c.cfg.ID, providers.ErrUnavailable, err)
	}
	if seen {
		return providers.Identity{}, c.invalid("assertion %q was already used (replay)", a.ID)
	}
	return c.identity(a, md)
}

// parseWithLibrary calls crewjam/saml, turning a panic on hostile input into
// an error.
func parseWithLibrary(sp *crewjam.ServiceProvider, raw []byte, possible []string, acs url.URL) (a *crewjam.Assertion, err error) {
	defer func() {
		if p := recover(); p != nil {
			a, err = nil, fmt.Errorf("library panic: %v", p)
		}
	}()
	a, err = sp.ParseXMLResponse(raw, possible, acs)
	var ire *crewjam.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		err = ire.PrivateErr
	}
	return a, err
}

// replayUntil is when the assertion can no longer be accepted: its latest
// NotOnOrAfter plus the skew, at most a day ahead.
func replayUntil(a *crewjam.Assertion, skew time.Duration, now time.Time) time.Time {
	until := now.Add(crewjam.MaxIssueDelay + skew)
	if a.Conditions != nil && a.Conditions.NotOnOrAfter.After(until) {
		until = a.Conditions.NotOnOrAfter
	}
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; d != nil && d.NotOnOrAfter.After(until) {
				until = d.NotOnOrAfter
			}
		}
	}
	until = until.Add(skew)
	if until.After(now.Add(24 * time.Hour)) {
		until = now.Add(24 * time.Hour)
	}
	return until
}

// checkShape enforces the document structure that defeats XML signature
// wrapping (S40) and returns the Response and the (decrypted) Assertion.
func (c *Connector) checkShape(raw []byte) (*etree.Element, *etree.Element, error) {
	if err := scanXML(raw, c.limits); err != nil {
		return nil, nil, c.invalid("%v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, nil, c.invalid("not XML")
	}
	root := doc.Root()
	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, nil, c.invalid("root element is %s, not samlp:Response", root.Tag)
	}
	if err := c.checkTree(root, root); err != nil {
		return nil, nil, err
	}
	var assertion, encrypted *etree.Element
	for _, ch := range root.ChildElements() {
		switch {
		case ch.Tag == "Assertion" && ch.NamespaceURI() == nsAssertion:
			assertion = ch
		case ch.Tag == "EncryptedAssertion" && ch.NamespaceURI() == nsAssertion:
			encrypted = ch
		}
	}
	if encrypted != nil {
		var err error
		if assertion, err = c.decrypt(encrypted); err != nil {
			return nil, nil, err
		}
	}
	return root, assertion, nil
}

// checkTree walks the Response (or a decrypted Assertion): at most one
// assertion in the whole document and it is a direct child of the Response;
// Signature elements only directly under the Response or the Assertion, one
// each, with exactly one Reference to their parent's ID; no ds:Object, no
// Advice; every ID attribute unique.
func (c *Connector) checkTree(top, root *etree.Element) error {
	ids := map[string]bool{}
	assertions := 0
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		for _, a := range el.Attr {
			if strings.EqualFold(a.Key, "ID") && a.Space == "" {
				if ids[a.Value] {
					return c.invalid("duplicate ID %q", a.Value)
				}
				ids[a.Value] = true
			}
		}
		parent := el.Parent()
		switch el.Tag {
		case "Assertion", "EncryptedAssertion":
			assertions++
			if assertions > 1 {
				return c.invalid("more than one assertion")
			}
			placed := (el == top && el.Tag == "Assertion") ||
				(parent == root && root.Tag == "Response" && el.NamespaceURI() == nsAssertion)
			if !placed {
				return c.invalid("assertion outside its place (under %s)", tagOf(parent))
			}
		case "Signature":
			placed := parent == root || (parent != nil && parent.Tag == "Assertion" &&
				parent.NamespaceURI() == nsAssertion && parent.Parent() == root && root.Tag == "Response")
			if el.NamespaceURI() != nsDSig || !placed {
				return c.invalid("signature under %s", tagOf(parent))
			}
			if n := len(parent.SelectElements(el.Tag)); n != 1 {
				return c.invalid("%d signatures on %s", n, parent.Tag)
			}
			refs := el.FindElements("./SignedInfo/Reference")
			if len(refs) != 1 {
				return c.invalid("signature with %d references", len(refs))
			}
			id := parent.SelectAttrValue("ID", "")
			if id == "" || refs[0].SelectAttrValue("URI", "") != "#"+id {
				return c.invalid("signature reference does not name its parent")
			}
		case "Object":
			if el.NamespaceURI() == nsDSig {
				return c.invalid("ds:Object is not accepted")
			}
		case "Advice":
			return c.invalid("assertion Advice is not accepted")
		}
		for _, ch := range el.ChildElements() {
			if err := walk(ch); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(top)
}

func tagOf(el *etree.Element) string {
	if el == nil {
		return "the document"
	}
	return el.Tag
}

// decrypt returns the Assertion inside an EncryptedAssertion (XML Enc §4.2)
// after the same limits and shape checks as a plain one.
func (c *Connector) decrypt(encrypted *etree.Element) (*etree.Element, error) {
	if c.cfg.Key == nil {
		return nil, c.invalid("encrypted assertion and no SP key configured")
	}
	data := encrypted.FindElement("./EncryptedData")
	if data == nil || data.NamespaceURI() != nsXMLEnc {
		return nil, c.invalid("EncryptedAssertion without EncryptedData")
	}
	var key any = c.cfg.Key
	if keyEl := encrypted.FindElement("./EncryptedKey"); keyEl != nil {
		k, err := decryptGuard(c.cfg.Key, keyEl)
		if err != nil {
			return nil, c.invalid("decrypt key: %v", err)
		}
		key = k
	}
	plain, err := decryptGuard(key, data)
	if err != nil {
		return nil, c.invalid("decrypt assertion: %v", err)
	}
	if err := scanXML(plain, c.limits); err != nil {
		return nil, c.invalid("decrypted assertion: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(plain); err != nil || doc.Root() == nil {
		return nil, c.invalid("decrypted assertion is not XML")
	}
	a := doc.Root()
	if a.Tag != "Assertion" || a.NamespaceURI() != nsAssertion {
		return nil, c.invalid("encrypted content is %s, not an Assertion", a.Tag)
	}
	if err := c.checkTree(a, a); err != nil {
		return nil, err
	}
	return a, nil
}

func decryptGuard(key any, el *etree.Element) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return xmlenc.Decrypt(key, el)
}

func statusCode(resp *etree.Element) string {
	if el := resp.FindElement("./Status/StatusCode"); el != nil {
		return el.SelectAttrValue("Value", "")
	}
	return ""
}

func nestedStatus(resp *etree.Element) string {
	if el := resp.FindElement("./Status/StatusCode/StatusCode"); el != nil {
		return el.SelectAttrValue("Value", "")
	}
	return ""
}

// checkEnvelope checks the Response element (SAML Core §3.2.2, Profiles §4.1.4.3).
func (c *Connector) checkEnvelope(resp *etree.Element, md *idpMetadata, requestID string, now time.Time) error {
	if v := resp.SelectAttrValue("Version", ""); v != "2.0" {
		return c.invalid("version %q", v)
	}
	// S41: Destination is required and equals our ACS URL.
	if d := resp.SelectAttrValue("Destination", ""); d != c.acs.String() {
		return c.invalid("destination %q is not our ACS URL", d)
	}
	if iss := resp.SelectElement("Issuer"); iss != nil && strings.TrimSpace(iss.Text()) != md.entity.EntityID {
		return c.invalid("response issuer %q is not %q", iss.Text(), md.entity.EntityID)
	}
	// S42 / S44.
	if irt := resp.SelectAttrValue("InResponseTo", ""); irt != requestID {
		if requestID == "" {
			return c.invalid("unsolicited response carries InResponseTo")
		}
		return c.invalid("InResponseTo does not match the AuthnRequest")
	}
	return c.checkInstant(resp, requestID, now)
}

func (c *Connector) checkInstant(el *etree.Element, requestID string, now time.Time) error {
	t, err := parseTime(el.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return c.invalid("%s IssueInstant: %v", el.Tag, err)
	}
	skew := c.cfg.ClockSkew
	if t.After(now.Add(skew)) {
		return c.invalid("%s issued in the future", el.Tag)
	}
	maxAge := crewjam.MaxIssueDelay
	if requestID == "" {
		maxAge = c.cfg.UnsolicitedWindow // S44: a short window
	}
	if now.Sub(t) > maxAge+skew {
		return c.invalid("%s issued too long ago", el.Tag)
	}
	return nil
}

// checkAssertion checks the Assertion (SAML Core §2.3.3, §2.4, §2.5;
// Profiles §4.1.4.2): issuer, subject, bearer confirmation, conditions and
// the required audience.
func (c *Connector) checkAssertion(a *etree.Element, md *idpMetadata, requestID string, now time.Time) error {
	skew := c.cfg.ClockSkew
	if a.SelectAttrValue("ID", "") == "" {
		return c.invalid("assertion without ID")
	}
	if v := a.SelectAttrValue("Version", ""); v != "2.0" {
		return c.invalid("assertion version %q", v)
	}
	if err := c.checkInstant(a, requestID, now); err != nil {
		return err
	}
	if iss := one(a, "Issuer"); iss == nil || strings.TrimSpace(iss.Text()) != md.entity.EntityID {
		return c.invalid("assertion issuer is not %q", md.entity.EntityID)
	}
	subj := one(a, "Subject")
	if subj == nil || one(subj, "NameID") == nil || strings.TrimSpace(one(subj, "NameID").Text()) == "" {
		return c.invalid("assertion without a subject NameID")
	}
	bearers := 0
	for _, sc := range subj.SelectElements("SubjectConfirmation") {
		if sc.SelectAttrValue("Method", "") != bearer {
			continue
		}
		d := one(sc, "SubjectConfirmationData")
		if d == nil {
			return c.invalid("bearer confirmation without data")
		}
		if r := d.SelectAttrValue("Recipient", ""); r != c.acs.String() {
			return c.invalid("recipient %q is not our ACS URL", r)
		}
		if d.SelectAttrValue("InResponseTo", "") != requestID {
			return c.invalid("confirmation InResponseTo does not match the AuthnRequest")
		}
		na, err := parseTime(d.SelectAttrValue("NotOnOrAfter", ""))
		if err != nil {
			return c.invalid("confirmation NotOnOrAfter: %v", err)
		}
		if !now.Before(na.Add(skew)) {
			return c.invalid("confirmation expired at %s", na.Format(time.RFC3339))
		}
		if nb := d.SelectAttrValue("NotBefore", ""); nb != "" {
			return c.invalid("bearer confirmation with NotBefore") // Profiles §4.1.4.2
		}
		bearers++
	}
	if bearers == 0 {
		return c.invalid("no bearer subject confirmation")
	}
	cond := one(a, "Conditions")
	if cond == nil {
		return c.invalid("assertion without Conditions")
	}
	if v := cond.SelectAttrValue("NotBefore", ""); v != "" {
		nb, err := parseTime(v)
		if err != nil {
			return c.invalid("NotBefore: %v", err)
		}
		if now.Add(skew).Before(nb) {
			return c.invalid("assertion not valid before %s", nb.Format(time.RFC3339))
		}
	}
	na, err := parseTime(cond.SelectAttrValue("NotOnOrAfter", ""))
	if err != nil {
		return c.invalid("Conditions NotOnOrAfter: %v", err)
	}
	if !now.Before(na.Add(skew)) {
		return c.invalid("assertion expired at %s", na.Format(time.RFC3339))
	}
	// S41: at least one AudienceRestriction, and each names our entityID
	// (SAML Core §2.5.1.4: every restriction must be satisfied).
	ars := cond.SelectElements("AudienceRestriction")
	if len(ars) == 0 {
		return c.invalid("assertion without AudienceRestriction")
	}
	for _, ar := range ars {
		ok := false
		for _, au := range ar.SelectElements("Audience") {
			if strings.TrimSpace(au.Text()) == c.cfg.EntityID {
				ok = true
			}
		}
		if !ok {
			return c.invalid("audience restriction does not name %q", c.cfg.EntityID)
		}
	}
	return nil
}

// requireAudience is the library hook for the audience check: crewjam alone
// accepts an assertion without AudienceRestriction, this refuses it. The
// full check (every restriction names our entityID, several Audience
// elements per restriction) is checkAssertion's: crewjam's struct keeps one
// Audience per restriction.
func (c *Connector) requireAudience(a *crewjam.Assertion) error {
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return errors.New("no AudienceRestriction")
	}
	return nil
}

// one returns the only child element with the tag, or nil if there are none
// or several.
func one(el *etree.Element, tag string) *etree.Element {
	els := el.SelectElements(tag)
	if len(els) != 1 {
		return nil
	}
	return els[0]
}

// parseTime parses an xs:dateTime in UTC (SAML Core §1.3.3).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}
