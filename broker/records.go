package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/realmgate/realmgate/providers"
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
}

// upstreamLogin is the state of one round trip to an upstream IdP.
type upstreamLogin struct {
	Request  string    `json:"r"` // store key of the auth request (an HMAC, S17)
	IdP      string    `json:"idp"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Data     []byte    `json:"d,omitempty"`
	Binding  []byte    `json:"b"`
	Hint     string    `json:"lh,omitempty"`
	Force    bool      `json:"fl,omitempty"`
	Created  time.Time `json:"t"`
}

// session is the broker's SSO session.
type session struct {
	SID      string             `json:"sid"` // public session id (sid claim)
	Tenant   string             `json:"tid"`
	IdP      string             `json:"idp"`
	Subject  string             `json:"sub"` // normalized, opaque
	Identity providers.Identity `json:"id"`
	AuthTime time.Time          `json:"at"`
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
	Created     time.Time      `json:"t"`
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

func (s *Server) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
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

func (s *Server) takeJSON(ctx context.Context, key string, v any) error {
	b, err := s.store.Take(ctx, key)
	if err != nil {
		return storeErr("store take", err)
	}
	return decodeRecord(b, v)
}

// decodeRecord treats an undecodable record as absent: it was not written by
// this broker version or was tampered with.
func decodeRecord(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: undecodable record: %v", ErrNotFound, err)
	}
	return nil
}
