package ruleimport

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/transform"
)

func readTrust(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", "trust-wiki.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrust: testdata/adfs/trust-wiki.json becomes a SAML app with the
// trust's identifier, endpoints, certificates and signing, its NameID and
// attributes from the claims its rules issue; the rules, authorization
// first, apply to sign-ins to that app only.
func TestTrust(t *testing.T) {
	tr, err := ConvertTrust(readTrust(t), "", "contoso", Options{LDAPFromUpstream: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Rules.Problems) > 0 {
		t.Fatalf("problems: %v", tr.Rules.Problems)
	}
	app := tr.Client.SAML
	zero := 0
	checks := []struct {
		name      string
		got, want any
	}{
		{"id", tr.Client.ID, "contoso-wiki"},
		{"allowed_tenants", tr.Client.AllowedTenants, []string{"contoso"}},
		{"entity_id", app.EntityID, "https://wiki.contoso.com/saml/metadata"},
		{"acs", app.ACS, []config.SAMLEndpoint{{URL: "https://wiki.contoso.com/saml/acs", Binding: "post", Index: &zero, Default: true}}},
		{"slo", *app.SLO, config.SAMLLogoutEndpoint{URL: "https://wiki.contoso.com/saml/slo", ResponseURL: "https://wiki.contoso.com/saml/slo/response", Binding: "redirect"}},
		{"require_signed_requests", app.RequireSignedRequests, true},
		{"sign", app.Sign, "both"},
		{"name_id_format", app.NameIDFormat, "email"},
		{"name_id_claim", app.NameIDClaim, NameIDType},
		{"attributes", app.Attributes, []config.SAMLAttribute{
			{Name: wsEmail, Claim: "email"}, {Name: wsName, Claim: "name"}, {Name: msRole, Claim: "roles"}}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	sp, err := os.ReadFile(filepath.Join("..", "testdata", "saml", "sp.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(app.SigningCert) != strings.TrimSpace(string(sp)) || app.EncryptionCert != app.SigningCert {
		t.Errorf("certificates = %q / %q, want testdata/saml/sp.crt", app.SigningCert, app.EncryptionCert)
	}

	rules := make([]transform.Rule, len(tr.Rules.Rules))
	for i, r := range tr.Rules.Rules {
		rules[i] = TransformRule(r)
	}
	eng, err := transform.Compile(nil, rules, transform.Options{Tenant: "contoso"})
	if err != nil {
		t.Fatal(err)
	}
	staff := map[string]any{
		msWinName: `CONTOSO\ann`, wsEmail: "ann@contoso.com", wsName: "Ann Lee", xsGroup: list("Staff"),
		msGroupID: list("S-1-5-21-3623811015-3361044348-30300820-1131"),
	}
	for _, tc := range []struct {
		name, client string
		upstream     map[string]any
		want         map[string]any
		denied       bool
	}{
		{"staff", "contoso-wiki", staff, map[string]any{"email": "ann@contoso.com", "name": "Ann Lee", NameIDType: "ann@contoso.com", "roles": list("editor")}, false},
		{"not staff", "contoso-wiki", map[string]any{wsEmail: "bob@contoso.com", xsGroup: list("Guests")}, nil, true},
		{"another app", "payroll", map[string]any{wsEmail: "bob@contoso.com"}, map[string]any{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := eng.Apply(context.Background(), transform.Input{Upstream: tc.upstream, Claims: map[string]any{}, Client: tc.client})
			if tc.denied {
				if !errors.Is(err, transform.ErrDenied) {
					t.Fatalf("Apply = %v, %v; want denied", out, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(out, tc.want) {
				t.Errorf("Apply = %#v, %v; want %#v", out, err, tc.want)
			}
		})
	}
}

// TestTrustShapes: the shapes ConvertTo-Json gives the same values
// (enums as numbers, a Uri as an object, one endpoint as an object, a
// certificate as base64, a one-trust array) read alike; what cannot be
// read is reported, not dropped.
func TestTrustShapes(t *testing.T) {
	var base map[string]any
	if err := json.Unmarshal(readTrust(t), &base); err != nil {
		t.Fatal(err)
	}
	sp, _ := os.ReadFile(filepath.Join("..", "testdata", "saml", "sp.crt"))
	certs, _ := config.ParseCertificates(string(sp))
	tests := []struct {
		name   string
		change func(m map[string]any)
		check  func(t *testing.T, tr *TrustResult)
	}{
		{"enums as numbers, Uri objects, one endpoint", func(m map[string]any) {
			m["SamlEndpoints"] = map[string]any{"Binding": 1, "Protocol": 1, "Index": 3, "IsDefault": false,
				"Location": map[string]any{"AbsoluteUri": "https://wiki.contoso.com/acs2", "OriginalString": "https://wiki.contoso.com/acs2"}}
			m["SamlResponseSignature"] = 2
		}, func(t *testing.T, tr *TrustResult) {
			if a := tr.Client.SAML.ACS; len(a) != 1 || a[0].URL != "https://wiki.contoso.com/acs2" || *a[0].Index != 3 || tr.Client.SAML.Sign != "response" {
				t.Errorf("app = %+v", tr.Client.SAML)
			}
		}},
		{"certificate as base64, one trust in an array", func(m map[string]any) {
			m["RequestSigningCertificate"] = map[string]any{"RawData": certs[0].Raw}
		}, func(t *testing.T, tr *TrustResult) {
			if tr.Client.SAML.SigningCert == "" || len(tr.Rules.Problems) > 0 {
				t.Errorf("signing cert %q, problems %v", tr.Client.SAML.SigningCert, tr.Rules.Problems)
			}
		}},
		{"a certificate exported too shallow", func(m map[string]any) {
			m["RequestSigningCertificate"] = "System.Security.Cryptography.X509Certificates.X509Certificate2"
		}, func(t *testing.T, tr *TrustResult) {
			if len(tr.Rules.Problems) < 2 || tr.Rules.Problems[0].Where != "RequestSigningCertificate" || tr.Client.SAML.RequireSignedRequests {
				t.Errorf("problems %v; require_signed_requests %v", tr.Rules.Problems, tr.Client.SAML.RequireSignedRequests)
			}
		}},
		{"an access control policy", func(m map[string]any) {
			m["IssuanceAuthorizationRules"] = ""
			m["AccessControlPolicyName"] = "Permit specific group"
		}, func(t *testing.T, tr *TrustResult) {
			if len(tr.Rules.Problems) != 1 || tr.Rules.Problems[0].Where != "AccessControlPolicyName" {
				t.Errorf("problems %v", tr.Rules.Problems)
			}
		}},
		{"a rule error is placed in its rule set", func(m map[string]any) {
			m["IssuanceTransformRules"] = "c:[Type == \"x\"] => issue(Type = \"y\", Value = lower(c.Value));"
		}, func(t *testing.T, tr *TrustResult) {
			if len(tr.Rules.Problems) != 1 || tr.Rules.Problems[0].Where != "IssuanceTransformRules" || tr.Rules.Problems[0].Pos != (Pos{1, 46}) {
				t.Errorf("problems %v", tr.Rules.Problems)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{}
			b, _ := json.Marshal(base)
			_ = json.Unmarshal(b, &m)
			tc.change(m)
			src, _ := json.Marshal([]any{m})
			tr, err := ConvertTrust(src, "wiki", "contoso", Options{LDAPFromUpstream: true})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tr)
		})
	}
	for _, bad := range []string{`{}`, `[]`, `[{},{}]`, `{"Name":"x","Identifier":[]}`, `nope`} {
		if _, err := ConvertTrust([]byte(bad), "", "contoso", Options{}); err == nil {
			t.Errorf("ConvertTrust(%q): no error", bad)
		}
	}
}
