package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The pending auth request's record ("ar:" keys) in a binary form: a
// version byte, then the encoding the upstream login state already has for
// its copy of the request (appendAuthRequest), so a field of authRequest
// without a place in it fails TestUpstreamCodec_EveryField and
// TestRequestCodec_EveryField. A record in the JSON form starts with '{'
// and is still read (requests pending across an upgrade); with
// Config.JSONRecords (store.record_format: json) the JSON form is written.

// requestV1 is the version byte of the binary auth request record.
const requestV1 = 0x01

// encodeRequest returns the stored form of ar.
func (s *Server) encodeRequest(ar *authRequest) ([]byte, error) {
	if s.cfg.JSONRecords { // the form earlier releases read (store.record_format: json)
		return json.Marshal(ar)
	}
	return encodeRequestRecord(ar), nil
}

// encodeRequestRecord returns the binary stored form of ar.
func encodeRequestRecord(ar *authRequest) []byte {
	size := 96 + len(ar.ClientID) + len(ar.RedirectURI) + len(ar.State) + len(ar.Nonce) +
		len(ar.CodeChallenge) + len(ar.LoginHint) + len(ar.Binding) + 16*len(ar.Scopes) + 32*len(ar.Offered)
	return appendAuthRequest(append(make([]byte, 0, size), requestV1), ar)
}

// decodeRequest reads an auth request record in either stored form into
// ar; like decodeRecord, an undecodable record is ErrNotFound.
func decodeRequest(rec []byte, ar *authRequest) error {
	if len(rec) == 0 || rec[0] != requestV1 {
		return decodeRecord(rec, ar)
	}
	d := decoder{b: rec[1:]}
	*ar = authRequest{}
	d.authRequest(ar)
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, d.err)
	}
	return nil
}

// getRequest reads the auth request record under key.
func (s *Server) getRequest(ctx context.Context, key string, ar *authRequest) error {
	b, err := s.store.Get(ctx, key)
	if err != nil {
		return storeErr("store get", err)
	}
	return decodeRequest(b, ar)
}
