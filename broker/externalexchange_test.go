package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/users"
)

// upstreamOP is a minimal OpenID Provider on loopback: discovery and JWKS,
// and tokens signed with its key.
type upstreamOP struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newUpstreamOP(t *testing.T) *upstreamOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &upstreamOP{key: key}
	mux := http.NewServeMux()
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": op.srv.URL, "authorization_endpoint": op.srv.URL + "/authorize",
			"token_endpoint": op.srv.URL + "/token", "jwks_uri": op.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	return op
}

func (op *upstreamOP) connector(t *testing.T, id, clientID string) *oidc.Connector {
	t.Helper()
	c, err := oidc.New(oidc.Config{ID: id, Issuer: op.srv.URL, ClientID: clientID, ClientSecret: "s", HTTPClient: op.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// token signs claims (iss, iat, exp filled in when absent) with the OP's key.
func (op *upstreamOP) token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	for k, v := range map[string]any{"iss": op.srv.URL, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()} {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(op.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	typeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	typeJWT     = "urn:ietf:params:oauth:token-type:jwt"
	grantTE     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// externalEnv: acme's IdP is a real OIDC connector to acmeOP that opted in
// to token exchange (ID tokens for client rg-at-acme, access tokens for
// api://acme); globex's IdP is one to globexOP that did not.
func externalEnv(t *testing.T, opts ...envOpt) (*env, *upstreamOP, *upstreamOP) {
	acmeOP, globexOP := newUpstreamOP(t), newUpstreamOP(t)
	e := newEnv(t, append(opts, func(c *broker.Config) {
		for i, p := range c.IdPs {
			switch p.ID {
			case "acme-idp":
				c.IdPs[i].Connector = acmeOP.connector(t, p.ID, "rg-at-acme")
				c.IdPs[i].TokenExchange = &broker.ExternalExchange{Accept: []string{"id_token", "jwt"}, Audiences: []string{"api://acme"}}
			case "globex-idp":
				c.IdPs[i].Connector = globexOP.connector(t, p.ID, "rg-at-globex")
			}
		}
		c.Clients = append(c.Clients, broker.Client{ID: "globex-app", Secret: secretB, RedirectURIs: []string{appCB}, AllowedTenants: []string{"globex"}})
	})...)
	return e, acmeOP, globexOP
}

func (e *env) exchangeExternal(client, secret, tokenType, token string) tokenResp {
	e.t.Helper()
	return e.post("/token", url.Values{"grant_type": {grantTE}, "subject_token_type": {tokenType}, "subject_token": {token},
		"scope": {"openid email"}}, client, secret)
}

// hasEvent reports whether the audit stream holds an event with outcome,
// reason and tenant.
func hasEvent(t *testing.T, a *auditSink, outcome, reason, tenant string) bool {
	t.Helper()
	for _, ev := range a.events(t) {
		if str(ev, "outcome") == outcome && str(ev, "reason") == reason && str(ev, "tenant") == tenant {
			return true
		}
	}
	return false
}

func TestExternalExchange_IDTokenAndAccessToken(t *testing.T) {
	audit := &auditSink{}
	e, acmeOP, _ := externalEnv(t, withAuditSink(audit))
	for _, tc := range []struct {
		name, typ string
		aud       any
	}{
		{"id token", typeIDToken, "rg-at-acme"},
		{"jwt access token", typeJWT, "api://acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := acmeOP.token(t, jwt.MapClaims{"sub": "alice-sub", "aud": tc.aud, "email": "alice@acme.test", "email_verified": true})
			r := e.exchangeExternal("app-a", secretA, tc.typ, tok)
			if r.status != http.StatusOK || r.str("issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
				t.Fatalf("exchange = %d %v, want an access token", r.status, r.body)
			}
			_, at := claimsOf(t, r.str("access_token"))
			if at["tid"] != "acme" || at["idp"] != "acme-idp" || at["aud"] != "app-a" || at["iss"] != e.issuer {
				t.Errorf("access token = %v, want a realmgate token of acme for app-a", at)
			}
			// It is a realmgate token like any other: userinfo runs the
			// tenant's pipeline over the upstream identity.
			if status, ui := e.userinfo(r.str("access_token")); status != http.StatusOK || ui["email"] != "alice@acme.test" || ui["tid"] != "acme" {
				t.Errorf("userinfo = %d %v, want alice of acme", status, ui)
			}
			kind := map[string]string{typeIDToken: "id_token", typeJWT: "jwt"}[tc.typ]
			if !hasEvent(t, audit, "exchanged", "external "+kind, "acme") {
				t.Errorf("no audit event exchanged/external %s for acme in %v", kind, audit.events(t))
			}
		})
	}
}

func TestExternalExchange_Refused(t *testing.T) {
	audit := &auditSink{}
	e, acmeOP, globexOP := externalEnv(t, withAuditSink(audit))
	good := jwt.MapClaims{"sub": "alice-sub", "aud": "rg-at-acme", "email": "alice@acme.test"}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		mod(c)
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := &upstreamOP{srv: acmeOP.srv, key: other} // acme's issuer, another key
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": acmeOP.srv.URL, "sub": "alice-sub", "aud": "rg-at-acme",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, tc := range []struct {
		name, client, secret, typ, token, want string
	}{
		{"another tenant's IdP, not opted in", "app-a", secretA, typeIDToken,
			globexOP.token(t, jwt.MapClaims{"sub": "carol", "aud": "rg-at-globex"}), "invalid_grant"},
		{"unknown issuer", "app-a", secretA, typeIDToken,
			acmeOP.tokenAs(t, "https://evil.example", good), "invalid_grant"},
		{"signed by another key", "app-a", secretA, typeIDToken, forged.token(t, with(func(jwt.MapClaims) {})), "invalid_grant"},
		{"alg none", "app-a", secretA, typeIDToken, none, "invalid_grant"},
		{"expired", "app-a", secretA, typeIDToken, acmeOP.token(t, with(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-30*time.Minute).Unix()
		})), "invalid_grant"},
		{"not yet valid", "app-a", secretA, typeIDToken, acmeOP.token(t, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), "invalid_grant"},
		{"id token for another client", "app-a", secretA, typeIDToken, acmeOP.token(t, with(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), "invalid_grant"},
		{"access token for another api", "app-a", secretA, typeJWT, acmeOP.token(t, with(func(c jwt.MapClaims) { c["aud"] = "api://other" })), "invalid_grant"},
		{"client not allowed for the tenant", "globex-app", secretB, typeIDToken, acmeOP.token(t, with(func(jwt.MapClaims) {})), "invalid_grant"},
		{"public client", "pub", "", typeIDToken, acmeOP.token(t, with(func(jwt.MapClaims) {})), "invalid_client"},
		{"garbage", "app-a", secretA, typeIDToken, "not-a-jwt", "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"grant_type": {grantTE}, "subject_token_type": {tc.typ}, "subject_token": {tc.token}}
			var r tokenResp
			if tc.secret == "" {
				v.Set("client_id", tc.client)
				r = e.post("/token", v, "", "")
			} else {
				r = e.post("/token", v, tc.client, tc.secret)
			}
			if r.status == http.StatusOK || r.str("error") != tc.want {
				t.Errorf("exchange (%s) = %d %v, want %s", tc.name, r.status, r.body, tc.want)
			}
		})
	}
	if !hasEvent(t, audit, "refused", "external_exchange_no_idp", "") || !hasEvent(t, audit, "refused", "external_exchange_invalid_token", "acme") {
		t.Errorf("refusals not audited: %v", audit.events(t))
	}
}

// tokenAs signs claims as issuer iss with op's key.
func (op *upstreamOP) tokenAs(t *testing.T, iss string, claims jwt.MapClaims) string {
	c := jwt.MapClaims{"iss": iss}
	for k, v := range claims {
		c[k] = v
	}
	return op.token(t, c)
}

func TestExternalExchange_SuspendedUserRefused(t *testing.T) {
	e, acmeOP, _ := externalEnv(t)
	tok := acmeOP.token(t, jwt.MapClaims{"sub": "alice-sub", "aud": "rg-at-acme", "email": "alice@acme.test", "email_verified": true})
	if r := e.exchangeExternal("app-a", secretA, typeIDToken, tok); r.status != http.StatusOK {
		t.Fatalf("first exchange = %d %v", r.status, r.body)
	}
	dir := e.broker.Users()
	u, err := dir.UserByLink(t.Context(), "acme", "acme-idp", "alice-sub")
	if err != nil {
		t.Fatalf("UserByLink after the exchange = %v, want the JIT record", err)
	}
	if _, err := dir.SetStatus(t.Context(), "admin:ops", "acme", u.ID, users.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if r := e.exchangeExternal("app-a", secretA, typeIDToken, tok); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Errorf("exchange for a suspended user = %d %v, want invalid_grant", r.status, r.body)
	}
}
