package broker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/providers"
)

// TestSessionCodec proves the compact session form loses nothing the broker
// uses: every identity field comes back, whether it repeats its claim or not,
// and only the per-exchange claims (nonce, at_hash, c_hash) are dropped.
func TestSessionCodec(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 30, 0, 0, time.UTC)
	oidcClaims := func() map[string]any {
		return map[string]any{"iss": "https://idp.example/acme", "sub": "u-1", "aud": "realmgate",
			"email": "alice@acme.test", "email_verified": true, "name": "Alice Anders", "given_name": "Alice",
			"family_name": "Anders", "amr": []any{"pwd", "mfa"}, "groups": []any{"Finance-Admins"},
			"auth_time": float64(at.Unix())}
	}
	for _, tc := range []struct {
		name string
		id   providers.Identity
	}{
		{"oidc fields repeat claims", providers.Identity{Issuer: "https://idp.example/acme", Subject: "u-1",
			Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders", GivenName: "Alice", FamilyName: "Anders",
			AMR: []string{"pwd", "mfa"}, AuthTime: at, Claims: oidcClaims()}},
		{"fields differ from claims", providers.Identity{Issuer: "https://idp.example/acme", Subject: "u-1",
			Email: "", EmailVerified: false, Name: "A. Anders", PreferredUsername: "alice", ACR: "urn:mfa",
			AMR: []string{"pwd"}, AuthTime: at.Add(-time.Hour), Claims: oidcClaims()}},
		{"empty amr although the claim has one", providers.Identity{Issuer: "i", Subject: "s", AMR: nil,
			AuthTime: at, Claims: map[string]any{"amr": []any{"pwd"}}}},
		{"saml attributes", providers.Identity{Issuer: "https://adfs.example/adfs/services/trust", Subject: "ALICE",
			Email: "alice@acme.test", Name: "Alice", AMR: []string{"urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
			AuthTime: at, Claims: map[string]any{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": []any{"alice@acme.test"}}}},
		{"no claims", providers.Identity{Issuer: "i", Subject: "s", Email: "e@x.test", EmailVerified: true, AuthTime: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := session{SID: "sid", Tenant: "acme", IdP: "acme-idp", Subject: "opaque", Identity: tc.id, AuthTime: at}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var out session
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if out.Identity.AMR == nil && len(in.Identity.AMR) == 0 {
				out.Identity.AMR = in.Identity.AMR
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("round trip of %s\n got  %+v\n want %+v", b, out, in)
			}
		})
	}
	t.Run("exchange claims dropped", func(t *testing.T) {
		claims := map[string]any{"sub": "u-1", "nonce": "n-123", "at_hash": "h", "c_hash": "c", "groups": []any{"g"}}
		in := session{Identity: providers.Identity{Subject: "u-1", Claims: claims}, AuthTime: time.Unix(1, 0).UTC()}
		b, _ := json.Marshal(in)
		var out session
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		for _, k := range exchangeClaims {
			if _, ok := out.Identity.Claims[k]; ok || strings.Contains(string(b), `"`+k+`"`) {
				t.Errorf("stored session %s keeps %q", b, k)
			}
		}
		if len(claims) != 5 {
			t.Errorf("encoding changed the caller's claims: %v", claims)
		}
		if out.Identity.Claims["groups"] == nil || out.Identity.Subject != "u-1" {
			t.Errorf("decoded %+v, want groups and subject kept", out.Identity)
		}
	})
	t.Run("long form still read", func(t *testing.T) {
		old := `{"sid":"s","tid":"acme","idp":"acme-idp","sub":"x","id":{"Issuer":"i","Subject":"u","Email":"e@acme.test",` +
			`"EmailVerified":true,"AMR":["pwd"],"AuthTime":"2026-11-22T08:30:00Z","Claims":{"nonce":"n"}},"at":"2026-11-22T08:30:00Z"}`
		var out session
		if err := json.Unmarshal([]byte(old), &out); err != nil {
			t.Fatal(err)
		}
		want := providers.Identity{Issuer: "i", Subject: "u", Email: "e@acme.test", EmailVerified: true, AMR: []string{"pwd"},
			AuthTime: at, Claims: map[string]any{"nonce": "n"}}
		if !reflect.DeepEqual(out.Identity, want) || out.Tenant != "acme" || !out.AuthTime.Equal(at) {
			t.Errorf("long form decoded to %+v, want identity %+v", out, want)
		}
	})
	t.Run("smaller", func(t *testing.T) {
		in := session{SID: "Jq4EHpEhlFnD5ZewZUNHkQ", Tenant: "acme", IdP: "acme-idp", Subject: "0dAmA2w1DHEwQT5CPMLq5WdBUDk4AEVW",
			AuthTime: at, Identity: providers.Identity{Issuer: "https://idp.example/acme", Subject: "u-1", Email: "alice@acme.test",
				EmailVerified: true, Name: "Alice Anders", GivenName: "Alice", FamilyName: "Anders", AMR: []string{"pwd", "mfa"},
				AuthTime: at, Claims: oidcClaimsWithExchange()}}
		type long session // no MarshalJSON: the earlier form
		compact, _ := json.Marshal(in)
		before, _ := json.Marshal(long(in))
		if len(compact) > len(before)*3/4 {
			t.Errorf("compact session is %d bytes, long form %d: want at most 3/4", len(compact), len(before))
		}
	})
}

func oidcClaimsWithExchange() map[string]any {
	return map[string]any{"iss": "https://idp.example/acme", "sub": "u-1", "aud": "realmgate", "exp": 1.8e9, "iat": 1.8e9,
		"nonce": "9R5gh7uJCsSajbeRVdnlC8K01kj9fuHUFDmlC86UJY4", "at_hash": "nAiXhvVMJ9_ilSAqMdIrIw",
		"email": "alice@acme.test", "email_verified": true, "name": "Alice Anders", "given_name": "Alice",
		"family_name": "Anders", "amr": []any{"pwd", "mfa"}, "groups": []any{"Finance-Admins"}}
}

// TestSessionCodec_CoversEveryField fails when session gains a persisted
// field that the compact stored form does not carry: such a field would be
// lost silently on the next read.
func TestSessionCodec_CoversEveryField(t *testing.T) {
	carried := map[string]bool{"SID": true, "Tenant": true, "IdP": true, "Subject": true, "Identity": true,
		"AuthTime": true, "Clients": true, "UID": true, "UGen": true}
	st := reflect.TypeFor[session]()
	for i := range st.NumField() {
		f := st.Field(i)
		if f.IsExported() && !carried[f.Name] {
			t.Errorf("session.%s is not in sessionWire: add it to MarshalJSON and UnmarshalJSON (records.go)", f.Name)
		}
	}
	in := session{SID: "s", Tenant: "t", IdP: "i", Subject: "x", Clients: []string{"app-a", "app-b"}, UID: "u1", UGen: 3,
		AuthTime: time.Unix(1, 0).UTC(), Identity: providers.Identity{Subject: "u", AuthTime: time.Unix(1, 0).UTC()}}
	b, _ := json.Marshal(in)
	var out session
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Clients, in.Clients) || out.SID != "s" || out.Tenant != "t" || out.IdP != "i" || out.Subject != "x" ||
		out.UID != "u1" || out.UGen != 3 {
		t.Errorf("round trip of %s = %+v, want %+v", b, out, in)
	}
}
