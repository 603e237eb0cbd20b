package broker_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/samlidp"
)

// onelogin runs one step of the python3-saml SP (e2e/saml/python).
func onelogin(t *testing.T, cfg, step string, in any) map[string]any {
	t.Helper()
	script, _ := filepath.Abs("../e2e/saml/python/onelogin_sp.py")
	cmd := exec.Command("/usr/bin/python3", script, cfg, step)
	b, _ := json.Marshal(in)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3-saml %s: %v\n%s%s (scripts/test.sh installs python3-onelogin-saml2)", step, err, out, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("python3-saml %s: %s", step, out)
	}
	if errs, _ := m["errors"].([]any); len(errs) > 0 {
		t.Fatalf("python3-saml %s refused: %v (%v)", step, errs, m["reason"])
	}
	return m
}

// TestSAMLIdP_OneLoginPythonSP: Debian's python3-saml, an SP nobody here
// wrote, signs in through realmgate (signed HTTP-Redirect AuthnRequest,
// strict validation of the signed Response and assertion, in clear and
// encrypted), gets tid and roles, and logs out SP-initiated (signed
// LogoutRequest; realmgate's signed LogoutResponse accepted).
func TestSAMLIdP_OneLoginPythonSP(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "clear", true: "encrypted"}[encrypted], func(t *testing.T) {
			e := newIdPEnv(t, func(sp *samlidp.SP) {
				if !encrypted {
					sp.EncryptionCert = nil
				}
			})
			f := oneloginConfig(t, e, encrypted)
			login := onelogin(t, f, "login", nil)
			br := e.browser()
			_, body := e.upstream(br, br.get(login["url"].(string)+"&login_hint=alice%40acme.test"))
			_, v := postFields(t, body)
			got := onelogin(t, f, "acs", map[string]any{"SAMLResponse": v.Get("SAMLResponse"), "RelayState": v.Get("RelayState"), "id": login["id"]})
			attrs, _ := got["attrs"].(map[string]any)
			if roles, _ := attrs["http://schemas.microsoft.com/ws/2008/06/identity/claims/role"].([]any); !slices.Equal(roles, []any{"admin", "member"}) {
				t.Errorf("python3-saml attributes = %v, want roles [admin member]", attrs)
			}
			if tid, _ := attrs["tid"].([]any); !slices.Equal(tid, []any{"acme"}) {
				t.Errorf("python3-saml attributes = %v, want tid [acme]", attrs)
			}
			lo := onelogin(t, f, "logout", got)
			resp := br.get(lo["url"].(string))
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, spSLO+"?") {
				t.Fatalf("LogoutRequest = %d %q, want a LogoutResponse to the SP", resp.StatusCode, loc)
			}
			u, _ := url.Parse(loc)
			q := map[string]string{}
			for k := range u.Query() {
				q[k] = u.Query().Get(k)
			}
			onelogin(t, f, "sls", map[string]any{"query": q, "id": lo["id"]})
		})
	}
}

// oneloginConfig writes the python3-saml SP's configuration for e's app
// and returns its path.
func oneloginConfig(t *testing.T, e *idpEnv, encrypted bool) string {
	t.Helper()
	md := fetchIdPMetadata(t, e.issuer)
	kder, _ := x509.MarshalPKCS8PrivateKey(e.sp.Key)
	cfg := map[string]any{"entity": spEntity, "acs": spACS, "slo": spSLO,
		"cert":       base64.StdEncoding.EncodeToString(e.sp.Certificate.Raw),
		"key":        string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
		"idp_entity": md.EntityID, "sso": e.issuer + "/saml-idp/sso", "idp_slo": e.issuer + "/saml-idp/slo",
		"idp_cert":  md.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data,
		"encrypted": encrypted}
	f := filepath.Join(t.TempDir(), "sp.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// queryMap flattens a URL's query for python3-saml's get_data.
func queryMap(u *url.URL) map[string]string {
	q := map[string]string{}
	for k := range u.Query() {
		q[k] = u.Query().Get(k)
	}
	return q
}

// TestSAMLIdP_OneLoginPythonSP_PostAndIdPLogout: python3-saml sends its
// AuthnRequest with the HTTP-POST binding (an enveloped signature made by
// the toolkit's add_sign), realmgate verifies it and python3-saml accepts
// the signed Response (strict, InResponseTo the request). Then realmgate
// starts the single logout (its /logout): python3-saml verifies
// realmgate's signed LogoutRequest (HTTP-Redirect, NameID and
// SessionIndex of its assertion) and answers with a signed
// LogoutResponse, which realmgate accepts (audited saml_logout_confirmed)
// before showing the signed-out page; the session has ended.
func TestSAMLIdP_OneLoginPythonSP_PostAndIdPLogout(t *testing.T) {
	var audit auditSink
	e := newIdPEnv(t, func(sp *samlidp.SP) { sp.EncryptionCert = nil }, withAuditSink(&audit))
	f := oneloginConfig(t, e, false)
	login := onelogin(t, f, "login_post", nil)
	br := e.browser()
	resp, _ := br.postForm(login["action"].(string)+"?login_hint=alice%40acme.test",
		url.Values{"SAMLRequest": {login["SAMLRequest"].(string)}, "RelayState": {login["RelayState"].(string)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST AuthnRequest from python3-saml = %d, want 303 (accepted)", resp.StatusCode)
	}
	_, body := e.upstream(br, resp)
	_, v := postFields(t, body)
	if v.Get("RelayState") != "rs-py-post" {
		t.Errorf("RelayState = %q, want rs-py-post", v.Get("RelayState"))
	}
	got := onelogin(t, f, "acs", map[string]any{"SAMLResponse": v.Get("SAMLResponse"), "RelayState": v.Get("RelayState"), "id": login["id"]})
	if tid, _ := got["attrs"].(map[string]any)["tid"].([]any); !slices.Equal(tid, []any{"acme"}) {
		t.Errorf("python3-saml attributes = %v, want tid [acme]", got["attrs"])
	}

	// realmgate-initiated single logout.
	resp, _ = br.postForm(e.issuer+"/logout", url.Values{"confirm": {"yes"}})
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, spSLO+"?SAMLRequest=") {
		t.Fatalf("realmgate logout = %d %q, want a LogoutRequest to the SP's SLO", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	slo := onelogin(t, f, "slo_request", map[string]any{"query": queryMap(u)})
	if slo["nameid"] != got["nameid"] {
		t.Errorf("LogoutRequest NameID %v, want the assertion's %v", slo["nameid"], got["nameid"])
	}
	if sis, _ := slo["session_indexes"].([]any); len(sis) != 1 || sis[0] != got["session_index"] {
		t.Errorf("LogoutRequest SessionIndexes %v, want the assertion's [%v]", slo["session_indexes"], got["session_index"])
	}
	back, _ := slo["url"].(string)
	if !strings.HasPrefix(back, e.issuer+"/saml-idp/slo?SAMLResponse=") || !strings.Contains(back, "Signature=") {
		t.Fatalf("python3-saml answered %q, want a signed LogoutResponse to realmgate's SLO", back)
	}
	if r, page := br.getBody(back); r.StatusCode != http.StatusOK || !strings.Contains(page, "signed out") {
		t.Errorf("LogoutResponse at realmgate = %d, want the signed-out page:\n%.300s", r.StatusCode, page)
	}
	var confirmed, unconfirmed int
	for _, ev := range audit.events(t) {
		switch str(ev, "reason") {
		case "saml_logout_confirmed":
			confirmed++
		case "saml_logout_unconfirmed":
			unconfirmed++
		}
	}
	if confirmed != 1 || unconfirmed != 0 {
		t.Errorf("audit: %d saml_logout_confirmed, %d unconfirmed; want realmgate to accept python3-saml's LogoutResponse", confirmed, unconfirmed)
	}
	u2, _ := e.redirectRequest("")
	if r := br.get(u2); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "https://idp.example/") {
		t.Errorf("sign-in after the logout = %d %q, want the upstream IdP (session ended)", r.StatusCode, r.Header.Get("Location"))
	}
}
