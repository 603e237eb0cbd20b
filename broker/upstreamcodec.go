package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary stored form of an upstream login's state (upstreamLogin, with
// its copy of the auth request): written by every sign-in's /authorize and
// read back by its callback, where decoding its JSON was the largest part
// of the callback's own JSON work. Like the grant's (grantcodec.go), it
// starts with a version byte; a state in the earlier JSON form starts with
// '{' and is still read (sign-ins started before an upgrade).

// upstreamV1 is the version byte of the binary upstream login state.
const upstreamV1 = 0x01

// encodeUpstream returns the binary stored form of ul.
func encodeUpstream(ul *upstreamLogin) []byte {
	size := 256 + len(ul.Data)
	if ul.AR != nil { // its copy of the auth request: about 300 bytes more
		size += 96 + len(ul.AR.RedirectURI) + len(ul.AR.State) + len(ul.AR.Nonce) + len(ul.AR.CodeChallenge) + len(ul.AR.Binding)
	}
	b := make([]byte, 0, size)
	b = append(b, upstreamV1)
	for _, s := range []string{ul.Request, ul.IdP, ul.Nonce, ul.Verifier, ul.Hint} {
		b = appendString(b, s)
	}
	b = appendBytes(b, omitEmpty(ul.Data)) // the fields JSON left out when empty read back nil
	b = appendBytes(b, ul.Binding)
	b = appendBool(b, ul.Force)
	b = appendBool(b, ul.MFA)
	b = appendTime(b, ul.Created)
	if ul.AR == nil {
		return append(b, 0)
	}
	return appendAuthRequest(append(b, 1), ul.AR)
}

// appendAuthRequest appends the binary form of ar: the upstream state's
// copy of the pending request and the pending request's own record
// (encodeAuthRequest).
func appendAuthRequest(b []byte, ar *authRequest) []byte {
	for _, s := range []string{ar.ClientID, ar.RedirectURI, ar.State, ar.Nonce, ar.CodeChallenge, ar.LoginHint,
		ar.Tenant, ar.FreshSID, ar.DPoPJKT, ar.Device} {
		b = appendString(b, s)
	}
	b = appendStrings(b, ar.Scopes)
	b = appendStrings(b, omitEmpty(ar.ACRS))
	b = appendStrings(b, omitEmpty(ar.Offered))
	for _, v := range []bool{ar.ForceLogin, ar.RequireMFA, ar.PromptNone, ar.PromptConsent} {
		b = appendBool(b, v)
	}
	b = appendBytes(b, ar.Binding)
	b = appendTime(b, ar.Created)
	if ar.MaxAge == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendVarint(append(b, 1), int64(*ar.MaxAge))
	}
	if ar.SAML == nil {
		b = append(b, 0)
	} else {
		b = appendString(append(b, 1), ar.SAML.RequestID)
	}
	if ar.Test == nil { // a test sign-in from the setup portal (testsignin.go)
		return append(b, 0)
	}
	b = append(b, 1)
	for _, s := range []string{ar.Test.Tenant, ar.Test.Return, ar.Test.Actor} {
		b = appendString(b, s)
	}
	return b
}

// decodeUpstream reads an upstream login state in either stored form; an
// undecodable one is ErrNotFound (decodeRecord).
func decodeUpstream(rec []byte, ul *upstreamLogin) error {
	if len(rec) == 0 || rec[0] != upstreamV1 {
		return decodeRecord(rec, ul)
	}
	if err := decodeUpstreamV1(rec[1:], ul); err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, err)
	}
	return nil
}

func decodeUpstreamV1(rec []byte, ul *upstreamLogin) error {
	d := decoder{b: rec}
	*ul = upstreamLogin{}
	for _, p := range []*string{&ul.Request, &ul.IdP, &ul.Nonce, &ul.Verifier, &ul.Hint} {
		*p = d.string()
	}
	ul.Data = d.optBytes()
	ul.Binding = d.optBytes()
	ul.Force = d.bool()
	ul.MFA = d.bool()
	ul.Created = d.time()
	if d.present() {
		ul.AR = new(authRequest)
		d.authRequest(ul.AR)
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// appendBytes appends b's length plus one (0: nil) and its bytes, so nil
// and empty read back as JSON gave them (null and "").
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

// omitEmpty is nil for an empty l, as a JSON field with omitempty reads back.
func omitEmpty[T any](l []T) []T {
	if len(l) == 0 {
		return nil
	}
	return l
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// optBytes reads appendBytes' form into a new slice.
func (d *decoder) optBytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return append([]byte{}, d.bytes(n-1)...)
}

// bool reads appendBool's form.
func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

// present reads the presence byte of an optional part.
func (d *decoder) present() bool { return d.bool() }

// takeUpstream consumes the upstream login state of state (single use).
func (s *Server) takeUpstream(ctx context.Context, state string, ul *upstreamLogin) error {
	b, err := s.store.Take(ctx, s.keyer.key("ul", state))
	if err != nil {
		return storeErr("store take", err)
	}
	return decodeUpstream(b, ul)
}

// getUpstream reads the upstream login state of state, leaving it stored.
func (s *Server) getUpstream(ctx context.Context, state string, ul *upstreamLogin) error {
	b, err := s.store.Get(ctx, s.keyer.key("ul", state))
	if err != nil {
		return storeErr("store get", err)
	}
	return decodeUpstream(b, ul)
}

// authRequest reads appendAuthRequest's form into ar.
func (d *decoder) authRequest(ar *authRequest) {
	for _, p := range []*string{&ar.ClientID, &ar.RedirectURI, &ar.State, &ar.Nonce, &ar.CodeChallenge, &ar.LoginHint,
		&ar.Tenant, &ar.FreshSID, &ar.DPoPJKT, &ar.Device} {
		*p = d.string()
	}
	ar.Scopes = d.strings()
	ar.ACRS = d.strings()
	ar.Offered = d.strings()
	for _, p := range []*bool{&ar.ForceLogin, &ar.RequireMFA, &ar.PromptNone, &ar.PromptConsent} {
		*p = d.bool()
	}
	ar.Binding = d.optBytes()
	ar.Created = d.time()
	if d.present() {
		v := int(d.varint())
		ar.MaxAge = &v
	}
	if d.present() {
		ar.SAML = &samlPending{RequestID: d.string()}
	}
	if d.present() {
		ar.Test = &testSignIn{Tenant: d.string(), Return: d.string(), Actor: d.string()}
	}
}
