package users

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The binary stored form of a user record. A sign-in reads the user
// (SignIn) and a refresh may read it again; as JSON, the record was
// scanned once for validity and again to decode it (users.decodeUser was
// 4 % of a refresh's CPU, docs/performance.md).
//
// A record in this form starts with its version byte; a record in the
// earlier JSON form starts with '{' and is still read (records written by
// the previous release), and is rewritten in this form by its next update.
// Fields are in a fixed order: strings as a uvarint length and the bytes,
// lists as a uvarint count plus one (0: none), Unix seconds as varints, the
// app attributes as their JSON (what the JSON form held, read back the same
// way), the provisioning extras as name and compacted JSON value.
// TestUserCodec_EveryField fails when a field of User has no place here.

// userV1 is the version byte of the binary user record.
const userV1 = 0x01

var errUserCodec = errors.New("malformed binary user record")

// appendUserRecord returns the binary form of u (what the JSON form kept:
// not the id, tenant and version the store keeps, nor the sign-in stamp).
func appendUserRecord(b []byte, u *User) ([]byte, error) {
	b = append(b, userV1)
	st := u.Status
	if st == StatusActive {
		st = ""
	}
	for _, s := range []string{u.Subject, u.ExternalID, u.UserName, u.Email, u.Name.Formatted, u.Name.GivenName,
		u.Name.FamilyName, u.DisplayName, string(st)} {
		b = appendStr(b, s)
	}
	flags := byte(0)
	if u.EmailVerified {
		flags |= 1
	}
	if u.Provisioned {
		flags |= 2
	}
	if u.Risk != nil {
		flags |= 4
	}
	b = append(b, flags)
	for _, t := range []time.Time{u.FirstSignIn, u.Created, u.Updated} {
		b = binary.AppendVarint(b, unix(t))
	}
	b = binary.AppendVarint(b, u.Generation)
	b = binary.AppendUvarint(b, uint64(len(u.Links)))
	for _, l := range u.Links {
		b = appendStr(appendStr(b, l.IdP), l.Subject)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Groups)))
	for _, g := range u.Groups {
		b = appendStr(appendStr(b, g.ID), g.Display)
	}
	b = binary.AppendUvarint(b, uint64(len(u.UpstreamGroups)))
	for _, g := range u.UpstreamGroups {
		b = appendStr(b, g)
	}
	if u.Risk != nil {
		r := u.Risk
		for _, s := range []string{string(r.State), r.Level, r.Detail, r.By} {
			b = appendStr(b, s)
		}
		b = appendInstant(b, r.Updated)
	}
	// The attributes as the JSON form held them (empty: none).
	if len(u.Attributes) == 0 {
		b = binary.AppendUvarint(b, 0)
	} else {
		a, err := json.Marshal(u.Attributes)
		if err != nil {
			return nil, fmt.Errorf("%w: attributes: %v", ErrInvalid, err)
		}
		b = appendStr(b, string(a))
	}
	b = binary.AppendUvarint(b, uint64(len(u.Extra)))
	for k, v := range u.Extra {
		// json.Marshal of a RawMessage checks it and compacts it (and
		// escapes HTML), as the JSON form wrote it.
		x, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: extra %q: %v", ErrInvalid, k, err)
		}
		b = appendStr(appendStr(b, k), string(x))
	}
	return b, nil
}

// decodeUserRecord reads appendUserRecord's form (after the version byte)
// into u.
func decodeUserRecord(rec []byte, u *User) error {
	d := userDecoder{b: rec}
	for _, p := range []*string{&u.Subject, &u.ExternalID, &u.UserName, &u.Email, &u.Name.Formatted, &u.Name.GivenName,
		&u.Name.FamilyName, &u.DisplayName} {
		*p = d.string()
	}
	u.Status = Status(d.string())
	flags := d.byte()
	if flags&^7 != 0 {
		d.fail()
	}
	u.EmailVerified, u.Provisioned = flags&1 != 0, flags&2 != 0
	u.FirstSignIn, u.Created, u.Updated = fromUnix(d.varint()), fromUnix(d.varint()), fromUnix(d.varint())
	u.Generation = d.varint()
	if n := d.count(2); n > 0 {
		u.Links = make([]Link, n)
		for i := range u.Links {
			u.Links[i] = Link{IdP: d.string(), Subject: d.string()}
		}
	}
	if n := d.count(2); n > 0 {
		u.Groups = make([]GroupRef, n)
		for i := range u.Groups {
			u.Groups[i] = GroupRef{ID: d.string(), Display: d.string()}
		}
	}
	if n := d.count(1); n > 0 {
		u.UpstreamGroups = make([]string, n)
		for i := range u.UpstreamGroups {
			u.UpstreamGroups[i] = d.string()
		}
	}
	if flags&4 != 0 {
		u.Risk = &Risk{State: RiskState(d.string()), Level: d.string(), Detail: d.string(), By: d.string(), Updated: d.instant()}
	}
	if a := d.bytes(); len(a) > 0 && d.err == nil {
		if err := json.Unmarshal(a, &u.Attributes); err != nil || u.Attributes == nil {
			return fmt.Errorf("%w: attributes", errUserCodec)
		}
	}
	if n := d.count(2); n > 0 {
		u.Extra = make(map[string]json.RawMessage, n)
		for range n {
			k, v := d.string(), d.bytes()
			if d.err == nil && !json.Valid(v) {
				d.fail()
			}
			u.Extra[k] = json.RawMessage(slices.Clone(v))
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendInstant writes t as Unix seconds and nanoseconds (zero: none); it
// reads back in UTC.
func appendInstant(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendUvarint(binary.AppendVarint(append(b, 1), t.Unix()), uint64(t.Nanosecond()))
}

// userDecoder reads the binary form; the first error sticks.
type userDecoder struct {
	b   []byte
	err error
}

func (d *userDecoder) fail() {
	if d.err == nil {
		d.err = errUserCodec
	}
	d.b = nil
}

func (d *userDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *userDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *userDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *userDecoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *userDecoder) string() string { return string(d.bytes()) }

// count reads a list's length; each element takes at least min bytes, so a
// count the record cannot hold fails before anything is allocated.
func (d *userDecoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *userDecoder) instant() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		s, ns := d.varint(), d.uvarint()
		if ns >= 1e9 {
			d.fail()
			return time.Time{}
		}
		return time.Unix(s, int64(ns)).UTC()
	}
	d.fail()
	return time.Time{}
}
