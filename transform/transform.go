// Package transform is the claims rule engine: it turns an upstream identity
// into realmgate's normalized claims by running a tenant's compiled rules.
// It depends on no other package of realmgate.
package transform

import (
	"context"
	"errors"
)

// ErrDenied is returned (wrapped, with the rule's message) when a rule denies the sign-in.
var ErrDenied = errors.New("transform: sign-in denied by rule")

// Input is what rules see.
type Input struct {
	// Upstream holds every raw claim or attribute of the upstream identity.
	Upstream map[string]any
	// Claims are the normalized claims so far (the broker's standard mapping).
	Claims map[string]any
	// Tenant is the id of the tenant whose IdP authenticated the user.
	Tenant string
	// IdP is the id of the IdP that authenticated the user.
	IdP string
	// Client is the client_id of the application the user signs in to.
	Client string
}

// Engine runs compiled rules. A nil *Engine passes the claims through unchanged.
type Engine struct{}

// Apply runs the rules over in and returns the output claims, or an error
// wrapping ErrDenied when a rule denies the sign-in. Any other error also
// means the sign-in must fail (fail closed).
func (e *Engine) Apply(ctx context.Context, in Input) (map[string]any, error) {
	out := make(map[string]any, len(in.Claims))
	for k, v := range in.Claims {
		out[k] = v
	}
	return out, nil
}
