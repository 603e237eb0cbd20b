package users

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// codecUser is a provisioned user with every field the record keeps set.
func codecUser() *User {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	return &User{ID: "u-1", Tenant: "acme", Subject: "sub-1", ExternalID: "ext-1", UserName: "Alice", Email: "alice@acme.test",
		EmailVerified: true, Name: Name{Formatted: "Alice L", GivenName: "Alice", FamilyName: "Liddell"}, DisplayName: "Alice L",
		Status: StatusSuspended, Links: []Link{{IdP: "entra", Subject: "oid-1"}, {IdP: "okta", Subject: "00u1"}},
		Groups:      []GroupRef{{ID: "g1", Display: "Engineers"}, {ID: "g2"}},
		Attributes:  map[string]any{"plan": "enterprise", "seats": 3, "tags": []string{"a", "<b>"}, "nested": map[string]any{"x": nil}},
		Extra:       map[string]json.RawMessage{"urn:x:title": json.RawMessage(` { "v" : "<Boss>" } `), "n": json.RawMessage(`1`)},
		FirstSignIn: t0, Created: t0.Add(-time.Hour), Updated: t0.Add(time.Hour), Generation: 4,
		Risk:        &Risk{State: RiskAtRisk, Level: "high", Detail: "impossible travel", Updated: t0.Add(123 * time.Millisecond), By: "sign-in"},
		Provisioned: true, UpstreamGroups: []string{"admins", "staff"}}
}

// jsonRecord is u as the earlier JSON form stored it and read it back.
func jsonRecord(t *testing.T, u *User, stamp []byte) *User {
	t.Helper()
	b, err := encodeUserJSON(u)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != '{' {
		t.Fatalf("encodeUserJSON starts with %q", b[0])
	}
	got, err := decodeUser(u.Tenant, store.DirRecord{ID: u.ID, Version: 9, Data: b, Stamp: stamp})
	if err != nil {
		t.Fatalf("decodeUser(JSON form) = %v", err)
	}
	return got
}

func TestUserCodec_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		u    *User
	}{
		{"every field", codecUser()},
		{"just in time", &User{ID: "u-2", Tenant: "acme", Subject: "s", Status: StatusActive, Links: []Link{{IdP: "i", Subject: "s"}}}},
		{"empty", &User{ID: "u-3", Tenant: "acme"}},
		{"empty lists and maps", &User{ID: "u-4", Tenant: "acme", Links: []Link{}, Groups: []GroupRef{}, UpstreamGroups: []string{},
			Attributes: map[string]any{}, Extra: map[string]json.RawMessage{}}},
	}
	stamp := []byte("1800000100 203.0.113.7")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := encodeUser(tt.u)
			if err != nil {
				t.Fatalf("encodeUser = %v", err)
			}
			if rec.Data[0] != userV1 {
				t.Fatalf("encodeUser starts with %#x, want the version byte %#x", rec.Data[0], userV1)
			}
			rec.Version, rec.Stamp = 9, stamp
			got, err := decodeUser(tt.u.Tenant, rec)
			if err != nil {
				t.Fatalf("decodeUser = %v", err)
			}
			want := jsonRecord(t, tt.u, stamp)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("binary round trip:\n got %+v\nwant %+v (the JSON form's)", got, want)
			}
			if got.LastIP != "203.0.113.7" || got.Version != 9 || got.ID != tt.u.ID {
				t.Errorf("decodeUser = ip %q version %d id %q, want the stamp's, the store's", got.LastIP, got.Version, got.ID)
			}
		})
	}
}

// TestUserCodec_EveryField fills every field of User (and of Risk) by
// reflection and checks the binary form keeps what the JSON form kept: a
// field added to User without a place in usercodec.go fails here.
func TestUserCodec_EveryField(t *testing.T) {
	var u User
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f, sf := v.Field(i), v.Type().Field(i)
			switch f.Interface().(type) {
			case string, Status, RiskState:
				f.SetString("v-" + sf.Name)
			case bool:
				f.SetBool(true)
			case int64:
				f.SetInt(int64(40 + i))
			case []string:
				f.Set(reflect.ValueOf([]string{"a-" + sf.Name}))
			case time.Time:
				f.Set(reflect.ValueOf(time.Unix(1_800_000_000+int64(i), 0).UTC()))
			case Name:
				fill(f)
			case []Link:
				f.Set(reflect.ValueOf([]Link{{IdP: "i-" + sf.Name, Subject: "s"}}))
			case []GroupRef:
				f.Set(reflect.ValueOf([]GroupRef{{ID: "g-" + sf.Name, Display: "d"}}))
			case map[string]any:
				f.Set(reflect.ValueOf(map[string]any{"k-" + sf.Name: "v"}))
			case map[string]json.RawMessage:
				f.Set(reflect.ValueOf(map[string]json.RawMessage{"k-" + sf.Name: json.RawMessage(`"v"`)}))
			case *Risk:
				r := &Risk{}
				fill(reflect.ValueOf(r).Elem())
				f.Set(reflect.ValueOf(r))
			default:
				t.Fatalf("field %s (%s): give it a place in the binary form (usercodec.go) and a value here", sf.Name, sf.Type)
			}
		}
	}
	fill(reflect.ValueOf(&u).Elem())
	rec, err := encodeUser(&u)
	if err != nil {
		t.Fatal(err)
	}
	stamp := []byte("1800000100 203.0.113.7")
	rec.Version, rec.Stamp = u.Version, stamp
	got, err := decodeUser(u.Tenant, rec)
	if err != nil {
		t.Fatalf("decodeUser = %v", err)
	}
	want := jsonRecord(t, &u, stamp)
	want.Version = u.Version
	if !reflect.DeepEqual(got, want) {
		t.Errorf("every field:\n got %+v\nwant %+v", got, want)
	}
	// Every field but the stamp's and the store's survives as it was set.
	u.LastSignIn, u.LastIP = got.LastSignIn, got.LastIP
	if !reflect.DeepEqual(got, &u) {
		t.Errorf("every field:\n got %+v\nset %+v", got, &u)
	}
}

func TestUserCodec_RefusesBadInput(t *testing.T) {
	rec, err := encodeUser(codecUser())
	if err != nil {
		t.Fatal(err)
	}
	b := rec.Data
	for i := 1; i < len(b); i++ {
		if _, err := decodeUser("acme", store.DirRecord{ID: "u-1", Data: b[:i]}); err == nil {
			t.Fatalf("decodeUser(first %d of %d bytes) = nil error, want one", i, len(b))
		}
	}
	if _, err := decodeUser("acme", store.DirRecord{ID: "u-1", Data: append(b[:len(b):len(b)], 0)}); err == nil {
		t.Errorf("decodeUser(trailing byte) = nil error, want one")
	}
	bad := []*User{
		{ID: "u", Attributes: map[string]any{"f": func() {}}},
		{ID: "u", Extra: map[string]json.RawMessage{"x": json.RawMessage(`{`)}},
	}
	for _, u := range bad {
		if _, err := encodeUser(u); err == nil {
			t.Errorf("encodeUser(%+v) = nil error, want one (as the JSON form)", u)
		}
	}
}

func FuzzUserCodec(f *testing.F) {
	rec, _ := encodeUser(codecUser())
	f.Add(rec.Data)
	f.Add([]byte{userV1})
	old, _ := encodeUserJSON(codecUser())
	f.Add(old)
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := decodeUser("acme", store.DirRecord{ID: "u", Data: data})
		if err != nil {
			return
		}
		again, err := encodeUser(u)
		if err != nil {
			return
		}
		if _, err := decodeUser("acme", again); err != nil {
			t.Fatalf("re-encoded user does not decode: %v", err)
		}
	})
}

func BenchmarkUserCodec(b *testing.B) {
	u := &User{ID: "u-1", Tenant: "contoso", UserName: "user0000001@contoso.example", ExternalID: "0000001-4b1e-4c6a-9d2f-000000001eef",
		Email: "user0000001@contoso.example", EmailVerified: true, Name: Name{GivenName: "Given1", FamilyName: "Family"},
		DisplayName: "Given Family 1", Status: StatusActive, Links: []Link{{IdP: "contoso-entra", Subject: "0000001-4b1e-4c6a-9d2f-000000001eef"}},
		Groups:     []GroupRef{{ID: "grp-engineers-0000000001", Display: "Engineers"}, {ID: "grp-all-staff-0000000002", Display: "All Staff"}},
		Attributes: map[string]any{"plan": "enterprise"}, FirstSignIn: time.Unix(1_800_000_000, 0).UTC()}
	jb, _ := encodeUserJSON(u)
	rec, _ := encodeUser(u)
	stamp := []byte("1800000100 203.0.113.7")
	b.Run("encode/json", func(b *testing.B) { // the earlier encodeUser: entries and JSON
		b.ReportAllocs()
		for b.Loop() {
			_ = userEntries(u)
			_, _ = encodeUserJSON(u)
		}
	})
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodeUser(u)
		}
	})
	for name, data := range map[string][]byte{"json": jb, "binary": rec.Data} {
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = decodeUser("contoso", store.DirRecord{ID: "u-1", Data: data, Stamp: stamp})
			}
		})
	}
	b.Logf("size: json %d bytes, binary %d bytes", len(jb), len(rec.Data))
}
