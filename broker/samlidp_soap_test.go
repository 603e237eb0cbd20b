package broker_test

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/samlidp"
)

// soapSP is a SAML service provider's SOAP SingleLogoutService (SAML
// Bindings §3.2) as an SP implements it: it verifies the LogoutRequest's
// XML signature with the certificate of realmgate's IdP metadata, and
// answers with a LogoutResponse signed with its own key (or, with
// answer, something else).
type soapSP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	cert   *x509.Certificate
	idpCrt *x509.Certificate // set once the metadata is known
	// answer overrides the answer: given the request ID, the SOAP body.
	answer func(id string) string

	mu  sync.Mutex
	got []soapLogout
}

// soapLogout is one LogoutRequest the SP received.
type soapLogout struct {
	verified                             bool
	soapAction, contentType, destination string
	nameID, sessionIndex, issuer         string
}

func newSOAPSP(t *testing.T) *soapSP {
	sp := &soapSP{t: t}
	sp.srv = httptest.NewServer(http.HandlerFunc(sp.serve))
	t.Cleanup(sp.srv.Close)
	return sp
}

func (sp *soapSP) url() string { return sp.srv.URL + "/saml/slo/soap" }

func (sp *soapSP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		http.Error(w, "not XML", http.StatusBadRequest)
		return
	}
	lr := doc.FindElement("/Envelope/Body/LogoutRequest")
	if lr == nil {
		http.Error(w, "no LogoutRequest", http.StatusBadRequest)
		return
	}
	own := etree.NewDocument()
	own.SetRoot(lr.Copy())
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{sp.idpCrt}})
	vc.IdAttribute = "ID"
	verified, err := vc.Validate(own.Root())
	rec := soapLogout{verified: err == nil, soapAction: r.Header.Get("SOAPAction"), contentType: r.Header.Get("Content-Type")}
	if err == nil {
		rec.destination = verified.SelectAttrValue("Destination", "")
		if el := verified.FindElement("./NameID"); el != nil {
			rec.nameID = el.Text()
		}
		if el := verified.FindElement("./SessionIndex"); el != nil {
			rec.sessionIndex = el.Text()
		}
		if el := verified.FindElement("./Issuer"); el != nil {
			rec.issuer = el.Text()
		}
	}
	sp.mu.Lock()
	sp.got = append(sp.got, rec)
	sp.mu.Unlock()
	id := lr.SelectAttrValue("ID", "")
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if sp.answer != nil {
		_, _ = io.WriteString(w, sp.answer(id))
		return
	}
	_, _ = io.WriteString(w, sp.signedAnswer(id, spEntity))
}

// signedAnswer is a Success LogoutResponse to id from issuer, signed with
// the SP's key, in a SOAP envelope.
func (sp *soapSP) signedAnswer(id, issuer string) string {
	resp := &crewjam.LogoutResponse{ID: "_sp-" + id[1:], InResponseTo: id, Version: "2.0", IssueInstant: time.Now().UTC(),
		Issuer: &crewjam.Issuer{Value: issuer}, Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: samlidp.StatusSuccess}}}
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{sp.cert.Raw}, PrivateKey: sp.key}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := sc.SignEnveloped(resp.Element())
	if err != nil {
		sp.t.Error(err)
		return ""
	}
	return soapEnvelope(signed)
}

func soapEnvelope(el *etree.Element) string {
	env := etree.NewElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", "http://schemas.xmlsoap.org/soap/envelope/")
	env.CreateElement("soap:Body").AddChild(el)
	doc := etree.NewDocument()
	doc.SetRoot(env)
	s, _ := doc.WriteToString()
	return s
}

// requests waits (generously: delivery is asynchronous) until the SP has
// received n LogoutRequests and returns them.
func (sp *soapSP) requests(n int) []soapLogout {
	sp.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sp.mu.Lock()
		got := append([]soapLogout(nil), sp.got...)
		sp.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

// waitLog waits until the broker's log holds want.
func waitLog(t *testing.T, log *e2etest.SyncBuffer, want string) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// TestSAMLIdP_BackchannelLogout_SOAP: an upstream back-channel logout (no
// browser) ends the realmgate session, and the SAML app that registered a
// SOAP SingleLogoutService receives, server to server through the outbound
// client, a LogoutRequest whose XML signature verifies with the IdP
// metadata's certificate, naming the NameID and SessionIndex of its
// assertion; realmgate reads the SP's signed LogoutResponse as a
// confirmation. Answers that do not confirm (another issuer, another
// InResponseTo, a SOAP Fault, a bad signature) are logged as such.
func TestSAMLIdP_BackchannelLogout_SOAP(t *testing.T) {
	tests := []struct {
		name   string
		answer func(sp *soapSP) func(id string) string
		log    string
	}{
		{"confirmed", nil, "SOAP logout confirmed"},
		{"other issuer", func(sp *soapSP) func(string) string {
			return func(id string) string { return sp.signedAnswer(id, "https://evil.example/sp") }
		}, "SOAP logout not confirmed"},
		{"other request", func(sp *soapSP) func(string) string {
			return func(string) string { return sp.signedAnswer("_another-request", spEntity) }
		}, "SOAP logout not confirmed"},
		{"fault", func(sp *soapSP) func(string) string {
			return func(string) string {
				return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>no</faultstring></soap:Fault></soap:Body></soap:Envelope>`
			}
		}, "SOAP logout not confirmed"},
		{"wrapped", func(sp *soapSP) func(string) string {
			// The SP's signed answer to another request, inside an unsigned
			// answer to this one: only signed content may be read (S40).
			return func(id string) string {
				inner := etree.NewDocument()
				_ = inner.ReadFromString(sp.signedAnswer("_another-request", spEntity))
				signed := inner.FindElement("//LogoutResponse").Copy()
				outer := signed.Copy()
				outer.CreateAttr("InResponseTo", id)
				outer.CreateAttr("ID", "_evil")
				for _, ch := range outer.ChildElements() {
					if ch.Tag == "Signature" {
						outer.RemoveChild(ch)
					}
				}
				outer.AddChild(signed)
				return soapEnvelope(outer)
			}
		}, "SOAP logout not confirmed"},
		{"signature of another key", func(sp *soapSP) func(string) string {
			otherKey, otherCert := spKey(t)
			other := &soapSP{t: t, key: otherKey, cert: otherCert}
			return func(id string) string { return other.signedAnswer(id, spEntity) }
		}, "SOAP logout not confirmed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			soap := newSOAPSP(t)
			if tc.answer != nil {
				soap.answer = tc.answer(soap)
			}
			var log e2etest.SyncBuffer
			e := newIdPEnv(t, func(sp *samlidp.SP) {
				sp.SLO.SOAPURL = soap.url()
			}, func(c *broker.Config) {
				c.HTTPClient = outbound.New(outbound.Policy{AllowLoopback: true}) // the SP is a loopback httptest server
				c.Logger = slog.New(slog.NewTextHandler(&log, nil))
			})
			soap.key, soap.cert = e.sp.Key.(*rsa.PrivateKey), e.sp.Certificate // the SP's registered signing key
			md := fetchIdPMetadata(t, e.issuer)
			der, _ := base64.StdEncoding.DecodeString(md.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data)
			soap.idpCrt, _ = x509.ParseCertificate(der)

			b := e.browser()
			a := e.signIn(b)
			if r := e.post("/backchannel/acme-idp", url.Values{"logout_token": {"logout|alice-upstream||jti-1"}}, "", ""); r.status != http.StatusOK {
				t.Fatalf("upstream logout token = %d %v, want 200", r.status, r.body)
			}
			got := soap.requests(1)
			if len(got) != 1 {
				t.Fatalf("the SP's SOAP endpoint received %d LogoutRequests, want 1", len(got))
			}
			lr := got[0]
			if !lr.verified {
				t.Fatalf("the SOAP LogoutRequest's signature does not verify with the IdP metadata's certificate")
			}
			if lr.nameID != a.Subject.NameID.Value || lr.sessionIndex != a.AuthnStatements[0].SessionIndex {
				t.Errorf("LogoutRequest NameID %q SessionIndex %q, want the assertion's %q %q", lr.nameID, lr.sessionIndex, a.Subject.NameID.Value, a.AuthnStatements[0].SessionIndex)
			}
			if lr.destination != soap.url() || lr.issuer != md.EntityID {
				t.Errorf("LogoutRequest Destination %q Issuer %q, want %q %q", lr.destination, lr.issuer, soap.url(), md.EntityID)
			}
			if lr.soapAction != samlidp.SOAPAction || !strings.HasPrefix(lr.contentType, "text/xml") {
				t.Errorf("SOAPAction %q Content-Type %q, want %q and text/xml (SAML Bindings §3.2.3.1)", lr.soapAction, lr.contentType, samlidp.SOAPAction)
			}
			if !waitLog(t, &log, tc.log) {
				t.Errorf("broker log lacks %q:\n%s", tc.log, log.String())
			}
			if tc.log == "SOAP logout confirmed" && strings.Contains(log.String(), "not confirmed") {
				t.Errorf("a confirming answer was logged as not confirmed:\n%s", log.String())
			}
			// The realmgate session ended: the next AuthnRequest goes upstream.
			u, _ := e.redirectRequest("")
			if r := b.get(u); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "https://idp.example/") {
				t.Errorf("sign-in after the upstream logout = %d %q, want the upstream IdP", r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
}

// TestSAMLIdP_BackchannelLogout_FrontChannelOnly: an app with front-channel
// SLO only is not told of a logout without the browser (nothing can reach
// it), and the audit says so; the session ends all the same.
func TestSAMLIdP_BackchannelLogout_FrontChannelOnly(t *testing.T) {
	var audit auditSink
	e := newIdPEnv(t, nil, withAuditSink(&audit))
	b := e.browser()
	e.signIn(b)
	if r := e.post("/backchannel/acme-idp", url.Values{"logout_token": {"logout|alice-upstream||jti-1"}}, "", ""); r.status != http.StatusOK {
		t.Fatalf("upstream logout token = %d %v, want 200", r.status, r.body)
	}
	found := false
	for _, ev := range audit.events(t) {
		found = found || (str(ev, "reason") == "saml_app_not_notified" && str(ev, "client") == "wiki")
	}
	if !found {
		t.Errorf("no saml_app_not_notified audit event for the front-channel-only app:\n%s", audit.String())
	}
}
