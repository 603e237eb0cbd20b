package broker_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/realmgate/realmgate/broker"
)

func allowExchange(client string, audiences ...string) envOpt {
	return func(c *broker.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == client {
				c.Clients[i].ExchangeAudiences = audiences
			}
		}
	}
}

func exchangeParams(subject string) url.Values {
	return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience": {"app-b"}}
}

func TestExchange_RFC8693(t *testing.T) {
	e := newEnv(t, allowExchange("app-a", "app-b"))
	tr, _ := e.signIn()
	at := tr.str("access_token")
	r := e.post("/token", exchangeParams(at), "app-a", secretA)
	if r.status != http.StatusOK || r.str("issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("exchange = %d %v", r.status, r.body)
	}
	h, c := claimsOf(t, r.str("access_token"))
	_, orig := claimsOf(t, at)
	act, _ := c["act"].(map[string]any)
	if h["typ"] != "at+jwt" || c["aud"] != "app-b" || c["sub"] != orig["sub"] || c["tid"] != "acme" || act["sub"] != "app-a" {
		t.Fatalf("exchanged token header %v claims %v, want aud app-b, same sub and tid, act naming app-a", h, c)
	}
	if c["exp"].(float64) > orig["exp"].(float64) {
		t.Errorf("exchanged token outlives its subject token")
	}
	// The target audience can introspect it; the requester cannot see it as its own.
	if in := e.post("/introspect", url.Values{"token": {r.str("access_token")}}, "app-b", secretB); in.body["active"] != true {
		t.Errorf("introspection by the audience = %v, want active", in.body)
	}
	t.Run("widened audience refused", func(t *testing.T) {
		v := exchangeParams(at)
		v.Set("audience", "pub")
		if r := e.post("/token", v, "app-a", secretA); r.str("error") != "invalid_target" {
			t.Fatalf("exchange to a non-allowed audience = %v, want invalid_target", r.body)
		}
	})
	t.Run("widened scope refused", func(t *testing.T) {
		v := exchangeParams(at)
		v.Set("scope", "openid admin")
		if r := e.post("/token", v, "app-a", secretA); r.str("error") != "invalid_scope" {
			t.Fatalf("exchange widening scope = %v, want invalid_scope", r.body)
		}
	})
	t.Run("narrowed scope kept", func(t *testing.T) {
		v := exchangeParams(at)
		v.Set("scope", "openid")
		r := e.post("/token", v, "app-a", secretA)
		if _, c := claimsOf(t, r.str("access_token")); c["scope"] != "openid" {
			t.Fatalf("narrowed scope = %v", c["scope"])
		}
	})
	t.Run("client without policy refused", func(t *testing.T) {
		tb, _ := e.signIn()
		if r := e.post("/token", exchangeParams(tb.str("access_token")), "app-b", secretB); r.str("error") != "unauthorized_client" {
			t.Fatalf("exchange by app-b = %v, want unauthorized_client", r.body)
		}
	})
	t.Run("subject token of another client refused", func(t *testing.T) {
		// app-b's token presented by app-a
		if r := e.post("/token", exchangeParams(r.str("access_token")), "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Fatalf("exchange of a foreign token = %v, want invalid_grant", r.body)
		}
	})
	t.Run("ID token refused as subject", func(t *testing.T) {
		if r := e.post("/token", exchangeParams(tr.str("id_token")), "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Fatalf("exchange of an ID token = %v, want invalid_grant", r.body)
		}
	})
	t.Run("revoked subject refused and exchanged tokens die with it", func(t *testing.T) {
		e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}}, "app-a", secretA)
		if r := e.post("/token", exchangeParams(at), "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Fatalf("exchange of a revoked token = %v, want invalid_grant", r.body)
		}
		if in := e.post("/introspect", url.Values{"token": {r.str("access_token")}}, "app-b", secretB); in.body["active"] != false {
			t.Errorf("exchanged token still active after the grant was revoked: %v", in.body)
		}
	})
}
