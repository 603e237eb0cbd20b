package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/users"
)

// Lifetimes of the short-lived records (DESIGN.md, "The store").
const (
	authRequestTTL   = 10 * time.Minute
	upstreamLoginTTL = 10 * time.Minute
	codeTTL          = 60 * time.Second // S08: a code expires within 60 s
)

// authRequest is a validated /authorize request waiting for the user.
type authRequest struct {
	ClientID      string    `json:"cid"`
	RedirectURI   string    `json:"ru"`
	State         string    `json:"st,omitempty"`
	Nonce         string    `json:"n,omitempty"`
	Scopes        []string  `json:"sc"`
	CodeChallenge string    `json:"cc"`
	LoginHint     string    `json:"lh,omitempty"`
	ForceLogin    bool      `json:"fl,omitempty"`
	Binding       []byte    `json:"b"`
	Created       time.Time `json:"t"`
	// RequireMFA is the client's step-up request (acr_values).
	RequireMFA bool `json:"mfa,omitempty"`
	// PromptNone forbids any interaction (OIDC Core §3.1.2.1): where one
	// would be needed the client gets an error instead.
	PromptNone bool `json:"pn,omitempty"`
	// Tenant is the requested active tenant (the tenant parameter or the
	// picker's answer); empty means the home tenant.
	Tenant string `json:"tn,omitempty"`

	// MaxAge is the request's max_age in seconds (OIDC Core §3.1.2.1); nil: none.
	MaxAge *int `json:"ma,omitempty"`
	// FreshSID is the session the user authenticated upstream for this
	// request, kept while the request waits on a page (the tenant picker):
	// only that session counts as fresh for it (S67).
	FreshSID string `json:"fs,omitempty"`
	// ACRS are the authentication contexts the app asked for with the
	// claims parameter (c1..c25, conditional.go).
	ACRS []string `json:"acrs,omitempty"`

	fresh bool // the user authenticated upstream during this request
	// Offered lists the IdPs of the tenant choice page shown for this
	// request: a later choice must be one of them (or a global one).
	Offered []string `json:"o,omitempty"`
	// SAML marks a sign-in for a SAML app (samlidp.go): RedirectURI is
	// the ACS and State the RelayState; the answer is a SAML Response.
	SAML *samlPending `json:"saml,omitempty"`
	// DPoPJKT binds the code to a DPoP key (dpop_jkt, RFC 9449 §10).
	DPoPJKT string `json:"jkt,omitempty"`
	// Device is the store key of the device authorization this sign-in
	// answers (device.go): it ends on the confirmation page, not at a
	// redirect URI.
	Device string `json:"dev,omitempty"`
	// PromptConsent is prompt=consent: a third-party client's consent page
	// is shown even when the user granted the scopes before (consent.go).
	PromptConsent bool `json:"pc,omitempty"`
	consented     bool // the user has just approved on the consent page
	// Test marks a test sign-in started from the setup portal
	// (testsignin.go): its answer is explained, never issued.
	Test *testSignIn `json:"test,omitempty"`
}

// upstreamLogin is the state of one round trip to an upstream IdP.
type upstreamLogin struct {
	Request  string `json:"r"` // store key of the auth request (an HMAC, S17)
	IdP      string `json:"idp"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Data     []byte `json:"d,omitempty"`
	Binding  []byte `json:"b"`
	Hint     string `json:"lh,omitempty"`
	Force    bool   `json:"fl,omitempty"`
	// MFA says multi-factor authentication was asked of the IdP: a second
	// single-factor answer is refused rather than retried.
	MFA     bool      `json:"mfa,omitempty"`
	Created time.Time `json:"t"`
	// AR is the auth request as it was when this upstream login started:
	// the callback reads it from here instead of a second record (one
	// round trip less); the record itself is consumed by the callback's
	// batch (pending.go), so a request still signs in at most once. Nil in
	// states written before it existed (the callback then reads Request).
	AR *authRequest `json:"ar,omitempty"`
}

// session is the broker's SSO session.
type session struct {
	SID      string             `json:"sid"` // public session id (sid claim)
	Tenant   string             `json:"tid"`
	IdP      string             `json:"idp"`
	Subject  string             `json:"sub"` // normalized, opaque
	Identity providers.Identity `json:"id"`
	AuthTime time.Time          `json:"at"`
	// Clients lists the applications that received a code in this
	// session: the ones told by back-channel logout.
	Clients []string `json:"cl,omitempty"`
	// UID is the user's record in the tenant directory (package users)
	// and UGen its revocation generation at sign-in; empty without a
	// directory. authorizeFor refuses the session once the record is
	// inactive, gone or revoked (users.go).
	UID  string `json:"uid,omitempty"`
	UGen int64  `json:"ug,omitempty"`

	key string // store key, not persisted
	// user is the record as read for this request (nil: gone) when
	// userRead; neither is persisted.
	user     *users.User
	userRead bool
}

// The stored form of a session is compact, because sessions are the records
// that stay longest in the store (one per signed-in browser, for the whole
// session lifetime):
//   - short member names, empty members left out;
//   - an identity field that repeats the upstream claim of the same meaning
//     (email and "email", ...) is left out and restored from the claim;
//   - the upstream claims that belong to one protocol exchange and mean
//     nothing afterwards (nonce, at_hash, c_hash) are not kept.
//
// Sessions written in the earlier long form ("id") are still read.

// sessionWire is the stored form of a session.
type sessionWire struct {
	SID      string              `json:"sid"`
	Tenant   string              `json:"tid"`
	IdP      string              `json:"idp"`
	Subject  string              `json:"sub"`
	AuthTime time.Time           `json:"at"`
	Identity *identityWire       `json:"i,omitempty"`
	Long     *providers.Identity `json:"id,omitempty"` // the earlier long form, read only
	Clients  []string            `json:"cl,omitempty"`
	UID      string              `json:"uid,omitempty"`
	UGen     int64               `json:"ug,omitempty"`
}

// identityWire is providers.Identity without what its claims already say:
// a nil field is restored from its claim (see claimFields).
type identityWire struct {
	Issuer            *string        `json:"is,omitempty"`
	Subject           *string        `json:"s,omitempty"`
	Email             *string        `json:"e,omitempty"`
	EmailVerified     *bool          `json:"ev,omitempty"`
	Name              *string        `json:"n,omitempty"`
	GivenName         *string        `json:"gn,omitempty"`
	FamilyName        *string        `json:"fn,omitempty"`
	PreferredUsername *string        `json:"pu,omitempty"`
	ACR               *string        `json:"acr,omitempty"`
	AMR               []string       `json:"amr,omitempty"`
	AMRSet            bool           `json:"amrs,omitempty"` // AMR differs from the amr claim although empty
	AuthTime          *time.Time     `json:"at,omitempty"`   // nil: the session's auth time
	Claims            map[string]any `json:"c,omitempty"`
}

// exchangeClaims are upstream claims bound to one token exchange.
var exchangeClaims = []string{"nonce", "at_hash", "c_hash"}

// claimFields pairs the identity's string fields with their claims.
func claimFields(id *providers.Identity, w *identityWire) []struct {
	claim string
	field *string
	wire  **string
} {
	return []struct {
		claim string
		field *string
		wire  **string
	}{
		{"iss", &id.Issuer, &w.Issuer}, {"sub", &id.Subject, &w.Subject}, {"email", &id.Email, &w.Email},
		{"name", &id.Name, &w.Name}, {"given_name", &id.GivenName, &w.GivenName},
		{"family_name", &id.FamilyName, &w.FamilyName}, {"preferred_username", &id.PreferredUsername, &w.PreferredUsername},
		{"acr", &id.ACR, &w.ACR},
	}
}

// MarshalJSON writes the compact stored form.
func (s session) MarshalJSON() ([]byte, error) {
	id := s.Identity
	w := &identityWire{Claims: id.Claims}
	for _, k := range exchangeClaims {
		if _, ok := id.Claims[k]; ok {
			w.Claims = make(map[string]any, len(id.Claims))
			for ck, cv := range id.Claims {
				if !slices.Contains(exchangeClaims, ck) {
					w.Claims[ck] = cv
				}
			}
			break
		}
	}
	for _, f := range claimFields(&id, w) {
		c, isString := id.Claims[f.claim].(string)
		if (isString && c == *f.field) || (!isString && *f.field == "") {
			continue // restored from the claim
		}
		v := *f.field
		*f.wire = &v
	}
	if c, isBool := id.Claims["email_verified"].(bool); !(isBool && c == id.EmailVerified) && !(!isBool && !id.EmailVerified) {
		v := id.EmailVerified
		w.EmailVerified = &v
	}
	if c, isList := stringList(id.Claims["amr"]); !(isList && slices.Equal(c, id.AMR)) && !(!isList && len(id.AMR) == 0) {
		w.AMR, w.AMRSet = id.AMR, len(id.AMR) == 0
	}
	if !id.AuthTime.Equal(s.AuthTime) {
		t := id.AuthTime
		w.AuthTime = &t
	}
	return json.Marshal(sessionWire{SID: s.SID, Tenant: s.Tenant, IdP: s.IdP, Subject: s.Subject, AuthTime: s.AuthTime, Identity: w, Clients: s.Clients,
		UID: s.UID, UGen: s.UGen})
}

// UnmarshalJSON reads the compact form and the earlier long form.
func (s *session) UnmarshalJSON(b []byte) error {
	var w sessionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = session{SID: w.SID, Tenant: w.Tenant, IdP: w.IdP, Subject: w.Subject, AuthTime: w.AuthTime, Clients: w.Clients,
		UID: w.UID, UGen: w.UGen}
	switch {
	case w.Identity != nil:
		iw := w.Identity
		id := &s.Identity
		id.Claims = iw.Claims
		for _, f := range claimFields(id, iw) {
			if *f.wire != nil {
				*f.field = **f.wire
			} else {
				*f.field, _ = id.Claims[f.claim].(string)
			}
		}
		if iw.EmailVerified != nil {
			id.EmailVerified = *iw.EmailVerified
		} else {
			id.EmailVerified, _ = id.Claims["email_verified"].(bool)
		}
		if iw.AMR != nil || iw.AMRSet {
			id.AMR = iw.AMR
		} else {
			id.AMR, _ = stringList(id.Claims["amr"])
		}
		id.AuthTime = s.AuthTime
		if iw.AuthTime != nil {
			id.AuthTime = *iw.AuthTime
		}
	case w.Long != nil:
		s.Identity = *w.Long
	}
	return nil
}

// stringList returns v as a list of strings if it is one ([]string, or
// []any holding only strings, as JSON decodes it).
func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return l, true
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// grant is what a code redeems and what a refresh-token family carries.
type grant struct {
	ClientID    string         `json:"cid"`
	RedirectURI string         `json:"ru,omitempty"`
	Challenge   string         `json:"cc,omitempty"`
	Nonce       string         `json:"n,omitempty"`
	Scopes      []string       `json:"sc"`
	SID         string         `json:"sid"`
	Subject     string         `json:"sub"`
	Tenant      string         `json:"tid"`
	IdP         string         `json:"idp"`
	AuthTime    time.Time      `json:"at"`
	Claims      map[string]any `json:"cl"`
	// Origin is the authentication the grant came from (the home tenant's
	// IdP, the upstream identity, its time): refresh decides again on it and
	// runs the current rules over it (S68). Nil for impersonation and for
	// grants written before it existed.
	Origin *session `json:"o,omitempty"`
	// TI and HI are the incarnations of the tenant and of the home tenant
	// (the IdP's) when the grant was issued (TenantPolicy.Incarnation).
	TI string `json:"ti,omitempty"`
	HI string `json:"hi,omitempty"`
	// Created bounds a code's life (S08); a refresh-token family's copy of
	// the grant leaves it out.
	Created time.Time `json:"t,omitzero"`
	// ACRS are the authentication contexts the sign-in met (the acrs
	// claim); Risk its risk level when the tenant puts it in tokens; Cap a
	// conditional-access policy's session cap, which bounds the
	// refresh-token family too (conditional.go).
	ACRS []string      `json:"acrs,omitempty"`
	Risk string        `json:"rl,omitempty"`
	Cap  time.Duration `json:"cap,omitempty"`
	// JKT is the thumbprint of the DPoP key a code (dpop_jkt, RFC 9449
	// §10) or a public client's refresh-token family (§5) is bound to.
	JKT string `json:"jkt,omitempty"`
}

// storeErr wraps any store error other than not-found as unavailability, so
// the edge answers 503 and never acts on a half-read state.
func storeErr(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrReused) {
		return err
	}
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// putJSON stores v as JSON; a session in its binary form (sessioncodec.go).
func (s *Server) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	var b []byte
	var err error
	if sess, ok := v.(*session); ok {
		b, err = s.encodeSession(sess)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return storeErr("store put", s.store.Put(ctx, key, b, ttl))
}

func (s *Server) getJSON(ctx context.Context, key string, v any) error {
	b, err := s.store.Get(ctx, key)
	if err != nil {
		return storeErr("store get", err)
	}
	return decodeRecord(b, v)
}

// familyGrant reads the grant of an active refresh-token family (the one
// record behind userinfo, introspection and revocation); ErrNotFound when
// the family was revoked or has expired.
func (s *Server) familyGrant(ctx context.Context, fam string, g *grant) error {
	b, err := s.store.FamilyGrant(ctx, fam)
	if err != nil {
		return storeErr("family grant", err)
	}
	return decodeGrant(b, g, true)
}

func (s *Server) takeJSON(ctx context.Context, key string, v any) error {
	b, err := s.store.Take(ctx, key)
	if err != nil {
		return storeErr("store take", err)
	}
	return decodeRecord(b, v)
}

// decodeRecord treats an undecodable record as absent: it was not written by
// this broker version or was tampered with.
// A session is read in its binary form or its JSON form (sessioncodec.go).
func decodeRecord(b []byte, v any) error {
	if sess, ok := v.(*session); ok {
		return decodeSessionRecord(b, sess)
	}
	return decodeJSONRecord(b, v)
}

func decodeJSONRecord(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, err)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func isUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
