package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

// fakeMicrosoft answers like login.microsoftonline.com's v2.0 endpoints as
// documented at https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
// and .../id-token-claims-reference: the tenant-independent documents at
// /common and /organizations state the issuer template
// https://<host>/{tenantid}/v2.0; /consumers and /<tenant guid> state their
// own tenant's issuer; keys carry an "issuer" member and no "alg"; token
// errors carry AADSTS codes; userinfo is Graph's /oidc/userinfo.
type fakeMicrosoft struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	discovered []string // the path segment ("common", "organizations", a tid) of each discovery fetch
	idToken    string
	tokenError bool
	sub        string
}

func newFakeMicrosoft(t *testing.T) *fakeMicrosoft {
	t.Helper()
	testKeys(t)
	m := &fakeMicrosoft{t: t}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

// template is the multi-tenant issuer, as Microsoft's common document states it.
func (m *fakeMicrosoft) template() string { return m.srv.URL + "/{tenantid}/v2.0" }

// issuerOf is the issuer of one tenant's tokens.
func (m *fakeMicrosoft) issuerOf(tid string) string { return m.srv.URL + "/" + tid + "/v2.0" }

func (m *fakeMicrosoft) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		tenant := parts[0]
		m.discovered = append(m.discovered, tenant)
		var iss string
		switch {
		case tenant == "common" || tenant == "organizations":
			iss = m.template()
		case tenant == "consumers":
			iss = m.issuerOf(msaConsumerTenant)
		case guidRE.MatchString(tenant):
			iss = m.issuerOf(tenant)
		default:
			// Microsoft answers an unknown tenant with 400 and an AADSTS90002 error.
			writeJSON(http.StatusBadRequest, map[string]any{"error": "invalid_tenant",
				"error_description": "AADSTS90002: Tenant '" + tenant + "' not found.", "error_codes": []int{90002}})
			return
		}
		base := m.srv.URL + "/" + tenant
		writeJSON(http.StatusOK, map[string]any{
			"token_endpoint":                        base + "/oauth2/v2.0/token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"jwks_uri":                              base + "/discovery/v2.0/keys",
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"issuer":                                iss,
			"request_uri_parameter_supported":       false,
			"userinfo_endpoint":                     m.srv.URL + "/oidc/userinfo",
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
			"http_logout_supported":                 true,
			"frontchannel_logout_supported":         true,
			"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
			"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
			"kerberos_endpoint":                     base + "/kerberos",
			"tenant_region_scope":                   nil,
			"cloud_instance_name":                   "microsoftonline.com",
			"cloud_graph_host_name":                 "graph.windows.net",
			"msgraph_host":                          "graph.microsoft.com",
			"rbac_url":                              "https://pas.windows.net",
		})
	case len(parts) == 4 && parts[1] == "discovery" && parts[3] == "keys":
		pub := &rsaKey.PublicKey
		writeJSON(http.StatusOK, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "use": "sig", "kid": "rsa-1",
			"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			"issuer": m.template(),
		}}})
	case len(parts) == 4 && parts[1] == "oauth2" && parts[3] == "token" && r.Method == http.MethodPost:
		_ = r.ParseForm()
		user, pass, ok := r.BasicAuth()
		if ok {
			user, _ = url.QueryUnescape(user)
			pass, _ = url.QueryUnescape(pass)
		}
		switch {
		case !ok || user != testClientID || pass != testClientSecret:
			writeJSON(http.StatusUnauthorized, map[string]any{"error": "invalid_client",
				"error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": []int{7000215}})
		case m.tokenError || r.PostForm.Get("code") != "M.C507_BAY.2.U.code" || r.PostForm.Get("code_verifier") == "":
			writeJSON(http.StatusBadRequest, map[string]any{"error": "invalid_grant",
				"error_description": "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
				"error_codes":       []int{70008}, "timestamp": "2025-01-01 00:00:00Z",
				"trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333", "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
				"error_uri": m.srv.URL + "/error?code=70008"})
		default:
			writeJSON(http.StatusOK, map[string]any{"token_type": "Bearer", "scope": "openid profile email",
				"expires_in": 3599, "ext_expires_in": 3599, "access_token": testAccessToken, "id_token": m.idToken})
		}
	case r.URL.Path == "/oidc/userinfo":
		if r.Header.Get("Authorization") != "Bearer "+testAccessToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		writeJSON(http.StatusOK, map[string]any{"sub": m.sub, "name": "Megan Bowen", "family_name": "Bowen",
			"given_name": "Megan", "picture": "https://graph.microsoft.com/v1.0/me/photo/$value"})
	default:
		http.NotFound(w, r)
	}
}

// idTokenFor returns an ID token shaped like Microsoft's v2.0 tokens for a
// work account (tid of the directory) or a personal account (the consumer tid).
func (m *fakeMicrosoft) idTokenFor(t *testing.T, req providers.LoginRequest, tid, iss string) (string, string) {
	t.Helper()
	now := time.Now()
	sub := "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ-" + tid[:8]
	claims := jwt.MapClaims{
		"ver": "2.0", "iss": iss, "sub": sub, "aud": testClientID,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"name": "Megan Bowen", "preferred_username": "megan@contoso.example", "email": "megan@contoso.example",
		"oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": tid, "nonce": req.Nonce,
		"aio": "Df2UVXL1ix!lMCWMSOJBcFatzcGfvFGhjKv8q5g0x732dR5MB5BisvGQO7YWByjd8iQDLq!eGbIDakyp5mnOrcdqHeYSnltepQmRp6AIZ8jY",
		"rh":  "0.AAAA", "uti": "fqiBqXLPj0eQa82S-IYFAA",
	}
	if tid == msaConsumerTenant {
		claims["preferred_username"], claims["email"] = "megan@outlook.example", "megan@outlook.example"
	}
	return sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims, nil), sub
}

// login runs LoginURL and a callback for one Microsoft account.
func (m *fakeMicrosoft) login(t *testing.T, c *Connector, tid, iss string) (authorizeURL string, id providers.Identity, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := newLoginRequest(t)
	authorizeURL, _, err = c.LoginURL(ctx, req)
	if err != nil {
		return "", providers.Identity{}, err
	}
	tok, sub := m.idTokenFor(t, req, tid, iss)
	m.mu.Lock()
	m.idToken, m.sub = tok, sub
	m.mu.Unlock()
	q := url.Values{"code": {"M.C507_BAY.2.U.code"}, "state": {req.State}, "session_state": {"fe1540c3-a69a-469a-9fa3-8a2470936421"}}
	r := httptest.NewRequest(http.MethodGet, req.CallbackURL+"?"+q.Encode(), nil)
	id, err = c.HandleCallback(ctx, req, nil, r)
	return authorizeURL, id, err
}

func (m *fakeMicrosoft) connector(t *testing.T, mods ...func(*Config)) *Connector {
	t.Helper()
	cfg := Config{ID: "microsoft", Issuer: m.template(), ClientID: testClientID, ClientSecret: testClientSecret,
		Timeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	for _, mod := range mods {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return c
}

// TestMicrosoft_S23_PersonalAndWorkAccounts: a microsoft connector takes
// work accounts of any (or the allowed) tenants and personal accounts through
// the common endpoint, each token's issuer checked against its own tid; a
// work-only connector uses the organizations endpoint and refuses personal
// accounts.
func TestMicrosoft_S23_PersonalAndWorkAccounts(t *testing.T) {
	m := newFakeMicrosoft(t)
	const (
		tidA = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		tidB = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
		msa  = msaConsumerTenant
	)
	personal := func(c *Config) { c.PersonalAccounts = true }
	allowA := func(c *Config) { c.AllowedTenants = []string{tidA} }
	listsMSA := func(c *Config) { c.AllowedTenants = []string{msa} }
	tests := []struct {
		name         string
		mods         []func(*Config)
		endpoint     string // discovery and authorization endpoint form
		tid, iss     string
		wantErr      string // empty: accepted
		wantUsername string
	}{
		{"any: work account", []func(*Config){personal}, "common", tidA, m.issuerOf(tidA), "", "megan@contoso.example"},
		{"any: personal account", []func(*Config){personal}, "common", msa, m.issuerOf(msa), "", "megan@outlook.example"},
		{"any: personal token with a work issuer", []func(*Config){personal}, "common", msa, m.issuerOf(tidA), "not the issuer of its tenant", ""},
		{"any: work token with the consumer issuer", []func(*Config){personal}, "common", tidA, m.issuerOf(msa), "not the issuer of its tenant", ""},
		{"any: token with the template issuer", []func(*Config){personal}, "common", tidA, m.template(), "not the issuer of its tenant", ""},
		{"any + allowed tenant: listed work account", []func(*Config){personal, allowA}, "common", tidA, m.issuerOf(tidA), "", "megan@contoso.example"},
		{"any + allowed tenant: other work account", []func(*Config){personal, allowA}, "common", tidB, m.issuerOf(tidB), "not allowed", ""},
		{"any + allowed tenant: personal account", []func(*Config){personal, allowA}, "common", msa, m.issuerOf(msa), "", "megan@outlook.example"},
		{"work: work account", nil, "organizations", tidB, m.issuerOf(tidB), "", "megan@contoso.example"},
		{"work: personal account refused", nil, "organizations", msa, m.issuerOf(msa), "not allowed", ""},
		{"work + allowed tenant: personal account refused", []func(*Config){allowA}, "organizations", msa, m.issuerOf(msa), "not allowed", ""},
		{"consumer tenant listed: personal account", []func(*Config){listsMSA}, "common", msa, m.issuerOf(msa), "", "megan@outlook.example"},
		{"consumer tenant listed: work account refused", []func(*Config){listsMSA}, "common", tidA, m.issuerOf(tidA), "not allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.mu.Lock()
			m.discovered = nil
			m.mu.Unlock()
			c := m.connector(t, tt.mods...)
			au, id, err := m.login(t, c, tt.tid, tt.iss)
			m.mu.Lock()
			discovered := strings.Join(m.discovered, ",")
			m.mu.Unlock()
			if discovered != tt.endpoint {
				t.Errorf("discovery fetched from %q, want %q", discovered, tt.endpoint)
			}
			if want := m.srv.URL + "/" + tt.endpoint + "/oauth2/v2.0/authorize?"; !strings.HasPrefix(au, want) {
				t.Errorf("LoginURL = %q, want it at %s", au, want)
			}
			if tt.wantErr != "" {
				wantErr(t, tt.name, err, providers.ErrInvalidResponse, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("HandleCallback = %v, want success", err)
			}
			if id.Issuer != tt.iss || id.Claims["tid"] != tt.tid {
				t.Errorf("Identity issuer %q tid %v, want %q %q", id.Issuer, id.Claims["tid"], tt.iss, tt.tid)
			}
			if id.PreferredUsername != tt.wantUsername || id.GivenName != "Megan" {
				t.Errorf("Identity username %q given name %q, want %q and the userinfo's Megan", id.PreferredUsername, id.GivenName, tt.wantUsername)
			}
			if id.EmailVerified {
				t.Errorf("Identity.EmailVerified = true; Microsoft's email claim is not verified")
			}
		})
	}
}

// TestMicrosoft_PersonalOnly: personal accounts only is a single-tenant
// issuer, the consumer tenant's, whose discovery states that issuer.
func TestMicrosoft_PersonalOnly(t *testing.T) {
	m := newFakeMicrosoft(t)
	c := m.connector(t, func(c *Config) { c.Issuer = m.issuerOf(msaConsumerTenant) })
	if _, id, err := m.login(t, c, msaConsumerTenant, m.issuerOf(msaConsumerTenant)); err != nil || id.PreferredUsername != "megan@outlook.example" {
		t.Fatalf("personal account: %v, %+v; want accepted", err, id)
	}
	const tidA = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	_, _, err := m.login(t, c, tidA, m.issuerOf(tidA))
	wantErr(t, "work account at the personal-only issuer", err, providers.ErrInvalidResponse, "issued by a different provider")
}

// TestMicrosoft_ErrorResponses: Microsoft's error shapes map to the
// provider errors: an AADSTS token error is an invalid response quoting the
// code; a user who cancels (error=access_denied) is ErrAccessDenied.
func TestMicrosoft_ErrorResponses(t *testing.T) {
	m := newFakeMicrosoft(t)
	c := m.connector(t, func(c *Config) { c.PersonalAccounts = true })
	m.mu.Lock()
	m.tokenError = true
	m.mu.Unlock()
	_, _, err := m.login(t, c, msaConsumerTenant, m.issuerOf(msaConsumerTenant))
	wantErr(t, "expired code", err, providers.ErrInvalidResponse, "AADSTS70008")

	req := newLoginRequest(t)
	q := url.Values{"error": {"access_denied"}, "error_description": {"AADSTS65004: User declined to consent to access the app."},
		"state": {req.State}}
	r := httptest.NewRequest(http.MethodGet, req.CallbackURL+"?"+q.Encode(), nil)
	_, err = c.HandleCallback(context.Background(), req, nil, r)
	wantErr(t, "user declined", err, providers.ErrAccessDenied, "AADSTS65004")

	if _, err := New(Config{ID: "x", Issuer: m.issuerOf(msaConsumerTenant), ClientID: "c", PersonalAccounts: true}); err == nil {
		t.Error("New(PersonalAccounts with a pinned issuer) = nil error, want ErrConfig")
	}
}
