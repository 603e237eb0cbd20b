package realm

import (
	"errors"
	"fmt"
	"maps"
	"strings"
)

// Update returns a Resolver with the tenants named in remove taken out and
// those of add put in (a tenant named in both, or in add only while r has
// it, is replaced). r itself does not change: the new Resolver copies r's
// tables (a copy of a map costs little next to indexing every tenant
// again) and indexes only the tenants added, so one tenant's change costs
// about the same at 100k tenants as at ten. Conflicts are refused as New
// refuses them, naming both tenants.
func (r *Resolver) Update(remove []string, add []Tenant) (*Resolver, error) {
	out := &Resolver{
		tenants:    maps.Clone(r.tenants),
		domains:    maps.Clone(r.domains),
		subdomains: maps.Clone(r.subdomains),
		idpOwner:   maps.Clone(r.idpOwner),
		ipv4:       maps.Clone(r.ipv4),
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
		if _, dup := out.tenants[t.ID]; dup {
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
	t, ok := r.tenants[id]
	if !ok {
		return
	}
	delete(r.tenants, id)
	if r.def == id {
		r.def = ""
	}
	for _, d := range t.Domains {
		raw, wild := strings.CutPrefix(strings.TrimSpace(d), "*.")
		key, err := NormalizeDomain(raw)
		if err != nil {
			continue
		}
		o, ok := r.domains[key]
		if !ok {
			continue
		}
		if wild && o.wild == id {
			o.wild = ""
		} else if !wild && o.exact == id {
			o.exact = ""
		}
		if o == (domainOwners{}) {
			delete(r.domains, key)
		} else {
			r.domains[key] = o
		}
	}
	if t.Subdomain != "" {
		if sd := strings.ToLower(t.Subdomain); r.subdomains[sd] == id {
			delete(r.subdomains, sd)
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
		if r.idpOwner[idp] == id {
			delete(r.idpOwner, idp)
		}
	}
}
