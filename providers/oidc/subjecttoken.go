package oidc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/providers"
)

var _ providers.SubjectTokenVerifier = (*Connector)(nil)

// VerifySubjectToken validates a token the IdP issued, presented for token
// exchange (RFC 8693 §2.1): the same checks as the ID token at the callback
// (S30 alg allow-list, S32 size and shape, signature with the IdP's keys,
// iss, exp, nbf, iat) except the nonce, which belongs to a sign-in; aud is
// the connector's client id for an ID token, one of audiences for a JWT
// access token (one of accept). Multi-tenant issuers are not supported.
func (c *Connector) VerifySubjectToken(ctx context.Context, raw, kind string, accept []string) (providers.Identity, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: oidc: subject token: %s (idp %q)", providers.ErrInvalidResponse, fmt.Sprintf(format, args...), c.id)
	}
	if kind != providers.SubjectIDToken && kind != providers.SubjectJWT {
		return providers.Identity{}, invalid("unknown kind %q", clip(kind))
	}
	md, _, err := c.tokenHeader(ctx, raw, invalid) // logout.go
	if err != nil {
		return providers.Identity{}, err
	}
	// aud is checked below, for the kind; go-oidc checks the signature, iss,
	// exp and nbf.
	v := gooidc.NewVerifier(c.issuer, md.keys, &gooidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: md.algs, Now: c.now})
	vctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	probe := &verifyProbe{}
	tok, err := v.Verify(context.WithValue(vctx, probeKey{}, probe), raw)
	if err != nil {
		if perr := probe.get(); perr != nil && isUnavailable(perr) {
			return providers.Identity{}, fmt.Errorf("oidc: idp %q: verifying subject token: %w", c.id, perr)
		}
		if errors.Is(vctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: verifying subject token: %w", providers.ErrUnavailable, c.id, vctx.Err())
		}
		return providers.Identity{}, invalid("rejected: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil || claims == nil {
		return providers.Identity{}, invalid("claims are not a json object")
	}
	if iss, _ := claims["iss"].(string); iss != c.issuer {
		return providers.Identity{}, invalid("issuer mismatch")
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return providers.Identity{}, invalid("no sub")
	}
	if _, ok := claims["exp"].(float64); !ok { // go-oidc accepts a token without exp
		return providers.Identity{}, invalid("no exp")
	}
	iat, ok := claims["iat"].(float64)
	if !ok || math.IsNaN(iat) || iat <= 0 {
		return providers.Identity{}, invalid("no iat")
	}
	if time.Unix(int64(iat), 0).After(c.now().Add(iatSkew)) {
		return providers.Identity{}, invalid("iat in the future")
	}
	aud := audiences(claims["aud"])
	switch kind {
	case providers.SubjectIDToken:
		// OIDC Core §3.1.3.7 steps 3 to 5: issued to our registration.
		azp, hasAzp := claims["azp"].(string)
		if !slices.Contains(aud, c.clientID) || (len(aud) > 1 && !hasAzp) || (hasAzp && azp != c.clientID) {
			return providers.Identity{}, invalid("id token audience is not the client id")
		}
	case providers.SubjectJWT:
		if !slices.ContainsFunc(aud, func(a string) bool { return a != "" && slices.Contains(accept, a) }) {
			return providers.Identity{}, invalid("audience is not one the tenant accepts")
		}
	}
	id := identityFrom(claims)
	id.Issuer = c.issuer
	return id, nil
}
