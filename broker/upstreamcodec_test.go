package broker

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fillRecord sets every exported field of the struct v points to (and of
// the records it points to) to a value that is not the zero one; a field
// of a type it does not know fails t: the binary form needs a place for it.
func fillRecord(t *testing.T, v reflect.Value) {
	t.Helper()
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
		case []string:
			f.Set(reflect.ValueOf([]string{"a-" + sf.Name, "b"}))
		case []byte:
			f.Set(reflect.ValueOf([]byte("bytes-" + sf.Name)))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(1700000000+int64(i), 99).UTC()))
		case *int:
			n := 300 + i
			f.Set(reflect.ValueOf(&n))
		case *samlPending, *authRequest, *testSignIn:
			p := reflect.New(f.Type().Elem())
			fillRecord(t, p.Elem())
			f.Set(p)
		default:
			t.Fatalf("field %s (%s): give it a place in the binary form (upstreamcodec.go) and a value here", sf.Name, sf.Type)
		}
	}
}

// TestUpstreamCodec_EveryField: every field of the upstream login state
// and of its auth request survives the binary form, as it survives JSON.
func TestUpstreamCodec_EveryField(t *testing.T) {
	var ul upstreamLogin
	fillRecord(t, reflect.ValueOf(&ul).Elem())
	b := encodeUpstream(&ul)
	if b[0] != upstreamV1 {
		t.Fatalf("encodeUpstream starts with %#x, want %#x", b[0], upstreamV1)
	}
	var got upstreamLogin
	if err := decodeUpstream(b, &got); err != nil {
		t.Fatalf("decodeUpstream = %v", err)
	}
	if !reflect.DeepEqual(got, ul) {
		t.Errorf("decodeUpstream(encodeUpstream(ul)) =\n%+v\n%+v\nwant\n%+v\n%+v", got, *got.AR, ul, *ul.AR)
	}
}

func TestUpstreamCodec_RoundTrip(t *testing.T) {
	zero := 0
	tests := []struct {
		name string
		ul   upstreamLogin
	}{
		{"empty", upstreamLogin{}},
		{"no auth request", upstreamLogin{Request: "ar:x", IdP: "idp", Nonce: "n", Verifier: "v", Binding: []byte{1, 2}, Created: time.Unix(5, 0).UTC()}},
		{"empty bytes and lists", upstreamLogin{Data: []byte{}, Binding: []byte{}, AR: &authRequest{Scopes: []string{}, ACRS: []string{}, Offered: []string{}, Binding: []byte{}, MaxAge: &zero}}},
		{"saml without request id", upstreamLogin{AR: &authRequest{SAML: &samlPending{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What the JSON form gave back is what the binary form must.
			j, err := json.Marshal(tt.ul)
			if err != nil {
				t.Fatal(err)
			}
			var want, fromJSON, got upstreamLogin
			if err := json.Unmarshal(j, &want); err != nil {
				t.Fatal(err)
			}
			if err := decodeUpstream(j, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, want) {
				t.Fatalf("decodeUpstream(JSON form) = %+v, %v; want %+v", fromJSON, err, want)
			}
			if err := decodeUpstream(encodeUpstream(&tt.ul), &got); err != nil {
				t.Fatalf("decodeUpstream = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("binary round trip = %+v, want %+v (JSON round trip)", got, want)
			}
		})
	}
}

func TestUpstreamCodec_RefusesBadInput(t *testing.T) {
	var ul upstreamLogin
	fillRecord(t, reflect.ValueOf(&ul).Elem())
	b := encodeUpstream(&ul)
	for i := 1; i < len(b); i++ {
		var got upstreamLogin
		if err := decodeUpstream(b[:i], &got); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decodeUpstream(first %d of %d bytes) = %v, want ErrNotFound", i, len(b), err)
		}
	}
	var got upstreamLogin
	if err := decodeUpstream(append(b[:len(b):len(b)], 7), &got); !errors.Is(err, ErrNotFound) {
		t.Errorf("decodeUpstream(trailing byte) = %v, want ErrNotFound", err)
	}
}

func FuzzUpstreamCodec(f *testing.F) {
	f.Add(encodeUpstream(&upstreamLogin{IdP: "x", AR: &authRequest{ClientID: "c"}}))
	f.Add([]byte{upstreamV1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ul upstreamLogin
		if decodeUpstream(rec, &ul) != nil {
			return
		}
		var again upstreamLogin
		if err := decodeUpstream(encodeUpstream(&ul), &again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
