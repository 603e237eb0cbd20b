package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/providers"
)

// MaxTokenSize is the largest ID token the connector parses (S32).
const MaxTokenSize = 16 << 10

// Google may put its issuer without the scheme in ID tokens; go-oidc accepts
// that for Google only, and so does the connector (the identity then carries
// the canonical issuer).
const (
	googleIssuer         = "https://accounts.google.com"
	googleIssuerNoScheme = "accounts.google.com"
)

// iatSkew is how far in the future an iat may be (clock skew).
const iatSkew = 5 * time.Minute

// checkCompact refuses, before any parsing work, a token larger than
// MaxTokenSize or that is not three non-empty base64url segments
// (RFC 7515 §7.1 compact serialization; S32).
func checkCompact(raw string) error {
	if len(raw) > MaxTokenSize {
		return fmt.Errorf("token of %d bytes exceeds %d", len(raw), MaxTokenSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("token is not a compact jws of three parts")
	}
	for _, p := range parts {
		if p == "" {
			return errors.New("token has an empty part")
		}
		for i := 0; i < len(p); i++ {
			b := p[i]
			if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return errors.New("token part is not base64url")
			}
		}
	}
	return nil
}

// verifyIDToken validates the ID token from the token endpoint (OpenID
// Connect Core 1.0 §3.1.3.7) and returns its claims.
func (c *Connector) verifyIDToken(ctx context.Context, md *metadata, raw, nonce, accessToken string) (map[string]any, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: oidc: %s (idp %q)", providers.ErrInvalidResponse, fmt.Sprintf(format, args...), c.id)
	}
	// S32: size and shape before parsing.
	if err := checkCompact(raw); err != nil {
		return nil, invalid("id token malformed: %v", err)
	}
	parts := strings.Split(raw, ".")
	hb, err := b64(parts[0])
	if err != nil {
		return nil, invalid("id token malformed: header is not base64url")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, invalid("id token malformed: header is not json")
	}
	// S30: alg on the allow-list (discovery minus none/HS*), never none.
	if !slices.Contains(md.algs, header.Alg) {
		return nil, invalid("id token alg %q not allowed", clip(header.Alg))
	}

	wantIssuer := c.issuer
	tid := ""
	if c.multiTenant {
		// S23: the issuer of a multi-tenant token is the template with the
		// token's tid; the (still unverified) payload only selects which
		// issuer go-oidc must then find in the verified token.
		pb, err := b64(parts[1])
		if err != nil {
			return nil, invalid("id token malformed: payload is not base64url")
		}
		var pre struct {
			Tid string `json:"tid"`
			Iss string `json:"iss"`
		}
		if err := json.Unmarshal(pb, &pre); err != nil {
			return nil, invalid("id token malformed: payload is not json")
		}
		if !guidRE.MatchString(pre.Tid) {
			return nil, invalid("id token tid %q is not a tenant id", clip(pre.Tid))
		}
		if !c.tenantAllowed(pre.Tid) {
			return nil, invalid("id token tenant %q is not allowed", pre.Tid)
		}
		tid = pre.Tid
		wantIssuer = c.tenantIssuer(tid)
		if pre.Iss != wantIssuer {
			return nil, invalid("id token issuer %q is not the issuer of its tenant %q", clip(pre.Iss), tid)
		}
	}

	probe := &verifyProbe{}
	v := gooidc.NewVerifier(wantIssuer, md.keys, &gooidc.Config{
		ClientID:             c.clientID,
		SupportedSigningAlgs: md.algs,
		Now:                  c.now,
	})
	vctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	idt, err := v.Verify(context.WithValue(vctx, probeKey{}, probe), raw)
	if err != nil {
		if perr := probe.get(); perr != nil && isUnavailable(perr) {
			return nil, fmt.Errorf("oidc: idp %q: verifying id token: %w", c.id, perr)
		}
		if errors.Is(vctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: oidc: idp %q: verifying id token: %w", providers.ErrUnavailable, c.id, vctx.Err())
		}
		return nil, invalid("id token rejected: %v", err)
	}

	var claims map[string]any
	if err := idt.Claims(&claims); err != nil || claims == nil {
		return nil, invalid("id token claims are not a json object")
	}
	// Our own checks, on the verified claims.
	if iss, _ := claims["iss"].(string); iss != wantIssuer && !(wantIssuer == googleIssuer && iss == googleIssuerNoScheme) {
		return nil, invalid("id token issuer mismatch")
	}
	if c.multiTenant {
		if got, _ := claims["tid"].(string); got != tid {
			return nil, invalid("id token tid mismatch")
		}
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, invalid("id token without sub")
	}
	iat, ok := claims["iat"].(float64)
	if !ok || math.IsNaN(iat) || iat <= 0 {
		return nil, invalid("id token without iat")
	}
	if time.Unix(int64(iat), 0).After(c.now().Add(iatSkew)) {
		return nil, invalid("id token iat in the future")
	}
	// S20: go-oidc does not check the nonce (OpenID Connect Core 1.0 §3.1.3.7 step 11).
	got, _ := claims["nonce"].(string)
	if nonce == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, invalid("id token nonce mismatch")
	}
	// Steps 3 to 5: aud contains our client_id; azp is ours when present and
	// required when there are several audiences.
	aud := audiences(claims["aud"])
	if !slices.Contains(aud, c.clientID) {
		return nil, invalid("id token audience does not contain the client id")
	}
	azp, hasAzp := claims["azp"].(string)
	if (len(aud) > 1 && !hasAzp) || (hasAzp && azp != c.clientID) || (!hasAzp && claims["azp"] != nil) {
		return nil, invalid("id token azp is not the client id")
	}
	// §3.1.3.8: at_hash, when present, binds the access token.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, invalid("id token at_hash mismatch")
		}
	}
	return claims, nil
}

// audiences returns the aud claim as a list (a string or an array of strings).
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// identityFrom maps merged claims to a providers.Identity.
func identityFrom(claims map[string]any) providers.Identity {
	id := providers.Identity{
		Issuer:     str(claims, "iss"),
		Subject:    str(claims, "sub"),
		Email:      str(claims, "email"),
		Name:       str(claims, "name"),
		GivenName:  str(claims, "given_name"),
		FamilyName: str(claims, "family_name"),
		ACR:        str(claims, "acr"),
		Claims:     claims,
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string:
		id.EmailVerified = strings.EqualFold(v, "true")
	}
	for _, k := range []string{"preferred_username", "upn", "unique_name"} {
		if s := str(claims, k); s != "" {
			id.PreferredUsername = s
			break
		}
	}
	switch v := claims["amr"].(type) {
	case string:
		id.AMR = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				id.AMR = append(id.AMR, s)
			}
		}
	}
	if id.Issuer == googleIssuerNoScheme {
		id.Issuer = googleIssuer
	}
	if at, ok := claims["auth_time"].(float64); ok && at > 0 && at < 1e12 {
		id.AuthTime = time.Unix(int64(at), 0).UTC()
	}
	return id
}

func str(claims map[string]any, k string) string {
	s, _ := claims[k].(string)
	return s
}
