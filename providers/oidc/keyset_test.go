package oidc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

// testClock is a connector clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (k *testClock) now() time.Time { k.mu.Lock(); defer k.mu.Unlock(); return time.Now().Add(k.off) }

func (k *testClock) advance(d time.Duration) { k.mu.Lock(); k.off += d; k.mu.Unlock() }

// withClock makes c read time from a test clock; it must be called before
// c's first discovery.
func withClock(c *Connector) *testClock {
	k := &testClock{}
	c.now = k.now
	return k
}

// unknownKidLogoutToken is a well-formed logout token of op signed by a key
// the OP never published, under kid.
func unknownKidLogoutToken(t *testing.T, op *fakeOP, kid string) string {
	t.Helper()
	return sign(t, jwt.SigningMethodRS256, attackerKey, kid, logoutClaims(op), map[string]any{"typ": "logout+jwt"})
}

// TestLogoutToken_S63_UnknownKidFetchesJWKSOnce: anonymous logout tokens
// with kids the OP never published (what anybody can post to
// /backchannel/<idp>) make at most one JWKS fetch per jwksMinRefresh, one
// after another or all at once; after the interval, one more.
func TestLogoutToken_S63_UnknownKidFetchesJWKSOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{{"sequential", false}, {"concurrent", true}} {
		t.Run(tc.name, func(t *testing.T) {
			op := newOP(t)
			c := op.connector(t)
			clock := withClock(c)
			const posts = 60
			errs := make([]error, posts)
			var wg sync.WaitGroup
			for i := range posts {
				tok := unknownKidLogoutToken(t, op, fmt.Sprintf("kid-%d", i))
				verify := func() { _, errs[i] = c.VerifyLogoutToken(context.Background(), tok) }
				if tc.concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); verify() }()
				} else {
					verify()
				}
			}
			wg.Wait()
			for i, err := range errs {
				wantErr(t, fmt.Sprintf("logout token %d with an unknown kid", i), err, providers.ErrInvalidResponse, "")
			}
			if n := op.jwksHits.Load(); n != 1 {
				t.Fatalf("jwks fetched %d times for %d logout tokens with unknown kids, want 1", n, posts)
			}

			// A minute later an unknown kid may mean a rotation: one fetch.
			clock.advance(jwksMinRefresh)
			for i := range 5 {
				_, err := c.VerifyLogoutToken(context.Background(), unknownKidLogoutToken(t, op, fmt.Sprintf("later-%d", i)))
				wantErr(t, "unknown kid after the interval", err, providers.ErrInvalidResponse, "")
			}
			if n := op.jwksHits.Load(); n != 2 {
				t.Errorf("jwks fetched %d times after the interval passed, want 2", n)
			}
			// The OP's own key still verifies, from the cache.
			good := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", logoutClaims(op), map[string]any{"typ": "logout+jwt"})
			if _, err := c.VerifyLogoutToken(context.Background(), good); err != nil {
				t.Errorf("VerifyLogoutToken(good) = %v, want success", err)
			}
		})
	}
}

// TestLogoutToken_S63_FailedJWKSFetchNotRepeated: when the JWKS fetch
// fails, tokens within jwksMinRefresh fail as unavailable without another
// fetch; the next fetch, after the interval, recovers.
func TestLogoutToken_S63_FailedJWKSFetchNotRepeated(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	clock := withClock(c)
	op.set(func(op *fakeOP) { op.jwksStatus = 503 })
	good := func() string {
		return sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", logoutClaims(op), map[string]any{"typ": "logout+jwt"})
	}
	for i := range 30 {
		_, err := c.VerifyLogoutToken(context.Background(), good())
		wantErr(t, fmt.Sprintf("token %d with the jwks down", i), err, providers.ErrUnavailable, "")
	}
	if n := op.jwksHits.Load(); n != 1 {
		t.Fatalf("jwks fetched %d times while down, want 1", n)
	}
	op.set(func(op *fakeOP) { op.jwksStatus = 0 })
	clock.advance(jwksMinRefresh)
	if _, err := c.VerifyLogoutToken(context.Background(), good()); err != nil {
		t.Fatalf("VerifyLogoutToken after the jwks came back = %v, want success", err)
	}
	if n := op.jwksHits.Load(); n != 2 {
		t.Errorf("jwks fetched %d times, want 2", n)
	}
}
