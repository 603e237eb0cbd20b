// Package realm performs home-realm discovery: it turns what is known about
// a sign-in request (hints, the typed email, the host, the client address,
// the remembered choice) into a tenant and the identity providers that may
// authenticate its users. It depends on no other package of realmgate.
//
// Precedence, highest first (each source is skipped when it names a tenant
// or IdP the client may not use, so a hint never reaches a forbidden IdP):
//
//  1. idp_hint (or kc_idp_hint) naming an IdP
//  2. domain_hint (or whr)
//  3. the email domain of login_hint, or of the email typed on the page
//  4. the request host's subdomain: <subdomain>.<base_domain>
//  5. the client IP inside a tenant's ip_ranges
//  6. the signed remembered-choice cookie
//  7. otherwise ErrNoMatch: the discovery page asks
//
// A pending IdP (Tenant.Pending) is never a result: a hint or a cookie
// naming it is ignored, and a tenant whose only IdPs the client may use
// are pending resolves with no IdP (no sign-in method yet).
//
// An email whose domain matches no tenant goes to the default tenant when one
// is configured.
package realm

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/realmgate/realmgate/internal/cowmap"

	"golang.org/x/net/idna"
)

// Errors returned by Resolve.
var (
	// ErrNoMatch means nothing in the request points to a tenant: the user
	// must be asked (discovery page).
	ErrNoMatch = errors.New("realm: no tenant matches")
	// ErrInvalidHint means an email or domain was syntactically unusable.
	ErrInvalidHint = errors.New("realm: invalid hint")
	// ErrNotAllowed means the request pointed only to tenants or IdPs the
	// client may not use.
	ErrNotAllowed = errors.New("realm: tenant not allowed for this client")
)

// Source names where a result came from.
type Source string

// The sources, in precedence order.
const (
	SourceIdPHint    Source = "idp_hint"
	SourceDomainHint Source = "domain_hint"
	SourceLoginHint  Source = "login_hint"
	SourceSubdomain  Source = "subdomain"
	SourceIP         Source = "ip_range"
	SourceCookie     Source = "cookie"
	SourceDefault    Source = "default_tenant"
)

// Tenant is what the resolver knows of one tenant.
type Tenant struct {
	// ID is the tenant id carried as tid in tokens.
	ID string
	// Name is the tenant's display name.
	Name string
	// Domains are the tenant's verified email domains; "*.example.com"
	// matches true subdomains of example.com (not example.com itself).
	Domains []string
	// Subdomain routes <Subdomain>.<base domain> to the tenant.
	Subdomain string
	// IPRanges route clients inside them to the tenant.
	IPRanges []netip.Prefix
	// IdPs lists the ids of the tenant's identity providers, in configured order.
	IdPs []string
	// Pending lists those of IdPs that are pending: added through the setup
	// portal and not yet activated by the customer's admin. They belong to
	// the tenant (TenantOfIdP), but Resolve never routes a user to them.
	Pending []string
	// Default marks the tenant that receives users whose domain matches no tenant.
	Default bool
}

// Options configure a Resolver.
type Options struct {
	// BaseDomain is the parent of tenant subdomains, such as login.example.com.
	BaseDomain string
}

// Request is what the resolver may use to find a user's realm.
type Request struct {
	// IdPHint names an IdP directly (idp_hint, kc_idp_hint).
	IdPHint string
	// DomainHint names an email domain (domain_hint, whr).
	DomainHint string
	// LoginHint is the OIDC login_hint or the email typed on the discovery page.
	LoginHint string
	// Host is the request's Host header (port allowed).
	Host string
	// ClientIP is the client's address as established by the caller (after
	// trusted-proxy handling); the zero Addr means unknown.
	ClientIP netip.Addr
	// RememberedIdP is the IdP id from the remembered-choice cookie, whose
	// signature the caller has already verified.
	RememberedIdP string
	// Allowed reports whether the client may use an IdP of a tenant; nil allows all.
	Allowed func(tenant, idp string) bool
}

// Result names the tenant found and the IdPs that may authenticate the user.
type Result struct {
	// Tenant is the resolved tenant id.
	Tenant string
	// IdPs are the candidate IdPs the client may use; more than one means
	// the user chooses. Read-only: it may share the resolver's memory.
	IdPs []string
	// IdP is set when the source named one IdP (idp_hint, cookie).
	IdP string
	// Source says which source decided.
	Source Source
}

// Resolver maps requests to tenants. It is immutable and safe for concurrent
// use; lookups cost a few map probes whatever the number of tenants.
type Resolver struct {
	// The tables keyed by string are copy-on-write (internal/cowmap): a
	// Resolver derived by Update shares them with its parent and copies
	// only the shards holding what changed.
	tenants *cowmap.Map[*Tenant]
	// domains indexes exact and wildcard domains in one map, so a lookup
	// walks one table: domain -> its exact owner and the owner of "*.domain".
	domains    *cowmap.Map[domainOwners]
	subdomains *cowmap.Map[string]
	idpOwner   *cowmap.Map[string] // idp -> tenant
	ipBits     []int               // distinct prefix lengths, longest first
	ipv4, ipv6 map[netip.Prefix]string
	baseDomain string
	def        string
}

// New builds a Resolver. It refuses a domain, subdomain, IP range or IdP
// claimed by two tenants, naming both.
func New(tenants []Tenant, opts Options) (*Resolver, error) {
	r := &Resolver{
		tenants:    cowmap.New[*Tenant](len(tenants)),
		domains:    cowmap.New[domainOwners](2 * len(tenants)),
		subdomains: cowmap.New[string](0),
		idpOwner:   cowmap.New[string](len(tenants)),
		ipv4:       make(map[netip.Prefix]string),
		ipv6:       make(map[netip.Prefix]string),
	}
	if opts.BaseDomain != "" {
		bd, err := NormalizeDomain(opts.BaseDomain)
		if err != nil {
			return nil, fmt.Errorf("realm: base domain: %w", err)
		}
		r.baseDomain = bd
	}
	var errs []error
	for i := range tenants {
		t := tenants[i]
		if _, dup := r.tenants.Get(t.ID); dup {
			errs = append(errs, fmt.Errorf("realm: tenant %q defined twice", t.ID))
			continue
		}
		errs = append(errs, r.add(&t)...)
	}
	r.indexIPBits()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// add indexes t, returning what it claims that another tenant holds.
func (r *Resolver) add(t *Tenant) []error {
	var errs []error
	r.tenants.Set(t.ID, t)
	if t.Default {
		if r.def != "" {
			errs = append(errs, fmt.Errorf("realm: tenants %q and %q are both default", r.def, t.ID))
		}
		r.def = t.ID
	}
	for _, d := range t.Domains {
		raw, wild := strings.CutPrefix(strings.TrimSpace(d), "*.")
		key, err := NormalizeDomain(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("realm: tenant %q: domain %q: %w", t.ID, d, err))
			continue
		}
		o := r.domains.Value(key)
		slot := &o.exact
		if wild {
			slot = &o.wild
		}
		if *slot != "" && *slot != t.ID {
			errs = append(errs, fmt.Errorf("realm: domain %q claimed by tenants %q and %q", d, *slot, t.ID))
			continue
		}
		*slot = t.ID
		r.domains.Set(key, o)
	}
	if t.Subdomain != "" {
		sd := strings.ToLower(t.Subdomain)
		if other, dup := r.subdomains.Get(sd); dup {
			errs = append(errs, fmt.Errorf("realm: subdomain %q claimed by tenants %q and %q", sd, other, t.ID))
		}
		r.subdomains.Set(sd, t.ID)
	}
	for _, p := range t.IPRanges {
		p = p.Masked()
		m := r.ipv4
		if p.Addr().Is6() {
			m = r.ipv6
		}
		if other, dup := m[p]; dup && other != t.ID {
			errs = append(errs, fmt.Errorf("realm: ip range %s claimed by tenants %q and %q", p, other, t.ID))
		}
		m[p] = t.ID
	}
	for _, idp := range t.IdPs {
		if other, dup := r.idpOwner.Get(idp); dup {
			errs = append(errs, fmt.Errorf("realm: idp %q belongs to tenants %q and %q", idp, other, t.ID))
		}
		r.idpOwner.Set(idp, t.ID)
	}
	for _, idp := range t.Pending {
		if !slices.Contains(t.IdPs, idp) {
			errs = append(errs, fmt.Errorf("realm: tenant %q: pending idp %q is not one of its idps", t.ID, idp))
		}
	}
	return errs
}

// indexIPBits lists the distinct prefix lengths of the IP ranges, longest first.
func (r *Resolver) indexIPBits() {
	bits := map[int]bool{}
	for _, m := range []map[netip.Prefix]string{r.ipv4, r.ipv6} {
		for p := range m {
			bits[p.Bits()] = true
		}
	}
	r.ipBits = r.ipBits[:0:0]
	for b := range bits {
		r.ipBits = append(r.ipBits, b)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(r.ipBits)))
}

// NormalizeDomain lower-cases d, drops a trailing dot and converts an
// internationalized name to its ASCII (punycode) form.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if d == "" || !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: empty or malformed domain", ErrInvalidHint)
	}
	if !isLowerASCIIHost(d) {
		a, err := idna.Lookup.ToASCII(d)
		if err != nil {
			return "", fmt.Errorf("%w: domain %q: %v", ErrInvalidHint, d, err)
		}
		d = a
	}
	if !validHost(d) {
		return "", fmt.Errorf("%w: %q is not a host name", ErrInvalidHint, d)
	}
	return d, nil
}

// validHost reports whether d is a lower-case ASCII host name: 1-253
// characters, labels of 1-63 letters, digits and hyphens (RFC 1035 §2.3.4).
func validHost(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// isLowerASCIIHost is the fast path: already normalized.
func isLowerASCIIHost(d string) bool {
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(d, "xn--") && !strings.HasPrefix(d, ".") && !strings.Contains(d, "..")
}

// EmailDomain returns the normalized domain part of an email address that
// ParseEmail accepts; anything else is an error wrapping ErrBadEmail.
func EmailDomain(email string) (string, error) {
	e, err := ParseEmail(email)
	if err != nil {
		return "", err
	}
	return e.Domain, nil
}

// TenantForDomain returns the tenant that verified domain: an exact match
// first, then the longest wildcard parent. domain must be normalized.
func (r *Resolver) TenantForDomain(domain string) (string, bool) {
	if o, ok := r.domains.Get(domain); ok && o.exact != "" {
		return o.exact, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return "", false
		}
		d = d[i+1:]
		if o, ok := r.domains.Get(d); ok && o.wild != "" {
			return o.wild, true
		}
	}
}

// domainOwners are the tenants owning a domain exactly and as "*.domain".
type domainOwners struct{ exact, wild string }

func (r *Resolver) tenantForHost(host string) (string, bool) {
	if r.baseDomain == "" || host == "" {
		return "", false
	}
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.Contains(host, "]") {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	sub, ok := strings.CutSuffix(host, "."+r.baseDomain)
	if !ok || sub == "" || strings.Contains(sub, ".") {
		return "", false
	}
	return r.subdomains.Get(sub)
}

func (r *Resolver) tenantForIP(ip netip.Addr) (string, bool) {
	if !ip.IsValid() || len(r.ipBits) == 0 {
		return "", false
	}
	ip = ip.Unmap()
	m := r.ipv4
	if ip.Is6() {
		m = r.ipv6
	}
	for _, b := range r.ipBits {
		if b > ip.BitLen() {
			continue
		}
		p, err := ip.Prefix(b)
		if err != nil {
			continue
		}
		if t, ok := m[p]; ok {
			return t, true
		}
	}
	return "", false
}

// Resolve finds the tenant for req following the package's precedence.
func (r *Resolver) Resolve(req Request) (Result, error) {
	// refused records that something the user or client named explicitly
	// (a hint, an email, the host) pointed only to forbidden tenants; a
	// stale cookie or an IP range falls through silently.
	refused := false
	try := func(tenant, idp string, src Source) (Result, bool) {
		res, ok := r.result(tenant, idp, src, req.Allowed)
		if !ok && src != SourceCookie && src != SourceIP {
			refused = true
		}
		return res, ok
	}
	if req.IdPHint != "" {
		if t, ok := r.idpOwner.Get(req.IdPHint); ok && !r.IsPending(req.IdPHint) {
			if res, ok := try(t, req.IdPHint, SourceIdPHint); ok {
				return res, nil
			}
		}
	}
	if req.DomainHint != "" {
		if d, err := NormalizeDomain(req.DomainHint); err == nil {
			if t, ok := r.TenantForDomain(d); ok {
				if res, ok := try(t, "", SourceDomainHint); ok {
					return res, nil
				}
			}
		}
	}
	if req.LoginHint != "" {
		d, err := EmailDomain(req.LoginHint)
		if err != nil {
			return Result{}, err
		}
		t, ok := r.TenantForDomain(d)
		src := SourceLoginHint
		if !ok && r.def != "" {
			t, ok, src = r.def, true, SourceDefault
		}
		if ok {
			if res, ok := try(t, "", src); ok {
				return res, nil
			}
		}
	}
	if t, ok := r.tenantForHost(req.Host); ok {
		if res, ok := try(t, "", SourceSubdomain); ok {
			return res, nil
		}
	}
	if t, ok := r.tenantForIP(req.ClientIP); ok {
		if res, ok := try(t, "", SourceIP); ok {
			return res, nil
		}
	}
	if req.RememberedIdP != "" {
		if t, ok := r.idpOwner.Get(req.RememberedIdP); ok && !r.IsPending(req.RememberedIdP) {
			if res, ok := try(t, req.RememberedIdP, SourceCookie); ok {
				return res, nil
			}
		}
	}
	if refused {
		return Result{}, ErrNotAllowed
	}
	return Result{}, ErrNoMatch
}

// result builds a Result holding only the IdPs the client may use and
// that are not pending; ok is false when none remains, unless the client
// may use a pending one: then the tenant has no sign-in method yet, and
// the Result names it with no IdP.
func (r *Resolver) result(tenant, idp string, src Source, allowed func(string, string) bool) (Result, bool) {
	t := r.tenants.Value(tenant)
	res := Result{Tenant: tenant, Source: src}
	if idp != "" {
		if allowed != nil && !allowed(tenant, idp) {
			return Result{}, false
		}
		res.IdP, res.IdPs = idp, []string{idp}
		return res, true
	}
	if allowed == nil && len(t.Pending) == 0 {
		res.IdPs = t.IdPs // shared, read-only: callers must not modify Result.IdPs
		return res, len(res.IdPs) > 0
	}
	pendingAllowed := false
	for _, p := range t.IdPs {
		switch {
		case allowed != nil && !allowed(tenant, p):
		case slices.Contains(t.Pending, p):
			pendingAllowed = true
		default:
			res.IdPs = append(res.IdPs, p)
		}
	}
	return res, len(res.IdPs) > 0 || pendingAllowed
}

// IsPending reports whether idp is a pending IdP of its tenant
// (Tenant.Pending): it serves only test sign-ins, never end users.
func (r *Resolver) IsPending(idp string) bool {
	owner, ok := r.idpOwner.Get(idp)
	return ok && slices.Contains(r.tenants.Value(owner).Pending, idp)
}

// Tenant returns the tenant with the given id.
func (r *Resolver) Tenant(id string) (Tenant, bool) {
	t, ok := r.tenants.Get(id)
	if !ok {
		return Tenant{}, false
	}
	return *t, true
}

// DefaultTenant returns the default tenant, if one is configured.
func (r *Resolver) DefaultTenant() (Tenant, bool) {
	if r.def == "" {
		return Tenant{}, false
	}
	return r.Tenant(r.def)
}

// TenantOfIdP returns the tenant that owns the IdP: the only source of the
// tenant placed in tokens (SECURITY S50).
func (r *Resolver) TenantOfIdP(idp string) (string, bool) {
	return r.idpOwner.Get(idp)
}

// DomainVerified reports whether email's domain is one the tenant verified
// (SECURITY S52).
func (r *Resolver) DomainVerified(tenant, email string) bool {
	d, err := EmailDomain(email)
	if err != nil {
		return false
	}
	owner, ok := r.TenantForDomain(d)
	return ok && owner == tenant
}

// Tenants returns all tenants sorted by id.
func (r *Resolver) Tenants() []Tenant {
	out := make([]Tenant, 0, r.tenants.Len())
	for _, t := range r.tenants.All() {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tenant) int { return strings.Compare(a.ID, b.ID) })
	return out
}
