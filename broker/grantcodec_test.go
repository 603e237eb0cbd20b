package broker

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/realmgate/realmgate/providers"
)

// codecGrant is a grant with every field set, claims of every JSON type
// and some Go types the rules produce, and an origin session.
func codecGrant() *grant {
	now := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	return &grant{ClientID: "app", RedirectURI: "https://app.test/cb", Challenge: "ch", Nonce: "n-1",
		Scopes: []string{"openid", "email"}, SID: "sid-1", Subject: "sub-1", Tenant: "acme", IdP: "acme-idp",
		AuthTime: now, Created: now.Add(time.Second), TI: "ti", HI: "hi", ACRS: []string{"c1"}, Risk: "low",
		Cap: 90 * time.Minute, JKT: "jkt",
		Claims: map[string]any{
			"email": "alice@acme.test", "email_verified": true, "off": false, "none": nil,
			"n": 42.5, "i": 7, "i64": int64(1) << 60, "neg": -0.25,
			"groups": []any{"a", "b", 3.0, nil}, "roles": []string{"admin"}, "addr": map[string]any{"c": "DE", "z": []any{}},
			"nested": map[string]string{"k": "v"}, "when": now, "ints": []int{1, 2},
			"strs_nil": []string(nil), "ptr": (*string)(nil), "unicode": "Ålice ✓ \u2028",
		},
		Origin: &session{SID: "sid-1", Tenant: "acme", IdP: "acme-idp", Subject: "sub-1", AuthTime: now.UTC(),
			Identity: providers.Identity{Issuer: "https://idp.test", Subject: "u1", Email: "alice@acme.test",
				Claims: map[string]any{"iss": "https://idp.test", "sub": "u1", "email": "alice@acme.test"}}},
	}
}

// jsonRoundTrip is what the earlier JSON form gave back for g.
func jsonRoundTrip(t *testing.T, g *grant) grant {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var out grant
	if err := decodeRecord(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameGrant compares two grants by their JSON (instants, not zones).
func sameGrant(t *testing.T, what string, got, want grant) {
	t.Helper()
	for _, g := range []*grant{&got, &want} {
		g.AuthTime, g.Created = g.AuthTime.UTC(), g.Created.UTC()
		if g.Origin != nil {
			g.Origin.AuthTime = g.Origin.AuthTime.UTC()
		}
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func TestGrantCodec_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		g    *grant
	}{
		{"every field", codecGrant()},
		{"empty", &grant{}},
		{"empty lists and claims", &grant{Scopes: []string{}, ACRS: []string{}, Claims: map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeGrant(tt.g)
			if err != nil {
				t.Fatalf("encodeGrant = %v", err)
			}
			if b[0] != grantV1 {
				t.Fatalf("encodeGrant starts with %#x, want the version byte %#x", b[0], grantV1)
			}
			var got grant
			if err := decodeGrant(b, &got, true); err != nil {
				t.Fatalf("decodeGrant = %v", err)
			}
			sameGrant(t, "binary round trip", got, jsonRoundTrip(t, tt.g))

			var ex grant
			if err := decodeGrant(b, &ex, false); err != nil {
				t.Fatalf("decodeGrant without origin = %v", err)
			}
			want := jsonRoundTrip(t, tt.g)
			want.Origin = nil
			sameGrant(t, "without origin", ex, want)
		})
	}
}

// TestGrantCodec_ReadsJSONForm: codes and families written by the previous
// release (JSON) are still read, with and without the origin.
func TestGrantCodec_ReadsJSONForm(t *testing.T) {
	g := codecGrant()
	old, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var got grant
	if err := decodeGrant(old, &got, true); err != nil {
		t.Fatalf("decodeGrant(JSON) = %v", err)
	}
	sameGrant(t, "JSON form", got, jsonRoundTrip(t, g))
	if err := decodeGrant(old, &got, false); err != nil || got.Origin != nil || got.SID != "sid-1" {
		t.Fatalf("decodeGrant(JSON, no origin) = %v, origin %v, sid %q; want nil, nil, sid-1", err, got.Origin, got.SID)
	}

	cb := codeBinding{RedirectURI: "https://app.test/cb", Challenge: "c", Nonce: "n", Created: time.Unix(1700000000, 5).UTC(), JKT: "j"}
	oldB, _ := json.Marshal(cb)
	for name, rec := range map[string][]byte{"JSON": oldB, "binary": encodeBinding(&cb)} {
		var got codeBinding
		if err := decodeBinding(rec, &got); err != nil || got != cb {
			t.Errorf("decodeBinding(%s) = %+v, %v, want %+v", name, got, err, cb)
		}
	}
}

func TestGrantCodec_RefusesBadInput(t *testing.T) {
	b, err := encodeGrant(codecGrant())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(b); i++ {
		var g grant
		if err := decodeGrant(b[:i], &g, true); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decodeGrant(first %d of %d bytes) = %v, want ErrNotFound", i, len(b), err)
		}
	}
	var g grant
	if err := decodeGrant(append(b[:len(b):len(b)], 0), &g, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("decodeGrant(trailing byte) = %v, want ErrNotFound", err)
	}
	if _, err := encodeGrant(&grant{Claims: map[string]any{"x": func() {}}}); err == nil {
		t.Errorf("encodeGrant(claim of a func) = nil error, want one (as json.Marshal)")
	}
}

func FuzzGrantCodec(f *testing.F) {
	b, _ := encodeGrant(codecGrant())
	f.Add(b)
	f.Add([]byte{grantV1})
	f.Add([]byte(`{"cid":"x"}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var g grant
		if decodeGrant(rec, &g, true) != nil {
			return
		}
		// What decodes encodes again and reads back the same.
		again, err := encodeGrant(&g)
		if err != nil {
			return // a claim value JSON cannot hold (NaN) never comes from a decode, but stay safe
		}
		var g2 grant
		if err := decodeGrant(again, &g2, true); err != nil {
			t.Fatalf("re-encoded grant does not decode: %v", err)
		}
	})
}

// TestGrantCodec_EveryField fills every field of grant and codeBinding
// with a value and checks the binary form keeps it: a field added to
// either struct without a place in grantcodec.go fails here.
func TestGrantCodec_EveryField(t *testing.T) {
	fill := func(t *testing.T, v reflect.Value) {
		t.Helper()
		for i := 0; i < v.NumField(); i++ {
			f, sf := v.Field(i), v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			switch f.Interface().(type) {
			case string:
				f.SetString("v-" + sf.Name)
			case []string:
				f.Set(reflect.ValueOf([]string{"a-" + sf.Name, "b"}))
			case time.Time:
				f.Set(reflect.ValueOf(time.Unix(1700000000+int64(i), 123).UTC()))
			case time.Duration:
				f.SetInt(int64(time.Minute) + int64(i))
			case map[string]any:
				f.Set(reflect.ValueOf(map[string]any{"k-" + sf.Name: "v"}))
			case *session:
				f.Set(reflect.ValueOf(codecGrant().Origin))
			default:
				t.Fatalf("field %s (%s): give it a place in the binary form (grantcodec.go) and a value here", sf.Name, sf.Type)
			}
		}
	}
	var g grant
	fill(t, reflect.ValueOf(&g).Elem())
	b, err := encodeGrant(&g)
	if err != nil {
		t.Fatal(err)
	}
	var got grant
	if err := decodeGrant(b, &got, true); err != nil {
		t.Fatalf("decodeGrant = %v", err)
	}
	sameGrant(t, "every field", got, jsonRoundTrip(t, &g))

	var cb codeBinding
	fill(t, reflect.ValueOf(&cb).Elem())
	var gotB codeBinding
	if err := decodeBinding(encodeBinding(&cb), &gotB); err != nil || gotB != cb {
		t.Errorf("decodeBinding(encodeBinding(%+v)) = %+v, %v", cb, gotB, err)
	}
}

// TestGrantCodec_EveryOriginField: every field of the origin session and
// of its identity survives the binary form; the claims of one protocol
// exchange are left out, as the session's compact JSON form does.
func TestGrantCodec_EveryOriginField(t *testing.T) {
	var s session
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f, sf := v.Field(i), v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			switch f.Interface().(type) {
			case string:
				f.SetString("v-" + sf.Name)
			case bool:
				f.SetBool(true)
			case int64:
				f.SetInt(int64(40 + i))
			case []string:
				f.Set(reflect.ValueOf([]string{"a-" + sf.Name}))
			case time.Time:
				f.Set(reflect.ValueOf(time.Unix(1700000000+int64(i), 7).UTC()))
			case map[string]any:
				f.Set(reflect.ValueOf(map[string]any{"k-" + sf.Name: "v", "nonce": "n", "at_hash": "h", "c_hash": "c"}))
			case providers.Identity:
				fill(f)
			default:
				t.Fatalf("field %s (%s): give it a place in appendSession (grantcodec.go) and a value here", sf.Name, sf.Type)
			}
		}
	}
	fill(reflect.ValueOf(&s).Elem())
	b, err := appendSession(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSession(b)
	if err != nil {
		t.Fatalf("decodeSession = %v", err)
	}
	want := s
	want.Identity.Claims = map[string]any{"k-Claims": "v"}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("decodeSession(appendSession(s)) =\n%+v\nwant\n%+v", *got, want)
	}
}
