package registration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/store"
)

// Clients is where registered clients live: the admin API's clients, each
// change validated like any client and made as the tenant's admin would
// (admin.Service implements it).
type Clients interface {
	// RegisterClient creates client c of tenant.
	RegisterClient(ctx context.Context, tenant string, c config.Client) error
	// ReplaceRegisteredClient replaces client c of tenant, keeping its
	// secret when c has none.
	ReplaceRegisteredClient(ctx context.Context, tenant string, c config.Client) error
	// DeleteRegisteredClient removes client id of tenant.
	DeleteRegisteredClient(ctx context.Context, tenant, id string) error
	// RegisteredClient returns client id of tenant (its secret left out).
	RegisteredClient(tenant, id string) (config.Client, bool)
}

// MetadataError is a client registration refused for its metadata (RFC
// 7591 §3.2.2): Clients returns it, wrapped or not, and the caller sees
// its message.
type MetadataError struct {
	// Code is invalid_client_metadata or invalid_redirect_uri.
	Code string
	// Message says what is wrong, for the developer.
	Message string
}

func (e *MetadataError) Error() string { return e.Code + ": " + e.Message }

// Options configure the registration endpoint.
type Options struct {
	// Issuer is the broker's issuer; the endpoint is <issuer>/register/<tenant>.
	Issuer string
	// Tokens verifies initial and registration access tokens.
	Tokens *Tokens
	// Clients stores the registered clients.
	Clients Clients
	// Store counts the rate limits.
	Store store.Store
	// ClientIP is the caller's address as the broker establishes it
	// (trusted proxies only, SECURITY S73).
	ClientIP func(*http.Request) string
	// PerIP and PerTenant bound registration requests (all methods) in any
	// minute and any hour; zero means DefaultPerIP and DefaultPerTenant.
	PerIP, PerTenant int64
	// Logger receives operational logs; Audit one event per change.
	Logger, Audit *slog.Logger
}

// Default rate limits of the registration endpoint.
const (
	DefaultPerIP     = 20  // requests a minute from one address
	DefaultPerTenant = 200 // requests an hour for one tenant
	maxBody          = 64 << 10
)

// Handler serves RFC 7591 registration and RFC 7592 management.
type Handler struct {
	opts   Options
	prefix string
	mux    *http.ServeMux
}

// New returns the registration handler; mount it at Prefix.
func New(o Options) (*Handler, error) {
	iu, err := url.Parse(o.Issuer)
	if err != nil || o.Tokens == nil || o.Clients == nil || o.Store == nil {
		return nil, errors.New("registration: issuer, tokens, clients and store are required")
	}
	if o.PerIP <= 0 {
		o.PerIP = DefaultPerIP
	}
	if o.PerTenant <= 0 {
		o.PerTenant = DefaultPerTenant
	}
	if o.ClientIP == nil {
		o.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = o.Logger
	}
	h := &Handler{opts: o, prefix: strings.TrimSuffix(iu.Path, "/") + "/register/", mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+strings.TrimSuffix(h.prefix, "/"), h.register) // the tenant of the initial access token
	h.mux.HandleFunc("POST "+h.prefix+"{tenant}", h.register)
	h.mux.HandleFunc("GET "+h.prefix+"{tenant}/{client}", h.read)
	h.mux.HandleFunc("PUT "+h.prefix+"{tenant}/{client}", h.update)
	h.mux.HandleFunc("DELETE "+h.prefix+"{tenant}/{client}", h.remove)
	return h, nil
}

// Prefix is the path the handler serves under; it serves the path
// without the final slash too (registration with the tenant of the token).
func (h *Handler) Prefix() string { return h.prefix }

// Endpoint is tenant's registration endpoint URL.
func Endpoint(issuer, tenant string) string {
	return strings.TrimSuffix(issuer, "/") + "/register/" + url.PathEscape(tenant)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Every request counts against its address; only authenticated ones
	// against their tenant, so nobody can use up another tenant's budget.
	if !h.limited(w, r, "rl:dcr:ip:"+h.opts.ClientIP(r), store.Window{Limit: h.opts.PerIP, Length: time.Minute}) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

// tenantLimited applies the per-tenant limit to an authenticated request.
func (h *Handler) tenantLimited(w http.ResponseWriter, r *http.Request, tenant string) bool {
	return h.limited(w, r, "rl:dcr:tenant:"+tenant, store.Window{Limit: h.opts.PerTenant, Length: time.Hour})
}

// limited counts the request under key in window lw; false when it was
// refused (and answered).
func (h *Handler) limited(w http.ResponseWriter, r *http.Request, key string, lw store.Window) bool {
	wait, err := h.opts.Store.SlidingWindow(r.Context(), key, lw, store.WindowTake, time.Now())
	if err != nil {
		h.opts.Logger.Error("registration: rate limit", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable")
		return false
	}
	if wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many registration requests; retry later")
		return false
	}
	return true
}

// metadata is the client metadata of RFC 7591 §2 realmgate understands,
// and what it answers (§3.2.1, RFC 7592 §3). Other metadata is ignored
// (§2: "MUST ignore any client metadata ... that it does not understand").
type metadata struct {
	ClientID                string          `json:"client_id,omitempty"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string          `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string          `json:"registration_client_uri,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	ResponseTypes           []string        `json:"response_types,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri,omitempty"`
}

// client turns registration metadata into tenant's client id.
func (m *metadata) client(tenant, id string) (config.Client, error) {
	c := config.Client{ID: id, Tenant: tenant, RedirectURIs: m.RedirectURIs, PostLogoutRedirectURIs: m.PostLogoutRedirectURIs,
		BackchannelLogoutURI: m.BackchannelLogoutURI, TokenEndpointAuthMethod: m.TokenEndpointAuthMethod, JWKSURI: m.JWKSURI,
		GrantTypes: m.GrantTypes}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = config.AuthClientSecretBasic // RFC 7591 §2 default
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{config.GrantAuthorizationCode, config.GrantRefreshToken}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return c, &MetadataError{"invalid_client_metadata", fmt.Sprintf("response type %q is not supported: only code", rt)}
		}
	}
	if slices.Contains(c.GrantTypes, config.GrantAuthorizationCode) {
		c.AllowedTenants = []string{tenant}
	}
	if slices.Contains(c.GrantTypes, config.GrantClientCredentials) {
		c.Scopes = strings.Fields(m.Scope)
	}
	if len(m.JWKS) > 0 {
		dec := json.NewDecoder(bytes.NewReader(m.JWKS))
		dec.DisallowUnknownFields() // a private key member is refused
		var set config.JWKS
		if err := dec.Decode(&set); err != nil {
			return c, &MetadataError{"invalid_client_metadata", "jwks: a JSON Web Key Set of public keys is expected"}
		}
		c.JWKS = &set
	}
	return c, nil
}

// describe is the metadata of client c as the endpoint answers it.
func (h *Handler) describe(c config.Client) *metadata {
	zero := int64(0)
	m := &metadata{ClientID: c.ID, ClientSecretExpiresAt: &zero, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, GrantTypes: c.GrantTypes,
		Scope: strings.Join(c.Scopes, " "), JWKSURI: c.JWKSURI, RegistrationClientURI: Endpoint(h.opts.Issuer, c.Tenant) + "/" + url.PathEscape(c.ID)}
	if slices.Contains(c.GrantTypes, config.GrantAuthorizationCode) {
		m.ResponseTypes = []string{"code"}
	}
	if c.JWKS != nil {
		m.JWKS, _ = json.Marshal(c.JWKS)
	}
	return m
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="realmgate", error="invalid_token"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (*metadata, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_client_metadata", fmt.Sprintf("the request body is larger than %d bytes", maxBody))
		return nil, false
	}
	var m metadata
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the request body is not a JSON object of client metadata")
		return nil, false
	}
	return &m, true
}

// failed answers an error of Clients or Tokens.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	var me *MetadataError
	if errors.As(err, &me) {
		writeError(w, http.StatusBadRequest, me.Code, me.Message)
		return
	}
	h.opts.Logger.Error("registration failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the registration could not be completed; retry later")
}

func (h *Handler) audit(r *http.Request, action, tenant, client string) {
	h.opts.Audit.LogAttrs(r.Context(), slog.LevelInfo, "client registration",
		slog.String("event", "registration."+action), slog.String("tenant", tenant), slog.String("client", client),
		slog.String("ip", h.opts.ClientIP(r)))
}

func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// register is RFC 7591 §3: POST <issuer>/register/<tenant> with an
// initial access token of that tenant.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	iat, err := h.opts.Tokens.VerifyInitial(r.Context(), bearer(r))
	if tenant == "" {
		tenant = iat.Tenant // POST <issuer>/register: the discovery document's registration_endpoint
	}
	if errors.Is(err, ErrTokenNotFound) || err == nil && iat.Tenant != tenant {
		writeError(w, http.StatusUnauthorized, "invalid_token", "a valid initial access token of this tenant is required")
		return
	}
	if err != nil {
		h.failed(w, r, err)
		return
	}
	if !h.tenantLimited(w, r, tenant) {
		return
	}
	m, ok := h.decode(w, r)
	if !ok {
		return
	}
	c, err := m.client(tenant, "dcr-"+randomText(12))
	if err != nil {
		h.failed(w, r, err)
		return
	}
	if c.TokenEndpointAuthMethod == config.AuthClientSecretBasic || c.TokenEndpointAuthMethod == config.AuthClientSecretPost {
		c.Secret = randomText(32)
	}
	if err := h.opts.Clients.RegisterClient(r.Context(), tenant, c); err != nil {
		h.failed(w, r, err)
		return
	}
	rat, err := h.opts.Tokens.issueAccess(r.Context(), c.ID)
	if err != nil {
		_ = h.opts.Clients.DeleteRegisteredClient(r.Context(), tenant, c.ID)
		h.failed(w, r, err)
		return
	}
	h.audit(r, "create", tenant, c.ID)
	out := h.describe(c)
	out.ClientSecret, out.RegistrationAccessToken, out.ClientIDIssuedAt = c.Secret, rat, time.Now().Unix()
	w.Header().Set("Location", out.RegistrationClientURI)
	writeJSON(w, http.StatusCreated, out)
}

// managed returns the client a request of RFC 7592 manages, after its
// registration access token; ok false when the response was written.
func (h *Handler) managed(w http.ResponseWriter, r *http.Request) (config.Client, bool) {
	tenant, id := r.PathValue("tenant"), r.PathValue("client")
	owner, err := h.opts.Tokens.accessClient(r.Context(), bearer(r))
	if err != nil && !errors.Is(err, ErrTokenNotFound) {
		h.failed(w, r, err)
		return config.Client{}, false
	}
	c, found := h.opts.Clients.RegisteredClient(tenant, id)
	if err != nil || owner != id || !found {
		// RFC 7592 §2.1: an unknown client or a wrong token is 401, and
		// never says which.
		writeError(w, http.StatusUnauthorized, "invalid_token", "a valid registration access token of this client is required")
		return config.Client{}, false
	}
	if !h.tenantLimited(w, r, tenant) {
		return config.Client{}, false
	}
	return c, true
}

// read is RFC 7592 §2.1.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) {
	c, ok := h.managed(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, h.describe(c))
}

// update is RFC 7592 §2.2: the client's metadata replaced whole; its id
// and secret stay.
func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	old, ok := h.managed(w, r)
	if !ok {
		return
	}
	m, ok := h.decode(w, r)
	if !ok {
		return
	}
	if m.ClientID != old.ID {
		writeError(w, http.StatusBadRequest, "invalid_request", "client_id must be the client's id")
		return
	}
	c, err := m.client(old.Tenant, old.ID)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	secretMethod := func(x string) bool { return x == config.AuthClientSecretBasic || x == config.AuthClientSecretPost }
	if secretMethod(c.TokenEndpointAuthMethod) != secretMethod(old.TokenEndpointAuthMethod) {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "token_endpoint_auth_method cannot change between a secret and keys; register a new client")
		return
	}
	if err := h.opts.Clients.ReplaceRegisteredClient(r.Context(), old.Tenant, c); err != nil {
		h.failed(w, r, err)
		return
	}
	h.audit(r, "update", old.Tenant, c.ID)
	writeJSON(w, http.StatusOK, h.describe(c))
}

// remove is RFC 7592 §2.3.
func (h *Handler) remove(w http.ResponseWriter, r *http.Request) {
	c, ok := h.managed(w, r)
	if !ok {
		return
	}
	if err := h.opts.Clients.DeleteRegisteredClient(r.Context(), c.Tenant, c.ID); err != nil {
		h.failed(w, r, err)
		return
	}
	if err := h.opts.Tokens.revokeAccess(r.Context(), c.ID); err != nil {
		h.opts.Logger.Error("registration: revoke access token", "client", c.ID, "err", err)
	}
	h.audit(r, "delete", c.Tenant, c.ID)
	w.WriteHeader(http.StatusNoContent)
}
