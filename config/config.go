// Package config is the model of realmgate's YAML configuration file. The
// structs below are the reference documentation of that file: every field
// carries the YAML key it is read from and a comment saying what it means.
//
// Load reads a file, expands ${VAR} references from the environment,
// refuses unknown keys, applies defaults and validates the result, reporting
// every problem at once with the file, line and dotted field path of each.
package config

import (
	"slices"
)

// Store types.
const (
	// StoreMemory keeps everything in the process: one instance only.
	StoreMemory = "memory"
	// StoreRedis keeps everything in Redis, shared by any number of instances.
	StoreRedis = "redis"
)

// Signing algorithms.
const (
	// AlgES256 is ECDSA P-256 with SHA-256 (RFC 7518 §3.4), the default.
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), for old clients.
	AlgRS256 = "RS256"
)

// AllowAllTenants in Client.AllowedTenants lets a client sign in users of every tenant.
const AllowAllTenants = "*"

// Config is the whole configuration file.
type Config struct {
	// Issuer is the one issuer every SaaS app trusts: the iss of every token
	// and the base of every endpoint URL. An absolute https URL (http only on
	// a loopback host), without query or fragment.
	Issuer string `yaml:"issuer"`
	// Listen is the host:port the HTTP server binds. Default 127.0.0.1:8080.
	Listen string `yaml:"listen,omitempty"`
	// TLS serves listen over HTTPS with this certificate (tls.go); unset:
	// plain HTTP, for a TLS-terminating proxy in front.
	TLS *TLS `yaml:"tls,omitempty"`
	// BaseDomain is the parent domain of tenant subdomains: a tenant with
	// subdomain "contoso" is reached at contoso.<base_domain>. Optional.
	BaseDomain string `yaml:"base_domain,omitempty"`
	// Store selects where sessions and short-lived artifacts live.
	Store Store `yaml:"store"`
	// Keys configures token signing keys.
	Keys Keys `yaml:"keys"`
	// Session configures the single sign-on session at the broker.
	Session Session `yaml:"session"`
	// Tokens configures the lifetimes of issued tokens.
	Tokens Tokens `yaml:"tokens"`
	// Clients are the SaaS applications (downstream relying parties).
	Clients []Client `yaml:"clients,omitempty"`
	// TrustedProxies lists the CIDR prefixes of reverse proxies whose
	// X-Forwarded-For header is believed when establishing the client IP (for
	// ip_ranges, rate limits and audit). Empty: forwarded headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// Tenants are the customer organisations and their identity providers.
	Tenants []Tenant `yaml:"tenants,omitempty"`
	// Rules are global claims rules, run before each tenant's own rules.
	Rules []Rule `yaml:"rules,omitempty"`
	// AdminAPI configures the admin API that onboards tenants without a
	// restart (docs/admin-api.md). Off unless it lists at least one token.
	AdminAPI AdminAPI `yaml:"admin_api,omitempty"`
	// RateLimits throttle sign-ins per client IP and per tenant (operations.go).
	RateLimits RateLimits `yaml:"rate_limits,omitempty"`
	// SCIM throttles the SCIM 2.0 provisioning endpoint (scim.go).
	SCIM SCIM `yaml:"scim,omitempty"`
	// Audit configures the per-tenant audit streams in the store (operations.go).
	Audit Audit `yaml:"audit,omitempty"`
	// Ops configures the metrics, health and profiling listener (operations.go).
	Ops Ops `yaml:"ops,omitempty"`
	// UpstreamConcurrency is how many sign-in steps (login starts and
	// callbacks) each upstream IdP may have in flight on one instance;
	// beyond it, sign-ins at that IdP fail at once with a page naming it,
	// so a hanging IdP cannot tie up the instance (docs/resilience.md).
	// Default 64 (0 means the default).
	UpstreamConcurrency int `yaml:"upstream_concurrency,omitempty"`
	// Outbound limits the addresses upstream requests may reach: public
	// ones only unless this allows more (outbound.go, SECURITY S70).
	Outbound Outbound `yaml:"outbound,omitempty"`
	// ConditionalAccess configures sign-in risk signals (GeoIP, named
	// locations, IP lists) and the global conditional access policies
	// (conditional.go, docs/conditional-access.md).
	ConditionalAccess ConditionalAccess `yaml:"conditional_access,omitempty"`
	// PushedAuthorization configures pushed authorization requests (PAR,
	// RFC 9126, dpoppar.go).
	PushedAuthorization PushedAuthorization `yaml:"par,omitempty"`
	// ProofOfPossession configures sender-constrained tokens by DPoP (RFC
	// 9449, dpoppar.go).
	ProofOfPossession ProofOfPossession `yaml:"dpop,omitempty"`
	// DeviceAuthorization configures the device authorization grant (RFC
	// 8628, device.go).
	DeviceAuthorization DeviceAuthorization `yaml:"device_authorization,omitempty"`

	src source // where each field was read from; zero for a Config built in code
}

// DefaultAdminListen is where the admin API listens when admin_api.listen is unset: loopback only.
const DefaultAdminListen = "127.0.0.1:8443"

// AdminAPI configures the admin REST API, served on its own listener.
type AdminAPI struct {
	// Listen is the host:port of the admin listener. Default 127.0.0.1:8443
	// (loopback); anything else should have tls set or sit behind a
	// TLS-terminating proxy.
	Listen string `yaml:"listen,omitempty"`
	// TLS serves the admin API over HTTPS (tls.go); with client_ca_file it
	// also requires a client certificate. Unset: plain HTTP.
	TLS *TLS `yaml:"tls,omitempty"`
	// Tokens are the bearer tokens that may call the API; none turns the API off.
	Tokens []AdminToken `yaml:"tokens,omitempty"`
	// DNSResolver is the host:port of the DNS server asked for domain
	// verification TXT records. Empty: the system resolver.
	DNSResolver string `yaml:"dns_resolver,omitempty"`
}

// AdminToken is one admin API credential.
type AdminToken struct {
	// Name identifies the caller in audit events (who made a change); unique.
	Name string `yaml:"name"`
	// Token is the bearer token, at least 32 characters of random text. Use ${VAR}.
	Token string `yaml:"token"`
	// Tenant, when set, limits the token to that tenant's resources (a
	// per-tenant admin); empty means an operator with access to everything.
	Tenant string `yaml:"tenant,omitempty"`
}

// Store selects and configures the store.
type Store struct {
	// Type is "memory" (default: one process, lost on restart) or "redis".
	Type string `yaml:"type"`
	// Redis configures the Redis connection when Type is "redis".
	Redis Redis `yaml:"redis,omitempty"`
	// RecordFormat is how sessions, codes, refresh-token grants, pending
	// upstream sign-ins and user directory records are written: "binary"
	// (default; less CPU per sign-in) or "json", the only form releases
	// before issue 21's binary records read. Both forms are always read.
	// Set "json" while instances of such a release share the store (a
	// rolling upgrade), and before rolling back to one; "binary" once
	// every instance runs this release.
	RecordFormat string `yaml:"record_format,omitempty"`
}

// Record formats (Store.RecordFormat).
const (
	RecordsBinary = "binary"
	RecordsJSON   = "json"
)

// Redis configures a Redis connection: standalone (one address), Cluster
// (several addresses) or Sentinel (MasterName set; addresses are the sentinels).
type Redis struct {
	// Addrs are host:port addresses: one for a standalone server, several for
	// a cluster, or the sentinels when MasterName is set.
	Addrs []string `yaml:"addrs,omitempty"`
	// MasterName, when set, selects Sentinel mode with this master name.
	MasterName string `yaml:"master_name,omitempty"`
	// Username is the Redis ACL user name (Redis 6+); empty for the default user.
	Username string `yaml:"username,omitempty"`
	// Password is the Redis password; use ${VAR} to read it from the environment.
	Password string `yaml:"password,omitempty"`
	// SentinelUsername is the ACL user realmgate authenticates to the
	// sentinels as (Sentinel mode), when they require it.
	SentinelUsername string `yaml:"sentinel_username,omitempty"`
	// SentinelPassword is the sentinels' password (Sentinel mode), when
	// they require one; use ${VAR} to read it from the environment.
	SentinelPassword string `yaml:"sentinel_password,omitempty"`
	// TLS connects to every node and sentinel over TLS (tls.go); unset:
	// plain TCP.
	TLS *RedisTLS `yaml:"tls,omitempty"`
	// DB is the database number; a cluster supports only 0.
	DB int `yaml:"db,omitempty"`
	// ReplicaAck says when a single-use write (a code redeemed, a refresh
	// token rotated, a family revoked, a SAML assertion id or logout jti
	// recorded, an admin state version written, a session logged out)
	// waits for a replica to acknowledge it before realmgate answers; without
	// the acknowledgement the request is refused (503), never answered as
	// done, so a failover cannot undo it (docs/resilience.md). "auto"
	// (default): wait in Sentinel mode, on every master of a Cluster that
	// has replicas, and on a standalone server once it has reported a replica;
	// "always": wait on every such write (a standalone endpoint your
	// platform fails over); "off": never wait (fastest; a failover may undo
	// the last single-use writes the old primary acknowledged).
	ReplicaAck string `yaml:"replica_ack,omitempty"`
	// ReplicaAckCount is how many replicas must acknowledge; default 1. Set
	// it to the number of replicas for an exact guarantee with more than
	// one (docs/resilience.md).
	ReplicaAckCount int `yaml:"replica_ack_count,omitempty"`
	// ReplicaAckTimeout is how long a single-use write waits for the
	// acknowledgement before the request is refused: 1ms to
	// store.redis.read_timeout less 50ms (450ms by default), default 200ms.
	ReplicaAckTimeout Duration `yaml:"replica_ack_timeout,omitempty"`
	// DialTimeout bounds connecting to a Redis node or sentinel.
	DialTimeout Duration `yaml:"dial_timeout,omitempty"`
	// ReadTimeout bounds the wait for one reply: a command that takes
	// longer fails, and the request gets a 503 (SECURITY S62). Raise it when
	// a busy Redis answers slowly rather than not at all.
	ReadTimeout Duration `yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds sending one command (large admin writes send the
	// most).
	WriteTimeout Duration `yaml:"write_timeout,omitempty"`
	// PoolTimeout bounds the wait for a free connection when every pooled
	// connection is busy.
	PoolTimeout Duration `yaml:"pool_timeout,omitempty"`
}

// Keys configures token signing.
type Keys struct {
	// Algorithm is the signing algorithm of issued tokens: "ES256" (default) or "RS256".
	Algorithm string `yaml:"algorithm"`
	// RotateEvery is how often a new signing key is made. The old key stays in
	// the JWKS until the tokens it signed expire. Default 24h.
	RotateEvery Duration `yaml:"rotate_every"`
	// Secret is the server secret: it keys the HMAC under which the store
	// indexes tokens (SECURITY S17) and encrypts signing keys kept in the
	// store. At least 32 characters of random text (openssl rand -base64 32);
	// use ${VAR}. Optional for one process on the memory store; a redis
	// deployment should set it so every instance shares it (see Warnings).
	Secret string `yaml:"secret,omitempty"`
	// PreviousSecrets are secrets keys.secret replaced, kept while rotating
	// it: the signing-key set and the admin API's stored secrets encrypted
	// under one of them still decrypt, and are written again under
	// keys.secret. Store records keyed under a previous secret (sessions,
	// refresh tokens) are not found any more: rotating signs users out
	// (docs/operations.md). Use ${VAR}.
	PreviousSecrets []string `yaml:"previous_secrets,omitempty"`
}

// Session configures the broker's single sign-on session.
type Session struct {
	// Lifetime is how long a sign-in at the broker lasts (sliding). Default 8h.
	Lifetime Duration `yaml:"lifetime"`
}

// Tokens configures token lifetimes.
type Tokens struct {
	// AccessTokenLifetime is the lifetime of access tokens. Default 10m.
	AccessTokenLifetime Duration `yaml:"access_token_lifetime"`
	// IDTokenLifetime is the lifetime of ID tokens. Default 10m.
	IDTokenLifetime Duration `yaml:"id_token_lifetime"`
	// RefreshTokenLifetime is the absolute lifetime of a refresh-token family. Default 720h.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
}

// Client is one SaaS application that trusts realmgate.
type Client struct {
	// ID is the OAuth client_id, unique among clients.
	ID string `yaml:"id" json:"id"`
	// Secret is the client secret; absent means a public client (PKCE only).
	// Use ${VAR}.
	Secret string `yaml:"secret,omitempty" json:"secret,omitempty"`
	// RedirectURIs are the exact redirect URIs the client may use (SECURITY
	// S01): https, http on a loopback host, or a private-use scheme such as
	// com.example.app:/callback (RFC 8252 §7.1). Matched byte for byte.
	RedirectURIs []string `yaml:"redirect_uris" json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return to
	// (SECURITY S65); same rules as RedirectURIs.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris,omitempty" json:"post_logout_redirect_uris,omitempty"`
	// AllowedTenants lists the tenant ids whose users may sign in to this
	// client, or ["*"] for every tenant. Empty allows none.
	AllowedTenants []string `yaml:"allowed_tenants,omitempty" json:"allowed_tenants,omitempty"`

	// ExchangeAudiences lists the client ids (APIs) this client may obtain
	// tokens for with RFC 8693 token exchange; empty: no exchange.
	ExchangeAudiences []string `yaml:"exchange_audiences,omitempty" json:"exchange_audiences,omitempty"`

	// BackchannelLogoutURI receives OIDC back-channel logout tokens when a
	// session the client signed in through ends (https, or http on loopback).
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri,omitempty" json:"backchannel_logout_uri,omitempty"`

	// SSFPushURL makes the client an OpenID Shared Signals receiver:
	// realmgate pushes CAEP events about its users there (session-revoked,
	// token-claims-change, credential-change) as signed Security Event
	// Tokens (RFC 8417, push delivery RFC 8935); https, or http on loopback.
	SSFPushURL string `yaml:"ssf_push_url,omitempty" json:"ssf_push_url,omitempty"`

	// AllowedIdPs, when set, narrows the client further to these IdP ids: no
	// hint, cookie or choice can send its users to another IdP.
	AllowedIdPs []string `yaml:"allowed_idps,omitempty" json:"allowed_idps,omitempty"`

	// Claims names the claims this client receives beyond the standard ones
	// its scopes release (SECURITY S75): custom claims that tenants' rules
	// add, by name, and "roles" to receive roles without asking for the
	// roles scope. A custom claim not named here never reaches the client.
	Claims []string `yaml:"claims,omitempty" json:"claims,omitempty"`

	// SAML, when set, makes this client a SAML 2.0 service provider that
	// signs in through realmgate as its IdP (samlapp.go, docs/saml-idp.md)
	// instead of an OIDC client.
	SAML *SAMLApp `yaml:"saml,omitempty" json:"saml,omitempty"`

	// RequirePushedAuthorizationRequests makes /authorize accept this
	// client's requests only through a request_uri from the PAR endpoint
	// (RFC 9126 §6, docs/dpop-par.md).
	RequirePushedAuthorizationRequests bool `yaml:"require_pushed_authorization_requests,omitempty" json:"require_pushed_authorization_requests,omitempty"`
	// DPoPBoundAccessTokens makes every token request of this client carry
	// a DPoP proof, so its access tokens are always bound to its key
	// (RFC 9449 §5.2, docs/dpop-par.md).
	DPoPBoundAccessTokens bool `yaml:"dpop_bound_access_tokens,omitempty" json:"dpop_bound_access_tokens,omitempty"`

	// Tenant, when set, makes this an API client of that tenant (its tenant
	// admins may create such clients through the admin API): its
	// client_credentials tokens carry the tenant's id as tid, and the
	// tenant's rules run over them with the client as the subject (the
	// rules see client and an upstream with client_id only), so rules can
	// add roles. allowed_tenants may then name only this tenant.
	Tenant string `yaml:"tenant,omitempty" json:"tenant,omitempty"`

	// GrantTypes are the grants the client may use at the token endpoint:
	// authorization_code, refresh_token, client_credentials (RFC 6749
	// §4.4), urn:ietf:params:oauth:grant-type:token-exchange and
	// urn:ietf:params:oauth:grant-type:device_code (RFC 8628, device.go).
	// Empty means authorization_code, refresh_token and token exchange
	// (which exchange_audiences governs). A client whose only grant is
	// client_credentials, or that has device_code without
	// authorization_code, needs no redirect_uris.
	GrantTypes []string `yaml:"grant_types,omitempty" json:"grant_types,omitempty"`

	// Scopes are the scopes a client_credentials token may carry; a request
	// without scope gets them all, a request for another scope is refused.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`

	// Audiences are what a client_credentials token may name as aud (the
	// APIs it calls: client ids or resource URIs), chosen with the
	// audience or resource parameter; without one the token is for the
	// first. Empty: the client's own id.
	Audiences []string `yaml:"audiences,omitempty" json:"audiences,omitempty"`

	// TokenEndpointAuthMethod is how the client authenticates at the token,
	// revocation and introspection endpoints (RFC 7591 §2):
	// client_secret_basic, client_secret_post, private_key_jwt (RFC 7523,
	// with jwks or jwks_uri) or none (a public client). Empty means none
	// without a secret, and client_secret_basic or client_secret_post with
	// one. Any other method is refused for this client.
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method,omitempty" json:"token_endpoint_auth_method,omitempty"`

	// JWKS holds the client's public keys for private_key_jwt, inline (a
	// JSON Web Key Set, RFC 7517 §5). One of jwks and jwks_uri.
	JWKS *JWKS `yaml:"jwks,omitempty" json:"jwks,omitempty"`

	// JWKSURI is where the client publishes its key set for
	// private_key_jwt (https): fetched through the outbound policy,
	// cached for an hour, fetched again for an unknown kid at most every
	// 30 s.
	JWKSURI string `yaml:"jwks_uri,omitempty" json:"jwks_uri,omitempty"`

	// ClientName is the application's name shown on the consent and device pages
	// (RFC 7591 §2); empty: the client id.
	ClientName string `yaml:"client_name,omitempty" json:"client_name,omitempty"`

	// AccessTokenLifetime replaces tokens.access_token_lifetime for this
	// client's access tokens (and expires_in); at most 24h. Empty: the
	// server's.
	AccessTokenLifetime Duration `yaml:"access_token_lifetime,omitempty" json:"access_token_lifetime,omitempty"`
	// IDTokenLifetime replaces tokens.id_token_lifetime for this client's
	// ID tokens; at most 24h. Empty: the server's.
	IDTokenLifetime Duration `yaml:"id_token_lifetime,omitempty" json:"id_token_lifetime,omitempty"`
	// RefreshTokenLifetime replaces tokens.refresh_token_lifetime, the
	// absolute lifetime of this client's refresh-token families (rotation
	// never extends it); at most 8760h. Empty: the server's.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime,omitempty" json:"refresh_token_lifetime,omitempty"`

	// SubjectType is public (the default: every client sees the same sub
	// for a user) or pairwise (OIDC Core §8.1): the sub this client sees is
	// HMAC(server secret, sector || sub), equal only among clients of the
	// same sector, in ID tokens, access tokens, userinfo, introspection,
	// token exchange and back-channel logout tokens.
	SubjectType string `yaml:"subject_type,omitempty" json:"subject_type,omitempty"`
	// SectorIdentifierURI names a pairwise client's sector (its host) and
	// lists its redirect URIs as a JSON array (OIDC Registration §5): the
	// document is fetched through the outbound policy and every
	// redirect_uri used must be in it. Without it the sector is the host
	// of the redirect URIs, which must then all share one host.
	SectorIdentifierURI string `yaml:"sector_identifier_uri,omitempty" json:"sector_identifier_uri,omitempty"`

	// ThirdParty marks an application not operated by the users'
	// organizations: after sign-in, before it gets a code, the user sees a
	// consent page with its name and the scopes and claims it asks for;
	// the answer is remembered per user and client and asked again when
	// it asks for more (prompt=consent asks always).
	ThirdParty bool `yaml:"third_party,omitempty" json:"third_party,omitempty"`

	// Branding is how pages that know this client look (its discovery and
	// consent pages); it wins over the tenant's (docs/branding.md).
	Branding *Branding `yaml:"branding,omitempty" json:"branding,omitempty"`
}

// JWKS is a JSON Web Key Set (RFC 7517 §5): public keys only.
type JWKS struct {
	// Keys are the JSON Web Keys (RFC 7517 §4): RSA of 2048 bits or more
	// (RS256, PS256 and their longer hashes), EC P-256 (ES256), P-384
	// (ES384) or P-521 (ES512), or Ed25519 (EdDSA).
	Keys []JWK `yaml:"keys" json:"keys"`
}

// JWK is one public JSON Web Key (RFC 7517 §4, RFC 7518 §6). Private key
// members are not accepted.
type JWK struct {
	// Kty is the key type: RSA, EC or OKP.
	Kty string `yaml:"kty" json:"kty"`
	// Kid is the key id the client's assertions name in their kid header.
	Kid string `yaml:"kid,omitempty" json:"kid,omitempty"`
	// Use, when set, must be sig.
	Use string `yaml:"use,omitempty" json:"use,omitempty"`
	// Alg, when set, is the only algorithm the key verifies.
	Alg string `yaml:"alg,omitempty" json:"alg,omitempty"`
	// Crv is the curve of an EC (P-256, P-384, P-521) or OKP (Ed25519) key.
	Crv string `yaml:"crv,omitempty" json:"crv,omitempty"`
	// X is an EC key's x coordinate or an OKP key's public key, base64url.
	X string `yaml:"x,omitempty" json:"x,omitempty"`
	// Y is an EC key's y coordinate, base64url.
	Y string `yaml:"y,omitempty" json:"y,omitempty"`
	// N is an RSA key's modulus, base64url.
	N string `yaml:"n,omitempty" json:"n,omitempty"`
	// E is an RSA key's public exponent, base64url.
	E string `yaml:"e,omitempty" json:"e,omitempty"`
}

// Tenant is one customer organisation.
type Tenant struct {
	// ID is the tenant id carried as tid in tokens: lower case letters,
	// digits, '-' and '_', at most 63 characters, unique.
	ID string `yaml:"id" json:"id"`
	// Name is the display name shown on discovery pages. Default: the ID.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Domains are the tenant's verified email domains; "*.example.com" also
	// matches every subdomain of example.com. A domain belongs to one tenant.
	Domains []string `yaml:"domains,omitempty" json:"domains,omitempty"`
	// Subdomain is the DNS label under BaseDomain that sends users straight to
	// this tenant. Optional, unique.
	Subdomain string `yaml:"subdomain,omitempty" json:"subdomain,omitempty"`
	// IPRanges are CIDR prefixes (203.0.113.0/24) whose users are sent to
	// this tenant.
	IPRanges []string `yaml:"ip_ranges,omitempty" json:"ip_ranges,omitempty"`
	// Default marks the tenant that receives users whose domain matches no
	// tenant (personal accounts). At most one tenant is the default.
	Default bool `yaml:"default,omitempty" json:"default,omitempty"`
	// Language is the default language of the tenant's pages (discovery,
	// errors, the setup portal) when the browser's Accept-Language names none
	// of realmgate's languages: en, de, fr, es or ja. Default: en.
	Language string `yaml:"language,omitempty" json:"language,omitempty"`
	// Branding is how the tenant's pages look: name, logo, colours and a
	// support link (docs/branding.md).
	Branding *Branding `yaml:"branding,omitempty" json:"branding,omitempty"`

	// Members are identities from other tenants' IdPs who may act in this
	// tenant (a partner's consultant): they pick it at sign-in (the tenant
	// parameter or a picker page) and get this tenant's tid and rules.
	Members []Member `yaml:"members,omitempty" json:"members,omitempty"`

	// Impersonation, when set, lets operators act as this tenant's users
	// through token exchange (short-lived tokens carrying act, audited).
	Impersonation *Impersonation `yaml:"impersonation,omitempty" json:"impersonation,omitempty"`

	// Directory says how the tenant's user directory meets a sign-in: a
	// record is created at each user's first sign-in unless provisioned_only,
	// and a record provisioned ahead (SCIM, admin API) is matched by match.
	Directory *TenantDirectory `yaml:"directory,omitempty" json:"directory,omitempty"`

	// Access, when set, offers the tenant's users time-bound role grants
	// (just-in-time access, docs/jit-access.md): requested for a duration
	// with a justification, approved by an approver, expiring by themselves.
	Access *Access `yaml:"access,omitempty" json:"access,omitempty"`

	// RequireMFA refuses sign-ins whose upstream authentication was not
	// multi-factor (amr, or SAML AuthnContext); the IdP is asked for MFA
	// with its mfa_acr_values.
	RequireMFA bool `yaml:"require_mfa,omitempty" json:"require_mfa,omitempty"`
	// ConditionalAccess holds the tenant's conditional access policies
	// and authentication contexts (conditional.go, docs/conditional-access.md).
	ConditionalAccess *TenantAccess `yaml:"conditional_access,omitempty" json:"conditional_access,omitempty"`
	// RateLimits overrides the per-tenant sign-in limits for this tenant.
	RateLimits TenantRateLimits `yaml:"rate_limits,omitempty" json:"rate_limits,omitzero"`
	// Providers are the tenant's upstream identity providers, in the order
	// they are offered.
	Providers []Provider `yaml:"providers,omitempty" json:"providers,omitempty"`
	// Rules are the tenant's claims rules, run in order after the global rules.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// Provider is one upstream identity provider of a tenant.
type Provider struct {
	// ID identifies the provider across all tenants; it appears in callback
	// URLs (/callback/<id>, /saml/<id>/acs) that tenant admins register, so it
	// is lower case letters, digits, '-' and '_', at most 63 characters.
	ID string `yaml:"id" json:"id"`
	// Type is the IdP type, registered by its package under idp/: in this
	// build "oidc", "saml", "github", "google", "microsoft" or "oauth2".
	Type string `yaml:"type" json:"type"`
	// Name is the display name on the provider button. Default: "GitHub",
	// "Google" or "Microsoft" for those types, otherwise the ID.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Pending marks an IdP added through the setup portal: it stays pending
	// until the customer's admin activates it (pending: false). A pending IdP
	// serves only test sign-ins started from the setup portal, never end
	// users: no email domain, hint, remembered choice, provider button or
	// IdP-initiated response reaches it. Default false.
	Pending bool `yaml:"pending,omitempty" json:"pending,omitempty"`

	// Issuer is the upstream OpenID issuer (oidc: required; microsoft:
	// optional, to pin one Entra directory, or a {tenantid} template for a
	// national cloud; default https://login.microsoftonline.com/{tenantid}/v2.0).
	// Discovery's issuer must equal it (SECURITY S23); Entra multi-tenant
	// issuers keep their {tenantid}.
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	// ClientID is realmgate's client id at the upstream provider (all types but saml).
	ClientID string `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	// ClientSecret is realmgate's client secret at the upstream provider. Use ${VAR}.
	ClientSecret string `yaml:"client_secret,omitempty" json:"client_secret,omitempty"`
	// Scopes are requested upstream. Default for oidc, google and microsoft:
	// ["openid", "profile", "email"]; those types must request "openid".
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`

	// AuthURL is the authorization endpoint (oauth2: required).
	AuthURL string `yaml:"auth_url,omitempty" json:"auth_url,omitempty"`
	// TokenURL is the token endpoint (oauth2: required).
	TokenURL string `yaml:"token_url,omitempty" json:"token_url,omitempty"`
	// UserInfoURL is the endpoint that describes the user (oauth2: required).
	UserInfoURL string `yaml:"userinfo_url,omitempty" json:"userinfo_url,omitempty"`
	// Userinfo says when an oidc provider's userinfo endpoint is called
	// after the ID token is verified: "auto" (default) only when the ID
	// token lacks a claim of a scope requested upstream (profile: name,
	// given_name, family_name; email: email, email_verified; address:
	// address; phone: phone_number, phone_number_verified; groups: groups;
	// any other scope but openid and offline_access: always), saving one
	// upstream call per sign-in; "always" at every sign-in (claims the OP
	// sends only there under other names); "never". Optional.
	Userinfo string `yaml:"userinfo,omitempty" json:"userinfo,omitempty"`

	// HostedDomain restricts a google provider to one Google Workspace
	// domain: the ID token's hd claim must equal it (Google sends hd only for
	// Workspace accounts, so consumer gmail.com accounts are refused). It is
	// also sent as the hd authorization parameter, which only tunes Google's
	// account chooser. Optional.
	HostedDomain string `yaml:"hosted_domain,omitempty" json:"hosted_domain,omitempty"`
	// AllowedTenants lists the Entra directory (tenant) ids, as GUIDs, whose
	// users may sign in through a multi-tenant issuer (microsoft without a
	// pinned issuer, or oidc with a {tenantid} issuer): the ID token's tid
	// must be listed. Empty: any work tenant. Optional.
	AllowedTenants []string `yaml:"allowed_tenants,omitempty" json:"allowed_tenants,omitempty"`
	// Accounts selects which Microsoft accounts a microsoft provider takes:
	// "any" (default: work or school accounts and personal Microsoft
	// accounts, through the common endpoint), "work" (the organizations
	// endpoint; personal accounts refused) or "personal" (personal Microsoft
	// accounts only, the consumer tenant 9188040d-6c67-4c5b-b112-36a304b66dad).
	// Every ID token's issuer is checked against its own tid (SECURITY S23).
	Accounts string `yaml:"accounts,omitempty" json:"accounts,omitempty"`

	// MetadataURL is where the SAML IdP publishes its metadata (saml: one of
	// metadata_url, metadata or metadata_file). It is fetched on first use and
	// again in the background every 12 hours, or sooner when the metadata's
	// cacheDuration / validUntil say so; metadata past its validUntil is
	// refused and the last good copy kept. Every signing certificate it lists
	// is trusted, so a certificate rollover needs no change here.
	MetadataURL string `yaml:"metadata_url,omitempty" json:"metadata_url,omitempty"`
	// Metadata is the SAML IdP's metadata XML inline (saml: one of
	// metadata_url, metadata or metadata_file).
	Metadata string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	// MetadataFile is a file holding the SAML IdP's metadata XML (saml: one
	// of metadata_url, metadata or metadata_file), read at start. A relative
	// path is relative to the configuration file's directory.
	MetadataFile string `yaml:"metadata_file,omitempty" json:"metadata_file,omitempty"`
	// EntityID pins the SAML IdP's entityID expected as Issuer (SECURITY S41).
	// Default: the entityID in the metadata. Required to pick one IdP out of
	// metadata that lists several (an EntitiesDescriptor).
	EntityID string `yaml:"entity_id,omitempty" json:"entity_id,omitempty"`
	// SPKeyFile is a PEM file with realmgate's RSA private key for this SAML
	// IdP (PKCS #1 or PKCS #8): it signs AuthnRequests and decrypts encrypted
	// assertions, and its certificate is published in the SP metadata. Set
	// with SPCertFile or not at all. A relative path is relative to the
	// configuration file's directory. Without it requests are unsigned and
	// encrypted assertions cannot be read.
	SPKeyFile string `yaml:"sp_key_file,omitempty" json:"sp_key_file,omitempty"`
	// SPCertFile is a PEM file with the X.509 certificate of SPKeyFile's key
	// (a self-signed one is fine: openssl req -x509 -newkey rsa:2048 -days
	// 3650 -nodes -keyout sp.key -out sp.crt -subj /CN=realmgate).
	SPCertFile string `yaml:"sp_cert_file,omitempty" json:"sp_cert_file,omitempty"`
	// SPKey is the PEM text of sp_key_file's key, inline (use ${VAR} in the
	// file; the admin API, which cannot name files, stores it encrypted and
	// never shows it). Set with SPCert, instead of sp_key_file and
	// sp_cert_file.
	SPKey string `yaml:"sp_key,omitempty" json:"sp_key,omitempty"`
	// SPCert is the PEM text of the certificate of SPKey's key, inline.
	SPCert string `yaml:"sp_cert,omitempty" json:"sp_cert,omitempty"`
	// SignRequests signs every AuthnRequest even when the IdP's metadata does
	// not ask for signed requests (WantAuthnRequestsSigned). Needs sp_key_file
	// (or sp_key).
	SignRequests bool `yaml:"sign_requests,omitempty" json:"sign_requests,omitempty"`
	// Binding is how the AuthnRequest is sent to the IdP: "redirect"
	// (HTTP-Redirect, the default when the IdP offers it) or "post" (HTTP-POST).
	Binding string `yaml:"binding,omitempty" json:"binding,omitempty"`
	// NameIDFormat is the NameID format requested from the IdP: "persistent",
	// "email" or "unspecified" (default), or the format's full URN.
	NameIDFormat string `yaml:"name_id_format,omitempty" json:"name_id_format,omitempty"`
	// SubjectAttribute names the SAML attribute (its Name URI or short alias,
	// such as "uid" or "objectidentifier") whose value becomes the user's
	// subject instead of the NameID. Required when the IdP sends transient
	// NameIDs, which are never taken as a subject.
	SubjectAttribute string `yaml:"subject_attribute,omitempty" json:"subject_attribute,omitempty"`
	// ClockSkew is the clock difference tolerated with the SAML IdP when
	// checking NotBefore / NotOnOrAfter (SECURITY S41). Default 2m, at most 3m.
	ClockSkew Duration `yaml:"clock_skew,omitempty" json:"clock_skew,omitempty"`
	// IdPInitiated accepts unsolicited (IdP-initiated) SAML responses. Off by
	// default (SECURITY S44); when on, RelayStateAllowlist is required and the
	// replay cache and a short freshness window still apply.
	IdPInitiated bool `yaml:"idp_initiated,omitempty" json:"idp_initiated,omitempty"`

	// UpstreamLogout ends the user's session at this IdP too when they log
	// out of realmgate (OIDC types; register <issuer>/logout/upstream at the
	// IdP as a post-logout redirect URI).
	UpstreamLogout bool `yaml:"upstream_logout,omitempty" json:"upstream_logout,omitempty"`

	// MFAACRValues are sent upstream as acr_values to ask this IdP for
	// multi-factor authentication (default: the PAPE multi-factor policy
	// URI; Okta, for example, wants urn:okta:loa:2fa:any).
	MFAACRValues []string `yaml:"mfa_acr_values,omitempty" json:"mfa_acr_values,omitempty"`
	// TokenExchange lets clients exchange tokens this IdP issued for
	// realmgate tokens of its tenant (RFC 8693; oidc, microsoft and google
	// types with a single issuer; tokenexchange.go).
	TokenExchange *TokenExchange `yaml:"token_exchange,omitempty" json:"token_exchange,omitempty"`
	// Settings are the settings of a provider type that has its own (a type
	// added in its own package declares their names and checks them),
	// like {base_url: https://sso.example.com, realm: acme}.
	Settings map[string]string `yaml:"settings,omitempty" json:"settings,omitempty"`

	// RelayStateAllowlist are the exact URLs an IdP-initiated response's
	// RelayState may name, where the browser goes after the sign-in (an
	// application's login URL); the first is used when RelayState is empty.
	// Required with idp_initiated (SECURITY S44).
	RelayStateAllowlist []string `yaml:"relay_state_allowlist,omitempty" json:"relay_state_allowlist,omitempty"`
}

// Rule is one claims rule, compiled by package transform. When If is empty
// or evaluates to true, the rule's actions run. A rule has at least one action.
type Rule struct {
	// Name identifies the rule in traces and errors; required.
	Name string `yaml:"name" json:"name"`
	// If is a CEL condition; empty means always.
	If string `yaml:"if,omitempty" json:"if,omitempty"`
	// Set maps claim names to CEL expressions whose value replaces the claim.
	Set map[string]string `yaml:"set,omitempty" json:"set,omitempty"`
	// Add maps claim names to CEL expressions whose values are appended to the claim.
	Add map[string]string `yaml:"add,omitempty" json:"add,omitempty"`
	// Remove lists claims to drop.
	Remove []string `yaml:"remove,omitempty" json:"remove,omitempty"`
	// Map translates values of one claim through a table into another.
	Map *MapRule `yaml:"map,omitempty" json:"map,omitempty"`
	// Deny, when set, refuses the sign-in with this message.
	Deny string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// Stop ends rule processing after this rule.
	Stop bool `yaml:"stop,omitempty" json:"stop,omitempty"`
}

// MapRule translates values through a table.
type MapRule struct {
	// From is the source: an upstream attribute (upstream.groups) or a claim.
	From string `yaml:"from" json:"from"`
	// To is the claim that receives the mapped values (roles).
	To string `yaml:"to" json:"to"`
	// Table maps source values to output values; unlisted values are dropped
	// unless Default is set.
	Table map[string]string `yaml:"table" json:"table"`
	// Default is the output for values not in Table; empty drops them.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
}

// Tenant returns the tenant with the given id, or nil.
func (c *Config) Tenant(id string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i]
		}
	}
	return nil
}

// Provider returns the provider with the given id and the tenant that owns
// it, or nil, nil.
func (c *Config) Provider(id string) (*Tenant, *Provider) {
	for i := range c.Tenants {
		t := &c.Tenants[i]
		for j := range t.Providers {
			if t.Providers[j].ID == id {
				return t, &t.Providers[j]
			}
		}
	}
	return nil, nil
}

// Client returns the client with the given id, or nil.
func (c *Config) Client(id string) *Client {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i]
		}
	}
	return nil
}

// AllowsTenant reports whether users of the tenant may sign in to the client.
func (cl *Client) AllowsTenant(tenant string) bool {
	return slices.Contains(cl.AllowedTenants, AllowAllTenants) || slices.Contains(cl.AllowedTenants, tenant)
}

// Member is an identity from another tenant's IdP allowed into a tenant.
type Member struct {
	// IdP is the id of the IdP that must authenticate the member.
	IdP string `yaml:"idp" json:"idp"`
	// Subject is the member's upstream subject at that IdP; or
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
	// Email is a verified email the IdP asserts for the member.
	Email string `yaml:"email,omitempty" json:"email,omitempty"`
	// Reauth makes switching into this tenant sign the member in at the IdP
	// again instead of reusing the SSO session.
	Reauth bool `yaml:"reauth,omitempty" json:"reauth,omitempty"`
}

// TenantDirectory is how a tenant's user directory meets a sign-in.
type TenantDirectory struct {
	// Match finds a provisioned user at their first sign-in: external_id
	// (the record's externalId equals the upstream claim match_claim,
	// default sub), user_name (equals match_claim, default
	// preferred_username, else the email), email (the one unlinked record
	// with the identity's verified email) or empty: no matching.
	Match string `yaml:"match,omitempty" json:"match,omitempty"`
	// MatchClaim is the upstream claim compared by external_id and user_name.
	MatchClaim string `yaml:"match_claim,omitempty" json:"match_claim,omitempty"`
	// ProvisionedOnly refuses users the directory does not know, instead of
	// creating their record at the first sign-in.
	ProvisionedOnly bool `yaml:"provisioned_only,omitempty" json:"provisioned_only,omitempty"`
}

// Access is a tenant's just-in-time access: the roles its users may
// request for a while, and who approves.
type Access struct {
	// ApproverRoles: users of the tenant whose roles (from the tenant's
	// rules, never from a grant) include one of these approve or deny
	// requests on the access page. The admin API decides in any case.
	ApproverRoles []string `yaml:"approver_roles,omitempty" json:"approver_roles,omitempty"`
	// Roles are the roles that may be requested.
	Roles []AccessRole `yaml:"roles" json:"roles"`
}

// AccessRole is one role of a tenant's just-in-time access.
type AccessRole struct {
	// Name is the role as it appears in the roles claim.
	Name string `yaml:"name" json:"name"`
	// MaxDuration is the longest a grant of the role lasts, at most 168h.
	// Default 1h.
	MaxDuration Duration `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	// SelfActivate lets users activate the role without approval (still
	// bounded by max_duration, still audited).
	SelfActivate bool `yaml:"self_activate,omitempty" json:"self_activate,omitempty"`
}

// Impersonation says who may act as a tenant's users.
type Impersonation struct {
	// OperatorRoles: the operator's access token must carry one of these roles.
	OperatorRoles []string `yaml:"operator_roles" json:"operator_roles"`
	// OperatorTenants: the tenants operators sign in to (default: this one).
	OperatorTenants []string `yaml:"operator_tenants,omitempty" json:"operator_tenants,omitempty"`
	// Lifetime of impersonation tokens, at most 15m (the default).
	Lifetime Duration `yaml:"lifetime,omitempty" json:"lifetime,omitempty"`
}
