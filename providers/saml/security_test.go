package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/realmgate/realmgate/providers"
)

const reqID = "id-4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e"

// call posts the response to the connector as the answer to request reqID.
func call(t *testing.T, c *Connector, samlResponse string) (providers.Identity, error) {
	t.Helper()
	return c.HandleCallback(context.Background(), providers.LoginRequest{State: "st"}, loginDataFor(reqID), acsRequest(samlResponse, "st"))
}

func mustRefuse(t *testing.T, c *Connector, samlResponse, why string) {
	t.Helper()
	id, err := call(t, c, samlResponse)
	if err == nil {
		t.Fatalf("HandleCallback accepted %s (subject %q), want refusal", why, id.Subject)
	}
	if !errors.Is(err, providers.ErrInvalidResponse) {
		t.Fatalf("HandleCallback(%s) error = %v, want ErrInvalidResponse", why, err)
	}
	t.Logf("%s: %v", why, err)
}

func TestSAML_ValidResponse(t *testing.T) {
	for _, tc := range []struct {
		name         string
		signA, signR bool
	}{{"assertion signed", true, false}, {"response signed", false, true}, {"both signed", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConnector(t, nil)
			r := &resp{inResponseTo: reqID, signAssertion: tc.signA, signResponse: tc.signR}
			id, err := call(t, c, encodeDoc(t, r.build(t)))
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if id.Subject != "alice@contoso.com" || id.Issuer != testIdPEntity || id.Email != "alice@contoso.com" {
				t.Fatalf("identity = %+v", id)
			}
			groups, _ := id.Claims["groups"].([]any)
			if len(groups) != 2 || groups[1] != "Finance-Admins" {
				t.Errorf("groups = %#v, want two values", id.Claims["groups"])
			}
			if id.Claims["upn"] != "alice@contoso.com" || id.Claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] != "alice@contoso.com" {
				t.Errorf("upn alias/URI = %#v / %#v", id.Claims["upn"], id.Claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"])
			}
			if id.GivenName != "Alice" || id.FamilyName != "Liddell" || id.Name != "Alice Liddell" {
				t.Errorf("names = %q %q %q", id.GivenName, id.FamilyName, id.Name)
			}
			if len(id.AMR) != 1 || id.AMR[0] != "pwd" {
				t.Errorf("AMR = %v, want [pwd]", id.AMR)
			}
		})
	}
}

// xsw builds each XML signature-wrapping variant as SAMLRaider numbers
// them (XSW1-XSW8) from a validly signed response for an honest user, with
// an evil assertion for "admin@contoso.com".
func xsw(t *testing.T, n int) string {
	t.Helper()
	signR := n <= 2
	honest := &resp{inResponseTo: reqID, signResponse: signR, signAssertion: !signR}
	doc := honest.build(t)
	root := doc.Root()
	orig := root.SelectElement("Assertion")
	evil := orig.Copy()
	evil.CreateAttr("ID", "_evil")
	evil.FindElement("./Subject/NameID").SetText("admin@contoso.com")
	if s := evil.SelectElement("Signature"); s != nil {
		evil.RemoveChild(s)
	}
	switch n {
	case 1: // XSW1: evil response; the original signed response inside its Signature.
		sig := root.SelectElement("Signature")
		origResp := root.Copy()
		root.RemoveChild(sig)
		root.CreateAttr("ID", "_evilresp")
		root.RemoveChild(orig)
		root.AddChild(evil)
		origResp.RemoveChild(origResp.SelectElement("Signature"))
		sig.AddChild(origResp)
		root.InsertChildAt(1, sig)
	case 2: // XSW2: as XSW1 but the original response precedes the signature (detached).
		sig := root.SelectElement("Signature")
		origResp := root.Copy()
		origResp.RemoveChild(origResp.SelectElement("Signature"))
		root.RemoveChild(sig)
		root.CreateAttr("ID", "_evilresp")
		root.RemoveChild(orig)
		root.AddChild(evil)
		root.InsertChildAt(1, origResp)
		root.InsertChildAt(2, sig)
	case 3: // XSW3: evil assertion before the signed one, as a sibling.
		root.InsertChildAt(orig.Index(), evil)
	case 4: // XSW4: evil assertion wraps the signed one.
		root.RemoveChild(orig)
		evil.AddChild(orig)
		root.AddChild(evil)
	case 5: // XSW5: evil assertion keeps the signature; an unsigned copy of the original appended.
		sig := orig.SelectElement("Signature")
		cp := orig.Copy()
		cp.RemoveChild(cp.SelectElement("Signature"))
		root.RemoveChild(orig)
		evil.CreateAttr("ID", orig.SelectAttrValue("ID", ""))
		evil.InsertChildAt(1, sig)
		evil.CreateAttr("ID", "_evil")
		root.AddChild(evil)
		root.AddChild(cp)
	case 6: // XSW6: evil assertion keeps the signature, the original copy inside the Signature.
		sig := orig.SelectElement("Signature")
		cp := orig.Copy()
		cp.RemoveChild(cp.SelectElement("Signature"))
		root.RemoveChild(orig)
		sig.AddChild(cp)
		evil.InsertChildAt(1, sig)
		root.AddChild(evil)
	case 7: // XSW7: the signed assertion hidden in an Extensions element, evil one in its place.
		ext := etree.NewElement("samlp:Extensions")
		root.RemoveChild(orig)
		ext.AddChild(orig)
		root.InsertChildAt(1, ext)
		root.AddChild(evil)
	case 8: // XSW8: evil assertion whose Signature carries a ds:Object with the original.
		sig := orig.SelectElement("Signature")
		cp := orig.Copy()
		cp.RemoveChild(cp.SelectElement("Signature"))
		obj := etree.NewElement("ds:Object")
		obj.AddChild(cp)
		sig.AddChild(obj)
		root.RemoveChild(orig)
		evil.InsertChildAt(1, sig)
		root.AddChild(evil)
	}
	return encodeDoc(t, doc)
}

func TestSAML_S40_SignatureWrapping(t *testing.T) {
	c := newTestConnector(t, nil)
	for n := 1; n <= 8; n++ {
		t.Run("XSW"+string(rune('0'+n)), func(t *testing.T) {
			mustRefuse(t, c, xsw(t, n), "XSW variant")
		})
	}
}

func TestSAML_S40_SecondAssertion(t *testing.T) {
	c := newTestConnector(t, nil)
	r1 := &resp{inResponseTo: reqID, signAssertion: true}
	doc := r1.build(t)
	r2 := &resp{inResponseTo: reqID, signAssertion: true, nameID: "admin@contoso.com"}
	second := sign(t, func() *etree.Element { r2.defaults(); return r2.assertionEl() }(), r2.key, r2.cert)
	doc.Root().AddChild(second)
	mustRefuse(t, c, encodeDoc(t, doc), "a second signed assertion")
}

func TestSAML_S40_HiddenAssertion(t *testing.T) {
	for _, where := range []string{"Extensions", "Object", "Advice"} {
		t.Run(where, func(t *testing.T) {
			c := newTestConnector(t, nil)
			r := &resp{inResponseTo: reqID, signAssertion: true}
			doc := r.build(t)
			hidden := (&resp{inResponseTo: reqID, signAssertion: true, nameID: "admin@contoso.com"})
			hidden.defaults()
			h := sign(t, hidden.assertionEl(), hidden.key, hidden.cert)
			a := doc.Root().SelectElement("Assertion")
			switch where {
			case "Extensions":
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(h)
				doc.Root().InsertChildAt(1, ext)
			case "Object":
				obj := etree.NewElement("ds:Object")
				obj.CreateAttr("xmlns:ds", nsDSig)
				obj.AddChild(h)
				a.SelectElement("Signature").AddChild(obj)
			case "Advice":
				adv := etree.NewElement("Advice")
				adv.AddChild(h)
				a.AddChild(adv)
			}
			mustRefuse(t, c, encodeDoc(t, doc), "an assertion hidden in "+where)
		})
	}
}

func TestSAML_S40_Unsigned(t *testing.T) {
	c := newTestConnector(t, nil)
	mustRefuse(t, c, encodeDoc(t, (&resp{inResponseTo: reqID}).build(t)), "an unsigned assertion in an unsigned response")
}

func TestSAML_S40_TamperedAndForeignKey(t *testing.T) {
	c := newTestConnector(t, nil)
	doc := (&resp{inResponseTo: reqID, signAssertion: true}).build(t)
	doc.Root().FindElement("./Assertion/Subject/NameID").SetText("admin@contoso.com")
	mustRefuse(t, c, encodeDoc(t, doc), "a NameID changed after signing")

	testKeys(t)
	r := &resp{inResponseTo: reqID, signAssertion: true, key: evilKey, cert: evilCert}
	mustRefuse(t, c, encodeDoc(t, r.build(t)), "an assertion signed by an unknown key")
}

func TestSAML_S40_CommentInNameID(t *testing.T) {
	c := newTestConnector(t, nil)
	doc := (&resp{inResponseTo: reqID, signAssertion: true, nameID: "admin@contoso.com.evil.test"}).build(t)
	b, _ := doc.WriteToString()
	b = strings.Replace(b, "admin@contoso.com.evil.test", "admin@contoso.com<!---->.evil.test", 1)
	mustRefuse(t, c, base64.StdEncoding.EncodeToString([]byte(b)), "a comment splitting the NameID")
}

func TestSAML_CertificateRollover(t *testing.T) {
	testKeys(t)
	c := newTestConnector(t, nil, idpCertA, idpCertB)
	for _, k := range []struct {
		name string
		r    *resp
	}{{"old key", &resp{inResponseTo: reqID, signAssertion: true}},
		{"new key", &resp{inResponseTo: reqID, signAssertion: true, key: idpKeyB, cert: idpCertB}}} {
		t.Run(k.name, func(t *testing.T) {
			if _, err := call(t, c, encodeDoc(t, k.r.build(t))); err != nil {
				t.Fatalf("HandleCallback with %s during overlap: %v", k.name, err)
			}
		})
	}
}

func TestSAML_S41_Conditions(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		name   string
		r      resp
		accept bool
	}{
		{"destination missing", resp{destination: "-"}, false},
		{"destination other SP", resp{destination: "https://other.example/acs"}, false},
		{"recipient other SP", resp{recipient: "https://other.example/acs"}, false},
		{"assertion issuer other IdP", resp{issuer: "http://evil.test/adfs/services/trust", respIssuer: testIdPEntity}, false},
		{"response issuer other IdP", resp{respIssuer: "http://evil.test/adfs/services/trust"}, false},
		{"audience missing", resp{noAudience: true, audiences: [][]string{}}, false},
		{"audience other SP", resp{audiences: [][]string{{"https://other.example/sp"}}}, false},
		{"second restriction without us", resp{audiences: [][]string{{testSPEntity}, {"https://other.example/sp"}}}, false},
		{"audience among several", resp{audiences: [][]string{{"https://other.example/sp", testSPEntity}}}, true},
		{"expired beyond skew", resp{notAfter: now.Add(-3 * time.Minute)}, false},
		{"expired within skew", resp{notAfter: now.Add(-30 * time.Second)}, true},
		{"confirmation expired", resp{confNotAfter: now.Add(-3 * time.Minute)}, false},
		{"not yet valid beyond skew", resp{notBefore: now.Add(3 * time.Minute)}, false},
		{"not yet valid within skew", resp{notBefore: now.Add(30 * time.Second)}, true},
		{"issued in the future", resp{issueInstant: now.Add(5 * time.Minute)}, false},
		{"issued long ago", resp{issueInstant: now.Add(-10 * time.Minute)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConnector(t, nil)
			r := tc.r
			r.now, r.inResponseTo, r.signAssertion = now, reqID, true
			if r.audiences == nil && r.noAudience {
				r.audiences = [][]string{}
			}
			_, err := call(t, c, encodeDoc(t, r.build(t)))
			if tc.accept && err != nil {
				t.Fatalf("HandleCallback(%s) = %v, want accepted", tc.name, err)
			}
			if !tc.accept && !errors.Is(err, providers.ErrInvalidResponse) {
				t.Fatalf("HandleCallback(%s) = %v, want ErrInvalidResponse", tc.name, err)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

func TestSAML_S41_SkewIsPerIdP(t *testing.T) {
	now := time.Now().UTC()
	c := newTestConnector(t, func(cfg *Config) { cfg.ClockSkew = 10 * time.Second })
	r := &resp{now: now, inResponseTo: reqID, signAssertion: true, notAfter: now.Add(-30 * time.Second)}
	mustRefuse(t, c, encodeDoc(t, r.build(t)), "an assertion 30 s expired with a 10 s skew")
	if _, err := New(Config{ID: "x", ACSURL: testACS, MetadataURL: testSPEntity, IdPMetadata: []byte(idpMetadataXML(idpCertA)),
		ClockSkew: time.Hour}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with a one-hour skew = %v, want ErrConfig", err)
	}
}

func TestSAML_S42_InResponseTo(t *testing.T) {
	for _, tc := range []struct{ name, irt string }{
		{"wrong", "id-0000"}, {"missing", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConnector(t, nil)
			mustRefuse(t, c, encodeDoc(t, (&resp{inResponseTo: tc.irt, signAssertion: true}).build(t)), tc.name+" InResponseTo")
		})
	}
	t.Run("no request id kept", func(t *testing.T) {
		c := newTestConnector(t, nil)
		r := encodeDoc(t, (&resp{inResponseTo: reqID, signAssertion: true}).build(t))
		if _, err := c.HandleCallback(context.Background(), providers.LoginRequest{}, nil, acsRequest(r, "")); !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("HandleCallback without login data = %v, want ErrInvalidResponse", err)
		}
	})
}

func TestSAML_S43_Replay(t *testing.T) {
	c := newTestConnector(t, nil)
	r := encodeDoc(t, (&resp{inResponseTo: reqID, signAssertion: true}).build(t))
	if _, err := call(t, c, r); err != nil {
		t.Fatalf("first POST: %v", err)
	}
	mustRefuse(t, c, r, "the same assertion a second time")

	c2 := newTestConnector(t, nil)
	c2.SetReplayCache(nil)
	if _, err := call(t, c2, encodeDoc(t, (&resp{inResponseTo: reqID, signAssertion: true}).build(t))); !errors.Is(err, ErrNoReplayCache) {
		t.Fatalf("HandleCallback without a replay cache = %v, want ErrNoReplayCache", err)
	}
}

func TestSAML_S44_IdPInitiated(t *testing.T) {
	app := "https://notes.example.test/login"
	unsolicited := func(t *testing.T, mod func(*resp)) string {
		r := &resp{inResponseTo: "-", signAssertion: true}
		if mod != nil {
			mod(r)
		}
		return encodeDoc(t, r.build(t))
	}
	t.Run("off by default", func(t *testing.T) {
		c := newTestConnector(t, nil)
		if _, ok := c.Unsolicited(""); ok {
			t.Fatal("Unsolicited(\"\") = ok with idp_initiated off")
		}
		if _, err := c.HandleUnsolicited(context.Background(), acsRequest(unsolicited(t, nil), "")); !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("HandleUnsolicited = %v, want refusal", err)
		}
	})
	on := func(cfg *Config) { cfg.IdPInitiated, cfg.RelayStateAllowList = true, []string{app} }
	t.Run("on: allowed, once", func(t *testing.T) {
		c := newTestConnector(t, on)
		if got, ok := c.Unsolicited(""); !ok || got != app {
			t.Fatalf("Unsolicited(\"\") = %q, %v", got, ok)
		}
		if _, ok := c.Unsolicited("https://evil.test/"); ok {
			t.Fatal("Unsolicited(evil) = ok, want refused by the allow-list")
		}
		r := unsolicited(t, nil)
		if _, err := c.HandleUnsolicited(context.Background(), acsRequest(r, app)); err != nil {
			t.Fatalf("HandleUnsolicited: %v", err)
		}
		if _, err := c.HandleUnsolicited(context.Background(), acsRequest(r, app)); !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("replayed unsolicited = %v, want refusal", err)
		}
	})
	t.Run("on: too old for the window", func(t *testing.T) {
		c := newTestConnector(t, on)
		r := unsolicited(t, func(r *resp) { r.issueInstant = time.Now().Add(-4 * time.Minute) })
		if _, err := c.HandleUnsolicited(context.Background(), acsRequest(r, app)); !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("old unsolicited = %v, want refusal", err)
		}
	})
	t.Run("on: carries InResponseTo", func(t *testing.T) {
		c := newTestConnector(t, on)
		r := unsolicited(t, func(r *resp) { r.inResponseTo = reqID })
		if _, err := c.HandleUnsolicited(context.Background(), acsRequest(r, app)); !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("unsolicited with InResponseTo = %v, want refusal", err)
		}
	})
	t.Run("on: needs an allow-list", func(t *testing.T) {
		_, err := New(Config{ID: "x", ACSURL: testACS, MetadataURL: testSPEntity, IdPMetadata: []byte(idpMetadataXML(idpCertA)), IdPInitiated: true})
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("New(idp_initiated without allow-list) = %v, want ErrConfig", err)
		}
	})
}

func TestSAML_S45_Limits(t *testing.T) {
	c := newTestConnector(t, nil)
	valid, _ := (&resp{inResponseTo: reqID, signAssertion: true}).build(t).WriteToString()
	deflate := func(b []byte) string {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	deep := strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200)
	many := "<samlp:Response xmlns:samlp=\"" + nsProtocol + "\">" + strings.Repeat("<x/>", 5000) + "</samlp:Response>"
	for _, tc := range []struct{ name, body string }{
		{"oversized", strings.Repeat("A", 600<<10)},
		{"deflate bomb", deflate(bytes.Repeat([]byte(" "), 50<<20))},
		{"deep nesting", base64.StdEncoding.EncodeToString([]byte(deep))},
		{"too many nodes", base64.StdEncoding.EncodeToString([]byte(many))},
		{"entity expansion", base64.StdEncoding.EncodeToString([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><r>&b;</r>`))},
		{"processing instruction", base64.StdEncoding.EncodeToString([]byte("<?xml-stylesheet href=\"x\"?>" + valid[strings.Index(valid, "<samlp"):]))},
		{"not base64", "%%%"},
		{"garbage", base64.StdEncoding.EncodeToString([]byte("\x00\x01garbage"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			mustRefuse(t, c, tc.body, tc.name)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing %s took %s", tc.name, d)
			}
		})
	}
	t.Run("deflated valid response", func(t *testing.T) {
		if _, err := call(t, c, deflate([]byte(valid))); err != nil {
			t.Fatalf("HandleCallback(deflated) = %v, want accepted", err)
		}
	})
}

// TestSAML_S46_GoxmldsigVersion proves go.mod requires goxmldsig >= v1.6.1
// (the version crewjam/saml v0.5.1 pins has a signature bypass).
func TestSAML_S46_GoxmldsigVersion(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	// A require line: module path, version; a replace directive would undo it.
	if regexp.MustCompile(`(?m)^\s*(replace\s+)?github\.com/russellhaering/goxmldsig\s+=>`).Match(b) {
		t.Fatal("go.mod replaces goxmldsig")
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/russellhaering/goxmldsig\s+v(\d+)\.(\d+)\.(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod does not require github.com/russellhaering/goxmldsig")
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(string(m[i+1]))
	}
	if v[0] < 1 || (v[0] == 1 && (v[1] < 6 || (v[1] == 6 && v[2] < 1))) {
		t.Fatalf("go.mod requires goxmldsig v%d.%d.%d, want >= v1.6.1", v[0], v[1], v[2])
	}
}

func TestSAML_Status(t *testing.T) {
	c := newTestConnector(t, nil)
	r := &resp{inResponseTo: reqID, status: "urn:oasis:names:tc:SAML:2.0:status:Requester", signResponse: true}
	doc := r.build(t)
	_, err := call(t, c, encodeDoc(t, doc))
	if !errors.Is(err, providers.ErrAccessDenied) {
		t.Fatalf("HandleCallback(status Requester) = %v, want ErrAccessDenied", err)
	}
}

func TestSAML_TransientNameIDRefused(t *testing.T) {
	c := newTestConnector(t, nil)
	mustRefuse(t, c, encodeDoc(t, (&resp{inResponseTo: reqID, signAssertion: true, nameIDFormat: NameIDTransient}).build(t)), "a transient NameID")
}
