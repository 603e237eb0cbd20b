package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/realmgate/realmgate/providers"
)

// jwksMinRefresh is the least time between two JWKS fetches of one key set.
// A token no cached key verifies makes the key set fetch the JWKS again only
// when the last fetch started at least this long ago; otherwise it fails at
// once. Anybody can send a token with an unknown kid (a back-channel logout
// token, a forged ID token at the callback), so without this bound each one
// would cost the OP a JWKS request (S63).
const jwksMinRefresh = time.Minute

// keySet is the OP's JWKS (RFC 7517) as a go-oidc KeySet. Like go-oidc's
// RemoteKeySet it caches the keys and fetches the set again when no cached
// key verifies a token (OpenID Connect Core 1.0 §10.1.1, key rotation);
// unlike it, at most once per jwksMinRefresh, with concurrent callers
// sharing one fetch. On top of that, a key is only tried for the algorithm
// its JWK names (S30), and only keys from jwks_uri are ever used: jku, x5u
// and jwk headers are ignored (S31).
type keySet struct {
	url     string
	client  *http.Client
	timeout time.Duration
	algs    []jose.SignatureAlgorithm
	now     func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	inflight  *jwksCall
	fetchedAt time.Time // when the last fetch started; zero before the first
	lastErr   error     // how the last finished fetch failed; nil if it did not
}

// errJWKSFresh means no cached key verifies the token and the JWKS was
// fetched less than jwksMinRefresh ago, so it is not fetched again.
var errJWKSFresh = errors.New("oidc: jwks fetched recently; not fetched again yet")

var _ gooidc.KeySet = (*keySet)(nil)

// jwksCall is one in-flight JWKS fetch shared by concurrent verifications.
type jwksCall struct {
	done chan struct{}
	keys []jose.JSONWebKey
	err  error
}

// probeKey carries a *verifyProbe through go-oidc's Verify, which flattens
// the key set's error into text: the probe keeps the typed error so an
// unreachable JWKS maps to providers.ErrUnavailable.
type probeKey struct{}

type verifyProbe struct {
	mu  sync.Mutex
	err error
}

func (p *verifyProbe) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *verifyProbe) get() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// newKeySet returns the key set of the JWKS at jwksURL; now is the clock
// that spaces its fetches.
func newKeySet(jwksURL string, client *http.Client, timeout time.Duration, algs []string, now func() time.Time) *keySet {
	ks := &keySet{url: jwksURL, client: client, timeout: timeout, now: now}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// VerifySignature implements gooidc.KeySet: it returns the payload of jwt if
// a key of the OP's JWKS verifies it.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := ks.parse(jwt)
	if err != nil {
		return nil, err
	}
	payload, err := ks.verify(ctx, jws)
	if fetchFailed(err) {
		if p, ok := ctx.Value(probeKey{}).(*verifyProbe); ok {
			p.set(err)
		}
	}
	return payload, err
}

// parse parses a compact JWS whose alg is on the key set's allow-list
// (S30) and that carries exactly one signature.
func (ks *keySet) parse(jwt string) (*jose.JSONWebSignature, error) {
	jws, err := jose.ParseSigned(jwt, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("oidc: malformed jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("oidc: jws must carry exactly one signature")
	}
	return jws, nil
}

// fetchFailed says err is verify's error for a JWKS it could not fetch or
// use (unreachable, or an answer that is not a JWKS).
func fetchFailed(err error) bool {
	return err != nil && (isUnavailable(err) || errors.Is(err, providers.ErrInvalidResponse))
}

// verify returns the payload of jws, parsed by parse, if a key of the OP's
// JWKS verifies it. When no cached key does, the JWKS is fetched again
// (key rotation) at most once per jwksMinRefresh; an error wrapping
// providers.ErrUnavailable means the JWKS could not be fetched.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	h := jws.Signatures[0].Header
	var payload []byte
	_, err := ks.verifyBy(ctx, h.KeyID, h.Algorithm, func(k *jose.JSONWebKey) bool {
		p, err := jws.Verify(k)
		payload = p
		return err == nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return payload, nil
}

// verifyBy tries the keys for kid and alg (tryKeys) with try, first the
// cached ones, then, when none verifies, the ones of a JWKS fetched again
// (key rotation) unless it was fetched less than jwksMinRefresh ago. It
// returns payload once a key verifies; an error wrapping
// providers.ErrUnavailable means the JWKS could not be fetched.
func (ks *keySet) verifyBy(ctx context.Context, kid, alg string, try func(*jose.JSONWebKey) bool, payload []byte) ([]byte, error) {
	ks.mu.Lock()
	cached := ks.keys
	ks.mu.Unlock()
	if tryKeys(cached, kid, alg, try) {
		return payload, nil
	}
	// No cached key verifies: fetch the set again (key rotation), unless it
	// was fetched less than jwksMinRefresh ago.
	keys, err := ks.refresh(ctx)
	if errors.Is(err, errJWKSFresh) {
		return nil, fmt.Errorf("oidc: no key of the jwks verifies the token (kid %q, alg %q): %w", kid, alg, err)
	}
	if err != nil {
		return nil, err
	}
	if tryKeys(keys, kid, alg, try) {
		return payload, nil
	}
	return nil, fmt.Errorf("oidc: no key of the jwks verifies the token (kid %q, alg %q)", kid, alg)
}

// tryKeys tries the keys matching kid (all keys when kid is empty) whose
// use is sig and whose alg, when stated, is the header's alg (S30).
func tryKeys(keys []jose.JSONWebKey, kid, alg string, try func(*jose.JSONWebKey) bool) bool {
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if try(k) {
			return true
		}
	}
	return false
}

// refresh fetches the JWKS; concurrent callers share one fetch, each waiting
// at most until its ctx ends. When the last fetch started less than
// jwksMinRefresh ago it fetches nothing and returns errJWKSFresh, or that
// fetch's error when it failed (the OP is still taken as unreachable). A
// failed fetch keeps the keys of the last good one.
func (ks *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	ks.mu.Lock()
	call := ks.inflight
	if call == nil {
		now := ks.now()
		// A clock stepped back (since < 0) does not block fetches.
		if since := now.Sub(ks.fetchedAt); !ks.fetchedAt.IsZero() && since >= 0 && since < jwksMinRefresh {
			err := ks.lastErr
			ks.mu.Unlock()
			if err == nil {
				err = errJWKSFresh
			}
			return nil, err
		}
		ks.fetchedAt = now
		call = &jwksCall{done: make(chan struct{})}
		ks.inflight = call
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.timeout)
		go func() {
			defer cancel()
			keys, err := ks.fetch(fctx)
			ks.mu.Lock()
			if err == nil {
				ks.keys = keys
			}
			ks.lastErr = err
			ks.inflight = nil
			ks.mu.Unlock()
			call.keys, call.err = keys, err
			close(call.done)
		}()
	}
	ks.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: oidc: fetching jwks: %w", providers.ErrUnavailable, ctx.Err())
	case <-call.done:
		return call.keys, call.err
	}
}

// fetch downloads and parses the JWKS, skipping keys it cannot use
// (RFC 7517 §5: unknown kty or unsupported parameters are ignored) and
// symmetric or private material.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: jwks request: %v", providers.ErrInvalidResponse, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: fetching jwks: %w", providers.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: reading jwks: %w", providers.ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: oidc: jwks http status %d", providers.ErrUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: oidc: jwks http status %d", providers.ErrInvalidResponse, resp.StatusCode)
	case len(body) > maxBody:
		return nil, fmt.Errorf("%w: oidc: jwks larger than %d bytes", providers.ErrInvalidResponse, maxBody)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: oidc: jwks is not json: %v", providers.ErrInvalidResponse, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(raw.Keys))
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r, &k); err != nil {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue // symmetric ("oct") or private keys are never used
		}
		keys = append(keys, k)
	}
	return keys, nil
}
