// Package oidc is realmgate's generic upstream OpenID Connect connector: it
// chains a login to any OpenID Provider (AD FS, Microsoft Entra ID including
// multi-tenant issuers, Okta, Google, ...) with the authorization code flow,
// PKCE S256 and a nonce, validates the ID token and userinfo answer, and
// returns a providers.Identity.
//
// Discovery is lazy: New never touches the network, the provider metadata is
// fetched on first use, cached, and fetched again on a later login if it
// failed, so an IdP that is down when the broker starts does not stop it.
// Every upstream call is bounded by Config.Timeout.
//
// ID tokens are verified with github.com/coreos/go-oidc/v3 (signature,
// algorithm allow-list, issuer, audience, expiry) on top of a JWKS key set of
// this package that also refuses a key whose JWK "alg" differs from the token
// header's (SECURITY S30); the connector then checks what go-oidc leaves to
// the caller: nonce, iat, sub, azp, at_hash and the userinfo subject (S20).
//
// # Multi-tenant issuers (Entra ID)
//
// When Config.Issuer contains the "{tenantid}" placeholder, for example
// https://login.microsoftonline.com/{tenantid}/v2.0, the connector fetches
// discovery from the "organizations" form of the template (the placeholder
// replaced by "organizations": work and school accounts), or from the
// "common" form (work and personal Microsoft accounts) when
// Config.PersonalAccounts is set or AllowedTenants lists the Microsoft
// consumer tenant 9188040d-6c67-4c5b-b112-36a304b66dad, and requires the
// document's issuer to equal the template exactly, which is what Entra
// publishes at both. The authorization and token endpoints come from that
// document. Each ID token is then verified against its own issuer: the
// token's "tid" claim must be a GUID (and listed in AllowedTenants when that
// is set; the consumer tenant only with PersonalAccounts or when listed), and
// go-oidc checks the token's "iss" against the template with that tid
// substituted (SECURITY S23): a personal account's token carries
// iss https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0.
// The issuer check is never skipped.
//
// # Google Workspace
//
// Config.HostedDomain restricts a Google login to one Workspace domain: it
// is sent as the hd authorization parameter, which only tunes Google's
// account chooser, and the verified ID token's hd claim must equal it
// (Google's OpenID Connect guide: "ensure that the hd claim matches").
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/providers"
)

// TenantPlaceholder is the marker in Config.Issuer that makes the connector
// multi-tenant (Entra ID common / organizations endpoints).
const TenantPlaceholder = "{tenantid}"

// DefaultTimeout bounds each upstream call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// msaConsumerTenant is the Entra tenant id of personal Microsoft accounts.
const msaConsumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// ErrConfig is returned (wrapped) by New for an invalid configuration.
var ErrConfig = errors.New("oidc: invalid configuration")

// guidRE matches a tenant id (a GUID in its canonical textual form).
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// reservedAuthParams are authorization request parameters the connector sets
// itself; ExtraAuthParams may not override them.
var reservedAuthParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "request", "request_uri",
}

// Config describes one upstream OpenID Provider.
type Config struct {
	// ID is the IdP id within its tenant (used in logs and errors).
	ID string
	// Issuer is the OP's issuer identifier, exactly as its discovery document
	// and ID tokens state it. It may contain "{tenantid}" (see the package doc).
	Issuer string
	// ClientID is realmgate's client_id at the OP.
	ClientID string
	// ClientSecret is realmgate's client secret at the OP; empty for a public
	// client (PKCE only).
	ClientSecret string
	// Scopes requested upstream; "openid" is added when missing. Default:
	// openid, profile, email.
	Scopes []string
	// AllowedTenants lists the Entra tenant ids (tid) accepted when Issuer
	// contains "{tenantid}"; empty means any work tenant.
	AllowedTenants []string
	// PersonalAccounts, with a "{tenantid}" issuer, also accepts personal
	// Microsoft accounts (tid 9188040d-6c67-4c5b-b112-36a304b66dad) besides
	// the work tenants AllowedTenants admits: discovery, and so the
	// authorization request, use the "common" endpoint.
	PersonalAccounts bool
	// HostedDomain restricts sign-in to one Google Workspace domain: the
	// verified ID token's hd claim must equal it (case-insensitively), else
	// the login fails with providers.ErrAccessDenied. It is also sent as the
	// hd authorization parameter.
	HostedDomain string
	// HTTPClient makes the back-channel calls; nil means a client with
	// Timeout as its own timeout.
	HTTPClient *http.Client
	// Timeout bounds each upstream call (discovery, JWKS, token, userinfo).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// ExtraAuthParams are added to the authorization request (for example
	// domain_hint or resource). They cannot override protocol parameters.
	ExtraAuthParams map[string]string
	// SkipUserinfo disables the userinfo call even when the OP has an
	// endpoint (as Userinfo "never").
	SkipUserinfo bool
	// Userinfo says when the userinfo endpoint is called after the ID token
	// is verified: UserinfoAuto (the default when empty), UserinfoAlways or
	// UserinfoNever (userinfo.go).
	Userinfo string
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for token times and for spacing JWKS fetches; nil
	// means time.Now.
	Now func() time.Time
}

// Connector is a providers.Connector for one upstream OpenID Provider. It is
// safe for concurrent use.
type Connector struct {
	id             string
	issuer         string // configured issuer (may be a template)
	tenantPrefix   string // template: part before the placeholder
	tenantSuffix   string // template: part after the placeholder
	multiTenant    bool
	allowedTenants []string
	personal       bool
	hostedDomain   string
	clientID       string
	clientSecret   string
	scopes         []string
	client         *http.Client
	timeout        time.Duration
	extra          map[string]string
	userinfoMode   string // UserinfoAuto, UserinfoAlways or UserinfoNever
	log            *slog.Logger
	now            func() time.Time

	mu       sync.Mutex
	meta     *metadata
	inflight *discoveryCall
}

// The connector and the optional capabilities it offers (providers.As).
var (
	_ providers.Connector           = (*Connector)(nil)
	_ providers.LogoutTokenVerifier = (*Connector)(nil)
	_ providers.EndSessionURLer     = (*Connector)(nil)
)

// New validates cfg and returns a connector. It makes no network call:
// discovery happens on first use.
func New(cfg Config) (*Connector, error) {
	if strings.TrimSpace(cfg.ID) == "" {
		return nil, fmt.Errorf("%w: id is required", ErrConfig)
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: idp %q: client_id is required", ErrConfig, cfg.ID)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: idp %q: negative timeout", ErrConfig, cfg.ID)
	}
	c := &Connector{
		id:           cfg.ID,
		issuer:       cfg.Issuer,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		timeout:      cfg.Timeout,
		log:          cfg.Logger,
		now:          cfg.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.userinfoMode, err = checkUserinfoMode(cfg.Userinfo, cfg.SkipUserinfo); err != nil {
		return nil, fmt.Errorf("%w: idp %q: %v", ErrConfig, cfg.ID, err)
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("idp", cfg.ID)

	// The issuer: an https URL without query or fragment (OpenID Connect
	// Discovery 1.0 §3); plain http only on loopback (tests, local peers).
	check := cfg.Issuer
	if n := strings.Count(cfg.Issuer, TenantPlaceholder); n > 0 {
		if n > 1 {
			return nil, fmt.Errorf("%w: idp %q: issuer has more than one %s", ErrConfig, cfg.ID, TenantPlaceholder)
		}
		i := strings.Index(cfg.Issuer, TenantPlaceholder)
		c.multiTenant = true
		c.tenantPrefix, c.tenantSuffix = cfg.Issuer[:i], cfg.Issuer[i+len(TenantPlaceholder):]
		check = c.tenantPrefix + "00000000-0000-0000-0000-000000000000" + c.tenantSuffix
	}
	u, err := url.Parse(check)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: idp %q: issuer %q is not an absolute URL without query or fragment", ErrConfig, cfg.ID, cfg.Issuer)
	}
	if !secureURL(u) {
		return nil, fmt.Errorf("%w: idp %q: issuer %q must use https", ErrConfig, cfg.ID, cfg.Issuer)
	}
	if c.multiTenant && !strings.Contains(u.EscapedPath(), "00000000-0000-0000-0000-000000000000") {
		return nil, fmt.Errorf("%w: idp %q: %s must be in the issuer path", ErrConfig, cfg.ID, TenantPlaceholder)
	}

	if len(cfg.AllowedTenants) > 0 && !c.multiTenant {
		return nil, fmt.Errorf("%w: idp %q: allowed tenants need an issuer with %s", ErrConfig, cfg.ID, TenantPlaceholder)
	}
	if cfg.PersonalAccounts && !c.multiTenant {
		return nil, fmt.Errorf("%w: idp %q: personal accounts need an issuer with %s", ErrConfig, cfg.ID, TenantPlaceholder)
	}
	c.personal = cfg.PersonalAccounts
	c.hostedDomain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.HostedDomain), "."))
	if cfg.HostedDomain != "" && (c.hostedDomain == "" || strings.ContainsAny(c.hostedDomain, " /@:")) {
		return nil, fmt.Errorf("%w: idp %q: hosted domain %q is not a domain name", ErrConfig, cfg.ID, cfg.HostedDomain)
	}
	for _, t := range cfg.AllowedTenants {
		if !guidRE.MatchString(t) {
			return nil, fmt.Errorf("%w: idp %q: allowed tenant %q is not a tenant id", ErrConfig, cfg.ID, t)
		}
		c.allowedTenants = append(c.allowedTenants, strings.ToLower(t))
	}

	c.scopes = slices.Clone(cfg.Scopes)
	if len(c.scopes) == 0 {
		c.scopes = []string{gooidc.ScopeOpenID, gooidc.ScopeProfile, gooidc.ScopeEmail}
	}
	for _, s := range c.scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, fmt.Errorf("%w: idp %q: invalid scope %q", ErrConfig, cfg.ID, s)
		}
	}
	if !slices.Contains(c.scopes, gooidc.ScopeOpenID) {
		c.scopes = append([]string{gooidc.ScopeOpenID}, c.scopes...)
	}

	c.extra = make(map[string]string, len(cfg.ExtraAuthParams))
	for k, v := range cfg.ExtraAuthParams {
		if k == "" || slices.Contains(reservedAuthParams, k) {
			return nil, fmt.Errorf("%w: idp %q: extra auth param %q is not allowed", ErrConfig, cfg.ID, k)
		}
		c.extra[k] = v
	}
	if c.hostedDomain != "" {
		if _, set := c.extra["hd"]; !set {
			c.extra["hd"] = c.hostedDomain
		}
	}

	if cfg.HTTPClient != nil {
		cl := *cfg.HTTPClient // shallow copy: same transport, our own timeout
		if cl.Timeout == 0 || cl.Timeout > c.timeout {
			cl.Timeout = c.timeout
		}
		c.client = &cl
	} else {
		c.client = &http.Client{Timeout: c.timeout}
	}
	return c, nil
}

// Issuer returns the configured issuer (for a multi-tenant connector, the
// template with "{tenantid}").
func (c *Connector) Issuer() string { return c.issuer }

// LoginURL returns the OP's authorization endpoint URL for the authorization
// code flow with PKCE S256 (RFC 7636 §4.3), a nonce (OpenID Connect Core 1.0
// §3.1.2.1), state, redirect_uri = req.CallbackURL, login_hint and
// prompt=login when req.ForceLogin. It returns no connector data.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, []byte, error) {
	if req.State == "" || req.Nonce == "" {
		return "", nil, fmt.Errorf("oidc: idp %q: login request without state or nonce", c.id)
	}
	if !validVerifier(req.CodeVerifier) {
		return "", nil, fmt.Errorf("oidc: idp %q: invalid pkce code verifier", c.id)
	}
	if cb, err := url.Parse(req.CallbackURL); err != nil || !cb.IsAbs() || cb.Host == "" {
		return "", nil, fmt.Errorf("oidc: idp %q: invalid callback url %q", c.id, req.CallbackURL)
	}
	md, err := c.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	return c.authURL(md.AuthorizationEndpoint, req), nil, nil
}

// validVerifier reports whether v is a PKCE code verifier: 43 to 128
// characters from the unreserved set (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case b >= 'A' && b <= 'Z', b >= 'a' && b <= 'z', b >= '0' && b <= '9',
			b == '-', b == '.', b == '_', b == '~':
		default:
			return false
		}
	}
	return true
}

// secureURL reports whether u is https, or http on a loopback host.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// tenantIssuer returns the issuer of tenant tid for a multi-tenant connector.
func (c *Connector) tenantIssuer(tid string) string {
	return c.tenantPrefix + tid + c.tenantSuffix
}

// tenantOf returns the tenant id in iss if iss is the template with a GUID
// in place of the placeholder.
func (c *Connector) tenantOf(iss string) (string, bool) {
	if !strings.HasPrefix(iss, c.tenantPrefix) || !strings.HasSuffix(iss, c.tenantSuffix) ||
		len(iss) < len(c.tenantPrefix)+len(c.tenantSuffix) {
		return "", false
	}
	tid := iss[len(c.tenantPrefix) : len(iss)-len(c.tenantSuffix)]
	return tid, guidRE.MatchString(tid)
}

// tenantAllowed reports whether tid may sign in (S23): a listed tenant, any
// work tenant when none is listed, and the personal-accounts tenant only
// when personal accounts are on or it is listed.
func (c *Connector) tenantAllowed(tid string) bool {
	tid = strings.ToLower(tid)
	if slices.Contains(c.allowedTenants, tid) {
		return true
	}
	if tid == msaConsumerTenant {
		return c.personal
	}
	return len(c.allowedTenants) == 0
}

// commonEndpoint reports whether a multi-tenant connector uses Entra's
// "common" endpoint (work and personal accounts) rather than
// "organizations" (work accounts only).
func (c *Connector) commonEndpoint() bool {
	return c.personal || slices.Contains(c.allowedTenants, msaConsumerTenant)
}

// authURL is the authorization request to endpoint for req (LoginURL).
func (c *Connector) authURL(endpoint string, req providers.LoginRequest) string {
	// What oauth2.Config.AuthCodeURL set, in its order (authurl.go).
	var p authParams
	p.set("response_type", "code")
	p.set("client_id", c.clientID)
	if req.CallbackURL != "" {
		p.set("redirect_uri", req.CallbackURL)
	}
	if len(c.scopes) > 0 {
		p.set("scope", strings.Join(c.scopes, " "))
	}
	p.set("state", req.State)
	for k, v := range c.extra {
		p.set(k, v)
	}
	// RFC 7636 §4.3: code_challenge = BASE64URL(SHA256(verifier)), method S256.
	p.set("code_challenge_method", "S256")
	p.set("code_challenge", s256Challenge(req.CodeVerifier))
	p.set("nonce", req.Nonce)
	if req.LoginHint != "" {
		p.set("login_hint", req.LoginHint)
	}
	if req.ForceLogin {
		p.set("prompt", "login")
	}
	if req.MaxAge > 0 { // OIDC Core §3.1.2.1: the IdP then states auth_time
		p.set("max_age", strconv.Itoa(int(req.MaxAge/time.Second)))
	}
	if len(req.ACRValues) > 0 { // OIDC Core §3.1.2.1
		p.set("acr_values", strings.Join(req.ACRValues, " "))
	}
	return p.url(endpoint)
}
