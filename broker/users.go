package broker

// This file joins the tenant user directory (package users) to sign-in,
// SSO, refresh and deprovisioning: a record found (or created just in time,
// or matched to a provisioned one) at every sign-in, its status and
// revocation generation checked by authorizeFor, its groups and attributes
// given to rules as `user`, and RevokeUser ending a user's sessions.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/users"
)

// UserPolicy is how a tenant's directory meets a sign-in.
type UserPolicy struct {
	// Match finds a provisioned (SCIM or admin API) user at their first
	// sign-in: "externalId" (the record's externalId equals the upstream
	// claim MatchClaim, default "sub"), "userName" (equals MatchClaim,
	// default preferred_username, else the email), "email" (the only
	// record with the identity's verified email) or "" (no matching).
	Match string
	// MatchClaim is the upstream claim Match compares (externalId, userName).
	MatchClaim string
	// ProvisionedOnly refuses a user the directory does not know instead of
	// creating their record at the first sign-in (just in time).
	ProvisionedOnly bool
}

// Reasons the decision refuses a directory user.
var (
	// errUserInactive: the user is suspended or deprovisioned.
	errUserInactive = errors.New("broker: the user's account is suspended or deprovisioned")
	// errUserRevoked: the user's access was revoked (or the record deleted)
	// after the session or grant was issued.
	errUserRevoked = errors.New("broker: the user's access was revoked")
	// errNotProvisioned: the tenant admits provisioned users only.
	errNotProvisioned = errors.New("broker: the user is not provisioned in this tenant")
)

// Users returns the tenant user directory, or nil when the store keeps no
// directory records. The SCIM service provider and the admin API write
// through it; its SetStatus, DeleteUser and Revoke end the user's access
// everywhere (RevokeUser).
func (s *Server) Users() *users.Directory { return s.users }

// openUsers sets up the directory over the store, if it keeps one.
func (s *Server) openUsers() {
	if d, ok := users.Open(s.store, s.now); ok {
		d.SetRevoker(s)
		d.SetJSONRecords(s.cfg.JSONRecords) // store.record_format: json
		s.users = d
	}
}

// userOf checks the record a session or grant names, as authorizeFor
// sees it: nil when no record was bound (no directory); errUserRevoked
// when it is gone or was revoked after gen; errUserInactive when it is
// not active.
func userOf(u *users.User, bound bool, gen int64) error {
	if !bound {
		return nil
	}
	if u == nil || u.Generation != gen {
		return errUserRevoked
	}
	if !u.Active() {
		return errUserInactive
	}
	return nil
}

// loadUser reads the record sess is bound to (one round trip): nil, nil
// when it is bound to none or the record is gone (userOf refuses that).
func (s *Server) loadUser(ctx context.Context, sess *session) (*users.User, error) {
	if sess.UID == "" || s.users == nil {
		return nil, nil
	}
	u, err := s.users.GetUser(ctx, sess.Tenant, sess.UID)
	switch {
	case errors.Is(err, users.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, storeErr("read user", err)
	}
	return u, nil
}

// matchKeys are the keys that find a provisioned user for ident.
func matchKeys(pol *UserPolicy, ident *providers.Identity) []users.MatchKey {
	if pol == nil {
		return nil
	}
	claim := func(name, def string) string {
		if name == "" {
			name = def
		}
		if name == "sub" {
			return ident.Subject
		}
		v, _ := ident.Claims[name].(string)
		return v
	}
	switch pol.Match {
	case "externalId":
		if v := claim(pol.MatchClaim, "sub"); v != "" {
			return []users.MatchKey{{By: "externalId", Value: v}}
		}
	case "userName":
		v := claim(pol.MatchClaim, "preferred_username")
		if v == "" && pol.MatchClaim == "" {
			v = ident.Email
		}
		if v != "" {
			return []users.MatchKey{{By: "userName", Value: v}}
		}
	}
	return nil
}

// signInUser finds the directory record of the identity idp has just
// authenticated (one round trip once linked), matching a provisioned
// record by the tenant's rule at the first sign-in, or creating one just
// in time. nil, nil when there is no directory.
func (s *Server) signInUser(c echo.Context, idp IdP, ident *providers.Identity, sub string) (*users.User, error) {
	if s.users == nil {
		return nil, nil
	}
	ctx := c.Request().Context()
	pol := s.dir().policies[idp.Tenant].Users
	now := s.now()
	ip := c.RealIP()
	for attempt := 0; ; attempt++ {
		u, err := s.users.SignIn(ctx, idp.Tenant, idp.ID, ident.Subject, matchKeys(pol, ident), now, ip)
		if errors.Is(err, users.ErrNotFound) && pol != nil && pol.Match == "email" && ident.EmailVerified {
			if _, perr := realm.ParseEmail(ident.Email); perr == nil { // S74
				var found []*users.User
				if found, err = s.users.UsersByEmail(ctx, idp.Tenant, ident.Email, 2); err == nil {
					err = users.ErrNotFound
					if len(found) == 1 && found[0].EmailVerified && len(found[0].Links) == 0 {
						u, err = found[0], nil // only an unlinked, verified, unambiguous record
					}
				}
			}
		}
		switch {
		case err == nil && u.HasLink(idp.ID, ident.Subject):
			// The IdP's profile of a just-in-time record follows the IdP
			// (users.User.ApplyProfile): a write only when it changed.
			fresh, perr := s.users.RefreshProfile(ctx, u, profileOf(ident))
			if perr != nil {
				s.log.Warn("directory: profile not refreshed at sign-in", "tenant", idp.Tenant, "user", u.ID, "err", perr)
				return u, nil
			}
			return fresh, nil
		case err == nil:
			return s.users.LinkSignIn(ctx, idp.Tenant, u.ID, idp.ID, ident.Subject, sub, now)
		case !errors.Is(err, users.ErrNotFound):
			return nil, storeErr("find user", err)
		case pol != nil && pol.ProvisionedOnly:
			return nil, errNotProvisioned
		}
		u = jitUser(idp, ident, sub, now, ip)
		err = s.users.CreateUser(ctx, u)
		if errors.Is(err, users.ErrTaken) && u.UserName != "" {
			u.UserName, u.ID = "", "" // someone else holds that userName
			err = s.users.CreateUser(ctx, u)
		}
		if errors.Is(err, users.ErrTaken) && attempt == 0 {
			continue // another instance created the record at the same moment
		}
		if errors.Is(err, users.ErrInvalid) {
			// An upstream value the directory cannot hold: keep the link only.
			u = &users.User{Tenant: idp.Tenant, Subject: sub, Links: u.Links, FirstSignIn: u.FirstSignIn, LastSignIn: now, LastIP: ip}
			err = s.users.CreateUser(ctx, u)
		}
		if err != nil {
			if errors.Is(err, users.ErrInvalid) {
				return nil, nil // not even the link fits: sign in without a record
			}
			return nil, storeErr("create user", err)
		}
		return u, nil
	}
}

// profileOf is what the upstream identity says of the user, as the
// directory keeps it (S74: an email that does not parse is not kept).
func profileOf(ident *providers.Identity) users.Profile {
	p := users.Profile{DisplayName: ident.Name, GivenName: ident.GivenName, FamilyName: ident.FamilyName}
	if _, err := realm.ParseEmail(ident.Email); err == nil {
		p.Email, p.EmailVerified = ident.Email, ident.EmailVerified
	}
	p.Groups, _ = stringList(ident.Claims["groups"])
	return p
}

// jitUser is the record created at a first sign-in.
func jitUser(idp IdP, ident *providers.Identity, sub string, now time.Time, ip string) *users.User {
	u := &users.User{Tenant: idp.Tenant, Subject: sub, Links: []users.Link{{IdP: idp.ID, Subject: ident.Subject}},
		DisplayName: ident.Name, Name: users.Name{GivenName: ident.GivenName, FamilyName: ident.FamilyName},
		UserName: ident.PreferredUsername, FirstSignIn: now.UTC().Truncate(time.Second), LastSignIn: now, LastIP: ip}
	if _, err := realm.ParseEmail(ident.Email); err == nil { // S74
		u.Email, u.EmailVerified = ident.Email, ident.EmailVerified
	}
	if u.UserName == "" {
		u.UserName = u.Email
	}
	u.UpstreamGroups, _ = stringList(ident.Claims["groups"])
	return u
}

// userRefused is the page for a sign-in the directory refuses.
func (s *Server) userRefused(c echo.Context, err error) error {
	if errors.Is(err, errNotProvisioned) {
		return s.renderError(c, 403, "Account not found",
			"Your organization has not given you access to this application. Ask your administrator to add your account.")
	}
	if errors.Is(err, errUserRevoked) {
		return s.renderError(c, 403, "You were signed out",
			"Your organization ended your session. Go back to the application and sign in again.")
	}
	return s.renderError(c, 403, "Account disabled",
		"Your account has been suspended or deprovisioned by your organization, so you cannot sign in. Contact your administrator.")
}

var _ users.Revoker = (*Server)(nil)

// RevokeUser ends u's access everywhere (users.Revoker): every SSO session
// of the user's upstream identities is ended on every instance (deleted and
// marked, so refresh-token families of those sessions stop at their next
// rotation), and each application that received tokens in them gets a
// back-channel logout token. Refresh-token families are also refused at
// their next use by the record itself (status and generation, authorizeFor),
// which every instance reads from the shared store. The revocation is
// audited with actor.
func (s *Server) RevokeUser(ctx context.Context, u *users.User, actor, reason string) error {
	var firstErr error
	ended := 0
	// CAEP: one session-revoked for the user to every receiver of the
	// tenant (every session of the subject, CAEP 1.0 §3.1), not one per session.
	s.EmitSecurityEvent(ctx, SecurityEvent{Type: CAEPSessionRevoked, Tenant: u.Tenant, Subject: u.Subject,
		Email: u.Email, Initiator: "admin", Reason: "user " + reason})
	ctx = withRevokeCause(ctx, "admin", "user "+reason, true)
	for _, l := range u.Links {
		keys, indexes, err := s.upstreamSessionKeys(ctx, l.IdP, l.Subject, "")
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		for _, key := range keys {
			var sess session
			if err := s.getJSON(ctx, key, &sess); err != nil {
				if !errors.Is(err, ErrNotFound) {
					firstErr = cmpErr(firstErr, err)
				}
				continue
			}
			if sess.Tenant != u.Tenant {
				continue
			}
			sess.key = key
			if err := s.logoutSession(ctx, &sess); err != nil {
				firstErr = cmpErr(firstErr, err)
				continue
			}
			ended++
		}
		for _, ix := range indexes {
			_ = s.store.Delete(ctx, ix)
		}
	}
	s.auditUser(ctx, u, actor, reason, ended)
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// auditUser writes the audit event of a directory change that ended a
// user's access: outcome "revoked", the reason, the actor.
func (s *Server) auditUser(ctx context.Context, u *users.User, actor, reason string, sessions int) {
	ev := AuditEvent{Time: s.now().UTC(), Outcome: "revoked", Reason: clip("user_"+reason, maxAuditField),
		Tenant: u.Tenant, Subject: u.Subject, Actor: clip(actor, maxAuditField)}
	if len(u.Links) > 0 {
		ev.IdP = u.Links[0].IdP
	}
	logEvent(ctx, s.audit, slog.LevelInfo, "signin", slog.String("outcome", ev.Outcome), slog.String("reason", ev.Reason),
		slog.String("tenant", ev.Tenant), slog.String("idp", ev.IdP), slog.String("subject", ev.Subject),
		slog.String("actor", ev.Actor), slog.String("user", u.ID), slog.Int("sessions_ended", sessions))
	s.ops.audit.push(s, u.Tenant, ev)
}
