package broker_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
