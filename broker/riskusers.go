package broker

// Compromised and risky users (docs/conditional-access.md): an
// administrator confirms a user compromised (their access ends at once,
// as at deprovisioning, and their next sign-ins get the tenant's
// compromised action) or dismisses the risk; risky users are listed per
// tenant. The admin API calls these.

import (
	"context"
	"errors"

	"github.com/realmgate/realmgate/users"
)

// errNoDirectory: the store keeps no user directory.
var errNoDirectory = errors.New("broker: the store keeps no user directory")

// ConfirmCompromised marks the user compromised and ends all their access
// everywhere at once (sessions, refresh-token families, back-channel
// logout: RevokeUser), audited with actor; the RiskCompromised event goes
// to the OnRisk listeners (shared signals) after the revocation.
func (s *Server) ConfirmCompromised(ctx context.Context, actor, tenant, id string) (*users.User, error) {
	if s.users == nil {
		return nil, errNoDirectory
	}
	u, err := s.users.SetRisk(ctx, actor, tenant, id, users.RiskCompromised, "high", "confirmed by an administrator")
	if u != nil {
		s.emitRisk(ctx, userRiskEvent(RiskCompromised, u, actor))
	}
	return u, err
}

// DismissRisk clears the user's risk state (at risk or compromised).
func (s *Server) DismissRisk(ctx context.Context, actor, tenant, id string) (*users.User, error) {
	if s.users == nil {
		return nil, errNoDirectory
	}
	u, err := s.users.SetRisk(ctx, actor, tenant, id, users.RiskDismissed, "", "")
	if err == nil {
		s.emitRisk(ctx, userRiskEvent(RiskDismissed, u, actor))
	}
	return u, err
}

// maxRiskyUsers bounds one listing.
const maxRiskyUsers = 1000

// RiskyUsers lists the tenant's users at risk or confirmed compromised,
// at most limit (1 to 1000).
func (s *Server) RiskyUsers(ctx context.Context, tenant string, limit int) ([]*users.User, error) {
	if s.users == nil {
		return nil, errNoDirectory
	}
	if limit <= 0 || limit > maxRiskyUsers {
		limit = maxRiskyUsers
	}
	p, err := s.users.ListUsers(ctx, tenant, users.Query{Match: (*users.User).Risky, Count: limit})
	if err != nil {
		return nil, err
	}
	return p.Items, nil
}

func userRiskEvent(kind string, u *users.User, actor string) RiskEvent {
	ev := RiskEvent{Kind: kind, Tenant: u.Tenant, Subject: u.Subject, UserID: u.ID, Actor: actor}
	if len(u.Links) > 0 {
		ev.IdP = u.Links[0].IdP
	}
	if u.Risk != nil {
		ev.Level = u.Risk.Level
	}
	return ev
}
