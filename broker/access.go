package broker

// This file holds time-bound role grants (just-in-time access): a tenant's
// user, or the admin API on their behalf, asks for a role for a while with
// a justification; a tenant approver approves or denies it (the admin API,
// or the approval page, access_page.go); where the tenant allows, the user
// activates the role without approval. An active grant adds the role to
// the user's tokens for that tenant until it expires: claimsFor adds it at
// sign-in and at every refresh, so the role disappears at the first refresh
// after expiry. Every step is audited and told to Shared Signals receivers
// as token-claims-change (caep.go).
//
// Store layout (keys HMACed by the keyer, each with a TTL):
//   - one record per grant, TTL its expiry (pending: AccessPendingTTL);
//   - one record per user and tenant listing the user's pending and active
//     grants (at most MaxUserGrants), read once per sign-in or refresh of a
//     tenant with an access policy; written under a short store lock;
//   - a bounded index of each tenant's grant ids (IndexStore) for listings.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
)

// AccessPolicy is a tenant's just-in-time access.
type AccessPolicy struct {
	// ApproverRoles: a user of the tenant whose roles (as the tenant's
	// rules give them, never a grant's) include one of these decides requests.
	ApproverRoles []string
	// Roles are the roles that may be requested, by name.
	Roles map[string]AccessRole
}

// AccessRole is one requestable role.
type AccessRole struct {
	// MaxDuration bounds how long a grant of the role lasts; zero means
	// DefaultAccessDuration.
	MaxDuration time.Duration
	// SelfActivate lets a user activate the role without approval.
	SelfActivate bool
}

// Just-in-time access limits.
const (
	// DefaultAccessDuration is a role's maximum duration when it sets none.
	DefaultAccessDuration = time.Hour
	// AccessPendingTTL is how long a request waits for a decision.
	AccessPendingTTL = 24 * time.Hour
	// MaxUserGrants bounds one user's pending and active grants in a tenant.
	MaxUserGrants = 16
	// MaxTenantGrants bounds the grants a tenant's listing shows (newest).
	MaxTenantGrants = 1000
	// maxJustification bounds a justification, in characters.
	maxJustification = 500
	accessLockTTL    = 5 * time.Second
)

// Grant statuses.
const (
	AccessPending = "pending"
	AccessActive  = "active"
	AccessDenied  = "denied"
	AccessRevoked = "revoked"
	AccessExpired = "expired"
)

// Errors of just-in-time access; the edges map them to answers.
var (
	// ErrAccessOff: the tenant has no access policy.
	ErrAccessOff = errors.New("broker: the tenant has no just-in-time access")
	// ErrAccessInvalid: an unknown role, a bad duration or justification.
	ErrAccessInvalid = errors.New("broker: invalid access request")
	// ErrAccessNotFound: no such grant in the tenant (or it expired).
	ErrAccessNotFound = errors.New("broker: no such access grant")
	// ErrAccessConflict: the grant is not in a state the decision applies to.
	ErrAccessConflict = errors.New("broker: the access grant was already decided")
	// ErrAccessForbidden: the approver may not decide this grant (their own).
	ErrAccessForbidden = errors.New("broker: an approver cannot decide their own request")
	// ErrAccessLimit: the user has MaxUserGrants pending or active grants.
	ErrAccessLimit = errors.New("broker: too many pending or active access grants")
)

// AccessRequest asks for a role for a while.
type AccessRequest struct {
	// Tenant and Subject are the user (sub as realmgate issues it for the tenant).
	Tenant, Subject string
	// Email names the user on approval pages; optional.
	Email string
	// Role is one of the policy's roles.
	Role string
	// Duration is how long the role is wanted, at most the role's MaxDuration.
	Duration time.Duration
	// Justification says why; required.
	Justification string
	// RequestedBy is who asked: "user" or the admin API caller.
	RequestedBy string
}

// AccessGrant is one time-bound role grant.
type AccessGrant struct {
	ID            string    `json:"id"`
	Tenant        string    `json:"tenant"`
	Subject       string    `json:"subject"`
	Email         string    `json:"email,omitempty"`
	Role          string    `json:"role"`
	Duration      string    `json:"duration"`
	Justification string    `json:"justification"`
	Status        string    `json:"status"`
	RequestedBy   string    `json:"requested_by"`
	Requested     time.Time `json:"requested"`
	DecidedBy     string    `json:"decided_by,omitempty"`
	Decided       time.Time `json:"decided,omitzero"`
	Reason        string    `json:"reason,omitempty"`
	// Expires is when an active grant ends, or when a pending one lapses.
	Expires time.Time `json:"expires"`
}

// accessEntry is a grant as the user's record keeps it.
type accessEntry struct {
	ID      string    `json:"i"`
	Role    string    `json:"r"`
	Status  string    `json:"s"`
	Expires time.Time `json:"e"`
}

type accessUser struct {
	Grants []accessEntry `json:"g"`
}

func (s *Server) accessGrantKey(tenant, id string) string { return s.keyer.key("ag", tenant+"\x00"+id) }
func (s *Server) accessUserKey(tenant, sub string) string {
	return s.keyer.key("au", tenant+"\x00"+sub)
}
func (s *Server) accessIndexKey(tenant string) string { return s.keyer.key("ai", tenant) }

// accessPolicy is tenant's policy, or ErrAccessOff.
func (s *Server) accessPolicy(tenant string) (*AccessPolicy, error) {
	if p := s.dir().policies[tenant].Access; p != nil {
		return p, nil
	}
	return nil, ErrAccessOff
}

// checkJustification accepts printable text of a bounded length.
func checkJustification(j string) error {
	j = strings.TrimSpace(j)
	if j == "" {
		return fmt.Errorf("%w: a justification is required", ErrAccessInvalid)
	}
	if len([]rune(j)) > maxJustification {
		return fmt.Errorf("%w: the justification is longer than %d characters", ErrAccessInvalid, maxJustification)
	}
	for _, r := range j {
		if !unicode.IsPrint(r) && r != '\n' {
			return fmt.Errorf("%w: the justification holds a control character", ErrAccessInvalid)
		}
	}
	return nil
}

// RequestAccess records a request for a role; a role the tenant lets users
// self-activate starts at once (status active). Audited.
func (s *Server) RequestAccess(ctx context.Context, req AccessRequest) (*AccessGrant, error) {
	pol, err := s.accessPolicy(req.Tenant)
	if err != nil {
		return nil, err
	}
	role, ok := pol.Roles[req.Role]
	if !ok {
		return nil, fmt.Errorf("%w: role %q cannot be requested in this tenant", ErrAccessInvalid, req.Role)
	}
	maxD := role.MaxDuration
	if maxD <= 0 {
		maxD = DefaultAccessDuration
	}
	if req.Duration <= 0 || req.Duration > maxD {
		return nil, fmt.Errorf("%w: the duration must be positive and at most %s for role %q", ErrAccessInvalid, maxD, req.Role)
	}
	if req.Subject == "" || len(req.Subject) > 256 {
		return nil, fmt.Errorf("%w: a subject is required", ErrAccessInvalid)
	}
	if err := checkJustification(req.Justification); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	g := &AccessGrant{ID: randomToken(16), Tenant: req.Tenant, Subject: req.Subject, Email: clip(req.Email, 256),
		Role: req.Role, Duration: req.Duration.String(), Justification: strings.TrimSpace(req.Justification),
		Status: AccessPending, RequestedBy: clip(req.RequestedBy, maxAuditField), Requested: now, Expires: now.Add(AccessPendingTTL)}
	if role.SelfActivate {
		g.Status, g.DecidedBy, g.Decided, g.Expires = AccessActive, "self", now, now.Add(req.Duration)
	}
	err = s.withAccessUser(ctx, req.Tenant, req.Subject, func(u *accessUser) error {
		if len(u.Grants) >= MaxUserGrants {
			return ErrAccessLimit
		}
		if err := s.putJSON(ctx, s.accessGrantKey(g.Tenant, g.ID), g, g.Expires.Sub(s.now())); err != nil {
			return storeErr("save access grant", err)
		}
		u.Grants = append(u.Grants, accessEntry{ID: g.ID, Role: g.Role, Status: g.Status, Expires: g.Expires})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ix, ok := s.store.(IndexStore); ok {
		if err := ix.AddToIndex(ctx, s.accessIndexKey(g.Tenant), g.ID, MaxTenantGrants, AccessPendingTTL+maxD); err != nil {
			s.log.WarnContext(ctx, "access grant index", "tenant", g.Tenant, "err", err)
		}
	}
	s.auditAccess(ctx, g, "access_requested", g.RequestedBy)
	if g.Status == AccessActive {
		s.auditAccess(ctx, g, "access_self_activated", g.RequestedBy)
		s.accessClaimsChanged(ctx, g.Tenant, g.Subject, g.Email)
	}
	return g, nil
}

// DecideAccess approves or denies a pending grant, or revokes an active one
// (approve false). approver names the decider in the audit trail; subject,
// when set, is the approver's own sub: they cannot decide their own grant.
func (s *Server) DecideAccess(ctx context.Context, tenant, id string, approve bool, approver, subject, reason string) (*AccessGrant, error) {
	if _, err := s.accessPolicy(tenant); err != nil {
		return nil, err
	}
	if id == "" || len(id) > 64 {
		return nil, ErrAccessNotFound
	}
	if len([]rune(reason)) > maxJustification {
		return nil, fmt.Errorf("%w: the reason is longer than %d characters", ErrAccessInvalid, maxJustification)
	}
	var g AccessGrant
	if err := s.getJSON(ctx, s.accessGrantKey(tenant, id), &g); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrAccessNotFound
		}
		return nil, storeErr("read access grant", err)
	}
	if subject != "" && subject == g.Subject {
		return nil, ErrAccessForbidden
	}
	now := s.now().UTC().Truncate(time.Second)
	var event string
	err := s.withAccessUser(ctx, tenant, g.Subject, func(u *accessUser) error {
		// Read again under the lock: another instance may have decided.
		if err := s.getJSON(ctx, s.accessGrantKey(tenant, id), &g); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrAccessNotFound
			}
			return storeErr("read access grant", err)
		}
		switch {
		case g.Status == AccessPending && approve:
			d, _ := time.ParseDuration(g.Duration)
			g.Status, g.Expires, event = AccessActive, now.Add(d), "access_approved"
		case g.Status == AccessPending:
			g.Status, event = AccessDenied, "access_denied"
		case g.Status == AccessActive && !approve && g.Expires.After(now):
			g.Status, event = AccessRevoked, "access_revoked"
		default:
			return ErrAccessConflict
		}
		g.DecidedBy, g.Decided, g.Reason = clip(approver, maxAuditField), now, strings.TrimSpace(reason)
		ttl := g.Expires.Sub(s.now())
		if g.Status != AccessActive {
			ttl = time.Hour // a decided grant stays listed a while; the audit stream keeps it
		}
		if err := s.putJSON(ctx, s.accessGrantKey(tenant, id), &g, max(ttl, time.Second)); err != nil {
			return storeErr("save access grant", err)
		}
		u.Grants = slices.DeleteFunc(u.Grants, func(e accessEntry) bool { return e.ID == id })
		if g.Status == AccessActive {
			u.Grants = append(u.Grants, accessEntry{ID: g.ID, Role: g.Role, Status: g.Status, Expires: g.Expires})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.auditAccess(ctx, &g, event, approver)
	if event != "access_denied" {
		s.accessClaimsChanged(ctx, tenant, g.Subject, g.Email)
	}
	return &g, nil
}

// ListAccess returns tenant's grants, newest first, optionally only those
// with status ("pending", "active", ...). Expired grants are left out once
// the store drops them.
func (s *Server) ListAccess(ctx context.Context, tenant, status string) ([]*AccessGrant, error) {
	if _, err := s.accessPolicy(tenant); err != nil {
		return nil, err
	}
	ix, ok := s.store.(IndexStore)
	if !ok {
		return nil, errors.New("broker: the store keeps no indexes")
	}
	ids, err := ix.IndexMembers(ctx, s.accessIndexKey(tenant))
	if err != nil {
		return nil, storeErr("list access grants", err)
	}
	now := s.now()
	out := []*AccessGrant{}
	for _, id := range ids {
		var g AccessGrant
		if err := s.getJSON(ctx, s.accessGrantKey(tenant, id), &g); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, storeErr("read access grant", err)
		}
		if g.Status == AccessActive && !g.Expires.After(now) {
			g.Status = AccessExpired
		}
		if status == "" || g.Status == status {
			out = append(out, &g)
		}
	}
	return out, nil
}

// AccessOf returns one grant of tenant.
func (s *Server) AccessOf(ctx context.Context, tenant, id string) (*AccessGrant, error) {
	if _, err := s.accessPolicy(tenant); err != nil {
		return nil, err
	}
	var g AccessGrant
	if err := s.getJSON(ctx, s.accessGrantKey(tenant, id), &g); errors.Is(err, ErrNotFound) {
		return nil, ErrAccessNotFound
	} else if err != nil {
		return nil, storeErr("read access grant", err)
	}
	if g.Status == AccessActive && !g.Expires.After(s.now()) {
		g.Status = AccessExpired
	}
	return &g, nil
}

// withAccessUser runs f on the user's record under a store lock (set if
// absent, short TTL) and writes it back, dropping lapsed entries; f's error
// leaves the record as it was. Each active grant found lapsed is audited
// and told to receivers (token-claims-change) after the write.
func (s *Server) withAccessUser(ctx context.Context, tenant, sub string, f func(*accessUser) error) error {
	key := s.accessUserKey(tenant, sub)
	lock := key + ".lock"
	for attempt := 0; ; attempt++ {
		err := s.store.Create(ctx, lock, []byte("1"), accessLockTTL)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrExists) {
			return storeErr("lock access grants", err)
		}
		if attempt == 100 {
			return fmt.Errorf("lock access grants: %w: busy", ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			_ = s.store.Delete(context.WithoutCancel(ctx), lock)
		}
	}
	defer unlock()
	var u accessUser
	if err := s.getJSON(ctx, key, &u); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("read access grants", err)
	}
	now := s.now()
	var lapsed []accessEntry
	u.Grants = slices.DeleteFunc(u.Grants, func(e accessEntry) bool {
		if e.Expires.After(now) {
			return false
		}
		if e.Status == AccessActive {
			lapsed = append(lapsed, e)
		}
		return true
	})
	if err := f(&u); err != nil {
		return err
	}
	if err := s.saveAccessUser(ctx, key, &u); err != nil {
		return err
	}
	unlock() // before telling: accessClaimsChanged reads the record
	for _, e := range lapsed {
		s.auditAccess(ctx, &AccessGrant{ID: e.ID, Tenant: tenant, Subject: sub, Role: e.Role, Status: AccessExpired, Expires: e.Expires},
			"access_expired", "system")
	}
	if len(lapsed) > 0 {
		s.accessClaimsChanged(ctx, tenant, sub, "")
	}
	return nil
}

func (s *Server) saveAccessUser(ctx context.Context, key string, u *accessUser) error {
	var last time.Time
	for _, e := range u.Grants {
		if e.Expires.After(last) {
			last = e.Expires
		}
	}
	if len(u.Grants) == 0 {
		if err := s.store.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
			return storeErr("save access grants", err)
		}
		return nil
	}
	return storeErr("save access grants", s.putJSON(ctx, key, u, max(last.Sub(s.now()), time.Second)))
}

// activeRoles returns the roles the user's active grants give in tenant
// (one store read, only for a tenant with an access policy). A grant found
// lapsed is removed and told (audit, token-claims-change) once.
func (s *Server) activeRoles(ctx context.Context, tenant, sub string) ([]string, error) {
	pol := s.dir().policies[tenant].Access
	if pol == nil || sub == "" {
		return nil, nil
	}
	var u accessUser
	if err := s.getJSON(ctx, s.accessUserKey(tenant, sub), &u); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, storeErr("read access grants", err)
	}
	now := s.now()
	var roles []string
	lapsed := false
	for _, e := range u.Grants {
		switch {
		case e.Status != AccessActive:
		case !e.Expires.After(now):
			lapsed = true
		case !hasRole(pol, e.Role):
			// the role is no longer requestable: it is no longer granted
		case !slices.Contains(roles, e.Role):
			roles = append(roles, e.Role)
		}
	}
	if lapsed {
		s.expireAccess(ctx, tenant, sub)
	}
	return roles, nil
}

func hasRole(pol *AccessPolicy, role string) bool { _, ok := pol.Roles[role]; return ok }

// expireAccess removes the user's lapsed grants; withAccessUser tells of
// each lapsed active grant once, whichever instance removes it.
func (s *Server) expireAccess(ctx context.Context, tenant, sub string) {
	if err := s.withAccessUser(ctx, tenant, sub, func(*accessUser) error { return nil }); err != nil {
		s.log.WarnContext(ctx, "expire access grants", "tenant", tenant, "err", err)
	}
}

// auditAccess writes the audit event of a step of a grant.
func (s *Server) auditAccess(ctx context.Context, g *AccessGrant, reason, actor string) {
	ev := AuditEvent{Time: s.now().UTC(), Outcome: "access", Reason: reason, Tenant: g.Tenant, Subject: g.Subject,
		Actor: clip(actor, maxAuditField)}
	logEvent(ctx, s.audit, slog.LevelInfo, "access", slog.String("outcome", ev.Outcome), slog.String("reason", reason),
		slog.String("tenant", g.Tenant), slog.String("subject", g.Subject), slog.String("actor", ev.Actor),
		slog.String("grant", g.ID), slog.String("role", g.Role), slog.String("duration", g.Duration),
		slog.String("justification", clip(g.Justification, maxJustification)), slog.Time("expires", g.Expires))
	s.ops.audit.push(s, g.Tenant, ev)
}

// accessClaimsChanged tells the tenant's receivers that the user's roles
// changed: claims carries jit_roles, the roles the user's grants give now.
func (s *Server) accessClaimsChanged(ctx context.Context, tenant, sub, email string) {
	roles, err := s.activeRoles(ctx, tenant, sub)
	if err != nil {
		s.log.WarnContext(ctx, "access roles for token-claims-change", "tenant", tenant, "err", err)
	}
	list := make([]any, len(roles))
	for i, r := range roles {
		list[i] = r
	}
	s.EmitSecurityEvent(ctx, SecurityEvent{Type: CAEPTokenClaimsChange, Tenant: tenant, Subject: sub, Email: email,
		Initiator: "policy", Claims: map[string]any{"jit_roles": list}})
}

// addRoles adds roles to the roles claim of claims.
func addRoles(claims map[string]any, roles []string) {
	if len(roles) == 0 {
		return
	}
	var have []any
	switch v := claims["roles"].(type) {
	case []any:
		have = slices.Clone(v)
	case []string:
		for _, r := range v {
			have = append(have, r)
		}
	case string:
		have = []any{v}
	}
	for _, r := range roles {
		if !slices.Contains(have, any(r)) {
			have = append(have, r)
		}
	}
	claims["roles"] = have
}
