package saml

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Test keys are made at test time: nothing expires in the repository.
var (
	keysOnce sync.Once
	idpKeyA  *rsa.PrivateKey
	idpCertA *x509.Certificate
	idpKeyB  *rsa.PrivateKey // the rollover key
	idpCertB *x509.Certificate
	evilKey  *rsa.PrivateKey
	evilCert *x509.Certificate
	spKey    *rsa.PrivateKey
	spCert   *x509.Certificate
)

// testKeys loads the key pairs testdata/saml/gen-keys.sh made (generating
// RSA keys at test time is slow under the fuzzer's instrumentation).
func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		idpKeyA, idpCertA = loadKeyPair(t, "idp-a")
		idpKeyB, idpCertB = loadKeyPair(t, "idp-b")
		evilKey, evilCert = loadKeyPair(t, "evil")
		spKey, spCert = loadKeyPair(t, "sp")
	})
	if idpKeyA == nil {
		t.Fatal("test keys missing: run sh gen-keys.sh in testdata/saml")
	}
}

func loadKeyPair(t testing.TB, name string) (*rsa.PrivateKey, *x509.Certificate) {
	pair, err := tls.LoadX509KeyPair("../../testdata/saml/"+name+".crt", "../../testdata/saml/"+name+".key")
	if err != nil {
		t.Logf("load %s: %v", name, err)
		return nil, nil
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Logf("parse %s: %v", name, err)
		return nil, nil
	}
	k, _ := pair.PrivateKey.(*rsa.PrivateKey)
	return k, c
}

const (
	testIdPEntity = "http://adfs.contoso.test/adfs/services/trust"
	testIssuer    = "https://login.example.test"
	testACS       = testIssuer + "/saml/contoso-adfs/acs"
	testSPEntity  = testIssuer + "/saml/contoso-adfs/metadata"
	testSSO       = "https://adfs.contoso.test/adfs/ls/"
)

// idpMetadataXML is an AD FS-shaped IDPSSODescriptor with the given signing certs.
func idpMetadataXML(certs ...*x509.Certificate) string {
	var kd strings.Builder
	for _, c := range certs {
		fmt.Fprintf(&kd, `<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>%s</X509Certificate></X509Data></KeyInfo></KeyDescriptor>`,
			base64.StdEncoding.EncodeToString(c.Raw))
	}
	return `<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_md" entityID="` + testIdPEntity + `" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + kd.String() + `
<NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>
<NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat>
<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + testSSO + `"/>
<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + testSSO + `"/>
</IDPSSODescriptor></EntityDescriptor>`
}

// memReplay is an in-memory ReplayCache for the tests.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *memReplay) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if _, ok := m.seen[key]; ok {
		return true, nil
	}
	m.seen[key] = until
	return false, nil
}

// newTestConnector returns a connector trusting certs (default: key A).
func newTestConnector(t testing.TB, mod func(*Config), certs ...*x509.Certificate) *Connector {
	t.Helper()
	testKeys(t)
	if len(certs) == 0 {
		certs = []*x509.Certificate{idpCertA}
	}
	cfg := Config{ID: "contoso-adfs", ACSURL: testACS, MetadataURL: testSPEntity, PostURL: testIssuer + "/saml/contoso-adfs/post",
		IdPMetadata: []byte(idpMetadataXML(certs...)), Key: spKey, Certificate: spCert}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.SetReplayCache(&memReplay{})
	return c
}

// resp describes a response the test IdP produces; zero fields take valid values.
type resp struct {
	now                  time.Time
	respID, assertionID  string
	inResponseTo         string // "-" omits it
	destination          string // "-" omits it
	recipient            string
	issuer, respIssuer   string
	audiences            [][]string // each inner slice is one AudienceRestriction; nil: ours; empty outer: none
	noAudience           bool
	notBefore, notAfter  time.Time
	confNotAfter         time.Time
	issueInstant         time.Time
	nameID, nameIDFormat string
	attrs                [][2]string
	status               string
	signAssertion        bool
	signResponse         bool
	key                  *rsa.PrivateKey
	cert                 *x509.Certificate
}

func (r *resp) defaults() {
	if r.now.IsZero() {
		r.now = time.Now().UTC()
	}
	if r.respID == "" {
		r.respID = "_r" + randID()
	}
	if r.assertionID == "" {
		r.assertionID = "_a" + randID()
	}
	if r.destination == "" {
		r.destination = testACS
	}
	if r.recipient == "" {
		r.recipient = testACS
	}
	if r.issuer == "" {
		r.issuer = testIdPEntity
	}
	if r.audiences == nil && !r.noAudience {
		r.audiences = [][]string{{testSPEntity}}
	}
	if r.notBefore.IsZero() {
		r.notBefore = r.now.Add(-5 * time.Second)
	}
	if r.notAfter.IsZero() {
		r.notAfter = r.now.Add(time.Hour)
	}
	if r.confNotAfter.IsZero() {
		r.confNotAfter = r.now.Add(5 * time.Minute)
	}
	if r.issueInstant.IsZero() {
		r.issueInstant = r.now
	}
	if r.nameID == "" {
		r.nameID = "alice@contoso.com"
	}
	if r.nameIDFormat == "" {
		r.nameIDFormat = NameIDEmail
	}
	if r.status == "" {
		r.status = "urn:oasis:names:tc:SAML:2.0:status:Success"
	}
	if r.key == nil {
		r.key, r.cert = idpKeyA, idpCertA
	}
	if r.attrs == nil {
		r.attrs = [][2]string{
			{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "alice@contoso.com"},
			{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "alice@contoso.com"},
			{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Alice"},
			{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "Liddell"},
			{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "S-1-5-21-1004336348-1177238915-682003330-512"},
			{"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "Finance-Admins"},
		}
	}
}

func randID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// assertionEl builds the Assertion element (AD FS shape).
func (r *resp) assertionEl() *etree.Element {
	a := etree.NewElement("Assertion")
	a.CreateAttr("xmlns", nsAssertion)
	a.CreateAttr("ID", r.assertionID)
	a.CreateAttr("IssueInstant", ts(r.issueInstant))
	a.CreateAttr("Version", "2.0")
	a.CreateElement("Issuer").SetText(r.issuer)
	subj := a.CreateElement("Subject")
	nid := subj.CreateElement("NameID")
	nid.CreateAttr("Format", r.nameIDFormat)
	nid.SetText(r.nameID)
	sc := subj.CreateElement("SubjectConfirmation")
	sc.CreateAttr("Method", bearer)
	scd := sc.CreateElement("SubjectConfirmationData")
	if r.inResponseTo != "-" && r.inResponseTo != "" {
		scd.CreateAttr("InResponseTo", r.inResponseTo)
	}
	scd.CreateAttr("NotOnOrAfter", ts(r.confNotAfter))
	scd.CreateAttr("Recipient", r.recipient)
	cond := a.CreateElement("Conditions")
	cond.CreateAttr("NotBefore", ts(r.notBefore))
	cond.CreateAttr("NotOnOrAfter", ts(r.notAfter))
	for _, auds := range r.audiences {
		ar := cond.CreateElement("AudienceRestriction")
		for _, au := range auds {
			ar.CreateElement("Audience").SetText(au)
		}
	}
	st := a.CreateElement("AttributeStatement")
	byName := map[string]*etree.Element{}
	for _, kv := range r.attrs {
		at, ok := byName[kv[0]]
		if !ok {
			at = st.CreateElement("Attribute")
			at.CreateAttr("Name", kv[0])
			byName[kv[0]] = at
		}
		at.CreateElement("AttributeValue").SetText(kv[1])
	}
	an := a.CreateElement("AuthnStatement")
	an.CreateAttr("AuthnInstant", ts(r.now.Add(-time.Second)))
	an.CreateAttr("SessionIndex", "_sess"+r.assertionID)
	an.CreateElement("AuthnContext").CreateElement("AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
	return a
}

// sign signs el enveloped and moves the Signature right after Issuer, where
// the schema puts it.
func sign(t testing.TB, el *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate) *etree.Element {
	t.Helper()
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert})
	ctx := dsig.NewDefaultSigningContext(ks)
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	// goxmldsig appends the Signature to Child directly; rebuild the element
	// so etree's indexes are right.
	out := etree.NewElement(signed.FullTag())
	out.Attr = signed.Attr
	kids := signed.ChildElements()
	sig := kids[len(kids)-1]
	for i, k := range kids[:len(kids)-1] {
		out.AddChild(k.Copy())
		if i == 0 {
			out.AddChild(sig.Copy()) // after Issuer
		}
	}
	return out
}

// build returns the Response document.
func (r *resp) build(t testing.TB) *etree.Document {
	t.Helper()
	testKeys(t)
	r.defaults()
	a := r.assertionEl()
	if r.signAssertion {
		a = sign(t, a, r.key, r.cert)
	}
	p := etree.NewElement("samlp:Response")
	p.CreateAttr("xmlns:samlp", nsProtocol)
	p.CreateAttr("ID", r.respID)
	p.CreateAttr("Version", "2.0")
	p.CreateAttr("IssueInstant", ts(r.issueInstant))
	if r.destination != "-" {
		p.CreateAttr("Destination", r.destination)
	}
	if r.inResponseTo != "-" && r.inResponseTo != "" {
		p.CreateAttr("InResponseTo", r.inResponseTo)
	}
	iss := p.CreateElement("Issuer")
	iss.CreateAttr("xmlns", nsAssertion)
	iss.SetText(firstNonEmpty(r.respIssuer, r.issuer))
	st := p.CreateElement("samlp:Status")
	st.CreateElement("samlp:StatusCode").CreateAttr("Value", r.status)
	p.AddChild(a)
	if r.signResponse {
		p = sign(t, p, r.key, r.cert)
	}
	doc := etree.NewDocument()
	doc.SetRoot(p)
	return doc
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func encodeDoc(t testing.TB, doc *etree.Document) string {
	t.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// acsRequest is the browser's POST to the ACS.
func acsRequest(samlResponse, relayState string) *http.Request {
	form := url.Values{"SAMLResponse": {samlResponse}}
	if relayState != "" {
		form.Set("RelayState", relayState)
	}
	r := httptest.NewRequest(http.MethodPost, testACS, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// loginData returns the connector data of a login with request id id.
func loginDataFor(id string) []byte { return []byte(`{"id":"` + id + `"}`) }
