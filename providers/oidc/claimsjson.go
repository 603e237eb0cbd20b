package oidc

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeClaims decodes a JWT claims set (a JSON object) into a map, with
// the result json.Unmarshal into map[string]any gives: numbers as float64,
// arrays as []any, objects as map[string]any, the last of duplicate names
// (RFC 7519 §4 allows that), invalid UTF-8 and lone surrogates as U+FFFD.
// Where json.Unmarshal fails, so does it. It makes one pass where
// json.Unmarshal makes two (a validity scan, then the decoding), without
// reflection; FuzzDecodeClaims compares the two.
func decodeClaims(b []byte) (map[string]any, error) {
	d := claimsDecoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, errClaimsJSON
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, errClaimsJSON
	}
	return v.(map[string]any), nil
}

var errClaimsJSON = errors.New("claims are not a json object")

// maxClaimsDepth is json.Unmarshal's nesting limit.
const maxClaimsDepth = 10000

type claimsDecoder struct {
	b []byte
	i int
}

func (d *claimsDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *claimsDecoder) value(depth int) (any, error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, errClaimsJSON
	}
	if c := d.b[d.i]; (c == '{' || c == '[') && depth >= maxClaimsDepth {
		return nil, errClaimsJSON
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		m := make(map[string]any)
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return m, nil
		}
		for {
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return nil, errClaimsJSON
			}
			k, err := d.string()
			if err != nil {
				return nil, err
			}
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, errClaimsJSON
			}
			d.i++
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			d.space()
			if d.i >= len(d.b) {
				return nil, errClaimsJSON
			}
			if d.b[d.i] == '}' {
				d.i++
				return m, nil
			}
			if d.b[d.i] != ',' {
				return nil, errClaimsJSON
			}
			d.i++
		}
	case c == '[':
		d.i++
		a := []any{}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return a, nil
		}
		for {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			d.space()
			if d.i >= len(d.b) {
				return nil, errClaimsJSON
			}
			if d.b[d.i] == ']' {
				d.i++
				return a, nil
			}
			if d.b[d.i] != ',' {
				return nil, errClaimsJSON
			}
			d.i++
		}
	case c == '"':
		return d.string()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, errClaimsJSON
}

func (d *claimsDecoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return errClaimsJSON
	}
	d.i += len(lit)
	return nil
}

// number reads a JSON number (RFC 8259 §6) as a float64, which must be in
// range (json.Unmarshal fails on 1e400 too).
func (d *claimsDecoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return nil, errClaimsJSON
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, errClaimsJSON
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, errClaimsJSON
		}
	}
	f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
	if err != nil {
		return nil, errClaimsJSON
	}
	return f, nil
}

func (d *claimsDecoder) digits() int {
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// string reads a JSON string at d.i (its opening quote), unescaped as
// encoding/json does.
func (d *claimsDecoder) string() (string, error) {
	d.i++
	start := d.i
	// The common case: no escape, only valid UTF-8.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			d.i++
			continue
		}
		r, size := utf8.DecodeRune(d.b[d.i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		d.i += size
	}
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return "", errClaimsJSON
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return "", errClaimsJSON
			}
			switch e := d.b[d.i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4(d.i + 1)
				if !ok {
					return "", errClaimsJSON
				}
				d.i += 4
				if utf16.IsSurrogate(r) {
					// A pair, or U+FFFD for a lone surrogate (encoding/json).
					if r2, ok := d.escapedU(d.i + 1); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							d.i += 6
							out = utf8.AppendRune(out, dec)
							break
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", errClaimsJSON
			}
			d.i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			d.i += size
			out = utf8.AppendRune(out, r) // invalid UTF-8: U+FFFD
		}
	}
	return "", errClaimsJSON
}

// escapedU reads a \uXXXX escape at i.
func (d *claimsDecoder) escapedU(i int) (rune, bool) {
	if i+1 >= len(d.b) || d.b[i] != '\\' || d.b[i+1] != 'u' {
		return 0, false
	}
	return d.hex4(i + 2)
}

func (d *claimsDecoder) hex4(i int) (rune, bool) {
	if i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
