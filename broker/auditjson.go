package broker

import (
	"errors"
	"time"
	"unicode/utf8"
)

// appendAuditEvent appends ev as json.Marshal(ev) writes it, byte for
// byte, without reflection: every sign-in queues two or three events for
// the store's stream, and encoding them was most of the audit path's cost.
// TestAppendAuditEvent_AsJSONMarshal and FuzzAppendAuditEvent compare the
// two; a field added to AuditEvent must be added here (the test fills
// every field).
func appendAuditEvent(b []byte, ev *AuditEvent) ([]byte, error) {
	if y := ev.Time.Year(); y < 0 || y > 9999 {
		return nil, errors.New("audit event time outside years 0 to 9999") // as time.Time.MarshalJSON
	}
	b = append(b, `{"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","outcome":`...)
	b = appendJSONString(b, ev.Outcome)
	for _, f := range [...]struct{ key, value string }{
		{`,"reason":`, ev.Reason}, {`,"tenant":`, ev.Tenant}, {`,"idp":`, ev.IdP}, {`,"subject":`, ev.Subject},
		{`,"actor":`, ev.Actor}, {`,"client":`, ev.Client}, {`,"ip":`, ev.IP}, {`,"user_agent":`, ev.UserAgent},
		{`,"request_id":`, ev.RequestID}, {`,"trace_id":`, ev.TraceID}, {`,"risk":`, ev.Risk},
	} {
		if f.value != "" { // omitempty
			b = append(b, f.key...)
			b = appendJSONString(b, f.value)
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// (HTML-safe: <, > and & escaped; invalid UTF-8 as U+FFFD; U+2028 and
// U+2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
