package ruleimport

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/transform"
)

// TestEntraPolicy runs testdata/adfs/entra-policy.json (the claims schema
// of Microsoft Graph's claimsMappingPolicy example, a Join and an
// ExtractMailPrefix) over an Entra ID identity, by its OIDC claim names
// and by its SAML claim types.
func TestEntraPolicy(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", "entra-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The Graph object wraps the same policy as a string.
	graph, _ := json.Marshal(map[string]any{"displayName": "p", "definition": []string{string(src)}})
	want := map[string]any{
		NameIDType: "megan@contoso.com", "username": "megan@contoso.com",
		"given_name": "Megan", "family_name": "Bowen", "name": "Megan Bowen",
		"employee_id": "4211", "JoinedData": "ext1.sandbox", "alias": "megan.bowen",
	}
	for _, in := range []struct {
		name     string
		src      []byte
		upstream map[string]any
	}{
		{"OIDC claims", src, map[string]any{"upn": "megan@contoso.com", "given_name": "Megan", "family_name": "Bowen",
			"name": "Megan Bowen", "employeeid": "4211", "email": "megan.bowen@contoso.com", "extensionattribute1": "ext1"}},
		{"SAML claim types, Graph object", graph, map[string]any{
			wsUPN: "megan@contoso.com", wsClaims + "givenname": "Megan", wsClaims + "surname": "Bowen",
			"http://schemas.microsoft.com/identity/claims/displayname": "Megan Bowen", "employeeid": "4211",
			wsEmail: "megan.bowen@contoso.com", "extensionattribute1": "ext1"}},
	} {
		t.Run(in.name, func(t *testing.T) {
			res, err := ConvertEntra(in.src, Options{})
			if err != nil || len(res.Problems) > 0 {
				t.Fatalf("ConvertEntra: %v %v", err, res.Problems)
			}
			rules := make([]transform.Rule, len(res.Rules))
			for i, r := range res.Rules {
				rules[i] = TransformRule(r)
			}
			eng, err := transform.Compile(nil, rules, transform.Options{Tenant: "t"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := eng.Apply(context.Background(), transform.Input{Upstream: in.upstream, Claims: map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, want) {
				t.Errorf("Apply\n got %#v\nwant %#v", out, want)
			}
			if got := len(res.Issued); got != 8 {
				t.Errorf("Issued = %v, want 8 attributes", res.Issued)
			}
		})
	}
}

func TestEntraProblems(t *testing.T) {
	tests := []struct{ policy, where, msg string }{
		{`{"ClaimsMappingPolicy":{"ClaimsSchema":[{"Source":"company","ID":"tenantcountry","JwtClaimType":"country"}]}}`, "ClaimsSchema[0]", `source "company"`},
		{`{"ClaimsMappingPolicy":{"ClaimsSchema":[{"Source":"user","ID":"objectid","JwtClaimType":"sub"}]}}`, "ClaimsSchema[0]", `"sub" is reserved`},
		{`{"ClaimsMappingPolicy":{"ClaimsSchema":[{"Source":"transformation","ID":"x","TransformationId":"t","JwtClaimType":"x"}],
		  "ClaimsTransformation":[{"ID":"t","TransformationMethod":"CreateStringClaim"}]}}`, "ClaimsSchema[0]", `"CreateStringClaim" cannot be converted`},
		{`{"ClaimsMappingPolicy":{"ClaimsSchema":[{"Source":"transformation","ID":"x","TransformationId":"nope","JwtClaimType":"x"}]}}`, "ClaimsSchema[0]", `names no ClaimsTransformation`},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			res, err := ConvertEntra([]byte(tc.policy), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) != 1 || res.Problems[0].Where != tc.where || !strings.Contains(res.Problems[0].Msg, tc.msg) {
				t.Errorf("problems = %v, want one at %s containing %q", res.Problems, tc.where, tc.msg)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"definition":["{"]}`, `{"ClaimsMappingPolicy": 5}`, `{}`} {
		if _, err := ConvertEntra([]byte(bad), Options{}); err == nil {
			t.Errorf("ConvertEntra(%q): no error", bad)
		}
	}
}
