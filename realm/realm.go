// Package realm performs home-realm discovery: it turns what is known about
// a sign-in request (hints, the typed email) into a tenant and the identity
// providers that may authenticate its users. It depends on no other package
// of realmgate.
package realm

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors returned by Resolve.
var (
	// ErrNoMatch means nothing in the request points to a tenant and no
	// default tenant is configured: the user must be asked (discovery page).
	ErrNoMatch = errors.New("realm: no tenant matches")
	// ErrInvalidHint means a hint was syntactically unusable (not an email, empty domain).
	ErrInvalidHint = errors.New("realm: invalid hint")
)

// Tenant is what the resolver knows of one tenant.
type Tenant struct {
	// ID is the tenant id carried as tid in tokens.
	ID string
	// Name is the tenant's display name.
	Name string
	// Domains are the tenant's verified email domains; "*.example.com"
	// matches true subdomains of example.com.
	Domains []string
	// IdPs lists the ids of the tenant's identity providers, in configured order.
	IdPs []string
	// Default marks the tenant that receives users whose domain matches no tenant.
	Default bool
}

// Request is what the resolver may use to find a user's realm.
type Request struct {
	// LoginHint is the OIDC login_hint or the email typed on the discovery page.
	LoginHint string
}

// Result names the tenant found and the IdPs that may authenticate the user.
type Result struct {
	// Tenant is the resolved tenant id.
	Tenant string
	// IdPs are the candidate IdPs; more than one means the user chooses.
	IdPs []string
}

// Resolver maps requests to tenants. It is immutable and safe for concurrent use.
type Resolver struct {
	tenants  map[string]Tenant
	exact    map[string]string // domain -> tenant
	wildcard map[string]string // parent domain of "*.parent" -> tenant
	idpOwner map[string]string // idp -> tenant
	def      string
}

// New builds a Resolver. It refuses a domain or IdP claimed by two tenants.
func New(tenants []Tenant) (*Resolver, error) {
	r := &Resolver{
		tenants:  make(map[string]Tenant, len(tenants)),
		exact:    make(map[string]string),
		wildcard: make(map[string]string),
		idpOwner: make(map[string]string),
	}
	for _, t := range tenants {
		if _, dup := r.tenants[t.ID]; dup {
			return nil, fmt.Errorf("realm: tenant %q defined twice", t.ID)
		}
		r.tenants[t.ID] = t
		if t.Default {
			if r.def != "" {
				return nil, fmt.Errorf("realm: tenants %q and %q are both default", r.def, t.ID)
			}
			r.def = t.ID
		}
		for _, d := range t.Domains {
			m, key := r.exact, NormalizeDomain(d)
			if rest, ok := strings.CutPrefix(key, "*."); ok {
				m, key = r.wildcard, rest
			}
			if other, dup := m[key]; dup && other != t.ID {
				return nil, fmt.Errorf("realm: domain %q claimed by tenants %q and %q", d, other, t.ID)
			}
			m[key] = t.ID
		}
		for _, idp := range t.IdPs {
			if other, dup := r.idpOwner[idp]; dup {
				return nil, fmt.Errorf("realm: idp %q belongs to tenants %q and %q", idp, other, t.ID)
			}
			r.idpOwner[idp] = t.ID
		}
	}
	return r, nil
}

// NormalizeDomain lower-cases d and drops a trailing dot.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// EmailDomain returns the normalized domain part of an email address.
func EmailDomain(email string) (string, error) {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", fmt.Errorf("%w: %q is not an email address", ErrInvalidHint, email)
	}
	return NormalizeDomain(email[at+1:]), nil
}

// TenantForDomain returns the tenant that verified domain: an exact match
// first, then the longest wildcard parent.
func (r *Resolver) TenantForDomain(domain string) (string, bool) {
	domain = NormalizeDomain(domain)
	if t, ok := r.exact[domain]; ok {
		return t, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return "", false
		}
		d = d[i+1:]
		if t, ok := r.wildcard[d]; ok {
			return t, true
		}
	}
}

// Resolve finds the tenant for req. Precedence (issue 2, minimal): the email
// domain of the login hint, then the default tenant.
func (r *Resolver) Resolve(req Request) (Result, error) {
	if req.LoginHint != "" {
		domain, err := EmailDomain(req.LoginHint)
		if err != nil {
			return Result{}, err
		}
		if t, ok := r.TenantForDomain(domain); ok {
			return r.result(t), nil
		}
		if r.def != "" {
			return r.result(r.def), nil
		}
	}
	return Result{}, ErrNoMatch
}

func (r *Resolver) result(tenant string) Result {
	return Result{Tenant: tenant, IdPs: append([]string(nil), r.tenants[tenant].IdPs...)}
}

// Tenant returns the tenant with the given id.
func (r *Resolver) Tenant(id string) (Tenant, bool) {
	t, ok := r.tenants[id]
	return t, ok
}

// TenantOfIdP returns the tenant that owns the IdP: the only source of the
// tenant placed in tokens (SECURITY S50).
func (r *Resolver) TenantOfIdP(idp string) (string, bool) {
	t, ok := r.idpOwner[idp]
	return t, ok
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
	out := make([]Tenant, 0, len(r.tenants))
	for _, t := range r.tenants {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
