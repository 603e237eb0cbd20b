package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/providers"
)

// backchannelEvent is the event a logout token must carry (OIDC Back-Channel
// Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// VerifyLogoutToken validates a logout token the OP sent to the broker's
// back-channel endpoint (OIDC Back-Channel Logout 1.0 §2.6): signature with
// the OP's keys and an allowed alg, iss, aud, iat, exp, the back-channel
// event, sub and/or sid, a jti, no nonce, and typ logout+jwt when typed. The
// caller refuses a reused jti (S64).
func (c *Connector) VerifyLogoutToken(ctx context.Context, raw string) (providers.LogoutClaims, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: oidc: logout token: %s (idp %q)", providers.ErrInvalidResponse, fmt.Sprintf(format, args...), c.id)
	}
	md, header, err := c.tokenHeader(ctx, raw, invalid)
	if err != nil {
		return providers.LogoutClaims{}, err
	}
	if header.Typ != "" && !strings.EqualFold(header.Typ, "logout+jwt") && !strings.EqualFold(header.Typ, "JWT") {
		return providers.LogoutClaims{}, invalid("typ %q", clip(header.Typ))
	}
	v := gooidc.NewVerifier(c.issuer, md.keys, &gooidc.Config{ClientID: c.clientID, SupportedSigningAlgs: md.algs, Now: c.now})
	vctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	probe := &verifyProbe{}
	tok, err := v.Verify(context.WithValue(vctx, probeKey{}, probe), raw)
	if err != nil {
		if perr := probe.get(); perr != nil && isUnavailable(perr) {
			return providers.LogoutClaims{}, fmt.Errorf("oidc: idp %q: verifying logout token: %w", c.id, perr)
		}
		if errors.Is(vctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return providers.LogoutClaims{}, fmt.Errorf("%w: oidc: idp %q: verifying logout token: %w", providers.ErrUnavailable, c.id, vctx.Err())
		}
		return providers.LogoutClaims{}, invalid("rejected: %v", err)
	}
	var claims struct {
		Sub    string                     `json:"sub"`
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		Iat    *float64                   `json:"iat"`
		Nonce  *json.RawMessage           `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := tok.Claims(&claims); err != nil {
		return providers.LogoutClaims{}, invalid("claims are not a json object")
	}
	switch {
	case claims.Iat == nil:
		return providers.LogoutClaims{}, invalid("iat missing")
	case claims.JTI == "":
		return providers.LogoutClaims{}, invalid("jti missing")
	case claims.Nonce != nil:
		return providers.LogoutClaims{}, invalid("carries a nonce") // §2.4: it MUST NOT
	case claims.Sub == "" && claims.SID == "":
		return providers.LogoutClaims{}, invalid("neither sub nor sid")
	}
	if _, ok := claims.Events[backchannelEvent]; !ok {
		return providers.LogoutClaims{}, invalid("events lacks the back-channel logout event")
	}
	if time.Unix(int64(*claims.Iat), 0).After(c.now().Add(iatSkew)) {
		return providers.LogoutClaims{}, invalid("iat in the future")
	}
	return providers.LogoutClaims{Subject: claims.Sub, SID: claims.SID, JTI: claims.JTI, Expiry: tok.Expiry}, nil
}

// jwtHeader is what the checks before verification read of a JWT's header.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

// tokenHeader runs the checks a token posted to realmgate (a logout
// token, a subject token) passes before its signature is verified: size
// and shape (S32), a single-tenant issuer, the IdP's metadata, and an alg
// of the allow-list (S30: never none, never HS*). invalid makes the
// caller's error for a refused token; an unreachable IdP's error is
// returned as it is.
func (c *Connector) tokenHeader(ctx context.Context, raw string, invalid func(format string, args ...any) error) (*metadata, jwtHeader, error) {
	var header jwtHeader
	if err := checkCompact(raw); err != nil {
		return nil, header, invalid("%v", err)
	}
	if c.multiTenant {
		return nil, header, invalid("not supported for multi-tenant issuers")
	}
	md, err := c.discover(ctx)
	if err != nil {
		return nil, header, err
	}
	hb, err := b64(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		return nil, header, invalid("header is not base64url")
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, header, invalid("header is not json")
	}
	if !slices.Contains(md.algs, header.Alg) {
		return nil, header, invalid("alg %q not allowed", clip(header.Alg))
	}
	return md, header, nil
}
