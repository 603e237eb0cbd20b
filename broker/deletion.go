package broker

// This file ends the access that a configuration change takes away:
// deleting a tenant, an IdP, a client or a membership (admin API or the
// file) ends every session that depended on it, on every instance, with
// back-channel logout tokens to the applications, audited with the actor.
//
// Two mechanisms, neither of which scans users:
//
//  1. Every instance's authorization decision (authorizeFor) refuses a
//     refresh, an SSO sign-in or a token exchange for what its directory no
//     longer has, without a store read; admin API changes reach every
//     instance within its poll interval (200 ms).
//  2. Sessions are indexed by IdP and by client (bounded, newest kept). An
//     instance that applies a directory without something the previous one
//     had takes each indexed session of it from the store (exactly one
//     instance wins each), marks it logged out (the marker every refresh
//     rotation checks in the same step, so the families of the session stop
//     on every instance, even one whose configuration lags) and sends its
//     applications back-channel logout tokens.

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// maxScopeSessions bounds the sessions indexed per IdP and per client:
// deleting one ends at most this many (the newest) by their index; older
// ones are refused by the authorization decision all the same.
const maxScopeSessions = 10000

// revocationTimeout bounds the work of ending the sessions of one change.
const revocationTimeout = 2 * time.Minute

// scopeKeys are the indexes of the sessions of an IdP and of a client.
func (s *Server) idpSessionsKey(idp string) string   { return s.keyer.key("si", idp) }
func (s *Server) clientSessionsKey(cl string) string { return s.keyer.key("sc", cl) }

// scopeMember is a session as the IdP and client indexes name it: its
// store key and its id (the id marks it revoked even once the record has
// expired, since its refresh-token families live longer).
func scopeMember(sess *session) string { return sess.key + " " + sess.SID }

// scopeAdds are the index additions of a session: under its IdP and under
// each of clients.
func (s *Server) scopeAdds(sess *session, clients ...string) []store.IndexAdd {
	ttl := max(s.longestRefreshLifetime(), s.cfg.SessionLifetime)
	m := scopeMember(sess)
	adds := []store.IndexAdd{{Key: s.idpSessionsKey(sess.IdP), Member: m, Max: maxScopeSessions, TTL: ttl}}
	for _, c := range clients {
		adds = append(adds, store.IndexAdd{Key: s.clientSessionsKey(c), Member: m, Max: maxScopeSessions, TTL: ttl})
	}
	return adds
}

// addToIndexes writes adds in one round trip where the store can
// (store.IndexBatcher), else one by one.
func (s *Server) addToIndexes(ctx context.Context, adds []store.IndexAdd) error {
	if b, ok := s.store.(store.IndexBatcher); ok {
		return b.AddToIndexes(ctx, adds)
	}
	ix, ok := s.store.(IndexStore)
	if !ok {
		return nil
	}
	var first error
	for _, a := range adds {
		if err := ix.AddToIndex(ctx, a.Key, a.Member, a.Max, a.TTL); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// removal is what a new directory no longer has.
type removal struct {
	idps        map[string]string // IdP -> "idp_deleted" or "tenant_deleted"
	clients     []string
	memberships []Membership
}

func (r *removal) empty() bool {
	return len(r.idps) == 0 && len(r.clients) == 0 && len(r.memberships) == 0
}

// removed compares the directory before a change with the one after.
func removed(old, next *directory) removal {
	if old == nil {
		return removal{idps: map[string]string{}}
	}
	return removedAmong(old, next, maps.Keys(old.idps), true)
}

// removedAmong is removed looking only at the given IdPs of old, and at
// the clients when clients is set (a change of a few tenants looks at
// theirs, not at every IdP; memberships are few and all looked at).
func removedAmong(old, next *directory, idps iter.Seq[string], clients bool) removal {
	r := removal{idps: map[string]string{}}
	for id := range idps {
		p, ok := old.idps[id]
		if !ok {
			continue
		}
		_, tenantKept := next.resolver.Tenant(p.Tenant)
		reborn := old.policies[p.Tenant].Incarnation != "" && next.policies[p.Tenant].Incarnation != old.policies[p.Tenant].Incarnation
		np, kept := next.idps[id]
		switch {
		case !tenantKept || reborn:
			r.idps[id] = "tenant_deleted"
		case !kept || np.Tenant != p.Tenant:
			r.idps[id] = "idp_deleted"
		}
	}
	for id := range old.clients {
		if !clients {
			break
		}
		if _, ok := next.clients[id]; !ok {
			r.clients = append(r.clients, id)
		}
	}
	slices.Sort(r.clients)
	for idp, ms := range old.members {
		if _, gone := r.idps[idp]; gone {
			continue // every session of the IdP ends anyway
		}
		for _, m := range ms {
			if !slices.Contains(next.members[idp], m) {
				r.memberships = append(r.memberships, m)
			}
		}
	}
	return r
}

// endRemoved ends the sessions that depended on what r removed, with the
// directory before the change (its clients receive the logout tokens);
// actor is audited. It runs off the request path.
func (s *Server) endRemoved(old *directory, r removal, actor string) {
	ctx, cancel := context.WithTimeout(context.Background(), revocationTimeout)
	defer cancel()
	if actor == "" {
		actor = "configuration"
	}
	for _, idp := range sortedKeys(r.idps) {
		n := s.endIndexed(ctx, old, s.idpSessionsKey(idp), nil)
		s.auditRemoval(ctx, r.idps[idp], old.idps[idp].Tenant, idp, "", actor, n)
	}
	for _, cl := range r.clients {
		n := s.endIndexed(ctx, old, s.clientSessionsKey(cl), nil)
		s.auditRemoval(ctx, "client_deleted", "", "", cl, actor, n)
	}
	for _, m := range r.memberships {
		m := m
		n := s.endIndexed(ctx, old, s.idpSessionsKey(m.IdP), func(sess *session) bool {
			return slices.Contains(old.memberships(sess.IdP, &sess.Identity), m) &&
				!s.dir().isMember(m.Tenant, sessionSubject(sess))
		})
		s.auditRemoval(ctx, "membership_deleted", m.Tenant, m.IdP, "", actor, n)
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// endIndexed ends each session of the index under key that keep accepts
// (nil: all) and returns how many this instance ended.
func (s *Server) endIndexed(ctx context.Context, old *directory, key string, keep func(*session) bool) int {
	ix, ok := s.store.(IndexStore)
	if !ok {
		return 0
	}
	members, err := ix.IndexMembers(ctx, key)
	if err != nil {
		s.log.Error("end sessions of a deleted configuration entry: read index", "err", err)
		return 0
	}
	ended := 0
	for _, m := range members {
		skey, sid, _ := strings.Cut(m, " ")
		if keep != nil {
			var sess session
			if err := s.getJSON(ctx, skey, &sess); err != nil || !keep(&sess) {
				continue
			}
		}
		var sess session
		err := s.takeJSON(ctx, skey, &sess)
		switch {
		case err == nil:
			sess.key = ""
			if err := s.endWith(ctx, old, &sess); err != nil {
				s.log.Error("end session of a deleted configuration entry", "err", err)
				continue
			}
			ended++
		case errors.Is(err, ErrNotFound) && keep == nil && sid != "":
			// Expired, or another instance took it: its families may live
			// on, so mark the id (idempotent).
			_ = s.markRevoked(ctx, sid)
		}
	}
	if keep == nil {
		_ = s.store.Delete(ctx, key)
	}
	return ended
}

// markRevoked writes the logged-out markers of session id sid.
func (s *Server) markRevoked(ctx context.Context, sid string) error {
	if err := s.store.Put(ctx, sessionRevokedKey(sid), []byte("1"), s.longestRefreshLifetime()); err != nil {
		return storeErr("mark session revoked", err)
	}
	if _, ok := s.store.(SessionRotator); ok && taggableSID(sid) {
		if err := s.store.Put(ctx, sessionMarkerKey(sid), []byte("1"), s.longestRefreshLifetime()); err != nil {
			return storeErr("mark session revoked", err)
		}
	}
	return nil
}

// endWith ends sess (already taken from the store) and notifies its
// clients as old, the directory before the change, knew them.
func (s *Server) endWith(ctx context.Context, old *directory, sess *session) error {
	if err := s.markRevoked(ctx, sess.SID); err != nil {
		return err
	}
	for _, id := range sess.Clients {
		cl := old.clients[id]
		if cl == nil {
			cl = s.dir().clients[id]
		}
		if cl != nil && cl.BackchannelLogoutURI != "" {
			s.sendLogout(cl, sess)
		}
	}
	return nil
}

// auditRemoval writes the audit event of the sessions a deletion ended on
// this instance (one per instance that ended any; each session is ended
// by exactly one).
func (s *Server) auditRemoval(ctx context.Context, reason, tenant, idp, client, actor string, sessions int) {
	if sessions == 0 {
		return
	}
	ev := AuditEvent{Time: s.now().UTC(), Outcome: "revoked", Reason: reason, Tenant: tenant, IdP: idp,
		Client: client, Actor: clip(actor, maxAuditField)}
	logEvent(ctx, s.audit, slog.LevelInfo, "signin", slog.String("outcome", ev.Outcome), slog.String("reason", ev.Reason),
		slog.String("tenant", tenant), slog.String("idp", idp), slog.String("client", client),
		slog.String("actor", ev.Actor), slog.Int("sessions_ended", sessions))
	if tenant != "" {
		s.ops.audit.push(s, tenant, ev)
	}
}
