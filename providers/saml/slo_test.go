package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/realmgate/realmgate/providers"
)

const (
	testSLO    = testIssuer + "/saml/contoso-adfs/slo"
	testIdPSLO = "https://adfs.contoso.test/adfs/ls/"
)

// sloMetadata is idpMetadataXML with an HTTP-Redirect SingleLogoutService.
func sloMetadata(certs ...*x509.Certificate) string {
	return strings.Replace(idpMetadataXML(certs...), "<SingleSignOnService",
		`<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="`+testIdPSLO+`"/><SingleSignOnService`, 1)
}

func newSLOConnector(t *testing.T, mod func(*Config)) *Connector {
	t.Helper()
	testKeys(t)
	return newTestConnector(t, func(c *Config) {
		c.IdPMetadata = []byte(sloMetadata(idpCertA))
		if mod != nil {
			mod(c)
		}
	})
}

// sloMsg describes a logout message the test IdP sends; zero fields take
// valid values.
type sloMsg struct {
	kind         string // LogoutRequest or LogoutResponse
	id           string
	issuer       string
	destination  string
	instant      time.Time
	inResponseTo string
	status       string
	nameID       string
	sessionIndex string
	notOnOrAfter string
}

func (m sloMsg) element() *etree.Element {
	if m.id == "" {
		m.id = randID()
	}
	if m.issuer == "" {
		m.issuer = testIdPEntity
	}
	if m.destination == "" {
		m.destination = testSLO
	}
	if m.instant.IsZero() {
		m.instant = time.Now()
	}
	el := etree.NewElement("samlp:" + m.kind)
	el.CreateAttr("xmlns:samlp", nsProtocol)
	el.CreateAttr("xmlns:saml", nsAssertion)
	el.CreateAttr("ID", m.id)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", ts(m.instant))
	el.CreateAttr("Destination", m.destination)
	if m.notOnOrAfter != "" {
		el.CreateAttr("NotOnOrAfter", m.notOnOrAfter)
	}
	el.CreateElement("saml:Issuer").SetText(m.issuer)
	if m.kind == "LogoutResponse" {
		el.CreateAttr("InResponseTo", m.inResponseTo)
		if m.status == "" {
			m.status = "urn:oasis:names:tc:SAML:2.0:status:Success"
		}
		el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", m.status)
		return el
	}
	if m.nameID == "" {
		m.nameID = "Tx5Qm0Zc8kKZr3K1mJ0g2A=="
	}
	n := el.CreateElement("saml:NameID")
	n.CreateAttr("Format", NameIDPersistent)
	n.SetText(m.nameID)
	if m.sessionIndex != "" {
		el.CreateElement("samlp:SessionIndex").SetText(m.sessionIndex)
	}
	return el
}

// redirectReq is the browser's GET to our SLO endpoint with el in the
// HTTP-Redirect binding, signed with key and alg (none when key is nil);
// tamper changes the message after signing.
func redirectReq(t *testing.T, param string, el *etree.Element, relay string, key *rsa.PrivateKey, alg string, tamper bool) *http.Request {
	t.Helper()
	raw, err := xmlBytes(el)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(raw)
	fw.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if key != nil {
		q += "&SigAlg=" + url.QueryEscape(alg)
		var sig []byte
		if alg == "http://www.w3.org/2000/09/xmldsig#rsa-sha1" {
			h := sha1.Sum([]byte(q))
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, h[:])
		} else {
			h := sha256.Sum256([]byte(q))
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
		}
		if err != nil {
			t.Fatal(err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	if tamper {
		q = strings.Replace(q, "RelayState=", "RelayState=x", 1)
	}
	return httptest.NewRequest(http.MethodGet, testSLO+"?"+q, nil)
}

// postReq is the browser's POST to our SLO endpoint with el signed enveloped.
func postReq(t *testing.T, param string, el *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate, tamper bool) *http.Request {
	t.Helper()
	if key != nil {
		el = sign(t, el, key, cert)
	}
	if tamper {
		el.SelectElement("Issuer").SetText(testIdPEntity + " ")
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	form := url.Values{param: {encodeDoc(t, doc)}}
	r := httptest.NewRequest(http.MethodPost, testSLO, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// decodeRedirect returns the XML and query of an HTTP-Redirect URL we built,
// after checking its signature with the SP certificate.
func decodeRedirect(t *testing.T, to, param string) (*etree.Element, url.Values) {
	t.Helper()
	u, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	raw := u.RawQuery
	i := strings.Index(raw, "&Signature=")
	if i < 0 {
		t.Fatalf("%s is not signed", to)
	}
	q := u.Query()
	sig, _ := base64.StdEncoding.DecodeString(q.Get("Signature"))
	h := sha256.Sum256([]byte(raw[:i]))
	if err := rsa.VerifyPKCS1v15(spCert.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], sig); err != nil {
		t.Fatalf("query signature does not verify with the SP certificate: %v", err)
	}
	if !strings.HasPrefix(raw, param+"=") || q.Get("SigAlg") != sigAlgRSASHA256 {
		t.Fatalf("query %q: want %s first and SigAlg rsa-sha256", raw, param)
	}
	b, _ := base64.StdEncoding.DecodeString(q.Get(param))
	xmlb, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xmlb); err != nil {
		t.Fatal(err)
	}
	return doc.Root(), q
}

func TestSLO_LogoutRequestURL(t *testing.T) {
	c := newSLOConnector(t, nil)
	ident := providers.Identity{Subject: "Tx5Qm0Zc8kKZr3K1mJ0g2A==", Claims: map[string]any{
		"name_id": "Tx5Qm0Zc8kKZr3K1mJ0g2A==", "name_id_format": NameIDPersistent, "session_index": "_sess-1"}}
	to, id, err := c.LogoutRequestURL(context.Background(), ident, "state-1")
	if err != nil || id == "" || !strings.HasPrefix(to, testIdPSLO+"?") {
		t.Fatalf("LogoutRequestURL = %q, %q, %v; want the IdP's SLO URL and an id", to, id, err)
	}
	el, q := decodeRedirect(t, to, "SAMLRequest")
	checks := []struct{ name, got, want string }{
		{"root", el.Tag, "LogoutRequest"},
		{"ID", el.SelectAttrValue("ID", ""), id},
		{"Destination", el.SelectAttrValue("Destination", ""), testIdPSLO},
		{"Issuer", el.SelectElement("Issuer").Text(), testSPEntity},
		{"NameID", el.SelectElement("NameID").Text(), "Tx5Qm0Zc8kKZr3K1mJ0g2A=="},
		{"NameID Format", el.SelectElement("NameID").SelectAttrValue("Format", ""), NameIDPersistent},
		{"SessionIndex", el.SelectElement("SessionIndex").Text(), "_sess-1"},
		{"RelayState", q.Get("RelayState"), "state-1"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("LogoutRequest %s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if el.FindElement(".//Signature") != nil {
		t.Error("HTTP-Redirect LogoutRequest carries an XML signature (Bindings §3.4.4.1: remove it)")
	}

	// No SLO endpoint in the metadata: no URL, no error.
	plain := newTestConnector(t, nil)
	if to, _, err := plain.LogoutRequestURL(context.Background(), ident, "s"); to != "" || err != nil {
		t.Errorf("LogoutRequestURL without IdP SLO = %q, %v; want empty, nil", to, err)
	}
}

func TestSLO_LogoutResponseURL(t *testing.T) {
	c := newSLOConnector(t, nil)
	to, err := c.LogoutResponseURL(context.Background(), "_req-9", "relay-9")
	if err != nil {
		t.Fatal(err)
	}
	el, q := decodeRedirect(t, to, "SAMLResponse")
	if el.Tag != "LogoutResponse" || el.SelectAttrValue("InResponseTo", "") != "_req-9" || q.Get("RelayState") != "relay-9" ||
		el.FindElement("./Status/StatusCode").SelectAttrValue("Value", "") != "urn:oasis:names:tc:SAML:2.0:status:Success" {
		t.Errorf("LogoutResponseURL = %s, want a Success LogoutResponse to _req-9 with RelayState relay-9", to)
	}
}

func TestSLO_Metadata(t *testing.T) {
	c := newSLOConnector(t, nil)
	md, err := c.Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{BindingRedirect, BindingPOST} {
		want := `<SingleLogoutService Binding="` + b + `" Location="` + testSLO + `"`
		if !strings.Contains(string(md), want) {
			t.Errorf("SP metadata lacks %s", want)
		}
	}
}

// TestSLO_LogoutResponse: only a response signed by the IdP, to our SLO URL,
// from the IdP's entityID, answering our request, fresh and Success, lets
// the sign-out continue.
func TestSLO_LogoutResponse(t *testing.T) {
	c := newSLOConnector(t, nil)
	const reqID = "id-request-1"
	ok := sloMsg{kind: "LogoutResponse", inResponseTo: reqID}
	mod := func(f func(*sloMsg)) *etree.Element { m := ok; f(&m); return m.element() }
	for _, tc := range []struct {
		name string
		r    *http.Request
		want error
	}{
		{"redirect, signed", redirectReq(t, "SAMLResponse", ok.element(), "st", idpKeyA, sigAlgRSASHA256, false), nil},
		{"post, enveloped signature", postReq(t, "SAMLResponse", ok.element(), idpKeyA, idpCertA, false), nil},
		{"redirect, tampered after signing", redirectReq(t, "SAMLResponse", ok.element(), "st", idpKeyA, sigAlgRSASHA256, true), providers.ErrInvalidResponse},
		{"post, tampered after signing", postReq(t, "SAMLResponse", ok.element(), idpKeyA, idpCertA, true), providers.ErrInvalidResponse},
		{"redirect, signed by another key", redirectReq(t, "SAMLResponse", ok.element(), "st", evilKey, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"post, signed by another key", postReq(t, "SAMLResponse", ok.element(), evilKey, evilCert, false), providers.ErrInvalidResponse},
		{"redirect, unsigned", redirectReq(t, "SAMLResponse", ok.element(), "st", nil, "", false), providers.ErrInvalidResponse},
		{"post, unsigned", postReq(t, "SAMLResponse", ok.element(), nil, nil, false), providers.ErrInvalidResponse},
		{"redirect, rsa-sha1", redirectReq(t, "SAMLResponse", ok.element(), "st", idpKeyA, "http://www.w3.org/2000/09/xmldsig#rsa-sha1", false), providers.ErrInvalidResponse},
		{"wrong InResponseTo", redirectReq(t, "SAMLResponse", mod(func(m *sloMsg) { m.inResponseTo = "id-other" }), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"wrong Destination", redirectReq(t, "SAMLResponse", mod(func(m *sloMsg) { m.destination = testACS }), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"wrong Issuer", redirectReq(t, "SAMLResponse", mod(func(m *sloMsg) { m.issuer = "https://evil.test" }), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"stale", redirectReq(t, "SAMLResponse", mod(func(m *sloMsg) { m.instant = time.Now().Add(-10 * time.Minute) }), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"a LogoutRequest instead", redirectReq(t, "SAMLResponse", sloMsg{kind: "LogoutRequest"}.element(), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrInvalidResponse},
		{"partial logout", redirectReq(t, "SAMLResponse", mod(func(m *sloMsg) { m.status = "urn:oasis:names:tc:SAML:2.0:status:Requester" }), "", idpKeyA, sigAlgRSASHA256, false), providers.ErrAccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.HandleLogoutResponse(context.Background(), tc.r, reqID)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("HandleLogoutResponse = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSLO_LogoutRequest: an IdP-initiated LogoutRequest is accepted once,
// signed, fresh and addressed to us; it names the NameID and SessionIndex.
func TestSLO_LogoutRequest(t *testing.T) {
	c := newSLOConnector(t, nil)
	ctx := context.Background()
	valid := sloMsg{kind: "LogoutRequest", id: "_lr-1", sessionIndex: "_sess-1"}

	lc, err := c.HandleLogoutRequest(ctx, redirectReq(t, "SAMLRequest", valid.element(), "rs", idpKeyA, sigAlgRSASHA256, false))
	if err != nil {
		t.Fatalf("HandleLogoutRequest(valid) = %v", err)
	}
	if lc.Subject != "Tx5Qm0Zc8kKZr3K1mJ0g2A==" || lc.SID != "_sess-1" || lc.JTI != "_lr-1" || !lc.Expiry.After(time.Now()) {
		t.Errorf("HandleLogoutRequest = %+v, want the NameID, SessionIndex and ID", lc)
	}
	// The same request again, by either binding: a replay.
	for _, r := range []*http.Request{
		redirectReq(t, "SAMLRequest", valid.element(), "rs", idpKeyA, sigAlgRSASHA256, false),
		postReq(t, "SAMLRequest", valid.element(), idpKeyA, idpCertA, false),
	} {
		if _, err := c.HandleLogoutRequest(ctx, r); !errors.Is(err, providers.ErrInvalidResponse) || !strings.Contains(err.Error(), "replay") {
			t.Errorf("replayed LogoutRequest (%s) = %v, want a replay refusal", r.Method, err)
		}
	}
	past := ts(time.Now().Add(-10 * time.Minute))
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"tampered", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest"}.element(), "rs", idpKeyA, sigAlgRSASHA256, true)},
		{"post tampered", postReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest"}.element(), idpKeyA, idpCertA, true)},
		{"unsigned", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest"}.element(), "rs", nil, "", false)},
		{"another key", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest"}.element(), "rs", evilKey, sigAlgRSASHA256, false)},
		{"expired NotOnOrAfter", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest", notOnOrAfter: past}.element(), "", idpKeyA, sigAlgRSASHA256, false)},
		{"wrong Destination", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest", destination: testACS}.element(), "", idpKeyA, sigAlgRSASHA256, false)},
		{"wrong Issuer", redirectReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest", issuer: "https://evil.test"}.element(), "", idpKeyA, sigAlgRSASHA256, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.HandleLogoutRequest(ctx, tc.r); !errors.Is(err, providers.ErrInvalidResponse) {
				t.Errorf("HandleLogoutRequest(%s) = %v, want ErrInvalidResponse", tc.name, err)
			}
		})
	}
	// POST binding, valid.
	if _, err := c.HandleLogoutRequest(ctx, postReq(t, "SAMLRequest", sloMsg{kind: "LogoutRequest"}.element(), idpKeyA, idpCertA, false)); err != nil {
		t.Errorf("HandleLogoutRequest(POST) = %v", err)
	}
	// With a subject attribute the NameID is not the subject: only the SessionIndex counts.
	attr := newSLOConnector(t, func(c *Config) { c.SubjectAttribute = "uid" })
	lc, err = attr.HandleLogoutRequest(ctx, redirectReq(t, "SAMLRequest", valid.element(), "", idpKeyA, sigAlgRSASHA256, false))
	if err != nil || lc.Subject != "" || lc.SID != "_sess-1" {
		t.Errorf("HandleLogoutRequest with SubjectAttribute = %+v, %v; want no subject, SID _sess-1", lc, err)
	}
}

// TestSLO_S63_MetadataFetchedOnce: 30 anonymous GETs to the SLO endpoint
// (junk SAMLRequest) when no usable IdP metadata is at hand make at most
// one metadata fetch, whether the IdP's metadata host is down, serves
// expired metadata, replaces an expired copy with expired metadata, or
// hangs while the requests arrive together.
func TestSLO_S63_MetadataFetchedOnce(t *testing.T) {
	testKeys(t)
	const gets = 30
	anonymous := func() *http.Request { return httptest.NewRequest(http.MethodGet, testSLO+"?SAMLRequest=junk", nil) }
	for _, tc := range []struct {
		name       string
		setup      func(t *testing.T, m *mdServer, c *Connector, clock *manualClock) // before the GETs
		concurrent bool
		want       int // fetches caused by the GETs
	}{
		{"metadata host down", func(_ *testing.T, m *mdServer, _ *Connector, _ *manualClock) {
			m.set("", http.StatusServiceUnavailable)
		}, false, 1},
		{"metadata expired", func(_ *testing.T, m *mdServer, _ *Connector, clock *manualClock) {
			m.set(withValidUntil(sloMetadata(idpCertA), clock.Now().Add(-time.Minute), ""), 0)
		}, false, 1},
		{"copy expired, refresh expired", func(t *testing.T, m *mdServer, c *Connector, clock *manualClock) {
			m.set(withValidUntil(sloMetadata(idpCertA), clock.Now().Add(time.Hour), ""), 0)
			if _, err := c.idp.get(context.Background()); err != nil {
				t.Fatalf("first fetch: %v", err)
			}
			clock.advance(2 * time.Hour)
			m.set(withValidUntil(sloMetadata(idpCertA), clock.Now().Add(-time.Minute), ""), 0)
		}, false, 1},
		{"host hangs, then fails", func(_ *testing.T, m *mdServer, _ *Connector, _ *manualClock) {
			m.set("", http.StatusBadGateway)
			m.mu.Lock()
			m.hold = make(chan struct{})
			m.mu.Unlock()
		}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &manualClock{now: time.Now()}
			m := newMDServer(t, "")
			c := newSLOConnector(t, func(cfg *Config) {
				cfg.IdPMetadata, cfg.IdPMetadataURL, cfg.Now = nil, m.srv.URL, clock.Now
			})
			tc.setup(t, m, c, clock)
			before := m.count()
			errs := make([]error, gets)
			var wg sync.WaitGroup
			for i := range gets {
				get := func() { _, errs[i] = c.HandleLogoutRequest(context.Background(), anonymous()) }
				if tc.concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); get() }()
				} else {
					get()
				}
			}
			if tc.concurrent {
				m.mu.Lock()
				close(m.hold) // let the fetch in flight finish (with a failure)
				m.mu.Unlock()
			}
			wg.Wait()
			c.idp.bg.Wait()
			if n := m.count() - before; n > tc.want {
				t.Errorf("metadata fetched %d times for %d anonymous SLO GETs, want at most %d", n, gets, tc.want)
			}
			for i, err := range errs {
				if !errors.Is(err, providers.ErrUnavailable) {
					t.Fatalf("GET %d = %v, want ErrUnavailable", i, err)
				}
			}
			// After the retry interval, one more fetch (and it recovers).
			m.set(sloMetadata(idpCertA), 0)
			clock.advance(metadataColdRetry)
			if _, err := c.HandleLogoutRequest(context.Background(), anonymous()); !errors.Is(err, providers.ErrInvalidResponse) {
				t.Errorf("GET after the IdP recovered = %v, want the junk request refused as invalid", err)
			}
		})
	}
}
