package claims_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

func TestStandard(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   providers.Identity
		want map[string]any
	}{
		{"multi-factor", providers.Identity{Name: "Alice A", Email: "alice@acme.test", EmailVerified: true, AMR: []string{"pwd", "mfa"}},
			map[string]any{"roles": []any{}, "name": "Alice A", "email": "alice@acme.test", "email_verified": true,
				"amr": []any{"pwd", "mfa"}, "acr": claims.ACRMFA}},
		{"single factor, no amr", providers.Identity{GivenName: "Bo", FamilyName: "B", PreferredUsername: "bo"},
			map[string]any{"roles": []any{}, "given_name": "Bo", "family_name": "B", "preferred_username": "bo", "acr": claims.ACRSingleFactor}},
		{"S74 ambiguous email left out", providers.Identity{Email: "ceo@acme.test@evil.test", EmailVerified: true},
			map[string]any{"roles": []any{}, "acr": claims.ACRSingleFactor}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := claims.Standard(tc.id); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Standard(%+v) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

func TestGuardEmail_S52(t *testing.T) {
	res, err := realm.New([]realm.Tenant{{ID: "acme", Domains: []string{"acme.test"}}, {ID: "globex", Domains: []string{"globex.test"}},
		{ID: "consumers", Default: true}}, realm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, home string
		in, want   map[string]any
	}{
		{"own domain stays verified", "acme", map[string]any{"email": "a@acme.test", "email_verified": true},
			map[string]any{"email": "a@acme.test", "email_verified": true}},
		{"another tenant's domain dropped", "acme", map[string]any{"email": "b@globex.test", "email_verified": true}, map[string]any{}},
		{"no tenant's domain unverified", "acme", map[string]any{"email": "c@else.example", "email_verified": true},
			map[string]any{"email": "c@else.example", "email_verified": false}},
		{"tenant without domains keeps the IdP's word", "consumers", map[string]any{"email": "c@else.example", "email_verified": true},
			map[string]any{"email": "c@else.example", "email_verified": true}},
		{"S74 ambiguous dropped", "acme", map[string]any{"email": "x@acme.test@globex.test", "email_verified": true}, map[string]any{}},
		{"empty email dropped", "acme", map[string]any{"email": "", "email_verified": true}, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]any{}
			for k, v := range tc.in {
				got[k] = v
			}
			claims.GuardEmail(res, tc.home, got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GuardEmail(%q, %v) = %v, want %v", tc.home, tc.in, got, tc.want)
			}
		})
	}
}

// TestPipeline_S52_GuardsWhatRulesSet: the guard runs after the rules, so a
// rule cannot give tenant A's user an email in tenant B's domain, in Apply
// and in Explain alike; a deny returns no claims.
func TestPipeline_S52_GuardsWhatRulesSet(t *testing.T) {
	res, err := realm.New([]realm.Tenant{{ID: "acme", Domains: []string{"acme.test"}}, {ID: "globex", Domains: []string{"globex.test"}}}, realm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := transform.Compile(nil, []transform.Rule{
		{Name: "deny", If: `upstream.sub == "mallory"`, Deny: "no"},
		{Name: "email", Set: []transform.Assignment{{Claim: "email", Expr: `upstream.sub + "@globex.test"`}}},
	}, transform.Options{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	p := claims.Pipeline{Rules: eng, Domains: res}
	req := claims.Request{Identity: claims.FromUpstream(map[string]any{"sub": "alice", "email": "alice@acme.test", "email_verified": true}),
		Tenant: "acme", IdP: "acme-idp"}
	out, err := p.Apply(context.Background(), req)
	if err != nil || out["email"] != nil || out["acr"] != claims.ACRSingleFactor {
		t.Errorf("Apply = %v, %v; want no email, acr %s", out, err, claims.ACRSingleFactor)
	}
	ex, err := p.Explain(context.Background(), req)
	if err != nil || !reflect.DeepEqual(ex.Claims, out) || len(ex.Trace) != 2 {
		t.Errorf("Explain = %v, %v; want Apply's claims %v and two steps", ex, err, out)
	}
	req.Identity = claims.FromUpstream(map[string]any{"sub": "mallory"})
	if ex, err := p.Explain(context.Background(), req); !errors.Is(err, transform.ErrDenied) || ex.Claims != nil {
		t.Errorf("Explain(mallory) = %v, %v; want denied, no claims", ex, err)
	}
}

func TestFromUpstream(t *testing.T) {
	up := map[string]any{"iss": "https://idp", "sub": "s1", "email": "a@acme.test", "email_verified": "TRUE", "name": "A",
		"given_name": "G", "family_name": "F", "preferred_username": "a", "amr": "pwd", "acr": "urn:x", "groups": []any{"g"}}
	want := providers.Identity{Issuer: "https://idp", Subject: "s1", Email: "a@acme.test", EmailVerified: true, Name: "A",
		GivenName: "G", FamilyName: "F", PreferredUsername: "a", AMR: []string{"pwd"}, ACR: "urn:x", Claims: up}
	if got := claims.FromUpstream(up); !reflect.DeepEqual(got, want) {
		t.Errorf("FromUpstream(%v) = %+v, want %+v", up, got, want)
	}
	if got := claims.FromUpstream(map[string]any{"amr": []any{"pwd", 1, "otp"}}); !reflect.DeepEqual(got.AMR, []string{"pwd", "otp"}) {
		t.Errorf("FromUpstream amr list = %v, want [pwd otp]", got.AMR)
	}
}

// TestRelease_S75 is the release step: standard claims by scope, roles by
// scope or registration, custom claims by registration only, reserved
// claims never.
func TestRelease_S75(t *testing.T) {
	all := map[string]any{"email": "a@acme.test", "email_verified": true, "name": "A", "acr": claims.ACRMFA,
		"amr": []any{"pwd", "mfa"}, "roles": []any{"admin"}, "department": "finance", "salary_band": "B7",
		"tid": "forged", "sub": "forged"}
	cases := []struct {
		name          string
		scopes, grant []string
		want, notWant []string
		wantRoles     bool
	}{
		{"openid only", []string{"openid"}, nil, []string{"acr", "amr"}, []string{"email", "name", "department", "tid", "sub"}, false},
		{"email and profile", []string{"openid", "email", "profile"}, nil, []string{"email", "email_verified", "name"}, []string{"department", "salary_band"}, false},
		{"roles scope", []string{"openid", "roles"}, nil, nil, []string{"department"}, true},
		{"registered claim and roles", []string{"openid"}, []string{"department", "roles"}, []string{"department"}, []string{"salary_band", "email"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, roles := claims.Release(all, tc.scopes, tc.grant)
			for _, k := range tc.want {
				if _, ok := out[k]; !ok {
					t.Errorf("Release(%v, %v) lacks %s: %v", tc.scopes, tc.grant, k, out)
				}
			}
			for _, k := range append(tc.notWant, "roles") {
				if _, ok := out[k]; ok {
					t.Errorf("Release(%v, %v) has %s: %v", tc.scopes, tc.grant, k, out)
				}
			}
			if (roles != nil) != tc.wantRoles {
				t.Errorf("Release(%v, %v) roles = %v, want released %v", tc.scopes, tc.grant, roles, tc.wantRoles)
			}
		})
	}
}
