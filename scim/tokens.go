package scim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// Bearer tokens of provisioning clients (RFC 7644 §2: the service provider
// chooses the authentication; Entra and Okta send a long-lived bearer
// token). A token belongs to one tenant and is shown once, when created.
// The store holds only HMAC-SHA256(key, token), the key derived from the
// server secret (keys.secret), so a dump of the store yields no token that
// works (SECURITY S17's rule for every secret); a presented token is found
// by that HMAC, so no comparison of secrets takes place at all, and the
// record's tenant is then compared with the URL's.
//
// Store layout: the record of a token under "scim:token:<hmac>"; each
// tenant's list of tokens (what the admin API shows and revokes) as
// versioned documents "scim:tokens:<tenant>:<n>", each created only if
// absent, so of two instances changing the list at once one redoes its
// change (the admin API's compare-and-swap). A token is listed before its
// record is written and its record deleted before it is unlisted, so no
// token is ever usable without being listed.

// TokenPrefix starts every token, so that a leaked one is recognizable
// (secret scanners) and never mistaken for an admin or client secret.
const TokenPrefix = "rgscim_"

// MaxTokensPerTenant bounds the live tokens of one tenant.
const MaxTokensPerTenant = 20

const (
	tokenKeep    = 100 * 365 * 24 * time.Hour // the store wants a TTL; tokens live until revoked
	tokenHistory = time.Hour                  // superseded list versions, for slow readers
	maxTokenName = 100
)

// Errors of the token store.
var (
	// ErrTokenNotFound means no such token (unknown, revoked, or of another tenant).
	ErrTokenNotFound = errors.New("scim: token not found")
	// ErrTooManyTokens means the tenant already has MaxTokensPerTenant tokens.
	ErrTooManyTokens = errors.New("scim: too many tokens for the tenant")
	// ErrTokenName means a token's name is empty or too long.
	ErrTokenName = errors.New("scim: a token needs a name of 1 to 100 characters")
	// ErrTokenConflict means concurrent changes of a tenant's tokens kept winning.
	ErrTokenConflict = errors.New("scim: concurrent token change, try again")
)

// TokenInfo describes a token; it never holds the token itself.
type TokenInfo struct {
	// ID names the token in the admin API and in audit events.
	ID string `json:"id"`
	// Tenant is the tenant whose directory the token provisions.
	Tenant string `json:"tenant"`
	// Name is the admin's label, such as "entra-prod".
	Name string `json:"name"`
	// CreatedAt and CreatedBy say when and by which admin it was made.
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// listEntry is a TokenInfo with the store key of its record.
type listEntry struct {
	TokenInfo
	Key string `json:"key"`
}

type tokenList struct {
	Version int64       `json:"version"`
	Tokens  []listEntry `json:"tokens"`
}

// Tokens keeps the provisioning tokens of every tenant in the shared store.
type Tokens struct {
	store store.Store
	keys  [][]byte // the first hashes new tokens; the others find tokens made under previous server secrets
	now   func() time.Time
}

// NewTokens returns the token store on st. secret is the server secret
// (keys.secret) and previous the secrets it replaced; without a secret the
// HMAC key is a fixed label, and the store then holds SHA-256-like digests
// of 256-bit random tokens, still of no use to whoever reads them.
func NewTokens(st store.Store, secret []byte, previous ...[]byte) *Tokens {
	t := &Tokens{store: st, now: time.Now}
	t.keys = append(t.keys, deriveKey(secret))
	for _, p := range previous {
		if len(p) > 0 {
			t.keys = append(t.keys, deriveKey(p))
		}
	}
	return t
}

func deriveKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("realmgate scim bearer token v1"))
	return m.Sum(nil)
}

func (t *Tokens) recordKey(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token))
	return "scim:token:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func listKey(tenant string, v int64) string {
	return "scim:tokens:" + tenant + ":" + strconv.FormatInt(v, 10)
}

func headKey(tenant string) string { return "scim:tokens:" + tenant + ":head" }

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("scim: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create makes a token for tenant and returns it, the only time it is
// ever shown, with its description.
func (t *Tokens) Create(ctx context.Context, tenant, name, createdBy string) (string, TokenInfo, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxTokenName {
		return "", TokenInfo{}, ErrTokenName
	}
	secret := TokenPrefix + random(32) // 256 bits (S17)
	info := TokenInfo{ID: random(9), Tenant: tenant, Name: name, CreatedAt: t.now().UTC().Truncate(time.Second), CreatedBy: createdBy}
	entry := listEntry{TokenInfo: info, Key: t.recordKey(t.keys[0], secret)}
	err := t.change(ctx, tenant, func(l *tokenList) error {
		if len(l.Tokens) >= MaxTokensPerTenant {
			return ErrTooManyTokens
		}
		l.Tokens = append(l.Tokens, entry)
		return nil
	})
	if err != nil {
		return "", TokenInfo{}, err
	}
	rec, _ := json.Marshal(info)
	if err := t.store.Put(ctx, entry.Key, rec, tokenKeep); err != nil {
		return "", TokenInfo{}, fmt.Errorf("scim: write token: %w", err)
	}
	return secret, info, nil
}

// List returns tenant's tokens, oldest first.
func (t *Tokens) List(ctx context.Context, tenant string) ([]TokenInfo, error) {
	l, err := t.latest(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, len(l.Tokens))
	for i, e := range l.Tokens {
		out[i] = e.TokenInfo
	}
	return out, nil
}

// Revoke ends the token id of tenant at once, on every instance: its
// record is deleted before it leaves the list.
func (t *Tokens) Revoke(ctx context.Context, tenant, id string) (TokenInfo, error) {
	l, err := t.latest(ctx, tenant)
	if err != nil {
		return TokenInfo{}, err
	}
	var found *listEntry
	for i := range l.Tokens {
		if l.Tokens[i].ID == id {
			found = &l.Tokens[i]
		}
	}
	if found == nil {
		return TokenInfo{}, ErrTokenNotFound
	}
	info := found.TokenInfo
	if err := t.store.Delete(ctx, found.Key); err != nil {
		return TokenInfo{}, fmt.Errorf("scim: revoke token: %w", err)
	}
	err = t.change(ctx, tenant, func(l *tokenList) error {
		out := l.Tokens[:0]
		for _, e := range l.Tokens {
			if e.ID != id {
				out = append(out, e)
			}
		}
		l.Tokens = out
		return nil
	})
	return info, err
}

// RevokeAll ends every token of tenant (the tenant was deleted).
func (t *Tokens) RevokeAll(ctx context.Context, tenant string) error {
	l, err := t.latest(ctx, tenant)
	if err != nil {
		return err
	}
	for _, e := range l.Tokens {
		if _, err := t.Revoke(ctx, tenant, e.ID); err != nil && !errors.Is(err, ErrTokenNotFound) {
			return err
		}
	}
	return nil
}

// Verify returns the description of a presented token, or
// ErrTokenNotFound. The caller compares its tenant with the request's.
func (t *Tokens) Verify(ctx context.Context, token string) (TokenInfo, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 200 {
		return TokenInfo{}, ErrTokenNotFound
	}
	for _, k := range t.keys {
		b, err := t.store.Get(ctx, t.recordKey(k, token))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return TokenInfo{}, fmt.Errorf("scim: read token: %w", err)
		}
		var info TokenInfo
		if err := json.Unmarshal(b, &info); err != nil || info.Tenant == "" {
			return TokenInfo{}, fmt.Errorf("scim: token record unreadable")
		}
		return info, nil
	}
	return TokenInfo{}, ErrTokenNotFound
}

// latest reads tenant's newest token list: from the head, walking forward
// past versions a writer created before it moved the head.
func (t *Tokens) latest(ctx context.Context, tenant string) (*tokenList, error) {
	var v int64
	b, err := t.store.Get(ctx, headKey(tenant))
	switch {
	case err == nil:
		v, _ = strconv.ParseInt(string(b), 10, 64)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("scim: read token list: %w", err)
	}
	l := &tokenList{}
	var doc []byte
	if v > 0 {
		if doc, err = t.store.Get(ctx, listKey(tenant, v)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("scim: read token list: %w", err)
		}
	}
	for {
		b, err := t.store.Get(ctx, listKey(tenant, v+1))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("scim: read token list: %w", err)
		}
		v, doc = v+1, b
	}
	if doc != nil {
		if err := json.Unmarshal(doc, l); err != nil {
			return nil, fmt.Errorf("scim: token list of %s unreadable: %w", tenant, err)
		}
	}
	l.Version = v
	return l, nil
}

// change applies m to the newest list and writes it as the next version,
// redoing it on a newer list when another writer took that version.
func (t *Tokens) change(ctx context.Context, tenant string, m func(*tokenList) error) error {
	for range 5 {
		l, err := t.latest(ctx, tenant)
		if err != nil {
			return err
		}
		if err := m(l); err != nil {
			return err
		}
		l.Version++
		b, _ := json.Marshal(l)
		err = t.store.Create(ctx, listKey(tenant, l.Version), b, tokenKeep)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("scim: write token list: %w", err)
		}
		// Both only help readers: the versions are the truth.
		_ = t.store.Put(ctx, headKey(tenant), []byte(strconv.FormatInt(l.Version, 10)), tokenKeep)
		if l.Version > 1 {
			_ = t.store.Touch(ctx, listKey(tenant, l.Version-1), tokenHistory)
		}
		return nil
	}
	return ErrTokenConflict
}
