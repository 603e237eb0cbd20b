// Package registration is OAuth 2.0 Dynamic Client Registration (RFC 7591)
// and its management protocol (RFC 7592), per tenant: a tenant's developer
// registers an API or web client at <issuer>/register/<tenant> with an
// initial access token a tenant admin created through the admin API, and
// reads, updates or deletes it with the registration access token the
// registration returned. Registered clients are the admin API's clients of
// that tenant: they are validated and stored exactly like them.
package registration

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// Bounds of the tokens.
const (
	// DefaultInitialTokenTTL is an initial access token's lifetime when the
	// admin asks for none; MaxInitialTokenTTL the longest it may ask for.
	DefaultInitialTokenTTL = 24 * time.Hour
	MaxInitialTokenTTL     = 30 * 24 * time.Hour
	// accessTokenTTL is how long a registration access token is kept: the
	// client's lifetime in practice; deleting the client ends it.
	accessTokenTTL = 10 * 365 * 24 * time.Hour
	// InitialTokenPrefix and AccessTokenPrefix start the tokens, so a
	// leaked one is recognizable (secret scanners).
	InitialTokenPrefix = "rgiat_"
	AccessTokenPrefix  = "rgrat_"
)

// ErrTokenNotFound is returned for an unknown, expired or revoked token.
var ErrTokenNotFound = errors.New("registration: token not found")

// InitialToken describes an initial access token; it never holds the token.
type InitialToken struct {
	// ID names the token for revocation: a digest, not the token.
	ID string `json:"id"`
	// Tenant is the tenant whose clients the token registers.
	Tenant string `json:"tenant"`
	// CreatedBy is the admin who created it.
	CreatedBy string `json:"created_by,omitempty"`
	// ExpiresAt is when it stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// Tokens keeps initial access tokens and registration access tokens in the
// shared store, as HMAC-SHA256 digests under a key derived from the server
// secret (SECURITY S16, S17).
type Tokens struct {
	st  store.Store
	key []byte
	now func() time.Time
}

// NewTokens returns the token store on st; secret is the server secret.
func NewTokens(st store.Store, secret []byte) *Tokens {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("realmgate registration tokens"))
	return &Tokens{st: st, key: m.Sum(nil), now: time.Now}
}

func (t *Tokens) digest(token string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

func random(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func iatKey(digest string) string { return "dcr:iat:" + digest }

func ratKey(digest string) string { return "dcr:rat:" + digest }

func ratClientKey(client string) string { return "dcr:client:" + client }

// CreateInitial makes an initial access token for tenant, valid for ttl
// (DefaultInitialTokenTTL when zero, at most MaxInitialTokenTTL), and
// returns it: the only time it is seen.
func (t *Tokens) CreateInitial(ctx context.Context, tenant, createdBy string, ttl time.Duration) (string, InitialToken, error) {
	if ttl == 0 {
		ttl = DefaultInitialTokenTTL
	}
	if ttl < time.Minute || ttl > MaxInitialTokenTTL {
		return "", InitialToken{}, fmt.Errorf("registration: lifetime %s is out of range (1m to %s)", ttl, MaxInitialTokenTTL)
	}
	tok := random(InitialTokenPrefix)
	d := t.digest(tok)
	info := InitialToken{ID: d[:32], Tenant: tenant, CreatedBy: createdBy, ExpiresAt: t.now().Add(ttl).UTC().Truncate(time.Second)}
	rec, _ := json.Marshal(info)
	if err := t.st.Put(ctx, iatKey(d), rec, ttl); err != nil {
		return "", InitialToken{}, fmt.Errorf("registration: store initial token: %w", err)
	}
	// The id finds the record for revocation.
	if err := t.st.Put(ctx, "dcr:iatid:"+info.ID, []byte(d), ttl); err != nil {
		return "", InitialToken{}, fmt.Errorf("registration: store initial token: %w", err)
	}
	return tok, info, nil
}

// VerifyInitial returns the description of a presented initial access token.
func (t *Tokens) VerifyInitial(ctx context.Context, token string) (InitialToken, error) {
	if !strings.HasPrefix(token, InitialTokenPrefix) || len(token) > 128 {
		return InitialToken{}, ErrTokenNotFound
	}
	rec, err := t.st.Get(ctx, iatKey(t.digest(token)))
	if errors.Is(err, store.ErrNotFound) {
		return InitialToken{}, ErrTokenNotFound
	}
	if err != nil {
		return InitialToken{}, fmt.Errorf("registration: read initial token: %w", err)
	}
	var info InitialToken
	if err := json.Unmarshal(rec, &info); err != nil || !t.now().Before(info.ExpiresAt) {
		return InitialToken{}, ErrTokenNotFound
	}
	return info, nil
}

// RevokeInitial ends tenant's initial access token id.
func (t *Tokens) RevokeInitial(ctx context.Context, tenant, id string) error {
	d, err := t.st.Get(ctx, "dcr:iatid:"+id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrTokenNotFound
	}
	if err != nil {
		return fmt.Errorf("registration: read initial token: %w", err)
	}
	rec, err := t.st.Get(ctx, iatKey(string(d)))
	if errors.Is(err, store.ErrNotFound) {
		return ErrTokenNotFound
	}
	if err != nil {
		return fmt.Errorf("registration: read initial token: %w", err)
	}
	var info InitialToken
	if json.Unmarshal(rec, &info) != nil || info.Tenant != tenant {
		return ErrTokenNotFound
	}
	if err := t.st.Delete(ctx, iatKey(string(d))); err != nil {
		return fmt.Errorf("registration: revoke initial token: %w", err)
	}
	return t.st.Delete(ctx, "dcr:iatid:"+id)
}

// issueAccess makes a registration access token for client (RFC 7592 §3),
// replacing the one it had.
func (t *Tokens) issueAccess(ctx context.Context, client string) (string, error) {
	if err := t.revokeAccess(ctx, client); err != nil {
		return "", err
	}
	tok := random(AccessTokenPrefix)
	d := t.digest(tok)
	if err := t.st.Put(ctx, ratKey(d), []byte(client), accessTokenTTL); err != nil {
		return "", fmt.Errorf("registration: store access token: %w", err)
	}
	if err := t.st.Put(ctx, ratClientKey(client), []byte(d), accessTokenTTL); err != nil {
		return "", fmt.Errorf("registration: store access token: %w", err)
	}
	return tok, nil
}

// accessClient returns the client a registration access token manages.
func (t *Tokens) accessClient(ctx context.Context, token string) (string, error) {
	if !strings.HasPrefix(token, AccessTokenPrefix) || len(token) > 128 {
		return "", ErrTokenNotFound
	}
	c, err := t.st.Get(ctx, ratKey(t.digest(token)))
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrTokenNotFound
	}
	if err != nil {
		return "", fmt.Errorf("registration: read access token: %w", err)
	}
	return string(c), nil
}

// revokeAccess ends client's registration access token, if any.
func (t *Tokens) revokeAccess(ctx context.Context, client string) error {
	d, err := t.st.Get(ctx, ratClientKey(client))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registration: read access token: %w", err)
	}
	if err := t.st.Delete(ctx, ratKey(string(d))); err != nil {
		return fmt.Errorf("registration: revoke access token: %w", err)
	}
	return t.st.Delete(ctx, ratClientKey(client))
}
