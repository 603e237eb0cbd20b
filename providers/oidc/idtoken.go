package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

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
	if strings.Count(raw, ".") != 2 {
		return errors.New("token is not a compact jws of three parts")
	}
	partLen := 0
	for i := 0; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '.' {
			if partLen == 0 {
				return errors.New("token has an empty part")
			}
			partLen = 0
			continue
		}
		b := raw[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return errors.New("token part is not base64url")
		}
		partLen++
	}
	return nil
}

// nbfSkew is how far in the future an nbf may be (clock skew; the leeway
// go-oidc allowed, as other OpenID Connect libraries do).
const nbfSkew = 5 * time.Minute

// verifyIDToken validates the ID token from the token endpoint (OpenID
// Connect Core 1.0 §3.1.3.7) and returns its claims. The token is parsed
// once (parseCompact: header, payload, signature), its signature verified once with the
// OP's key set, and its payload decoded once; every check of the section
// runs on that one decoding.
func (c *Connector) verifyIDToken(ctx context.Context, md *metadata, raw, nonce, accessToken string) (map[string]any, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: oidc: %s (idp %q)", providers.ErrInvalidResponse, fmt.Sprintf(format, args...), c.id)
	}
	// S32: size and shape before parsing.
	if err := checkCompact(raw); err != nil {
		return nil, invalid("id token malformed: %v", err)
	}
	// S30: alg on the allow-list (discovery minus none/HS*), never none;
	// step 6: one parse of the JWS (jku, x5u and jwk headers are never
	// used: S31; crit and b64 are refused).
	jws, err := parseCompact(raw, md.algs)
	var algErr algError
	switch {
	case errors.Is(err, errJWSHeader):
		return nil, invalid("id token malformed: header is not json")
	case errors.As(err, &algErr):
		return nil, invalid("id token alg %q not allowed", clip(algErr.alg))
	}
	if err != nil {
		return nil, invalid("id token rejected: %v", err)
	}

	wantIssuer := c.issuer
	tid := ""
	if c.multiTenant {
		// S23: the issuer of a multi-tenant token is the template with the
		// token's tid; the (still unverified) payload only selects which
		// issuer the verified token must then name.
		var pre struct {
			Tid string `json:"tid"`
			Iss string `json:"iss"`
		}
		if err := json.Unmarshal(jws.payload, &pre); err != nil {
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

	// S20: the signature, by a key of the OP's JWKS (fetched again once
	// for an unknown kid, key rotation; S63 bounds how often).
	vctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	payload, err := md.keys.verifyCompact(vctx, jws)
	if err != nil {
		if isUnavailable(err) {
			return nil, fmt.Errorf("oidc: idp %q: verifying id token: %w", c.id, err)
		}
		if errors.Is(vctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: oidc: idp %q: verifying id token: %w", providers.ErrUnavailable, c.id, vctx.Err())
		}
		return nil, invalid("id token rejected: failed to verify signature: %v", err)
	}

	claims, err := decodeClaims(payload) // claimsjson.go: json.Unmarshal's result in one pass
	if err != nil {
		return nil, invalid("id token claims are not a json object")
	}
	now := c.now()
	// Step 2: the issuer. Google may leave out the scheme.
	if iss, _ := claims["iss"].(string); iss != wantIssuer && !(wantIssuer == googleIssuer && iss == googleIssuerNoScheme) {
		return nil, invalid("id token issued by a different provider (iss %q)", clip(fmt.Sprint(claims["iss"])))
	}
	if c.multiTenant {
		if got, _ := claims["tid"].(string); got != tid {
			return nil, invalid("id token tid mismatch")
		}
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, invalid("id token without sub")
	}
	// Step 9: exp is required and not passed.
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return nil, invalid("id token without exp")
	}
	if exp.Before(now) {
		return nil, invalid("id token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	// nbf (RFC 7519 §4.1.5), when present, is not more than nbfSkew ahead.
	if v, present := claims["nbf"]; present && v != nil {
		nbf, ok := numericDate(v)
		if !ok {
			return nil, invalid("id token nbf is not a time")
		}
		if now.Add(nbfSkew).Before(nbf) {
			return nil, invalid("id token not valid before %s", nbf.UTC().Format(time.RFC3339))
		}
	}
	// Step 10: iat is required and not in the future (beyond clock skew).
	iat, ok := claims["iat"].(float64)
	if !ok || math.IsNaN(iat) || iat <= 0 {
		return nil, invalid("id token without iat")
	}
	if time.Unix(int64(min(iat, maxNumericDate)), 0).After(now.Add(iatSkew)) {
		return nil, invalid("id token iat in the future")
	}
	// Step 11 / S20: the nonce is the one sent with this login.
	got, _ := claims["nonce"].(string)
	if nonce == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, invalid("id token nonce mismatch")
	}
	// Steps 3 to 5: aud (a string or an array of strings) contains our
	// client_id; azp is ours when present and required when there are
	// several audiences.
	aud, ok := strictAudiences(claims["aud"])
	if !ok {
		return nil, invalid("id token aud is not a string or an array of strings")
	}
	if !slices.Contains(aud, c.clientID) {
		return nil, invalid("id token audience does not contain the client id")
	}
	azp, hasAzp := claims["azp"].(string)
	if (len(aud) > 1 && !hasAzp) || (hasAzp && azp != c.clientID) || (!hasAzp && claims["azp"] != nil) {
		return nil, invalid("id token azp is not the client id")
	}
	// OpenID Connect Core 1.0 §5.6.2: distributed and aggregated claims'
	// names must each refer to one of the token's claim sources.
	if err := checkClaimSources(claims); err != nil {
		return nil, invalid("id token %v", err)
	}
	// §3.1.3.8: at_hash, when present, binds the access token.
	if v, present := claims["at_hash"]; present {
		atHash, isString := v.(string)
		if !isString {
			return nil, invalid("id token at_hash is not a string")
		}
		if atHash != "" && !validHalfHash(jws.alg, accessToken, atHash) {
			return nil, invalid("id token at_hash mismatch")
		}
	}
	return claims, nil
}

// maxNumericDate bounds a NumericDate before its conversion to int64 (far
// beyond any real time, and far from int64 overflow).
const maxNumericDate = 1 << 52

// numericDate reads a NumericDate claim (RFC 7519 §2: seconds since the
// epoch, possibly with a fraction, truncated as go-oidc did).
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) {
		return time.Time{}, false
	}
	return time.Unix(int64(max(min(f, maxNumericDate), -maxNumericDate)), 0), true
}

// strictAudiences returns the aud claim, which must be a string or an
// array of strings (RFC 7519 §4.1.3); a missing aud is an empty list.
func strictAudiences(v any) ([]string, bool) {
	switch a := v.(type) {
	case nil:
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// checkClaimSources checks _claim_names against _claim_sources (OpenID
// Connect Core 1.0 §5.6.2): every name maps to a non-empty source name
// that _claim_sources holds as an object.
func checkClaimSources(claims map[string]any) error {
	rawNames, present := claims["_claim_names"]
	if !present || rawNames == nil {
		if s, ok := claims["_claim_sources"]; ok && s != nil {
			if _, isObject := s.(map[string]any); !isObject {
				return errors.New("_claim_sources is not an object")
			}
		}
		return nil
	}
	names, ok := rawNames.(map[string]any)
	if !ok {
		return errors.New("_claim_names is not an object")
	}
	sources, _ := claims["_claim_sources"].(map[string]any)
	for _, v := range names {
		src, ok := v.(string)
		if !ok || src == "" {
			return errors.New("_claim_names has an empty source")
		}
		if _, ok := sources[src].(map[string]any); !ok {
			return fmt.Errorf("claim source %q does not exist", clip(src))
		}
	}
	return nil
}

// validHalfHash checks an at_hash (OpenID Connect Core 1.0 §3.1.3.8,
// §3.3.2.11 for c_hash): the base64url left half of the hash of value with
// the hash function of the JWS alg. An alg without a known hash fails.
func validHalfHash(alg, value, want string) bool {
	var sum []byte
	switch alg {
	case "RS256", "ES256", "PS256":
		s := sha256.Sum256([]byte(value))
		sum = s[:16]
	case "RS384", "ES384", "PS384":
		s := sha512.Sum384([]byte(value))
		sum = s[:24]
	case "RS512", "ES512", "PS512", "EdDSA":
		s := sha512.Sum512([]byte(value))
		sum = s[:32]
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum)), []byte(want)) == 1
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
