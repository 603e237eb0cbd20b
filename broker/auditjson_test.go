package broker

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAppendAuditEvent_AsJSONMarshal(t *testing.T) {
	full := AuditEvent{}
	v := reflect.ValueOf(&full).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString("v-" + v.Type().Field(i).Name)
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2026, 12, 7, 3, 4, 5, 600, time.UTC)))
		default:
			t.Fatalf("AuditEvent.%s (%s): teach appendAuditEvent and this test", v.Type().Field(i).Name, f.Type())
		}
	}
	tests := []struct {
		name string
		ev   AuditEvent
	}{
		{"every field", full},
		{"empty", AuditEvent{}},
		{"sign-in", AuditEvent{Time: time.Unix(1765000000, 0).UTC(), Outcome: "success", Tenant: "acme", IdP: "acme-idp",
			Subject: "s", Client: "app", IP: "127.0.0.1", UserAgent: "Go-http-client/1.1", RequestID: "abc"}},
		{"escapes", AuditEvent{Outcome: "refused", Reason: "rule: <b>&\"\\\n\r\t\b\f\x00\x1f\x7f",
			UserAgent: "caf\xe9 \u2028\u2029 ✓ 😀 \xff\xfe", Subject: "\xed\xa0\x80"}},
		{"zone", AuditEvent{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -5*3600)), Outcome: "o"}},
		{"zone with seconds", AuditEvent{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("s", 30)), Outcome: "o"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendAuditEvent(nil, &tt.ev)
			if err != nil || string(got) != string(want) {
				t.Errorf("appendAuditEvent = %s, %v\nwant %s", got, err, want)
			}
		})
	}
	for _, bad := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := json.Marshal(AuditEvent{Time: bad}); err == nil {
			t.Fatalf("json.Marshal of time %v succeeded; the test expects it to fail", bad)
		}
		if _, err := appendAuditEvent(nil, &AuditEvent{Time: bad}); err == nil {
			t.Errorf("appendAuditEvent(time %v) = nil error, want one as json.Marshal", bad)
		}
	}
}

func FuzzAppendAuditEvent(f *testing.F) {
	f.Add("success", "<&>\u2028", "caf\xe9", int64(1765000000))
	f.Fuzz(func(t *testing.T, outcome, reason, ua string, sec int64) {
		ev := AuditEvent{Time: time.Unix(sec%253402300799, 0).UTC(), Outcome: outcome, Reason: reason, UserAgent: ua}
		want, werr := json.Marshal(ev)
		got, gerr := appendAuditEvent(nil, &ev)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Fatalf("appendAuditEvent = %q, %v; json.Marshal = %q, %v", got, gerr, want, werr)
		}
	})
}
