package broker

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/realmgate/realmgate/providers"
)

// codecSession is a session with every field set, identity fields that
// repeat their claims and some that do not, and claims of one exchange.
func codecSession() *session {
	at := time.Date(2026, 12, 7, 5, 6, 7, 0, time.UTC)
	return &session{SID: "sid-1", Tenant: "acme", IdP: "acme-idp", Subject: "sub-1", AuthTime: at,
		Clients: []string{"app", "other"}, UID: "u-1", UGen: 3,
		Identity: providers.Identity{Issuer: "https://idp.test", Subject: "u1", Email: "alice@acme.test", EmailVerified: true,
			Name: "Alice", GivenName: "Alice", FamilyName: "Liddell", PreferredUsername: "alice@acme.test", ACR: "mfa",
			AMR: []string{"pwd", "otp"}, AuthTime: at.Add(-time.Minute),
			Claims: map[string]any{"iss": "https://idp.test", "sub": "u1", "email": "alice@acme.test", "email_verified": true,
				"name": "Alice", "groups": []any{"a", "b"}, "n": 4.5, "addr": map[string]any{"c": "DE"}, "none": nil,
				"nonce": "n-1", "at_hash": "h", "c_hash": "c"}},
	}
}

// sessionJSONRoundTrip is what the earlier JSON form gave back for s.
func sessionJSONRoundTrip(t *testing.T, s *session) session {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out session
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSession(t *testing.T, what string, got, want session) {
	t.Helper()
	for _, s := range []*session{&got, &want} {
		s.AuthTime, s.Identity.AuthTime = s.AuthTime.UTC(), s.Identity.AuthTime.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestSessionCodec_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    *session
	}{
		{"every field", codecSession()},
		{"empty", &session{}},
		{"no claims", &session{SID: "s", Identity: providers.Identity{Subject: "u", AMR: []string{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeSessionRecord(tt.s)
			if err != nil {
				t.Fatalf("encodeSessionRecord = %v", err)
			}
			if b[0] != sessionV1 {
				t.Fatalf("encodeSessionRecord starts with %#x, want the version byte %#x", b[0], sessionV1)
			}
			var got session
			if err := decodeRecord(b, &got); err != nil {
				t.Fatalf("decodeRecord = %v", err)
			}
			want := sessionJSONRoundTrip(t, tt.s)
			// The binary form keeps an empty AMR list as the JSON form does not
			// distinguish it from none; both read back as "no methods".
			if len(got.Identity.AMR) == 0 && len(want.Identity.AMR) == 0 {
				got.Identity.AMR, want.Identity.AMR = nil, nil
			}
			sameSession(t, "binary round trip", got, want)
		})
	}
}

// TestSessionCodec_ReadsJSONForm: sessions written by the previous release
// (compact JSON, and the earlier long form) are still read.
func TestSessionCodec_ReadsJSONForm(t *testing.T) {
	s := codecSession()
	compact, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	long, err := json.Marshal(map[string]any{"sid": s.SID, "tid": s.Tenant, "idp": s.IdP, "sub": s.Subject, "at": s.AuthTime,
		"id": s.Identity})
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{"compact": compact, "long": long} {
		t.Run(name, func(t *testing.T) {
			var got session
			if err := decodeRecord(rec, &got); err != nil {
				t.Fatalf("decodeRecord(%s) = %v", rec, err)
			}
			var want session
			if err := json.Unmarshal(rec, &want); err != nil {
				t.Fatal(err)
			}
			sameSession(t, "JSON form", got, want)
			if got.SID != "sid-1" || got.Identity.Email != "alice@acme.test" {
				t.Errorf("decodeRecord(%s) = sid %q email %q, want sid-1 alice@acme.test", name, got.SID, got.Identity.Email)
			}
		})
	}
}

func TestSessionCodec_RefusesBadInput(t *testing.T) {
	b, err := encodeSessionRecord(codecSession())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i++ {
		var s session
		if err := decodeRecord(b[:i], &s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decodeRecord(first %d of %d bytes) = %v, want ErrNotFound", i, len(b), err)
		}
	}
	var s session
	if err := decodeRecord(append(b[:len(b):len(b)], 0), &s); !errors.Is(err, ErrNotFound) {
		t.Errorf("decodeRecord(trailing byte) = %v, want ErrNotFound", err)
	}
	if err := decodeRecord([]byte("not json"), &s); !errors.Is(err, ErrNotFound) {
		t.Errorf("decodeRecord(garbage) = %v, want ErrNotFound", err)
	}
}

func FuzzSessionCodec(f *testing.F) {
	b, _ := encodeSessionRecord(codecSession())
	f.Add(b)
	f.Add([]byte{sessionV1})
	old, _ := json.Marshal(codecSession())
	f.Add(old)
	f.Fuzz(func(t *testing.T, rec []byte) {
		var s session
		if decodeRecord(rec, &s) != nil {
			return
		}
		again, err := encodeSessionRecord(&s)
		if err != nil {
			return
		}
		var s2 session
		if err := decodeRecord(again, &s2); err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
	})
}

func BenchmarkSessionCodec(b *testing.B) {
	s := codecSession()
	jb, _ := json.Marshal(s)
	bb, _ := encodeSessionRecord(s)
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.MarshalJSON()
		}
	})
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodeSessionRecord(s)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x session
			_ = decodeJSONRecord(jb, &x)
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x session
			_ = decodeRecord(bb, &x)
		}
	})
	b.Logf("size: json %d bytes, binary %d bytes", len(jb), len(bb))
}
