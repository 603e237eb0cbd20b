package broker

// Authorization codes in one store step (store.CodeRedeemer). A code of a
// session is "<sid>~<random>": its record, its use marker, the session's
// logout marker and the refresh-token family it starts all carry the
// session id as their Redis Cluster hash tag ("{<sid>}"), so the code
// exchange takes the code, marks it used and starts the family in one
// script, one round trip (three before), and a code of a session logged
// out in the meantime is refused at once (before, its first tokens were
// issued and refused later at refresh and at our endpoints). The record is
// store.JoinCodeRecord(the grant the family keeps, the code's binding), so
// the store starts the family without decoding JSON. Every check of the
// exchange (S03, S07, S08) still runs before any token is issued; when one
// fails, the family the store started is revoked (nobody holds its
// refresh token: it is never sent).

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// codeBinding is what only the code exchange reads: the rest of a code's
// grant (S03, S08). Its names are the grant's, so either decodes into a grant.
type codeBinding struct {
	RedirectURI string    `json:"ru,omitempty"`
	Challenge   string    `json:"cc,omitempty"`
	Nonce       string    `json:"n,omitempty"`
	Created     time.Time `json:"t"`
	// JKT is the code's DPoP binding (dpop_jkt, RFC 9449 §10); the grant
	// part carries the binding its family starts with.
	JKT string `json:"jkt,omitempty"`
}

// codeKeys are the store keys of a session code's record and use marker.
func (s *Server) codeKeys(sid, code string) (rec, used string) {
	return s.keyer.key("cd:{"+sid+"}", code), s.keyer.key("cu:{"+sid+"}", code)
}

// newCode returns a new code for g, the store key of its record and the
// record: a session code when the store redeems in one step.
func (s *Server) newCode(g *grant) (code, key string, rec []byte, err error) {
	// A grant whose session a conditional-access policy shortened (Cap)
	// starts its family with that lifetime, which the one-step redemption
	// (fixed at the refresh lifetime) cannot: such codes take the classic path.
	if _, ok := s.store.(store.CodeRedeemer); !ok || !taggableSID(g.SID) || g.Cap > 0 && g.Cap < s.refreshLifetime(s.dir().clients[g.ClientID]) {
		code = randomToken(tokenBytes)
		rec, err = json.Marshal(g)
		return code, s.keyer.key("cd", code), rec, err
	}
	code = g.SID + FamilySeparator + randomToken(tokenBytes)
	key, _ = s.codeKeys(g.SID, code)
	kept := familyGrant(g)
	// The family's binding (codeGrant): a confidential client's refresh
	// tokens are bound by its authentication, a public client's to the
	// key that redeems the code, which is the code's key when it has one.
	if cl := s.dir().clients[g.ClientID]; cl == nil || !cl.public() {
		kept.JKT = ""
	}
	cb := codeBinding{RedirectURI: g.RedirectURI, Challenge: g.Challenge, Nonce: g.Nonce, Created: g.Created, JKT: g.JKT}
	var gb, bb []byte
	if s.cfg.JSONRecords { // the form earlier releases read (store.record_format: json)
		gb, err = json.Marshal(&kept)
		if err == nil {
			bb, err = json.Marshal(&cb)
		}
	} else {
		gb, err = encodeGrant(&kept) // grantcodec.go
		bb = encodeBinding(&cb)
	}
	if err != nil {
		return "", "", nil, err
	}
	return code, key, store.JoinCodeRecord(gb, bb), nil
}

// familyGrant is the copy of g a refresh-token family keeps: without what
// only the code exchange reads.
func familyGrant(g *grant) grant {
	kept := *g
	kept.RedirectURI, kept.Challenge, kept.Nonce, kept.Created = "", "", "", time.Time{}
	return kept
}

// exchangeGrant decodes a code's grant for the exchange, which answers
// from the grant's claims: the origin (the identity the family's refreshes
// decide on again) stays undecoded, since the store already copied the
// grant into the family.
type exchangeGrant struct {
	grant
	Origin json.RawMessage `json:"o,omitempty"` // shadows grant.Origin
}

// redeemed says how a code was taken: fam and rt are set when the store
// started the code's family in the same step; prior is the family an
// earlier redemption started (ErrNotFound from a one-step redemption).
type redeemed struct {
	oneStep bool
	fam, rt string
	famJKT  string // the DPoP binding the family started with
	prior   []byte
}

// takeCode takes the code's record into g: in one step with the family
// (a session code on a CodeRedeemer) or by itself. ErrNotFound for a code
// unknown, used, expired, or of a session logged out.
func (s *Server) takeCode(ctx context.Context, cl *client, code string, g *grant) (redeemed, error) {
	cr, ok := s.store.(store.CodeRedeemer)
	sid, _, tagged := strings.Cut(code, FamilySeparator)
	if !ok || !tagged || !taggableSID(sid) {
		return redeemed{}, s.takeJSON(ctx, s.keyer.key("cd", code), g)
	}
	key, used := s.codeKeys(sid, code)
	r := redeemed{oneStep: true, fam: sid + FamilySeparator + randomToken(16)}
	r.rt = r.fam + "." + randomToken(tokenBytes)
	rec, err := cr.RedeemCode(ctx, store.Redemption{Code: key, Used: used, UsedTTL: s.accessLifetime(cl) + codeTTL,
		Marker: sessionMarkerKey(sid), Family: r.fam, Token: s.keyer.key("rt", r.rt), FamilyTTL: s.refreshLifetime(cl)}) // lifetimes.go
	switch {
	case errors.Is(err, ErrNotFound):
		return redeemed{oneStep: true, prior: rec}, ErrNotFound
	case errors.Is(err, ErrRevoked): // the session was logged out
		return redeemed{oneStep: true}, ErrNotFound
	case err != nil:
		return redeemed{}, storeErr("redeem code", err)
	}
	gp, bp, ok := store.SplitCodeRecord(rec)
	var b codeBinding
	if !ok || decodeGrant(gp, g, false) != nil || decodeBinding(bp, &b) != nil || g.SID != sid {
		// Not a record this broker wrote for this code's session.
		*g = grant{}
		_ = s.store.RevokeFamily(ctx, r.fam)
		return redeemed{oneStep: true}, ErrNotFound
	}
	r.famJKT = g.JKT
	g.RedirectURI, g.Challenge, g.Nonce, g.Created, g.JKT = b.RedirectURI, b.Challenge, b.Nonce, b.Created, b.JKT
	return r, nil
}

// priorFamily returns the family an earlier redemption of code started (S07).
func (s *Server) priorFamily(ctx context.Context, r redeemed, code string) (string, bool) {
	if r.oneStep {
		return string(r.prior), r.prior != nil
	}
	fam, err := s.store.Get(ctx, s.keyer.key("cu", code))
	return string(fam), err == nil
}
