package broker

import (
	"fmt"
)

// The SSO session's stored form: its version byte, then appendSession's
// binary form (the grant's origin session has the same fields, so both
// share one encoding; TestGrantCodec_EveryOriginField fails when a field
// of session or of its identity has no place in it). Sessions written by
// earlier releases in the compact JSON form (they start with '{') are
// still read, by session.UnmarshalJSON, so a browser signed in before an
// upgrade stays signed in.

// sessionV1 is the version byte of the binary session record.
const sessionV1 = 0x01

// encodeSession returns the stored form of sess: the binary one, or the
// JSON one earlier releases read (Config.JSONRecords).
func (s *Server) encodeSession(sess *session) ([]byte, error) {
	if s.cfg.JSONRecords {
		return sess.MarshalJSON()
	}
	return encodeSessionRecord(sess)
}

// sessionRoom is the room a session's binary form starts with: the bench's
// session is 454 bytes (an upstream's usual identity and a few claims), so
// 384 grew once per sign-in.
const sessionRoom = 640

// encodeSessionRecord returns the stored form of s.
func encodeSessionRecord(s *session) ([]byte, error) {
	b := make([]byte, 1, sessionRoom)
	b[0] = sessionV1
	return appendSession(b, s)
}

// decodeSessionRecord reads a session record in either stored form into s;
// like decodeRecord, an undecodable record is ErrNotFound.
func decodeSessionRecord(rec []byte, s *session) error {
	if len(rec) == 0 || rec[0] != sessionV1 {
		var old session
		if err := decodeJSONRecord(rec, &old); err != nil {
			return err
		}
		*s = old
		return nil
	}
	got, err := decodeSession(rec[1:])
	if err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, err)
	}
	*s = *got
	return nil
}
