package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

func subjectClaims(op *fakeOP, aud any) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": op.issuer, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"sub": "alice-sub", "email": "alice@acme.test", "email_verified": true,
	}
}

func TestSubjectToken_Verify(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	ctx := context.Background()
	apis := []string{"api://acme-api"}
	for _, tc := range []struct {
		name, kind string
		aud        any
	}{
		{"id token", providers.SubjectIDToken, testClientID},
		{"access token", providers.SubjectJWT, "api://acme-api"},
		{"access token among audiences", providers.SubjectJWT, []any{"other", "api://acme-api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", subjectClaims(op, tc.aud), nil)
			id, err := c.VerifySubjectToken(ctx, tok, tc.kind, apis)
			if err != nil || id.Subject != "alice-sub" || id.Email != "alice@acme.test" || id.Issuer != op.issuer {
				t.Fatalf("VerifySubjectToken(%s) = %+v, %v; want alice", tc.name, id, err)
			}
		})
	}
	for _, tc := range []struct {
		name, kind string
		mod        func(map[string]any)
		none       bool
	}{
		{"id token for another client", providers.SubjectIDToken, func(m map[string]any) { m["aud"] = "someone-else" }, false},
		{"access token for another api", providers.SubjectJWT, func(m map[string]any) { m["aud"] = "api://other" }, false},
		{"access token passed as id token", providers.SubjectIDToken, func(m map[string]any) { m["aud"] = "api://acme-api" }, false},
		{"other issuer", providers.SubjectIDToken, func(m map[string]any) { m["iss"] = "https://evil.example" }, false},
		{"expired", providers.SubjectIDToken, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, false},
		{"no exp", providers.SubjectIDToken, func(m map[string]any) { delete(m, "exp") }, false},
		{"not yet valid", providers.SubjectIDToken, func(m map[string]any) { m["nbf"] = time.Now().Add(time.Hour).Unix() }, false},
		{"iat in the future", providers.SubjectIDToken, func(m map[string]any) { m["iat"] = time.Now().Add(time.Hour).Unix() }, false},
		{"no sub", providers.SubjectIDToken, func(m map[string]any) { delete(m, "sub") }, false},
		{"alg none", providers.SubjectIDToken, nil, true},
		{"unknown kind", "saml", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aud := any(testClientID)
			if tc.kind == providers.SubjectJWT {
				aud = "api://acme-api"
			}
			claims := subjectClaims(op, aud)
			if tc.mod != nil {
				tc.mod(claims)
			}
			var tok string
			if tc.none {
				tok = sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims, nil)
			} else {
				tok = sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims, nil)
			}
			_, err := c.VerifySubjectToken(ctx, tok, tc.kind, apis)
			wantErr(t, tc.name, err, providers.ErrInvalidResponse, "")
		})
	}
	t.Run("signed by another key", func(t *testing.T) {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tok := sign(t, jwt.SigningMethodES256, other, "ec-1", subjectClaims(op, testClientID), nil)
		_, err = c.VerifySubjectToken(ctx, tok, providers.SubjectIDToken, apis)
		wantErr(t, "signed by another key", err, providers.ErrInvalidResponse, "")
	})
}
