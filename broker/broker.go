// Package broker is realmgate's OpenID Provider and security token service:
// the HTTP routes SaaS applications talk to (discovery, JWKS, authorize,
// token, userinfo, revocation, introspection), the upstream callback, the
// pages people see, the signing keys, and the Store interface it consumes.
package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realmgate/realmgate/locale"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/samlidp"
	"github.com/realmgate/realmgate/transform"
	"github.com/realmgate/realmgate/users"
)

// Client is a registered downstream application (an OIDC relying party).
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret; empty for a public client (PKCE only).
	// New keeps only its SHA-256 (S16).
	Secret string
	// RedirectURIs are compared exactly (S01).
	RedirectURIs []string
	// PostLogoutRedirectURIs are the only places logout may return to (S65).
	PostLogoutRedirectURIs []string
	// AllowedTenants lists the tenants whose users may sign in; "*" means
	// all, empty means none.
	AllowedTenants []string
	// ExchangeAudiences are the clients (APIs) this client may obtain
	// tokens for by token exchange (RFC 8693); empty: no exchange.
	ExchangeAudiences []string
	// BackchannelLogoutURI receives logout tokens when a session the client
	// signed in through ends (OIDC Back-Channel Logout 1.0).
	BackchannelLogoutURI string
	// SSFPushURL, when set, makes the client a Shared Signals receiver:
	// CAEP events about its users are pushed there as SETs (caep.go).
	SSFPushURL string
	// AllowedIdPs narrows the client to these IdPs; empty means any IdP of
	// an allowed tenant.
	AllowedIdPs []string
	// Claims names the claims beyond the standard ones this client receives
	// (S75): custom claims the tenants' rules add, by name, and "roles" to
	// receive roles without asking for the roles scope. A custom claim not
	// named here is never released to the client.
	Claims []string
	// SAML, when set, makes the client a SAML service provider that signs
	// in through realmgate as its IdP (samlidp.go), not an OIDC client.
	SAML *samlidp.SP
	// RequirePushedAuthorizationRequests makes /authorize take this
	// client's requests only through a request_uri from the PAR endpoint
	// (RFC 9126 §5, par.go).
	RequirePushedAuthorizationRequests bool
	// DPoPBoundAccessTokens makes every token request of this client carry
	// a DPoP proof, so its access tokens are always DPoP-bound (RFC 9449
	// §5.2, dpop.go).
	DPoPBoundAccessTokens bool
	// Machine holds the client's grants, machine-to-machine settings and
	// token endpoint authentication (clientauth.go, clientcredentials.go).
	Machine
	// ClientSettings holds the client's token lifetimes, subject type and
	// consent page (lifetimes.go, pairwise.go, consent.go).
	ClientSettings
	// Branding is how pages that know this client look; it wins over the
	// tenant's (brand.go). nil: the tenant's.
	Branding *Branding
}

// IdP is a configured upstream identity provider of a tenant.
type IdP struct {
	// ID is the IdP id; its callback is <issuer>/callback/<ID>.
	ID string
	// Tenant is the id of the tenant that owns the IdP.
	Tenant string
	// Name is the display name shown on choice pages.
	Name string
	// Connector talks to the upstream.
	Connector providers.Connector
	// Pending marks an IdP not yet activated (setup portal): it serves only
	// test sign-ins (testsignin.go), never end users (pendingidp.go). The
	// resolver's tenant lists it in Pending too.
	Pending bool
	// UpstreamLogout ends the user's session at this IdP too when they log
	// out (the IdP must accept <issuer>/logout/upstream as a
	// post_logout_redirect_uri).
	UpstreamLogout bool
	// MFAACRValues are sent upstream (acr_values) to ask this IdP for
	// multi-factor authentication; empty means DefaultMFAACRValues.
	MFAACRValues []string
	// TokenExchange, when set, lets clients exchange tokens this IdP issued
	// for realmgate tokens of its tenant (RFC 8693, externalexchange.go).
	TokenExchange *ExternalExchange
}

// Config is what the broker needs; cmd/realmgate builds it from the file.
type Config struct {
	// Issuer is the one issuer URL every token carries.
	Issuer string
	// Secret is the server secret from which store-key HMACs and the key-set
	// encryption key are derived. Empty: one is created in the store and shared.
	Secret []byte
	// PreviousSecrets are secrets Secret replaced: a key set sealed under
	// one of them still opens, and is sealed again under Secret. Store keys
	// are derived from Secret only. Ignored without Secret.
	PreviousSecrets [][]byte
	// Algorithm is the signing algorithm: ES256 (default) or RS256.
	Algorithm string
	// RotateEvery is the signing-key rotation period (0: never).
	RotateEvery time.Duration
	// SessionLifetime is the sliding lifetime of the SSO session.
	SessionLifetime time.Duration
	// JSONRecords writes sessions, codes, refresh-token grants, pending
	// auth requests and upstream sign-ins and user records in the JSON
	// form earlier releases read, instead of the binary form (both are
	// always read): for a store shared with such a release (config
	// store.record_format).
	JSONRecords bool
	// AccessTokenLifetime, IDTokenLifetime and RefreshTokenLifetime bound the tokens.
	AccessTokenLifetime, IDTokenLifetime, RefreshTokenLifetime time.Duration
	// Clients are the registered applications.
	Clients []Client
	// IdPs are every tenant's upstream identity providers.
	IdPs []IdP
	// Resolver finds a user's home realm.
	Resolver *realm.Resolver
	// CookieDomain, when set, scopes the broker's cookies to this domain and
	// its subdomains, so a sign-in started on <tenant>.<base domain> and
	// completed on the issuer host shares its browser binding. cmd sets it to
	// the base domain when the issuer host is within it.
	CookieDomain string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed when
	// establishing the client IP; empty means the peer address is the client.
	TrustedProxies []netip.Prefix
	// Rules holds each tenant's compiled claims rules; a missing tenant passes claims through.
	Rules map[string]*transform.Engine
	// Policies holds each tenant's sign-in requirements.
	Policies map[string]TenantPolicy
	// Access is the file-wide conditional access setup (conditional.go).
	Conditional ConditionalConfig
	// Memberships let identities of one tenant's IdP act in other tenants.
	Memberships []Membership
	// UpstreamConcurrency is how many upstream operations each IdP may have
	// in flight on this instance; beyond it logins at that IdP fail fast
	// (upstreamlimit.go). Zero means DefaultUpstreamConcurrency.
	UpstreamConcurrency int
	// Logger receives operational logs; Audit receives one event per sign-in outcome.
	Logger, Audit *slog.Logger
	// HTTPClient delivers back-channel logout tokens to clients'
	// backchannel_logout_uri, which the admin API can set (SECURITY S70);
	// redirects are never followed. Nil means an internal/outbound client
	// with the default policy: public addresses only.
	HTTPClient *http.Client
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// RateLimits throttle sign-ins per client IP and per tenant (S60,
	// ratelimit.go); the zero value limits nothing. TenantRateLimits
	// overrides the per-tenant limits of some tenants.
	RateLimits       RateLimits
	TenantRateLimits map[string]TenantLimits
	// PAR configures pushed authorization requests (RFC 9126, par.go).
	PAR PAROptions
	// DPoP configures DPoP proofs (RFC 9449, dpop.go).
	DPoP DPoPOptions
	// Device configures the device authorization grant (RFC 8628, device.go).
	Device DeviceOptions
	// RegistrationEndpoint, when set, is announced in the discovery
	// document (RFC 8414 §2): dynamic client registration is served beside
	// the broker (package registration).
	RegistrationEndpoint string
	// AuditMaxLen is how many audit events the store keeps per tenant
	// (audit.go): zero means DefaultAuditMaxLen, negative keeps none.
	AuditMaxLen int64
}

type client struct {
	Client
	secretHash   [32]byte
	confidential bool
	tenants      map[string]bool
	allTenants   bool            // AllowedTenants holds "*"
	idps         map[string]bool // nil: every IdP of an allowed tenant
	claims       map[string]bool // Claims, indexed
	sector       string          // pairwise sector; empty: public subject (pairwise.go)
}

func (c *client) public() bool { return !c.confidential }

// authenticate compares a presented secret in constant time (S16).
func (c *client) authenticate(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash[:]) == 1
}

func (c *client) allowsTenant(t string) bool { return c.allTenants || c.tenants[t] }

// allows reports whether the client's users may sign in through idp of
// tenant; every source of realm discovery is filtered through it.
func (c *client) allows(tenant, idp string) bool {
	return c.allowsTenant(tenant) && (c.idps == nil || c.idps[idp])
}

func (c *client) hasRedirect(uri string) bool {
	for _, r := range c.RedirectURIs {
		if r == uri { // S01: exact string match, RFC 9700 §4.1.3
			return true
		}
	}
	return false
}

// Server is the broker. Create it with New; serve Handler.
type Server struct {
	cfg    Config
	issuer *url.URL
	store  Store
	keys   *keyManager
	keyer  keyer
	// languages negotiates the language of pages (pages.go).
	languages locale.Negotiator
	// risk holds the risk event listeners (conditional.go, OnRisk).
	risk riskListeners
	// discoveryDoc caches the encoded discovery document (*cachedDoc).
	discoveryDoc atomic.Value
	// directory holds tenants, IdPs and rules; swapped by Reconfigure.
	directory     atomic.Pointer[directory]
	log           *slog.Logger
	audit         *slog.Logger
	now           func() time.Time
	echo          *echo.Echo
	logouts       *logoutQueue
	revoking      sync.WaitGroup   // deletions ending their sessions (deletion.go)
	sets          *setQueue        // CAEP security events (caep.go)
	users         *users.Directory // the tenant user directory (users.go); nil without one
	ops           *ops             // metrics and the audit stream writer (metrics.go)
	underLimit    underLimitCache  // failure limits recently read as not reached (ratelimit.go)
	refusedStarts refusalCache     // start limits recently found reached (pending.go)
	secure        bool             // cookies get Secure (https issuer)
	samlKey       samlKeyCache     // the SAML IdP signing key (samlidp_keys.go)
	readiness     readiness        // conditions besides the store (readiness.go)
	clientJWKS    jwksCache        // key sets fetched from clients' jwks_uri (clientauth.go)
	sectors       sectorCache      // sector identifier documents (pairwise.go)
	logos         logoCache        // the brands' logos (brand.go)
}

// New checks cfg, loads (or creates) the shared signing keys from store and
// returns a Server ready to serve.
func New(ctx context.Context, cfg Config, store Store) (*Server, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Host == "" {
		return nil, fmt.Errorf("broker: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	if cfg.Resolver == nil {
		return nil, errors.New("broker: no realm resolver")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SessionLifetime, 8*time.Hour)
	def(&cfg.AccessTokenLifetime, 10*time.Minute)
	def(&cfg.IDTokenLifetime, 10*time.Minute)
	def(&cfg.RefreshTokenLifetime, 720*time.Hour)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Audit == nil {
		cfg.Audit = cfg.Logger.With("stream", "audit")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg, issuer: iss, store: store, log: cfg.Logger, audit: cfg.Audit, now: cfg.Now,
		secure: iss.Scheme == "https",
	}
	if cfg.Clients == nil {
		cfg.Clients = []Client{}
	}
	d, err := newDirectory(Directory{Resolver: cfg.Resolver, IdPs: cfg.IdPs, Rules: cfg.Rules, Policies: cfg.Policies,
		Memberships: cfg.Memberships, Clients: cfg.Clients}, nil)
	if err != nil {
		return nil, err
	}
	s.directory.Store(d)
	s.prepareLogos(brandings(d, nil, true), true) // brand.go
	secret, previous := cfg.Secret, cfg.PreviousSecrets
	if len(secret) == 0 {
		previous = nil
		if secret, err = sharedSecret(ctx, store); err != nil {
			return nil, err
		}
	}
	s.keyer = keyer{secret: derive(secret, "store-keys")}
	// A client's own lifetimes reach MaxAccessTokenLifetime and
	// MaxIDTokenLifetime (lifetimes.go): retired keys verify that long.
	maxTTL := max(cfg.AccessTokenLifetime, cfg.IDTokenLifetime, MaxAccessTokenLifetime, MaxIDTokenLifetime)
	if s.keys, err = newKeyManager(store, secret, previous, cfg.Algorithm, cfg.RotateEvery, maxTTL, cfg.Now); err != nil {
		return nil, err
	}
	if err := s.keys.load(ctx); err != nil {
		return nil, fmt.Errorf("broker: load signing keys: %w", err)
	}
	s.openUsers()
	s.resealSAMLKeyAtStart(ctx) // samlidp_keys.go
	s.echo = s.routes()
	s.startOps()
	s.startLogoutQueue()
	s.startSETQueue()
	return s, nil
}

// sharedSecret returns the server secret kept in the store, creating it on
// first start, so every instance sharing the store derives the same keys.
func sharedSecret(ctx context.Context, store Store) ([]byte, error) {
	const key = "secret:server"
	v, err := store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		fresh := []byte(randomToken(tokenBytes))
		if err = store.Create(ctx, key, fresh, keysetTTL); err == nil {
			return fresh, nil
		}
		if errors.Is(err, ErrExists) {
			v, err = store.Get(ctx, key)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("broker: server secret: %w", err)
	}
	return v, nil
}

// Handler returns the broker's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// CallbackURL is the stable URL a tenant admin registers at their IdP.
func (s *Server) CallbackURL(idp string) string { return s.url("/callback/" + url.PathEscape(idp)) }

func (s *Server) url(path string) string { return strings.TrimSuffix(s.cfg.Issuer, "/") + path }

// path returns the route path for an endpoint under the issuer's path.
func (s *Server) path(p string) string { return strings.TrimSuffix(s.issuer.Path, "/") + p }
