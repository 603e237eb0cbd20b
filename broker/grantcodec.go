package broker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"
)

// The binary stored form of the records every code exchange and refresh
// decodes: a code's grant (which the store copies into the refresh-token
// family it starts, so refreshes read it too) and the code's binding.
// JSON cost the token endpoint more than anything but the signature: the
// whole record is scanned once for validity and again to decode it, the
// origin session included, which the exchange does not even read.
//
// A record in this form starts with its version byte; a record in the
// earlier JSON form starts with '{' and is still read (codes and families
// written by the previous release). Fields are in a fixed order: strings
// as a uvarint length and the bytes, lists as a uvarint count plus one (0:
// nil), times as a presence byte, varint seconds and uvarint nanoseconds,
// the claims as tagged values (appendValue), the origin session in the
// same way (appendSession), length-prefixed so the exchange skips it.

// Version bytes of the binary forms.
const (
	grantV1   = 0x01
	bindingV1 = 0x01
)

// maxValueDepth bounds the nesting of a decoded claim value.
const maxValueDepth = 64

// Tags of a claim value (appendValue).
const (
	tagNull   = 'n'
	tagTrue   = 't'
	tagFalse  = 'f'
	tagString = 's'
	tagNumber = 'd' // float64 bits, little-endian
	tagArray  = 'a'
	tagObject = 'm'
	tagJSON   = 'j' // any other Go value, as its JSON
)

var errCodec = errors.New("malformed binary record")

// encodeGrant returns the binary stored form of g.
func encodeGrant(g *grant) ([]byte, error) {
	size := 512 // a grant without its origin: the bench's is about 300 bytes
	if g.Origin != nil {
		size += sessionRoom
	}
	b := make([]byte, 0, size)
	b = append(b, grantV1)
	for _, s := range []string{g.ClientID, g.RedirectURI, g.Challenge, g.Nonce, g.SID, g.Subject, g.Tenant, g.IdP, g.TI, g.HI, g.Risk, g.JKT} {
		b = appendString(b, s)
	}
	b = appendStrings(b, g.Scopes)
	b = appendStrings(b, g.ACRS)
	b = appendTime(b, g.AuthTime)
	b = appendTime(b, g.Created)
	b = binary.AppendVarint(b, int64(g.Cap))
	var err error
	if g.Claims == nil {
		b = append(b, tagNull)
	} else if b, err = appendValue(b, g.Claims, 0); err != nil {
		return nil, err
	}
	if g.Origin == nil {
		return binary.AppendUvarint(b, 0), nil
	}
	// The origin is encoded in place and its length put in front of it
	// (in b's room: no second buffer for the session).
	at := len(b)
	b, err = appendSession(b, g.Origin)
	if err != nil {
		return nil, err
	}
	var n [binary.MaxVarintLen64]byte
	prefix := binary.AppendUvarint(n[:0], uint64(len(b)-at)+1)
	return slices.Insert(b, at, prefix...), nil
}

// appendSession appends the binary form of a grant's origin session: what
// its compact JSON form keeps (without the claims of one protocol
// exchange: nonce, at_hash, c_hash), each identity field as it is.
func appendSession(b []byte, s *session) ([]byte, error) {
	id := &s.Identity
	for _, v := range []string{s.SID, s.Tenant, s.IdP, s.Subject, s.UID,
		id.Issuer, id.Subject, id.Email, id.Name, id.GivenName, id.FamilyName, id.PreferredUsername, id.ACR} {
		b = appendString(b, v)
	}
	b = binary.AppendVarint(b, s.UGen)
	b = appendTime(b, s.AuthTime)
	b = appendTime(b, id.AuthTime)
	b = appendStrings(b, s.Clients)
	b = appendStrings(b, id.AMR)
	if id.EmailVerified {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if id.Claims == nil {
		return append(b, tagNull), nil
	}
	kept := 0
	for k := range id.Claims {
		if !slices.Contains(exchangeClaims, k) {
			kept++
		}
	}
	b = binary.AppendUvarint(append(b, tagObject), uint64(kept))
	var err error
	for k, v := range id.Claims {
		if slices.Contains(exchangeClaims, k) {
			continue
		}
		b = appendString(b, k)
		if b, err = appendValue(b, v, 1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeSession reads appendSession's form.
func decodeSession(rec []byte) (*session, error) {
	d := decoder{b: rec}
	s := new(session)
	id := &s.Identity
	for _, p := range []*string{&s.SID, &s.Tenant, &s.IdP, &s.Subject, &s.UID,
		&id.Issuer, &id.Subject, &id.Email, &id.Name, &id.GivenName, &id.FamilyName, &id.PreferredUsername, &id.ACR} {
		*p = d.string()
	}
	s.UGen = d.varint()
	s.AuthTime = d.time()
	id.AuthTime = d.time()
	s.Clients = d.strings()
	id.AMR = d.strings()
	switch d.byte() {
	case 0:
	case 1:
		id.EmailVerified = true
	default:
		d.fail("bad bool")
	}
	if d.err != nil {
		return nil, d.err
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.New("identity claims are not an object")
		}
		id.Claims = m
	}
	if len(d.b) != 0 {
		return nil, errors.New("trailing bytes in the origin")
	}
	return s, nil
}

// decodeGrant reads a grant in either stored form into g. withOrigin false
// leaves the origin session undecoded (g.Origin nil): the code exchange
// does not read it. Like decodeRecord, an undecodable record is ErrNotFound.
func decodeGrant(rec []byte, g *grant, withOrigin bool) error {
	if len(rec) == 0 || rec[0] != grantV1 {
		if !withOrigin {
			var x exchangeGrant
			if err := decodeRecord(rec, &x); err != nil {
				return err
			}
			*g = x.grant
			return nil
		}
		return decodeRecord(rec, g)
	}
	if err := decodeGrantV1(rec[1:], g, withOrigin); err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, err)
	}
	return nil
}

func decodeGrantV1(rec []byte, g *grant, withOrigin bool) error {
	d := decoder{b: rec}
	*g = grant{}
	for _, p := range []*string{&g.ClientID, &g.RedirectURI, &g.Challenge, &g.Nonce, &g.SID, &g.Subject, &g.Tenant, &g.IdP, &g.TI, &g.HI, &g.Risk, &g.JKT} {
		*p = d.string()
	}
	g.Scopes = d.strings()
	g.ACRS = d.strings()
	g.AuthTime = d.time()
	g.Created = d.time()
	g.Cap = time.Duration(d.varint())
	if d.err != nil {
		return d.err
	}
	v, err := d.value(0)
	if err != nil {
		return err
	}
	if v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return errors.New("claims are not an object")
		}
		g.Claims = m
	}
	n := d.uvarint()
	if d.err != nil {
		return d.err
	}
	if n > 0 {
		o := d.bytes(n - 1)
		if d.err != nil {
			return d.err
		}
		if withOrigin {
			if g.Origin, err = decodeSession(o); err != nil {
				return err
			}
		}
	}
	if len(d.b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// encodeBinding returns the binary stored form of a code's binding.
func encodeBinding(cb *codeBinding) []byte {
	b := make([]byte, 0, 16+len(cb.RedirectURI)+len(cb.Challenge)+len(cb.Nonce)+len(cb.JKT))
	b = append(b, bindingV1)
	for _, s := range []string{cb.RedirectURI, cb.Challenge, cb.Nonce, cb.JKT} {
		b = appendString(b, s)
	}
	return appendTime(b, cb.Created)
}

// decodeBinding reads a code's binding in either stored form.
func decodeBinding(rec []byte, cb *codeBinding) error {
	if len(rec) == 0 || rec[0] != bindingV1 {
		return decodeRecord(rec, cb)
	}
	d := decoder{b: rec[1:]}
	*cb = codeBinding{}
	for _, p := range []*string{&cb.RedirectURI, &cb.Challenge, &cb.Nonce, &cb.JKT} {
		*p = d.string()
	}
	cb.Created = d.time()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, d.err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, l []string) []byte {
	if l == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l))+1)
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

// appendTime keeps the instant (the zone is UTC when read back: every
// reader compares instants or takes Unix seconds).
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// appendValue appends a claim value. The types json.Unmarshal makes
// (nil, bool, string, float64, []any, map[string]any) and the common Go
// ones (ints, []string) have a tag; any other value is kept as its JSON, so
// a value reads back exactly as a JSON round trip would give it.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return nil, errors.New("claim value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return appendString(append(b, tagString), x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("unsupported claim value %v", x)
		}
		return binary.LittleEndian.AppendUint64(append(b, tagNumber), math.Float64bits(x)), nil
	case int:
		return binary.LittleEndian.AppendUint64(append(b, tagNumber), math.Float64bits(float64(x))), nil
	case int64:
		return binary.LittleEndian.AppendUint64(append(b, tagNumber), math.Float64bits(float64(x))), nil
	case []string:
		if x == nil {
			return append(b, tagNull), nil
		}
		b = binary.AppendUvarint(append(b, tagArray), uint64(len(x)))
		for _, s := range x {
			b = appendString(append(b, tagString), s)
		}
		return b, nil
	case []any:
		if x == nil {
			return append(b, tagNull), nil
		}
		b = binary.AppendUvarint(append(b, tagArray), uint64(len(x)))
		var err error
		for _, e := range x {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		if x == nil {
			return append(b, tagNull), nil
		}
		b = binary.AppendUvarint(append(b, tagObject), uint64(len(x)))
		var err error
		for k, e := range x {
			b = appendString(b, k)
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) && rv.IsNil() {
		return append(b, tagNull), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(append(b, tagJSON), uint64(len(j)))
	return append(b, j...), nil
}

// decoder reads the binary forms; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCodec, what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("short record")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length beyond the record")
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) strings() []string {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.fail("count beyond the record")
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		d.fail("bad time")
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("bad time")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, errors.New("claim value nested too deeply")
	}
	tag := d.byte()
	if d.err != nil {
		return nil, d.err
	}
	switch tag {
	case tagNull:
		return nil, nil
	case tagTrue:
		return true, nil
	case tagFalse:
		return false, nil
	case tagString:
		s := d.string()
		return s, d.err
	case tagNumber:
		raw := d.bytes(8)
		if d.err != nil {
			return nil, d.err
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(raw))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: bad number", errCodec)
		}
		return f, nil
	case tagArray:
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b)) { // each value takes at least one byte
			d.fail("count beyond the record")
		}
		if d.err != nil {
			return nil, d.err
		}
		out := make([]any, n)
		for i := range out {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case tagObject:
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b))/2 { // a key and a value take at least two bytes
			d.fail("count beyond the record")
		}
		if d.err != nil {
			return nil, d.err
		}
		out := make(map[string]any, n)
		for range n {
			k := d.string()
			if d.err != nil {
				return nil, d.err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case tagJSON:
		raw := d.bytes(d.uvarint())
		if d.err != nil {
			return nil, d.err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: unknown value tag %#x", errCodec, tag)
}
