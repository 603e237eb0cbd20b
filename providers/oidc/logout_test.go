package oidc

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

func logoutClaims(op *fakeOP) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": op.issuer, "aud": testClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "jti-1", "sub": "alice-sub", "sid": "up-sid-1",
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
}

func TestLogoutToken_S64_Verify(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	good := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", logoutClaims(op), map[string]any{"typ": "logout+jwt"})
	got, err := c.VerifyLogoutToken(context.Background(), good)
	if err != nil || got.Subject != "alice-sub" || got.SID != "up-sid-1" || got.JTI != "jti-1" || got.Expiry.IsZero() {
		t.Fatalf("VerifyLogoutToken(good) = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		mod  func(map[string]any)
		hdr  map[string]any
		key  any
	}{
		{"nonce present", func(m map[string]any) { m["nonce"] = "n" }, nil, nil},
		{"no event", func(m map[string]any) { m["events"] = map[string]any{} }, nil, nil},
		{"no sub nor sid", func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }, nil, nil},
		{"no jti", func(m map[string]any) { delete(m, "jti") }, nil, nil},
		{"no iat", func(m map[string]any) { delete(m, "iat") }, nil, nil},
		{"wrong audience", func(m map[string]any) { m["aud"] = "someone-else" }, nil, nil},
		{"wrong issuer", func(m map[string]any) { m["iss"] = "https://evil.example" }, nil, nil},
		{"expired", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, nil, nil},
		{"id token typ", nil, map[string]any{"typ": "at+jwt"}, nil},
		{"alg none", nil, nil, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := logoutClaims(op)
			if tc.mod != nil {
				tc.mod(claims)
			}
			var tok string
			if tc.key == "none" {
				tok = sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims, nil)
			} else {
				tok = sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims, tc.hdr)
			}
			_, err := c.VerifyLogoutToken(context.Background(), tok)
			wantErr(t, tc.name, err, providers.ErrInvalidResponse, "")
		})
	}
}
