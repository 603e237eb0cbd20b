package broker

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestRequestCodec_EveryField: every field of the pending auth request
// survives its record's binary form, as it survives JSON.
func TestRequestCodec_EveryField(t *testing.T) {
	var ar authRequest
	fillRecord(t, reflect.ValueOf(&ar).Elem())
	b := encodeRequestRecord(&ar)
	if b[0] != requestV1 {
		t.Fatalf("encodeRequestRecord starts with %#x, want %#x", b[0], requestV1)
	}
	var got authRequest
	if err := decodeRequest(b, &got); err != nil {
		t.Fatalf("decodeRequest = %v", err)
	}
	if !reflect.DeepEqual(got, ar) {
		t.Errorf("decodeRequest(encodeRequestRecord(ar)) =\n%+v\nwant\n%+v", got, ar)
	}
}

// TestRequestCodec_ReadsJSONForm: a record in the JSON form (written by an
// earlier release, or with store.record_format: json) reads back as
// json.Unmarshal gives it, and the binary form gives the same.
func TestRequestCodec_ReadsJSONForm(t *testing.T) {
	zero := 0
	var full authRequest
	fillRecord(t, reflect.ValueOf(&full).Elem())
	tests := []struct {
		name string
		ar   authRequest
	}{
		{"empty", authRequest{}},
		{"every field", full},
		{"typical", authRequest{ClientID: "app", RedirectURI: "https://app.test/cb", State: "s", Nonce: "n",
			Scopes: []string{"openid", "email"}, CodeChallenge: "cc", Binding: []byte{1, 2, 3}, Created: time.Unix(1700000000, 0).UTC()}},
		{"empty bytes and lists", authRequest{Scopes: []string{}, ACRS: []string{}, Offered: []string{}, Binding: []byte{}, MaxAge: &zero}},
		{"saml without request id", authRequest{SAML: &samlPending{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := json.Marshal(&tt.ar)
			if err != nil {
				t.Fatal(err)
			}
			var want, fromJSON, got authRequest
			if err := json.Unmarshal(j, &want); err != nil {
				t.Fatal(err)
			}
			if err := decodeRequest(j, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, want) {
				t.Fatalf("decodeRequest(JSON form) = %+v, %v; want %+v", fromJSON, err, want)
			}
			if err := decodeRequest(encodeRequestRecord(&tt.ar), &got); err != nil {
				t.Fatalf("decodeRequest = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("binary round trip = %+v, want %+v (JSON round trip)", got, want)
			}
		})
	}
}

func TestRequestCodec_RefusesBadInput(t *testing.T) {
	var ar authRequest
	fillRecord(t, reflect.ValueOf(&ar).Elem())
	b := encodeRequestRecord(&ar)
	for i := 0; i < len(b); i++ {
		var got authRequest
		if err := decodeRequest(b[:i], &got); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decodeRequest(first %d of %d bytes) = %v, want ErrNotFound", i, len(b), err)
		}
	}
	var got authRequest
	if err := decodeRequest(append(b[:len(b):len(b)], 7), &got); !errors.Is(err, ErrNotFound) {
		t.Errorf("decodeRequest(trailing byte) = %v, want ErrNotFound", err)
	}
}

func FuzzRequestCodec(f *testing.F) {
	f.Add(encodeRequestRecord(&authRequest{ClientID: "c", Scopes: []string{"openid"}}))
	f.Add([]byte{requestV1})
	f.Add([]byte(`{"cid":"c","sc":["openid"]}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ar authRequest
		if decodeRequest(rec, &ar) != nil {
			return
		}
		var again authRequest
		if err := decodeRequest(encodeRequestRecord(&ar), &again); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		// The same request as its JSON form tells (an empty list the
		// JSON form omits may come back nil).
		if a, b := mustJSON(t, &again), mustJSON(t, &ar); a != b {
			t.Fatalf("re-encoded request = %s, want %s", a, b)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkRequestCodec: the pending auth request's record, written at
// every /authorize.
func BenchmarkRequestCodec(b *testing.B) {
	ar := &authRequest{ClientID: "bench-app", RedirectURI: "http://127.0.0.1:9999/callback", State: randomToken(16),
		Nonce: randomToken(16), Scopes: []string{"openid", "profile", "email"}, CodeChallenge: randomToken(32),
		Binding: make([]byte, 32), Created: time.Now().UTC()}
	jb, _ := json.Marshal(ar)
	bb := encodeRequestRecord(ar)
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ar)
		}
	})
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = encodeRequestRecord(ar)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x authRequest
			_ = decodeRequest(jb, &x)
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x authRequest
			_ = decodeRequest(bb, &x)
		}
	})
	b.Logf("size: json %d bytes, binary %d bytes", len(jb), len(bb))
}
