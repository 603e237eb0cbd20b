package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/internal/clientkeys"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/oauth"
)

// Machine is a client's grants, machine-to-machine settings and token
// endpoint authentication.
type Machine struct {
	// Tenant, when set, is the tenant the client belongs to: its
	// client_credentials tokens carry it as tid and run its rules.
	Tenant string
	// GrantTypes are the grants the client may use; empty means
	// authorization_code, refresh_token and token exchange.
	GrantTypes []string
	// Scopes are the scopes a client_credentials token may carry.
	Scopes []string
	// Audiences are what a client_credentials token may name as aud; the
	// first is the default. Empty: the client's own id.
	Audiences []string
	// AuthMethod is the token_endpoint_auth_method (RFC 7591 §2); empty
	// means none without a secret and client_secret_basic or
	// client_secret_post with one.
	AuthMethod string
	// JWKS are the client's public keys for private_key_jwt, or nil.
	JWKS *jose.JSONWebKeySet
	// JWKSURI is where the client's key set is fetched from, or empty.
	JWKSURI string
}

// clientAssertionType is the RFC 7523 §2.2 client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Grant types (RFC 7591 §2) and token endpoint authentication methods
// (RFC 7591 §2, RFC 7523 §2.2) as clients register them.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	authSecretBasic        = "client_secret_basic"
	authSecretPost         = "client_secret_post"
	authPrivateKeyJWT      = "private_key_jwt"
	authNone               = "none"
)

// Bounds of a client assertion and of the client key-set cache.
const (
	assertionMaxAhead  = 5 * time.Minute  // exp at most this far ahead
	assertionLeeway    = 10 * time.Second // clock skew allowed on exp, nbf, iat
	maxAssertionJTI    = 256              // bytes of a jti
	jwksCacheTTL       = time.Hour        // a fetched key set is used this long
	jwksRefetchEvery   = 30 * time.Second // an unknown kid fetches again at most this often
	jwksFetchTimeout   = 5 * time.Second
	maxJWKSDocument    = 64 << 10
	maxJWKSCacheLength = 4096 // clients with a cached key set
)

// assertionAlgs are the algorithms a client assertion may use: asymmetric
// only, so alg none and HS256 keyed with a public key never verify (S30).
var assertionAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// grants reports whether the client may use grant type g.
func (c *client) grants(g string) bool {
	if len(c.GrantTypes) == 0 {
		return g == grantAuthorizationCode || g == grantRefreshToken || g == grantTokenExchange
	}
	return slices.Contains(c.GrantTypes, g)
}

// knownGrant reports whether g is a grant type clients register.
func knownGrant(g string) bool {
	return g == grantAuthorizationCode || g == grantRefreshToken || g == grantClientCredentials || g == grantTokenExchange ||
		g == grantDeviceCode
}

// allowsMethod reports whether the client is registered for token
// endpoint authentication method m.
func (c *client) allowsMethod(m string) bool {
	switch {
	case c.AuthMethod != "":
		return m == c.AuthMethod
	case c.secretHash == [32]byte{}:
		return m == authNone
	default:
		return m == authSecretBasic || m == authSecretPost
	}
}

// clientAuthMetadata adds the client authentication and grant metadata to
// the discovery document (RFC 8414 §2).
func (s *Server) clientAuthMetadata(m map[string]any) {
	methods := []string{authSecretBasic, authSecretPost, authPrivateKeyJWT}
	m["grant_types_supported"] = []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials, grantTokenExchange}
	m["token_endpoint_auth_methods_supported"] = append(slices.Clone(methods), authNone)
	m["token_endpoint_auth_signing_alg_values_supported"] = assertionAlgs
	m["revocation_endpoint_auth_methods_supported"] = methods
	m["revocation_endpoint_auth_signing_alg_values_supported"] = assertionAlgs
	m["introspection_endpoint_auth_methods_supported"] = methods
	m["introspection_endpoint_auth_signing_alg_values_supported"] = assertionAlgs
	if s.cfg.RegistrationEndpoint != "" {
		m["registration_endpoint"] = s.cfg.RegistrationEndpoint // RFC 7591 §3, with an initial access token
	}
}

// assertedClient authenticates a client by a JWT it signed with its
// private key (private_key_jwt: RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC
// Core §9). basic says the request also carried HTTP Basic credentials.
func (s *Server) assertedClient(c echo.Context, v url.Values, basic bool) (*client, *oauth.Error) {
	if basic || v.Has("client_secret") {
		return nil, oauth.New(oauth.InvalidRequest, "use one client authentication method")
	}
	if v.Get("client_assertion_type") != clientAssertionType {
		return nil, oauth.New(oauth.InvalidClient, "client_assertion_type must be "+clientAssertionType)
	}
	cl, reason, err := s.verifyAssertion(c, v.Get("client_assertion"), v.Get("client_id"))
	if err != nil {
		return nil, errTemporarilyUnavailable.Wrap(err)
	}
	if reason != "" {
		s.log.Info("client assertion refused", "request_id", requestID(c), "client", v.Get("client_id"), "reason", reason)
		return nil, oauth.New(oauth.InvalidClient, "client authentication failed")
	}
	return cl, nil
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	jwt.RegisteredClaims
}

// verifyAssertion checks a client assertion and records its jti. It
// returns the client, or why the assertion is refused (never sent to the
// caller), or an error when the store or the key set is unreachable.
func (s *Server) verifyAssertion(c echo.Context, assertion, clientID string) (*client, string, error) {
	if assertion == "" {
		return nil, "no client_assertion", nil
	}
	if len(assertion) > maxJWTSize || !compactJWS(assertion) { // S32
		return nil, "malformed client_assertion", nil
	}
	now := s.now()
	parser := jwt.NewParser(jwt.WithValidMethods(assertionAlgs), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(assertionLeeway))
	// The subject names the client whose keys verify the signature; nothing
	// else is read before the signature holds.
	var peek assertionClaims
	if _, _, err := parser.ParseUnverified(assertion, &peek); err != nil {
		return nil, "malformed client_assertion", nil
	}
	id := peek.Subject
	if clientID != "" && clientID != id {
		return nil, "client_id differs from the assertion's sub", nil
	}
	cl := s.dir().clients[id]
	if cl == nil {
		return nil, "unknown client", nil
	}
	if !cl.allowsMethod(authPrivateKeyJWT) {
		return nil, "client is not registered for private_key_jwt", nil
	}
	ctx := c.Request().Context()
	var fetchErr error
	var claims assertionClaims
	_, err := parser.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := s.clientKeys(ctx, cl, kid)
		if err != nil {
			fetchErr = err
			return nil, err
		}
		set := jwt.VerificationKeySet{}
		for _, k := range keys {
			if (kid == "" || k.KeyID == kid) && keyFitsAlg(k, t.Method.Alg()) { // S30: the key's own algorithms
				set.Keys = append(set.Keys, k.Key)
			}
		}
		if len(set.Keys) == 0 {
			return nil, errors.New("no key of the client fits the assertion's kid and alg")
		}
		return set, nil
	})
	if fetchErr != nil {
		return nil, "", fetchErr
	}
	if err != nil {
		return nil, "assertion: " + err.Error(), nil
	}
	// RFC 7523 §3: iss and sub are the client_id; aud identifies us. RFC
	// 7523 names the token endpoint, OIDC and RFC 9700 the issuer: both.
	switch {
	case claims.Issuer != cl.ID || claims.Subject != cl.ID:
		return nil, "iss and sub must be the client_id", nil
	case !s.assertionAudience(c, claims.Audience):
		return nil, "aud is neither the issuer nor the token endpoint", nil
	case claims.ExpiresAt.Time.After(now.Add(assertionMaxAhead + assertionLeeway)):
		return nil, "exp is more than 5 minutes ahead", nil
	case claims.ID == "" || len(claims.ID) > maxAssertionJTI:
		return nil, "jti is missing or too long", nil
	}
	// RFC 7523 §3 item 7: each jti is used once, remembered until exp.
	ttl := claims.ExpiresAt.Time.Sub(now) + assertionLeeway
	err = s.store.Create(ctx, s.keyer.key("ja", cl.ID+"\x00"+claims.ID), []byte{1}, ttl)
	if errors.Is(err, ErrExists) {
		s.auditEvent(c, "refused", "client_assertion_replayed", attrs{client: cl.ID})
		return nil, "jti already used", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("broker: record client assertion jti: %w", err)
	}
	return cl, "", nil
}

// assertionAudience reports whether aud names this server: its issuer, its
// token endpoint, or the endpoint the assertion was presented to.
func (s *Server) assertionAudience(c echo.Context, aud jwt.ClaimStrings) bool {
	here := ""
	for _, p := range []string{"/token", "/introspect", "/revoke"} {
		if c.Path() == s.path(p) {
			here = s.url(p)
		}
	}
	for _, a := range aud {
		if a == s.cfg.Issuer || a == s.url("/token") || (here != "" && a == here) {
			return true
		}
	}
	return false
}

// keyFitsAlg reports whether k may verify alg: the key's type and size
// decide the algorithms, and a key that names its alg allows only that one.
func keyFitsAlg(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return pk.N.BitLen() >= 2048 && slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// clientKeys returns the client's public keys: its inline set, or its
// jwks_uri's set from the cache, fetched again when kid is not in it (at
// most every jwksRefetchEvery per client).
func (s *Server) clientKeys(ctx context.Context, cl *client, kid string) ([]jose.JSONWebKey, error) {
	if cl.JWKS != nil {
		return cl.JWKS.Keys, nil
	}
	if cl.JWKSURI == "" {
		return nil, nil
	}
	return s.clientJWKS.keys(ctx, s, cl.ID, cl.JWKSURI, kid)
}

// jwksCache holds the key sets fetched from clients' jwks_uri, bounded in
// number; each instance keeps its own.
type jwksCache struct {
	mu      sync.Mutex
	entries map[string]*jwksEntry // by client id
	client  *http.Client
}

type jwksEntry struct {
	uri     string
	keys    []jose.JSONWebKey
	fetched time.Time // when keys were fetched; zero: never
	tried   time.Time // the last fetch attempt
}

func (e *jwksEntry) has(kid string) bool {
	return kid == "" || slices.ContainsFunc(e.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

func (j *jwksCache) keys(ctx context.Context, s *Server, id, uri, kid string) ([]jose.JSONWebKey, error) {
	now := s.now()
	j.mu.Lock()
	if j.entries == nil {
		j.entries = map[string]*jwksEntry{}
		j.client = jwksClient(s.cfg.HTTPClient)
	}
	e := j.entries[id]
	if e == nil || e.uri != uri {
		e = &jwksEntry{uri: uri}
	}
	fresh := !e.fetched.IsZero() && now.Sub(e.fetched) < jwksCacheTTL
	if fresh && e.has(kid) || now.Sub(e.tried) < jwksRefetchEvery {
		keys := e.keys
		j.mu.Unlock()
		return keys, nil // an unknown kid within the rate limit fails verification
	}
	e.tried = now
	j.put(id, e)
	hc := j.client
	j.mu.Unlock()

	keys, err := fetchJWKS(ctx, hc, uri)
	if err != nil {
		s.log.Warn("client jwks_uri fetch failed", "client", id, "err", err)
		if fresh {
			return e.keys, nil // keep serving the set we have
		}
		return nil, nil // no keys: the assertion is refused
	}
	j.mu.Lock()
	j.put(id, &jwksEntry{uri: uri, keys: keys, fetched: now, tried: now})
	j.mu.Unlock()
	return keys, nil
}

// put stores e, evicting some entry when the cache is full. Called with mu held.
func (j *jwksCache) put(id string, e *jwksEntry) {
	if _, ok := j.entries[id]; !ok && len(j.entries) >= maxJWKSCacheLength {
		for k := range j.entries {
			delete(j.entries, k)
			break
		}
	}
	j.entries[id] = e
}

// jwksClient is hc, or the default outbound client (public addresses only,
// S70), following no redirect and bounded in time.
func jwksClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = outbound.New(outbound.Policy{Timeout: jwksFetchTimeout})
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Timeout == 0 || c.Timeout > jwksFetchTimeout {
		c.Timeout = jwksFetchTimeout
	}
	return &c
}

// fetchJWKS gets and parses a client's key set document.
func fetchJWKS(ctx context.Context, hc *http.Client, uri string) ([]jose.JSONWebKey, error) {
	raw, err := fetchDocument(ctx, hc, uri, "application/jwk-set+json, application/json", jwksFetchTimeout, maxJWKSDocument)
	if err != nil {
		return nil, fmt.Errorf("broker: jwks_uri: %w", err)
	}
	set, err := clientkeys.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("broker: jwks_uri: %w", err)
	}
	return set.Keys, nil
}

// fetchDocument GETs a client's document at uri (a jwks_uri, a sector
// identifier) through hc, the safe outbound client (SECURITY S70), within
// timeout: 200 only, at most max bytes.
func fetchDocument(ctx context.Context, hc *http.Client, uri, accept string, timeout time.Duration, max int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > max {
		return nil, fmt.Errorf("document larger than %d bytes", max)
	}
	return raw, nil
}
