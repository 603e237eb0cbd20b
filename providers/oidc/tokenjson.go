package oidc

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// decodeTokenResponse decodes a token endpoint's JSON answer (RFC 6749
// §5.1, §5.2) into tr with the result json.Unmarshal into a tokenResponse
// gives: names matched exactly or else case-insensitively (as
// bytes.EqualFold), the last of duplicate names, null leaving a field as
// it was, a value of another type an error (after the whole document was
// found valid), unknown names skipped but checked; a top-level null leaves
// tr empty. It makes one pass, without reflection, on claimsDecoder's
// scanner; FuzzDecodeTokenResponse compares the two.
func decodeTokenResponse(b []byte, tr *tokenResponse) error {
	return decodeObject(b, func(name []byte) (*string, *bool) { return tr.field(name), nil })
}

// decodeObject decodes b as json.Unmarshal decodes into a struct whose
// fields are strings and json.RawMessages: fields gives, for a name, the
// string it sets or the flag a RawMessage field's presence sets (nil and
// nil for a name the struct does not have). A string field takes a JSON
// string, keeps its value for null and makes any other value an error,
// reported after the whole document was found valid; a RawMessage field
// takes any value, null included (json.RawMessage's UnmarshalJSON is
// called with it). Every failure is errTokenJSON.
func decodeObject(b []byte, fields func(name []byte) (*string, *bool)) error {
	d := claimsDecoder{b: b}
	d.space()
	if d.i >= len(d.b) {
		return errTokenJSON
	}
	var typeErr bool
	switch d.b[d.i] {
	case '{':
		d.i++
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			break
		}
		for {
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return errTokenJSON
			}
			k, err := d.stringBytes()
			if err != nil {
				return errTokenJSON
			}
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return errTokenJSON
			}
			d.i++
			d.space()
			f, raw := fields(k)
			switch {
			case f == nil:
				if d.skip(1) != nil { // skipped, but it must be JSON
					return errTokenJSON
				}
				if raw != nil {
					*raw = true
				}
			case d.i < len(d.b) && d.b[d.i] == '"':
				if *f, err = d.string(); err != nil {
					return errTokenJSON
				}
			case d.i < len(d.b) && d.b[d.i] == 'n':
				if d.literal("null") != nil {
					return errTokenJSON
				}
			default:
				if d.skip(1) != nil {
					return errTokenJSON
				}
				typeErr = true // json.Unmarshal: an UnmarshalTypeError, after decoding the rest
			}
			d.space()
			if d.i >= len(d.b) {
				return errTokenJSON
			}
			if d.b[d.i] == '}' {
				d.i++
				break
			}
			if d.b[d.i] != ',' {
				return errTokenJSON
			}
			d.i++
		}
	case 'n':
		if d.literal("null") != nil {
			return errTokenJSON
		}
	default:
		if d.skip(0) != nil {
			return errTokenJSON
		}
		typeErr = true
	}
	d.space()
	if d.i != len(d.b) {
		return errTokenJSON
	}
	if typeErr {
		return errTokenJSON
	}
	return nil
}

var errTokenJSON = errors.New("token response is not a json object of strings")

// field returns the field a JSON name sets, as encoding/json chooses it:
// the exact name, else the name equal under Unicode case folding.
func (tr *tokenResponse) field(name []byte) *string {
	switch string(name) {
	case "access_token":
		return &tr.AccessToken
	case "token_type":
		return &tr.TokenType
	case "id_token":
		return &tr.IDToken
	case "error":
		return &tr.Error
	case "error_description":
		return &tr.ErrorDescription
	}
	for _, f := range [...]struct {
		name string
		p    *string
	}{{"access_token", &tr.AccessToken}, {"token_type", &tr.TokenType}, {"id_token", &tr.IDToken},
		{"error", &tr.Error}, {"error_description", &tr.ErrorDescription}} {
		if strings.EqualFold(string(name), f.name) {
			return f.p
		}
	}
	return nil
}

// skip passes over one JSON value, checking it as json.Unmarshal's scan
// does: a number only by its syntax (1e400 is valid JSON for a name a
// struct does not have), strings unescaped into nothing kept.
func (d *claimsDecoder) skip(depth int) error {
	d.space()
	if d.i >= len(d.b) {
		return errTokenJSON
	}
	c := d.b[d.i]
	if (c == '{' || c == '[') && depth >= maxClaimsDepth {
		return errTokenJSON
	}
	switch {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.i++
		d.space()
		if d.i < len(d.b) && d.b[d.i] == end {
			d.i++
			return nil
		}
		for {
			if c == '{' {
				d.space()
				if d.i >= len(d.b) || d.b[d.i] != '"' {
					return errTokenJSON
				}
				if _, err := d.stringBytes(); err != nil {
					return err
				}
				d.space()
				if d.i >= len(d.b) || d.b[d.i] != ':' {
					return errTokenJSON
				}
				d.i++
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.space()
			if d.i >= len(d.b) {
				return errTokenJSON
			}
			if d.b[d.i] == end {
				d.i++
				return nil
			}
			if d.b[d.i] != ',' {
				return errTokenJSON
			}
			d.i++
		}
	case c == '"':
		_, err := d.stringBytes()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.numberSyntax()
	}
	return errTokenJSON
}

// stringBytes reads a JSON string at d.i (its opening quote) as string
// does, returning its bytes in place when it has no escape and is ASCII,
// so a name or a skipped value costs no allocation.
func (d *claimsDecoder) stringBytes() ([]byte, error) {
	for j := d.i + 1; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			b := d.b[d.i+1 : j]
			d.i = j + 1
			return b, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	s, err := d.string()
	return []byte(s), err
}

// numberSyntax passes over a JSON number (RFC 8259 §6) without its value.
func (d *claimsDecoder) numberSyntax() error {
	if d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return errTokenJSON
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return errTokenJSON
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return errTokenJSON
		}
	}
	return nil
}
