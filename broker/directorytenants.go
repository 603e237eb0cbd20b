package broker

import (
	"fmt"
	"maps"

	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// ReconfigureTenants is Reconfigure for a directory d that differs from
// the current one only in the tenants named (added, changed or removed)
// and, unless clients is set, not in its clients: only those tenants' IdPs
// are checked and prepared, everything else is kept as it is, so applying
// one tenant's change costs about the same among 100k tenants as among
// ten. base is the resolver of the directory d was derived from; when the
// current directory has another one (someone reconfigured meanwhile),
// ReconfigureTenants reconfigures in full.
func (s *Server) ReconfigureTenants(base *realm.Resolver, d Directory, tenants []string, clients bool) error {
	cur := s.dir()
	if cur == nil || base == nil || cur.resolver != base || d.Resolver == nil {
		return s.Reconfigure(d)
	}
	changed := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		changed[t] = true
	}
	out := &directory{resolver: d.Resolver, idps: maps.Clone(cur.idps), rules: d.Rules, policies: d.Policies, clients: cur.clients, samlApps: cur.samlApps}
	for id := range changed {
		if t, ok := cur.resolver.Tenant(id); ok {
			for _, p := range t.IdPs {
				delete(out.idps, p)
			}
		}
	}
	var added []string
	for _, p := range d.IdPs {
		if !changed[p.Tenant] {
			continue
		}
		owner, ok := d.Resolver.TenantOfIdP(p.ID)
		if !ok || owner != p.Tenant {
			return fmt.Errorf("broker: idp %q is not registered with tenant %q in the resolver", p.ID, p.Tenant)
		}
		if p.Connector == nil {
			return fmt.Errorf("broker: idp %q has no connector", p.ID)
		}
		if err := pendingAgrees(d.Resolver, p); err != nil { // pendingidp.go
			return err
		}
		if _, dup := out.idps[p.ID]; dup {
			return fmt.Errorf("broker: idp %q defined twice", p.ID)
		}
		out.idps[p.ID] = p
		added = append(added, p.ID)
	}
	if clients && d.Clients != nil {
		cls, err := newClients(d.Clients)
		if err != nil {
			return err
		}
		out.clients = withAccessClient(cls)
		out.samlApps = samlAppIndex(out.clients)
	}
	members, err := indexMemberships(d)
	if err != nil {
		return err
	}
	out.members = members
	if out.rules == nil {
		out.rules = map[string]*transform.Engine{}
	}
	for _, id := range added {
		s.prepareConnector(out, id)
	}
	if !s.directory.CompareAndSwap(cur, out) {
		return s.Reconfigure(d) // reconfigured meanwhile: in full
	}
	s.prepareLogos(brandings(out, append([]string{}, tenants...), clients), false) // brand.go: the changed tenants' and clients' logos
	// What the change removed is among the changed tenants' IdPs (and the
	// clients when they changed): the other IdPs are not looked at.
	s.endRemovedLater(cur, removedAmong(cur, out, func(yield func(string) bool) {
		for id := range changed {
			t, _ := cur.resolver.Tenant(id)
			for _, p := range t.IdPs {
				if !yield(p) {
					return
				}
			}
		}
	}, clients && d.Clients != nil), d.Actor)
	return nil
}
