package users

import (
	"context"
	"time"
)

// RiskState is a user's conditional-access risk state.
type RiskState string

// The risk states of a user.
const (
	// RiskAtRisk: a sign-in was high risk (impossible travel, an
	// anonymizer, a denied address); an administrator confirms or dismisses.
	RiskAtRisk RiskState = "at_risk"
	// RiskCompromised: an administrator confirmed the user compromised;
	// their access was revoked and every sign-in gets the tenant's
	// compromised action until the risk is dismissed.
	RiskCompromised RiskState = "compromised"
	// RiskDismissed: an administrator dismissed the risk.
	RiskDismissed RiskState = "dismissed"
)

// Risk is a user's risk state, kept on the record (so every sign-in reads
// it with the user, at no extra cost).
type Risk struct {
	State RiskState `json:"state"`
	// Level is the risk level of the sign-in that set at_risk (low,
	// medium, high); Detail says why (the signals), bounded.
	Level  string `json:"level,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Updated is when the state was set, and By who (an admin, "sign-in").
	Updated time.Time `json:"updated"`
	By      string    `json:"by,omitempty"`
}

// maxRiskDetail bounds Risk.Detail.
const maxRiskDetail = 256

// RiskState is the user's current state ("" for none or dismissed).
func (u *User) RiskState() string {
	if u.Risk == nil || u.Risk.State == RiskDismissed {
		return ""
	}
	return string(u.Risk.State)
}

// Compromised reports whether an administrator confirmed the user
// compromised and did not dismiss it since.
func (u *User) Compromised() bool { return u.Risk != nil && u.Risk.State == RiskCompromised }

// Risky reports whether the user is at risk or compromised.
func (u *User) Risky() bool { return u.RiskState() != "" }

// SetRisk records the user's risk state. Confirming a compromise also
// ends the user's access everywhere, at once, as deprovisioning does
// (sessions, refresh-token families, back-channel logout: Revoke), while
// leaving the account active: the next sign-in meets the tenant's
// compromised action. A sign-in marks at_risk only a user who is neither
// compromised nor dismissed since that sign-in's signals were seen.
func (d *Directory) SetRisk(ctx context.Context, actor, tenant, id string, state RiskState, level, detail string) (*User, error) {
	if len(detail) > maxRiskDetail {
		detail = detail[:maxRiskDetail]
	}
	now := d.now().UTC().Truncate(time.Second)
	u, err := d.ModifyUser(ctx, actor, tenant, id, func(u *User) error {
		if state == RiskAtRisk && u.Risk != nil && u.Risk.State == RiskCompromised {
			return nil // a confirmed compromise stays until dismissed
		}
		u.Risk = &Risk{State: state, Level: level, Detail: detail, Updated: now, By: actor}
		return nil
	})
	if err != nil || state != RiskCompromised {
		return u, err
	}
	return d.Revoke(ctx, actor, tenant, id)
}
