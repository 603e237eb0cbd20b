package config

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/locale"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the configuration file; empty for a Config built in code.
	File string
	// Line is the 1-based line in File; 0 when unknown.
	Line int
	// Field is the dotted path of the field, like tenants[1].providers[0].issuer.
	Field string
	// Message says what is wrong.
	Message string
}

// String formats p as "file:line: field: message", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	// Problems are ordered by line.
	Problems []Problem
}

// Error prints one "file:line: field: message" per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}

// Defaults that ApplyDefaults fills in.
const (
	// DefaultListen is the default listen address.
	DefaultListen = "127.0.0.1:8080"
	// DefaultRotateEvery is the default signing key rotation period.
	DefaultRotateEvery = Duration(24 * time.Hour)
	// DefaultSessionLifetime is the default SSO session lifetime.
	DefaultSessionLifetime = Duration(8 * time.Hour)
	// DefaultAccessTokenLifetime is the default access token lifetime.
	DefaultAccessTokenLifetime = Duration(10 * time.Minute)
	// DefaultIDTokenLifetime is the default ID token lifetime.
	DefaultIDTokenLifetime = Duration(10 * time.Minute)
	// DefaultRefreshTokenLifetime is the default refresh-token family lifetime.
	DefaultRefreshTokenLifetime = Duration(720 * time.Hour)
)

// DefaultScopes are requested from oidc, google and microsoft providers that set none.
var DefaultScopes = []string{"openid", "profile", "email"}

// ApplyDefaults fills in every field left unset. In a Config read by Parse,
// a field the file set explicitly is kept even when zero, so that Validate
// reports "rotate_every: 0s" instead of silently replacing it. Parse and
// Load call it; call it on a Config built in code before Validate.
func (c *Config) ApplyDefaults() {
	unset := func(path string) bool { return !c.src.isExplicit(path) }
	str := func(p *string, path, def string) {
		if *p == "" && unset(path) {
			*p = def
		}
	}
	dur := func(p *Duration, path string, def Duration) {
		if *p == 0 && unset(path) {
			*p = def
		}
	}
	str(&c.Listen, "listen", DefaultListen)
	if len(c.AdminAPI.Tokens) > 0 {
		str(&c.AdminAPI.Listen, "admin_api.listen", DefaultAdminListen)
	}
	str(&c.Store.Type, "store.type", StoreMemory)
	str(&c.Store.RecordFormat, "store.record_format", RecordsBinary)
	str(&c.Keys.Algorithm, "keys.algorithm", AlgES256)
	dur(&c.Keys.RotateEvery, "keys.rotate_every", DefaultRotateEvery)
	dur(&c.Session.Lifetime, "session.lifetime", DefaultSessionLifetime)
	dur(&c.Tokens.AccessTokenLifetime, "tokens.access_token_lifetime", DefaultAccessTokenLifetime)
	dur(&c.Tokens.IDTokenLifetime, "tokens.id_token_lifetime", DefaultIDTokenLifetime)
	dur(&c.Tokens.RefreshTokenLifetime, "tokens.refresh_token_lifetime", DefaultRefreshTokenLifetime)
	c.applyOperationDefaults(unset) // operations.go
	c.applyRedisDefaults(unset)     // redis.go
	c.applySCIMDefaults(unset)      // scim.go
	for i := range c.Tenants {
		t := &c.Tenants[i]
		if t.Name == "" {
			t.Name = t.ID
		}
		for j := range t.Providers {
			p := &t.Providers[j]
			typ, _ := LookupProviderType(p.Type)
			if p.Name == "" {
				p.Name = cmp.Or(typ.DisplayName, p.ID)
			}
			if len(p.Scopes) == 0 && typ.OpenID && unset(fmt.Sprintf("tenants[%d].providers[%d].scopes", i, j)) {
				p.Scopes = slices.Clone(DefaultScopes)
			}
		}
	}
}

// Validate checks the configuration and returns a *ValidationError listing
// every problem, or nil. It does not apply defaults.
func (c *Config) Validate() error { return c.validationError(c.problems()) }

// validationError returns probs as a *ValidationError, in the file's
// order, or nil when there are none.
func (c *Config) validationError(probs []Problem) error {
	if len(probs) == 0 {
		return nil
	}
	if c.src.file != "" {
		sortProblems(probs)
	}
	return &ValidationError{Problems: probs}
}

// Warnings returns advice about a valid but doubtful configuration, one
// "file:line: field: message" per entry.
func (c *Config) Warnings() []string {
	k := &checker{c: c}
	if c.Store.Type == StoreRedis && c.Keys.Secret == "" {
		k.add("keys.secret", "not set with a redis store: set it (keys.secret: ${REALMGATE_SECRET}) so every instance shares the key that indexes tokens in the store and signing keys are stored encrypted")
	}
	if c.Keys.Secret == "" && len(c.AdminAPI.Tokens) > 0 {
		k.add("keys.secret", "not set with the admin API on: client secrets written through the API are stored unencrypted; set it (keys.secret: ${REALMGATE_SECRET}) to encrypt them")
	}
	if h, _, err := net.SplitHostPort(c.AdminAPI.Listen); err == nil && len(c.AdminAPI.Tokens) > 0 && !isLoopback(h) && c.AdminAPI.TLS == nil {
		k.add("admin_api.listen", "is not a loopback address: the admin API speaks plain HTTP, so set admin_api.tls or put it behind a TLS-terminating proxy on a private network")
	}
	if u, err := url.Parse(c.Issuer); err == nil && u.Scheme == "http" {
		k.add("issuer", "uses http: fine for local development only")
	}
	if strings.HasSuffix(c.Issuer, "/") {
		k.add("issuer", "ends with \"/\": clients compare iss byte for byte, so they must be configured with the trailing slash too")
	}
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		if cl.Secret != "" && len(cl.Secret) < 32 {
			k.add(path+".secret", "shorter than 32 characters: use a long random secret (openssl rand -base64 32)")
		}
		if len(cl.AllowedTenants) == 0 {
			k.add(path+".allowed_tenants", "empty: no user can sign in to this client; list tenant ids or \"*\"")
		}
	}
	for i, t := range c.Tenants {
		path := fmt.Sprintf("tenants[%d]", i)
		if len(t.Providers) == 0 {
			k.add(path+".providers", "tenant %q has no provider: its users cannot sign in", t.ID)
		}
		if t.Subdomain != "" && c.BaseDomain == "" {
			k.add(path+".subdomain", "has no effect without base_domain")
		}
		for j := range t.Providers {
			p := &t.Providers[j]
			if typ, ok := LookupProviderType(p.Type); ok && typ.Warn != nil {
				typ.Warn(&ProviderCheck{P: p, Type: typ, k: k, path: fmt.Sprintf("%s.providers[%d]", path, j)})
			}
		}
	}
	k.operationWarnings() // operations.go
	k.outboundWarnings()  // outbound.go
	sortProblems(k.probs)
	out := make([]string, len(k.probs))
	for i, p := range k.probs {
		out[i] = p.String()
	}
	return out
}

type checker struct {
	c     *Config
	probs []Problem
	// only, when set, names the tenants (by index) whose own checks run
	// (ValidateTenants); nil: every tenant's.
	only map[int]bool
}

func (k *checker) add(field, format string, args ...any) {
	k.probs = append(k.probs, Problem{
		File:    k.c.src.file,
		Line:    k.c.src.lineOf(field),
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// problems runs every check.
func (c *Config) problems() []Problem { return c.problemsOf(nil) }

// ValidateTenants is Validate for a configuration whose tenants were all
// validated before except those at the indexes is (an admin API change
// beside the file's tenants): every check across tenants (ids, domains,
// subdomains, IdP ids, the default tenant) and every check outside the
// tenants runs as in Validate, but a tenant's own checks (its fields,
// providers and rules, each about that tenant alone) run only for the
// tenants at is. Beside 100k file tenants, those were most of the time
// of an admin API write.
func (c *Config) ValidateTenants(is ...int) error {
	only := make(map[int]bool, len(is))
	for _, i := range is {
		only[i] = true
	}
	return c.validationError(c.problemsOf(only))
}

// problemsOf is problems with the own checks of only the tenants only
// names (nil: every tenant's).
func (c *Config) problemsOf(only map[int]bool) []Problem {
	k := &checker{c: c, only: only}
	k.issuer()
	k.listen()
	if c.BaseDomain != "" && !validHostname(strings.ToLower(c.BaseDomain)) {
		k.add("base_domain", "%q is not a valid host name", c.BaseDomain)
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			k.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR prefix like 10.0.0.0/8", p)
		}
	}
	k.store()
	k.redis() // redis.go
	k.keys()
	k.durations()
	if c.UpstreamConcurrency < 0 || c.UpstreamConcurrency > 100_000 {
		k.add("upstream_concurrency", "%d is out of range: want 1 to 100000, or 0 for the default 64", c.UpstreamConcurrency)
	}
	tenantIDs := k.tenants()
	k.clients(tenantIDs)
	k.rules(c.Rules, "rules")
	k.adminAPI()
	k.operations()  // operations.go
	k.scim()        // scim.go
	k.outbound()    // outbound.go
	k.parDPoP()     // dpoppar.go
	k.deviceFlow()  // device.go
	k.tlsSettings() // tls.go
	k.conditional() // conditional.go
	return k.probs
}

// adminAPI checks the admin_api section. A token's tenant may be one the
// API itself creates later, so only its form is checked.
func (k *checker) adminAPI() {
	a := k.c.AdminAPI
	if len(a.Tokens) == 0 {
		if a.Listen != "" || a.DNSResolver != "" || a.TLS != nil {
			k.add("admin_api.tokens", "at least one token is required to turn the admin API on")
		}
		return
	}
	if msg := checkHostPort(a.Listen, true); msg != "" {
		k.add("admin_api.listen", "%s", msg)
	} else if a.Listen == k.c.Listen {
		k.add("admin_api.listen", "must differ from listen: the admin API has its own listener")
	}
	if a.DNSResolver != "" {
		if msg := checkHostPort(a.DNSResolver, false); msg != "" {
			k.add("admin_api.dns_resolver", "%s", msg)
		}
	}
	names := map[string]int{}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("admin_api.tokens[%d]", i)
		if j, dup := names[t.Name]; dup {
			k.add(p+".name", "token name %q is already used by admin_api.tokens[%d]", t.Name, j)
		} else if strings.TrimSpace(t.Name) == "" {
			k.add(p+".name", "is required: it names the caller in audit events")
		} else {
			names[t.Name] = i
		}
		if len(t.Token) < 32 {
			k.add(p+".token", "must be at least 32 characters of random text (openssl rand -base64 32); use ${VAR}")
		}
		if t.Tenant != "" && !isID(t.Tenant) {
			k.add(p+".tenant", "%q is not a tenant id", t.Tenant)
		}
	}
}

func (k *checker) issuer() {
	if k.c.Issuer == "" {
		k.add("issuer", "is required: the URL every token's iss carries, like https://login.example.com")
		return
	}
	// OpenID Connect Discovery 1.0 §3, RFC 8414 §2: https, no query or fragment.
	if msg := checkHTTPURL(k.c.Issuer); msg != "" {
		k.add("issuer", "%s", msg)
	}
}

// checkHTTPURL checks an issuer or endpoint URL: absolute, https (http only
// on a loopback host), no user info, query or fragment.
func checkHTTPURL(s string) string { return checkEndpointURL(s, false) }

// checkEndpointURL checks an absolute http(s) URL: https unless on a
// loopback host, no user info, no fragment, no wildcard, and a query only
// when query is set.
func checkEndpointURL(s string, query bool) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", s)
	}
	switch {
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("%q must be an absolute URL like https://host/path", s)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("%q must use https", s)
	case u.User != nil:
		return fmt.Sprintf("%q must not contain user info", s)
	case !query && (u.RawQuery != "" || u.ForceQuery):
		return fmt.Sprintf("%q must not have a query", s)
	case strings.Contains(s, "#"):
		return fmt.Sprintf("%q must not have a fragment", s)
	case strings.Contains(s, "*"):
		return fmt.Sprintf("%q: wildcards are not supported, endpoints match exactly", s)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Sprintf("%q must use https (http is allowed only on 127.0.0.1, [::1] or localhost)", s)
	}
	return ""
}

// isLoopback reports whether host is localhost or a loopback IP (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (k *checker) listen() {
	if msg := checkHostPort(k.c.Listen, true); msg != "" {
		k.add("listen", "%s", msg)
	}
}

// checkHostPort checks a host:port; an empty host means every interface.
func checkHostPort(s string, emptyHostOK bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port, like 127.0.0.1:8080", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || (n == 0 && !emptyHostOK) {
		return fmt.Sprintf("%q has an invalid port", s)
	}
	if host == "" {
		if !emptyHostOK {
			return fmt.Sprintf("%q has no host", s)
		}
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if !validNetHost(strings.ToLower(host)) {
		return fmt.Sprintf("%q has an invalid host", s)
	}
	return ""
}

// validNetHost reports whether h is a host name to dial or bind: like
// validHostname, but a single label is fine (a compose service "redis", a
// Kubernetes Service "redis-master" in the same namespace).
func validNetHost(h string) bool {
	if l := strings.TrimSuffix(h, "."); !strings.Contains(l, ".") {
		_, err := strconv.Atoi(l)
		return isLabel(l) && err != nil
	}
	return validHostname(h)
}

func (k *checker) store() {
	s := k.c.Store
	switch s.Type {
	case StoreMemory:
	case StoreRedis:
		if len(s.Redis.Addrs) == 0 {
			k.add("store.redis.addrs", "at least one host:port is required with a redis store")
		}
		for i, a := range s.Redis.Addrs {
			if msg := checkHostPort(a, false); msg != "" {
				k.add(fmt.Sprintf("store.redis.addrs[%d]", i), "%s", msg)
			}
		}
		if s.Redis.DB < 0 {
			k.add("store.redis.db", "must not be negative")
		} else if s.Redis.DB != 0 && len(s.Redis.Addrs) > 1 && s.Redis.MasterName == "" {
			k.add("store.redis.db", "a Redis Cluster (several addrs) has only db 0")
		}
		k.replicaAck(s.Redis)
	default:
		k.add("store.type", "unknown store type %q: want memory or redis", s.Type)
	}
	switch s.RecordFormat {
	case "", RecordsBinary, RecordsJSON: // "": binary (a Config built in code)
	default:
		k.add("store.record_format", "%q: want binary or json", s.RecordFormat)
	}
}

func (k *checker) keys() {
	switch k.c.Keys.Algorithm {
	case AlgES256, AlgRS256:
	default:
		k.add("keys.algorithm", "unknown algorithm %q: want ES256 or RS256", k.c.Keys.Algorithm)
	}
	if s := k.c.Keys.Secret; s != "" && len(s) < 32 {
		k.add("keys.secret", "must be at least 32 characters of random text (openssl rand -base64 32)")
	}
}

func (k *checker) durations() {
	for _, d := range []struct {
		path string
		v    Duration
	}{
		{"keys.rotate_every", k.c.Keys.RotateEvery},
		{"session.lifetime", k.c.Session.Lifetime},
		{"tokens.access_token_lifetime", k.c.Tokens.AccessTokenLifetime},
		{"tokens.id_token_lifetime", k.c.Tokens.IDTokenLifetime},
		{"tokens.refresh_token_lifetime", k.c.Tokens.RefreshTokenLifetime},
	} {
		if d.v <= 0 {
			k.add(d.path, "must be greater than 0, got %s", d.v)
		}
	}
}

func (k *checker) clients(tenantIDs map[string]bool) {
	first := map[string]int{}
	entityIDs := map[string]string{}
	for i, cl := range k.c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		if cl.SAML != nil {
			k.samlApp(&cl, path, entityIDs) // samlapp.go
		}
		switch j, dup := first[cl.ID]; {
		case strings.TrimSpace(cl.ID) == "":
			k.add(path+".id", "is required")
		case strings.ContainsFunc(cl.ID, func(r rune) bool { return r < 0x21 || r == 0x7f }):
			k.add(path+".id", "must not contain spaces or control characters")
		case dup:
			k.add(path+".id", "client id %q is already used by clients[%d]", cl.ID, j)
		default:
			first[cl.ID] = i
		}
		k.clientAuth(&cl, path, tenantIDs) // clientauth.go
		k.clientSettings(&cl, path)        // clientsettings.go
		k.branding(cl.Branding, path)      // branding.go
		if len(cl.RedirectURIs) == 0 && cl.SAML == nil && !cl.MachineOnly() && !cl.deviceOnly() {
			k.add(path+".redirect_uris", "at least one redirect URI is required")
		}
		for j, u := range cl.RedirectURIs {
			if msg := checkRedirectURI(u); msg != "" {
				k.add(fmt.Sprintf("%s.redirect_uris[%d]", path, j), "%s", msg)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if msg := checkRedirectURI(u); msg != "" {
				k.add(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", path, j), "%s", msg)
			}
		}
		if cl.BackchannelLogoutURI != "" {
			if msg := checkRedirectURI(cl.BackchannelLogoutURI); msg != "" {
				k.add(path+".backchannel_logout_uri", "%s", msg)
			}
		}
		if cl.SSFPushURL != "" {
			if msg := checkPushURL(cl.SSFPushURL); msg != "" {
				k.add(path+".ssf_push_url", "%s", msg)
			}
		}
		if cl.ID == AccessClientID {
			k.add(path+".id", "%q is reserved for realmgate's access page", cl.ID)
		}
		for j, id := range cl.ExchangeAudiences {
			if k.c.Client(id) == nil {
				k.add(fmt.Sprintf("%s.exchange_audiences[%d]", path, j), "unknown client %q", id)
			}
		}
		if len(cl.Claims) > maxClientClaims {
			k.add(path+".claims", "at most %d claims", maxClientClaims)
		}
		for j, n := range cl.Claims {
			// risk_level is set by conditional access only, and released
			// only to the clients registered for it by name (broker/conditional.go).
			if n == "" || len(n) > 128 || (reservedClaim[n] && n != "risk_level") {
				k.add(fmt.Sprintf("%s.claims[%d]", path, j), "%q cannot be registered: it is empty, too long, or a claim realmgate sets itself", n)
			}
		}
		for j, id := range cl.AllowedIdPs {
			if t, _ := k.c.Provider(id); t == nil {
				k.add(fmt.Sprintf("%s.allowed_idps[%d]", path, j), "unknown identity provider %q", id)
			}
		}
		for j, t := range cl.AllowedTenants {
			p := fmt.Sprintf("%s.allowed_tenants[%d]", path, j)
			switch {
			case t == AllowAllTenants && len(cl.AllowedTenants) > 1:
				k.add(p, "\"*\" allows every tenant and must be the only entry")
			case t == AllowAllTenants:
			case !tenantIDs[t]:
				k.add(p, "unknown tenant %q", t)
			}
		}
	}
}

// AccessClientID is the client id realmgate's access page signs people in
// as (broker.AccessClientID); no configured client may take it.
const AccessClientID = "realmgate-access"

// MaxAccessDuration bounds a just-in-time role's max_duration.
const MaxAccessDuration = 168 * time.Hour

// checkAccess checks a tenant's just-in-time access.
func checkAccess(k *checker, path string, a *Access) {
	if len(a.Roles) == 0 {
		k.add(path+".roles", "at least one role is required")
	}
	seen := map[string]int{}
	for j, r := range a.Roles {
		p := fmt.Sprintf("%s.roles[%d]", path, j)
		switch i, dup := seen[r.Name]; {
		case strings.TrimSpace(r.Name) == "" || len(r.Name) > 128:
			k.add(p+".name", "is required (at most 128 characters)")
		case dup:
			k.add(p+".name", "role %q is already listed at roles[%d]", r.Name, i)
		default:
			seen[r.Name] = j
		}
		if d := r.MaxDuration.Duration(); d < 0 || d > MaxAccessDuration {
			k.add(p+".max_duration", "must be between 0 (default 1h) and 168h")
		}
	}
	for j, r := range a.ApproverRoles {
		if strings.TrimSpace(r) == "" {
			k.add(fmt.Sprintf("%s.approver_roles[%d]", path, j), "must not be empty")
		}
	}
}

// checkPushURL checks a push endpoint realmgate POSTs to: a redirect URI's
// rules (absolute, no fragment or user info), https or http on loopback only.
func checkPushURL(s string) string {
	if msg := checkRedirectURI(s); msg != "" {
		return msg
	}
	if u, _ := url.Parse(s); u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Sprintf("%q must use https (http is allowed only on loopback)", s)
	}
	return ""
}

// checkRedirectURI checks a client redirect URI (RFC 6749 §3.1.2, RFC 8252
// §7.1 and §7.3, RFC 9700 §4.1.3): absolute, no fragment, https, http on a
// loopback host, or a private-use scheme containing a dot.
func checkRedirectURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", s)
	}
	switch {
	case !u.IsAbs():
		return fmt.Sprintf("%q must be an absolute URL", s)
	case strings.Contains(s, "#"):
		return fmt.Sprintf("%q must not have a fragment (RFC 6749 §3.1.2)", s)
	case u.User != nil:
		return fmt.Sprintf("%q must not contain user info", s)
	case strings.Contains(s, "*"):
		return fmt.Sprintf("%q: wildcards are not supported, redirect URIs match exactly", s)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Sprintf("%q has no host", s)
		}
	case "http":
		if u.Host == "" {
			return fmt.Sprintf("%q has no host", s)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Sprintf("%q must use https (http is allowed only on 127.0.0.1, [::1] or localhost, RFC 8252 §7.3)", s)
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Sprintf("%q: scheme %q is not allowed: use https, http on loopback, or a private-use scheme like com.example.app (RFC 8252 §7.1)", s, u.Scheme)
		}
	}
	return ""
}

// validHostname reports whether h (lower case, an optional trailing dot) is
// a DNS host name of two or more labels whose last label is not numeric.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return h == "localhost"
	}
	for _, l := range labels {
		if !isLabel(l) {
			return false
		}
	}
	return !allDigits(labels[len(labels)-1]) // an IPv4 address is not a host name
}

// allDigits reports whether s is all ASCII digits (and not empty).
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// normalizeDomain matches realm.NormalizeDomain: lower case, no trailing dot.
func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

type owner struct {
	tenant string
	// at is the owner's entry: tenants[i].domains[j].
	i, j int
}

// domainPath is the field path of tenants[i].domains[j] (made only for a
// problem: a file of 100k tenants has 200k domains).
func domainPath(i, j int) string { return fmt.Sprintf("tenants[%d].domains[%d]", i, j) }

// tenants checks tenants and their providers and returns the set of tenant ids.
// What concerns one tenant alone is checked first, in parts at once for a
// long list (tenantchecks.go); what concerns several (ids, domains,
// subdomains, the default tenant, provider ids) in one loop, which puts
// each tenant's problems in the order of the one loop this used to be.
func (k *checker) tenants() map[string]bool {
	n := len(k.c.Tenants)
	own := k.ownTenantChecks()
	ids := make(map[string]bool, n)
	tenantAt := make(map[string]int, n)
	domains := make(map[string]owner, 2*n)
	subdomains := map[string]int{}
	providers := make(map[string]string, n)
	defaultTenant := -1
	for i, t := range k.c.Tenants {
		path := tenantsPath + "[" + strconv.Itoa(i) + "]"
		ids[t.ID] = true
		switch j, dup := tenantAt[t.ID]; {
		case !isID(t.ID):
			k.add(path+".id", "tenant id %q must be 1-63 lower case letters, digits, '-' or '_', starting with a letter or digit", t.ID)
		case dup:
			k.add(path+".id", "tenant id %q is already used by tenants[%d]", t.ID, j)
		default:
			tenantAt[t.ID] = i
		}
		// A tenant ValidateTenants was not asked about had its domains
		// checked when it was loaded: they are only indexed here.
		mine := k.only == nil || k.only[i]
		for j, d := range t.Domains {
			nd := normalizeDomain(d)
			host := strings.TrimPrefix(nd, "*.")
			if mine && (!validHostname(host) || host == "localhost") {
				k.add(domainPath(i, j), "%q is not a domain name (want example.com or *.example.com; use the xn-- form of international names)", d)
				continue
			}
			if o, dup := domains[nd]; dup {
				if o.tenant == t.ID {
					k.add(domainPath(i, j), "domain %q is listed twice", d)
				} else {
					k.add(domainPath(i, j), "domain %q is claimed by two tenants: %q (line %d) and %q", d, o.tenant, k.c.src.lineOf(domainPath(o.i, o.j)), t.ID)
				}
				continue
			}
			domains[nd] = owner{t.ID, i, j}
		}
		if t.Subdomain != "" {
			p := path + ".subdomain"
			if !isLabel(t.Subdomain) {
				k.add(p, "%q is not a DNS label (lower case letters, digits and '-')", t.Subdomain)
			} else if j, dup := subdomains[t.Subdomain]; dup {
				k.add(p, "subdomain %q is already used by tenants[%d]", t.Subdomain, j)
			} else {
				subdomains[t.Subdomain] = i
			}
		}
		o := own[i]
		k.probs = append(k.probs, o.head...)
		if t.Default {
			if defaultTenant >= 0 {
				k.add(path+".default", "tenants %q and %q are both default: at most one tenant may be", k.c.Tenants[defaultTenant].ID, t.ID)
			} else {
				defaultTenant = i
			}
		}
		for j := range t.Providers {
			k.providerID(&t.Providers[j], path+".providers["+strconv.Itoa(j)+"]", t.ID, providers)
			if j < len(o.providers) { // none when the tenant's own checks did not run (ValidateTenants)
				k.probs = append(k.probs, o.providers[j]...)
			}
		}
		k.probs = append(k.probs, o.rules...)
	}
	return ids
}

// ownChecks checks what concerns tenants[i] alone, in the order of
// tenants: the tenant's fields, each provider's, the rules.
func (k *checker) ownChecks(i int) ownProblems {
	t := &k.c.Tenants[i]
	path := tenantsPath + "[" + strconv.Itoa(i) + "]"
	if t.Language != "" && !locale.IsSupported(t.Language) {
		k.add(path+".language", "%q: want one of %s", t.Language, strings.Join(locale.SupportedNames(), ", "))
	}
	k.branding(t.Branding, path) // branding.go
	if dir := t.Directory; dir != nil {
		switch dir.Match {
		case "", "external_id", "user_name", "email":
		default:
			k.add(path+".directory.match", "%q: want external_id, user_name or email", dir.Match)
		}
	}
	if a := t.Access; a != nil {
		checkAccess(k, path+".access", a)
	}
	if im := t.Impersonation; im != nil {
		if len(im.OperatorRoles) == 0 {
			k.add(path+".impersonation.operator_roles", "at least one role is required")
		}
		if im.Lifetime.Duration() < 0 || im.Lifetime.Duration() > 15*time.Minute {
			k.add(path+".impersonation.lifetime", "must be at most 15m")
		}
	}
	for j, m := range t.Members {
		p := fmt.Sprintf("%s.members[%d]", path, j)
		if owner, _ := k.c.Provider(m.IdP); owner == nil {
			k.add(p+".idp", "unknown identity provider %q", m.IdP)
		}
		if m.Subject == "" && m.Email == "" {
			k.add(p, "needs a subject or an email")
		}
	}
	for j, r := range t.IPRanges {
		p := fmt.Sprintf("%s.ip_ranges[%d]", path, j)
		pfx, err := netip.ParsePrefix(r)
		if err != nil {
			k.add(p, "%q is not a CIDR prefix like 203.0.113.0/24 or 2001:db8::/32", r)
		} else if pfx.Masked() != pfx {
			k.add(p, "%q has host bits set: did you mean %s?", r, pfx.Masked())
		}
	}
	var o ownProblems
	o.head, k.probs = k.probs, nil
	if len(t.Providers) > 0 {
		o.providers = make([][]Problem, len(t.Providers))
	}
	for j := range t.Providers {
		k.provider(&t.Providers[j], path+".providers["+strconv.Itoa(j)+"]")
		o.providers[j], k.probs = k.probs, nil
	}
	k.rules(t.Rules, path+".rules")
	o.rules, k.probs = k.probs, nil
	return o
}

// providerID checks a provider's id, unique across tenants (seen maps
// each id to its tenant).
func (k *checker) providerID(p *Provider, path, tenant string, seen map[string]string) {
	switch other, dup := seen[p.ID]; {
	case !isID(p.ID):
		k.add(path+".id", "provider id %q must be 1-63 lower case letters, digits, '-' or '_' (it appears in callback URLs)", p.ID)
	case dup:
		k.add(path+".id", "provider id %q is already used in tenant %q: provider ids are unique across tenants", p.ID, other)
	default:
		seen[p.ID] = tenant
	}
}

// provider checks one provider: what every provider needs (a registered
// type, only the settings its type uses, client_id when the type uses it,
// URLs, scopes), then its type's own checks. Its id, unique across
// tenants, is providerID's.
func (k *checker) provider(p *Provider, path string) {
	typ, known := LookupProviderType(p.Type)
	if !known {
		k.add(path+".type", "unknown provider type %q: want %s", p.Type, typeNames())
		return
	}
	for _, f := range k.providerSet(p, path) {
		if !slices.Contains(typ.Fields, f) {
			k.add(path+"."+f, "is not used by providers of type %q", p.Type)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(p.Settings)) {
		if !slices.Contains(typ.Settings, key) {
			want := "it takes none"
			if len(typ.Settings) > 0 {
				want = "want " + strings.Join(typ.Settings, ", ")
			}
			k.add(path+".settings"+keyPath(key), "is not a setting of providers of type %q (%s)", p.Type, want)
		}
	}
	k.tokenExchange(p.TokenExchange, path) // tokenexchange.go
	if slices.Contains(typ.Fields, "client_id") && p.ClientID == "" {
		k.add(path+".client_id", "is required for type %q", p.Type)
	}
	for _, f := range []struct{ name, v string }{
		{"issuer", p.Issuer}, {"metadata_url", p.MetadataURL},
		{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"userinfo_url", p.UserInfoURL},
	} {
		if f.v == "" || !slices.Contains(typ.Fields, f.name) {
			continue
		}
		if msg := checkHTTPURL(f.v); msg != "" {
			k.add(path+"."+f.name, "%s", msg)
		}
	}
	if typ.OpenID && !slices.Contains(p.Scopes, "openid") {
		k.add(path+".scopes", "must include \"openid\" for type %q", p.Type)
	}
	for i, s := range p.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f }) {
			k.add(fmt.Sprintf("%s.scopes[%d]", path, i), "%q is not a valid scope (RFC 6749 §3.3)", s)
		}
	}
	if typ.Check != nil {
		typ.Check(&ProviderCheck{P: p, Type: typ, k: k, path: path})
	}
}

func (k *checker) rules(rules []Rule, path string) {
	names := map[string]int{}
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(r.Name) == "" {
			k.add(p+".name", "is required")
		} else if j, dup := names[r.Name]; dup {
			k.add(p+".name", "rule name %q is already used by %s[%d]", r.Name, path, j)
		} else {
			names[r.Name] = i
		}
		actions := len(r.Set) + len(r.Add) + len(r.Remove)
		if r.Map != nil {
			actions++
		}
		if r.Deny != "" {
			actions++
		}
		if r.Stop {
			actions++
		}
		if actions == 0 {
			k.add(p, "rule has no action: give set, add, remove, map, deny or stop")
		}
		for _, kind := range []struct {
			name string
			m    map[string]string
		}{{"set", r.Set}, {"add", r.Add}} {
			for _, claim := range slices.Sorted(maps.Keys(kind.m)) {
				cp := p + "." + kind.name + keyPath(claim)
				if strings.TrimSpace(claim) == "" {
					k.add(cp, "claim name is empty")
				} else if strings.TrimSpace(kind.m[claim]) == "" {
					k.add(cp, "expression is empty")
				}
			}
		}
		for j, claim := range r.Remove {
			if strings.TrimSpace(claim) == "" {
				k.add(fmt.Sprintf("%s.remove[%d]", p, j), "claim name is empty")
			}
		}
		if m := r.Map; m != nil {
			if strings.TrimSpace(m.From) == "" {
				k.add(p+".map.from", "is required")
			}
			if strings.TrimSpace(m.To) == "" {
				k.add(p+".map.to", "is required")
			}
			if len(m.Table) == 0 {
				k.add(p+".map.table", "is required: source value -> output value")
			}
		}
	}
}

// maxClientClaims bounds clients[].claims.
const maxClientClaims = 64

// reservedClaim are the claims realmgate sets itself; a client registers
// for them by scope, never by name.
var reservedClaim = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"nonce": true, "tid": true, "idp": true, "auth_time": true, "azp": true, "jti": true, "sid": true,
	"at_hash": true, "c_hash": true, "gid": true, "client_id": true, "scope": true, "cnf": true, "act": true, "acrs": true, "risk_level": true}
