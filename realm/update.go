package realm

import (
	"errors"
	"fmt"
	"maps"
	"strings"
)

// Update returns a Resolver with the tenants named in remove taken out and
// those of add put in (a tenant named in both, or in add only while r has
// it, is replaced). r itself does not change: the new Resolver shares r's
// tables copy-on-write (internal/cowmap: only the shards holding a changed
// key are copied) and indexes only the tenants added, so one tenant's
// change costs the same at 100k tenants as at ten. Conflicts are refused
// as New refuses them, naming both tenants.
func (r *Resolver) Update(remove []string, add []Tenant) (*Resolver, error) {
	out := &Resolver{
		tenants:    r.tenants.Clone(),
		domains:    r.domains.Clone(),
		subdomains: r.subdomains.Clone(),
		idpOwner:   r.idpOwner.Clone(),
		ipv4:       maps.Clone(r.ipv4), // few: tenants routed by network
		ipv6:       maps.Clone(r.ipv6),
		baseDomain: r.baseDomain,
		def:        r.def,
	}
	for _, id := range remove {
		out.drop(id)
	}
	for i := range add {
		out.drop(add[i].ID)
	}
	var errs []error
	for i := range add {
		t := add[i]
		if _, dup := out.tenants.Get(t.ID); dup {
			errs = append(errs, fmt.Errorf("realm: tenant %q defined twice", t.ID))
			continue
		}
		errs = append(errs, out.add(&t)...)
	}
	out.indexIPBits()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// drop removes tenant id and what it claims from r's tables (copies).
func (r *Resolver) drop(id string) {
	t, ok := r.tenants.Get(id)
	if !ok {
		return
	}
	r.tenants.Delete(id)
	if r.def == id {
		r.def = ""
	}
	for _, d := range t.Domains {
		raw, wild := strings.CutPrefix(strings.TrimSpace(d), "*.")
		key, err := NormalizeDomain(raw)
		if err != nil {
			continue
		}
		o, ok := r.domains.Get(key)
		if !ok {
			continue
		}
		if wild && o.wild == id {
			o.wild = ""
		} else if !wild && o.exact == id {
			o.exact = ""
		}
		if o == (domainOwners{}) {
			r.domains.Delete(key)
		} else {
			r.domains.Set(key, o)
		}
	}
	if t.Subdomain != "" {
		if sd := strings.ToLower(t.Subdomain); r.subdomains.Value(sd) == id {
			r.subdomains.Delete(sd)
		}
	}
	for _, p := range t.IPRanges {
		p = p.Masked()
		m := r.ipv4
		if p.Addr().Is6() {
			m = r.ipv6
		}
		if m[p] == id {
			delete(m, p)
		}
	}
	for _, idp := range t.IdPs {
		if r.idpOwner.Value(idp) == id {
			r.idpOwner.Delete(idp)
		}
	}
}
