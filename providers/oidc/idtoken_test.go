package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

// The ID token is parsed and its claims decoded once (idtoken.go); these
// are the checks go-oidc made before and the connector now makes itself.

func TestCallback_S20_Expiry(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	now := time.Now()
	tests := []struct {
		name   string
		exp    any // nil: no exp claim
		wantOK bool
	}{
		{"absent", nil, false},
		{"passed", now.Add(-time.Minute).Unix(), false},
		{"long passed", 1, false},
		{"not a number", "2099-01-01", false},
		{"negative", -5, false},
		{"null", jsonNull{}, false},
		{"in the future", now.Add(time.Minute).Unix(), true},
		{"fraction", float64(now.Add(time.Minute).Unix()) + 0.5, true},
		{"far future", 1e300, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			switch tt.exp.(type) {
			case nil:
				delete(cl, "exp")
			case jsonNull:
				cl["exp"] = nil
			default:
				cl["exp"] = tt.exp
			}
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("exp %v: HandleCallback = %v, want success", tt.exp, err)
				}
				return
			}
			wantErr(t, "exp "+tt.name, err, providers.ErrInvalidResponse, "exp")
		})
	}
}

// jsonNull marks a claim set to JSON null.
type jsonNull struct{}

func TestCallback_S20_NotBefore(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	now := time.Now()
	tests := []struct {
		name   string
		nbf    any
		wantOK bool
	}{
		{"past", now.Add(-time.Minute).Unix(), true},
		{"within the skew", now.Add(2 * time.Minute).Unix(), true},
		{"null", jsonNull{}, true},
		{"beyond the skew", now.Add(10 * time.Minute).Unix(), false},
		{"far future", 1e300, false},
		{"not a number", "soon", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["nbf"] = tt.nbf
			if _, isNull := tt.nbf.(jsonNull); isNull {
				cl["nbf"] = nil
			}
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("nbf %v: HandleCallback = %v, want success", tt.nbf, err)
				}
				return
			}
			wantErr(t, "nbf "+tt.name, err, providers.ErrInvalidResponse, "")
		})
	}
}

func TestCallback_S20_AudienceShape(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		name   string
		aud    any
		wantOK bool
	}{
		{"array with a number", []any{testClientID, 7}, false},
		{"object", map[string]any{"aud": testClientID}, false},
		{"number", 7, false},
		{"array of one", []any{testClientID}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["aud"] = tt.aud
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("aud %v: HandleCallback = %v, want success", tt.aud, err)
				}
				return
			}
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "aud")
		})
	}
}

func TestCallback_AtHash(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	half := func(v string) string {
		s := sha256.Sum256([]byte(v))
		return base64.RawURLEncoding.EncodeToString(s[:16])
	}
	tests := []struct {
		name   string
		atHash any
		wantOK bool
	}{
		{"of the access token", half(testAccessToken), true},
		{"empty", "", true},
		{"of another token", half("other"), false},
		{"full hash", base64.RawURLEncoding.EncodeToString(func() []byte { s := sha256.Sum256([]byte(testAccessToken)); return s[:] }()), false},
		{"not a string", 42, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["at_hash"] = tt.atHash
			_, err := op.callback(t, c, req, sign(t, jwt.SigningMethodES256, ecKey, "ec-1", cl, nil), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("at_hash %v: HandleCallback = %v, want success", tt.atHash, err)
				}
				return
			}
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "at_hash")
		})
	}
}

func TestCallback_ClaimSources(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	src := map[string]any{"src1": map[string]any{"endpoint": "https://claims.example/x", "access_token": "t"}}
	tests := []struct {
		name    string
		names   any
		sources any
		wantOK  bool
	}{
		{"consistent", map[string]any{"groups": "src1"}, src, true},
		{"unknown source", map[string]any{"groups": "src2"}, src, false},
		{"empty source", map[string]any{"groups": ""}, src, false},
		{"no sources", map[string]any{"groups": "src1"}, nil, false},
		{"names not an object", "groups", src, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["_claim_names"] = tt.names
			if tt.sources != nil {
				cl["_claim_sources"] = tt.sources
			}
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("HandleCallback = %v, want success", err)
				}
				return
			}
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "claim")
		})
	}
}
