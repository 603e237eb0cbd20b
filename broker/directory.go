package broker

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// Directory is what the broker knows of tenants: the realm resolver, every
// IdP with its connector, and each tenant's compiled rules. It is immutable;
// Reconfigure swaps it atomically, so each lookup sees one whole version and
// onboarding needs no restart.
type Directory struct {
	// Resolver finds a user's home realm.
	Resolver *realm.Resolver
	// IdPs are every tenant's upstream identity providers.
	IdPs []IdP
	// Rules holds each tenant's compiled claims rules; a missing tenant passes claims through.
	Rules map[string]*transform.Engine
	// Policies holds each tenant's sign-in requirements (MFA).
	Policies map[string]TenantPolicy
	// Memberships let identities of one tenant's IdP act in other tenants.
	Memberships []Membership
	// Clients are the registered applications; nil keeps the current ones.
	Clients []Client
	// Actor names who made this version (the admin API's caller, or the
	// configuration file): the audit of the sessions its deletions end
	// (deletion.go) names it.
	Actor string
}

// directory is the validated, indexed form of a Directory.
type directory struct {
	resolver *realm.Resolver
	idps     map[string]IdP
	rules    map[string]*transform.Engine
	policies map[string]TenantPolicy
	members  map[string][]Membership // by IdP
	clients  map[string]*client
	samlApps map[string]*client // SAML apps by entity ID (samlidp.go)
	// longestRefresh is the longest refresh lifetime a client sets for
	// itself (lifetimes.go); zero when none does.
	longestRefresh time.Duration
}

func newDirectory(d Directory, current *directory) (*directory, error) {
	if d.Resolver == nil {
		return nil, fmt.Errorf("broker: no realm resolver")
	}
	out := &directory{resolver: d.Resolver, idps: make(map[string]IdP, len(d.IdPs)), rules: d.Rules, policies: d.Policies}
	for _, p := range d.IdPs {
		owner, ok := d.Resolver.TenantOfIdP(p.ID)
		if !ok || owner != p.Tenant {
			return nil, fmt.Errorf("broker: idp %q is not registered with tenant %q in the resolver", p.ID, p.Tenant)
		}
		if p.Connector == nil {
			return nil, fmt.Errorf("broker: idp %q has no connector", p.ID)
		}
		if err := pendingAgrees(d.Resolver, p); err != nil { // pendingidp.go
			return nil, err
		}
		if _, dup := out.idps[p.ID]; dup {
			return nil, fmt.Errorf("broker: idp %q defined twice", p.ID)
		}
		out.idps[p.ID] = p
	}
	if d.Clients == nil && current != nil {
		out.clients = current.clients
	} else {
		cls, err := newClients(d.Clients)
		if err != nil {
			return nil, err
		}
		out.clients = cls
	}
	out.clients = withAccessClient(out.clients)
	for _, cl := range out.clients {
		out.longestRefresh = max(out.longestRefresh, lifetime(cl.RefreshTokenLifetime, 0, MaxRefreshTokenLifetime))
	}
	out.samlApps = samlAppIndex(out.clients)
	members, err := indexMemberships(d)
	if err != nil {
		return nil, err
	}
	out.members = members
	if out.rules == nil {
		out.rules = map[string]*transform.Engine{}
	}
	return out, nil
}

// indexMemberships checks d's memberships and indexes them by IdP.
func indexMemberships(d Directory) (map[string][]Membership, error) {
	members := map[string][]Membership{}
	for _, m := range d.Memberships {
		if owner, ok := d.Resolver.TenantOfIdP(m.IdP); !ok {
			return nil, fmt.Errorf("broker: membership in %q names unknown idp %q", m.Tenant, m.IdP)
		} else if owner == m.Tenant {
			continue // already home
		}
		if _, ok := d.Resolver.Tenant(m.Tenant); !ok {
			return nil, fmt.Errorf("broker: membership names unknown tenant %q", m.Tenant)
		}
		if m.Subject == "" && m.Email == "" {
			return nil, fmt.Errorf("broker: membership in %q needs a subject or an email", m.Tenant)
		}
		members[m.IdP] = append(members[m.IdP], m)
	}
	return members, nil
}

// dir returns the current directory.
func (s *Server) dir() *directory { return s.directory.Load() }

// Reconfigure validates d and makes it the directory every following
// request uses. Requests in flight finish with the version they started
// with where they already hold it. An invalid d changes nothing.
func (s *Server) Reconfigure(d Directory) error {
	nd, err := newDirectory(d, s.dir())
	if err != nil {
		return err
	}
	s.prepareConnectors(nd)
	old := s.directory.Swap(nd)
	s.prepareLogos(brandings(nd, nil, true), true) // brand.go
	s.afterSwap(old, nd, d.Actor)
	return nil
}

// afterSwap ends, in the background, the sessions of what the change from
// old to next deleted, everywhere (deletion.go).
func (s *Server) afterSwap(old, next *directory, actor string) {
	s.endRemovedLater(old, removed(old, next), actor)
}

// endRemovedLater ends, in the background, the sessions of what r says
// the change from old removed.
func (s *Server) endRemovedLater(old *directory, r removal, actor string) {
	if !r.empty() {
		s.revoking.Add(1)
		go func() {
			defer s.revoking.Done()
			s.endRemoved(old, r, actor)
		}()
	}
}

// prepareConnectors puts every connector behind its IdP's bulkhead
// (upstreamlimit.go) and hands shared facilities to connectors that want them.
func (s *Server) prepareConnectors(d *directory) {
	for id := range d.idps {
		s.prepareConnector(d, id)
	}
}

// prepareConnector prepares the connector of one IdP of d.
func (s *Server) prepareConnector(d *directory, id string) {
	idp := d.idps[id]
	idp.Connector = limitUpstream(idp, s.cfg.UpstreamConcurrency)
	d.idps[id] = idp
	if u, ok := providers.As[providers.ReplayCacheUser](idp.Connector); ok {
		u.SetReplayCache(replayCache{s: s})
	}
}

// newClients indexes clients, keeping only the hash of each secret (S16).
func newClients(list []Client) (map[string]*client, error) {
	out := make(map[string]*client, len(list))
	for _, c := range list {
		if c.ID == "" {
			return nil, fmt.Errorf("broker: client without id")
		}
		if _, dup := out[c.ID]; dup {
			return nil, fmt.Errorf("broker: client %q defined twice", c.ID)
		}
		cl := &client{Client: c}
		if c.Secret != "" {
			cl.secretHash, cl.confidential = sha256.Sum256([]byte(c.Secret)), true
		}
		cl.confidential = cl.confidential || c.AuthMethod == authPrivateKeyJWT
		cl.Client.Secret = "" // keep only the hash (S16)
		cl.tenants = map[string]bool{}
		for _, t := range c.AllowedTenants {
			if t == "*" {
				cl.allTenants = true
			}
			cl.tenants[t] = true
		}
		if len(c.AllowedIdPs) > 0 {
			cl.idps = map[string]bool{}
			for _, p := range c.AllowedIdPs {
				cl.idps[p] = true
			}
		}
		cl.claims = make(map[string]bool, len(c.Claims))
		for _, n := range c.Claims {
			cl.claims[n] = true
		}
		cl.sector = sectorOf(c) // pairwise.go
		out[c.ID] = cl
	}
	return out, nil
}
