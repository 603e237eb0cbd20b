package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/risk"
	"github.com/realmgate/realmgate/transform"
)

// DryRunRequest asks which tenant and IdP an email reaches and what the
// tenant's rules make of a sample identity: the what-if tester over HTTP.
type DryRunRequest struct {
	// Email is resolved like a typed email (login_hint). Either it or Tenant is required.
	Email string `json:"email,omitempty"`
	// Tenant skips resolution and runs this tenant's rules.
	Tenant string `json:"tenant,omitempty"`
	// IdP names the IdP the identity comes from; default the first candidate.
	IdP string `json:"idp,omitempty"`
	// ClientID is the application, as rules see it (client).
	ClientID string `json:"client_id,omitempty"`
	// Identity is the sample upstream identity.
	Identity SampleIdentity `json:"identity"`
	// Rules, when set, are run instead of the tenant's saved rules (try before saving).
	Rules []Rule `json:"rules,omitempty"`
	// Signals, when set, are a sample sign-in's signals by name
	// ({"country": "US", "new_country": true}): the tenant's conditional
	// access policies (and the global ones) decide it (docs/conditional-access.md).
	Signals map[string]any `json:"signals,omitempty"`
}

// SampleIdentity is an upstream identity as a connector would report it.
type SampleIdentity struct {
	Subject           string         `json:"subject,omitempty"`
	Email             string         `json:"email,omitempty"`
	EmailVerified     bool           `json:"email_verified,omitempty"`
	Name              string         `json:"name,omitempty"`
	GivenName         string         `json:"given_name,omitempty"`
	FamilyName        string         `json:"family_name,omitempty"`
	PreferredUsername string         `json:"preferred_username,omitempty"`
	AMR               []string       `json:"amr,omitempty"`
	Claims            map[string]any `json:"claims,omitempty"`
}

// DryRunResult is the outcome of a dry run.
type DryRunResult struct {
	Tenant string   `json:"tenant"`
	Source string   `json:"source,omitempty"`
	IdPs   []string `json:"idps"`
	IdP    string   `json:"idp,omitempty"`
	// Claims are the output claims (absent when denied or failed).
	Claims map[string]any `json:"claims,omitempty"`
	// Trace says what each rule did.
	Trace []TraceStep `json:"trace"`
	// Denied is the deny message when a rule refused the sign-in.
	Denied string `json:"denied,omitempty"`
	// Error is a rule's runtime failure (the sign-in would fail closed).
	Error string `json:"error,omitempty"`
	// Access is what the conditional access policies decide of the
	// sample signals (present when the request gave signals).
	Conditional *ConditionalResult `json:"conditional_access,omitempty"`
}

// ConditionalResult is a conditional access decision in JSON.
type ConditionalResult struct {
	RiskLevel       string   `json:"risk_level"`
	MFA             bool     `json:"mfa,omitempty"`
	FreshLogin      bool     `json:"fresh_login,omitempty"`
	Denied          string   `json:"denied,omitempty"`
	Policy          string   `json:"policy,omitempty"`
	SessionLifetime string   `json:"session_lifetime,omitempty"`
	Applied         []string `json:"applied"`
	Notify          []string `json:"notify,omitempty"`
	ACRS            []string `json:"acrs,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// accessResult evaluates set over the sample signals.
func conditionalResult(set *risk.Set, sig risk.Signals, client, tenant string) *ConditionalResult {
	d, err := set.Evaluate(&sig, nil, client, tenant)
	out := &ConditionalResult{RiskLevel: d.Level.String(), MFA: d.MFA, FreshLogin: d.FreshLogin, Applied: d.Applied,
		Notify: d.Notify, ACRS: d.ACRS}
	if out.Applied == nil {
		out.Applied = []string{}
	}
	if d.Deny {
		out.Denied, out.Policy = d.Message, d.Policy
	}
	if d.SessionLifetime > 0 {
		out.SessionLifetime = d.SessionLifetime.String()
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// TraceStep is transform.Step in JSON.
type TraceStep struct {
	Rule    string        `json:"rule"`
	Global  bool          `json:"global,omitempty"`
	Matched bool          `json:"matched"`
	Changes []TraceChange `json:"changes,omitempty"`
	Denied  string        `json:"denied,omitempty"`
	Stopped bool          `json:"stopped,omitempty"`
	Err     string        `json:"error,omitempty"`
}

// TraceChange is transform.Change in JSON.
type TraceChange struct {
	Action string `json:"action"`
	Claim  string `json:"claim"`
	Before any    `json:"before,omitempty"`
	After  any    `json:"after,omitempty"`
}

// identity is the sample as the connector would have reported it: the one
// conversion from the dry run's sample to what the claims pipeline takes.
func (id SampleIdentity) identity() providers.Identity {
	return providers.Identity{Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Name: id.Name, GivenName: id.GivenName, FamilyName: id.FamilyName,
		PreferredUsername: id.PreferredUsername, AMR: id.AMR, Claims: id.Claims}
}

func (s *Service) dryRun(c echo.Context) error {
	var in DryRunRequest
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	w := who(c)
	ctx := c.Request().Context()
	snap, err := s.compiled(ctx)
	if err != nil {
		return err
	}
	res := snap.compiled.Directory.Resolver
	var out DryRunResult
	switch {
	case in.Email != "":
		r, err := res.Resolve(realm.Request{LoginHint: in.Email})
		switch {
		case errors.Is(err, realm.ErrNoMatch):
			return errorf(http.StatusUnprocessableEntity, "no_match", "no tenant has verified the domain of %q and there is no default tenant", in.Email)
		case err != nil:
			return errorf(http.StatusBadRequest, "invalid_request", "%v", err)
		}
		if !w.can(r.Tenant) {
			return forbidden("%q resolves to another tenant", in.Email)
		}
		out.Tenant, out.Source, out.IdPs = r.Tenant, string(r.Source), r.IdPs
	case in.Tenant != "":
		if !w.can(in.Tenant) {
			return forbidden("this token is limited to tenant %q", w.tenant)
		}
		t, ok := res.Tenant(in.Tenant)
		if !ok {
			return notFound("no tenant %q", in.Tenant)
		}
		out.Tenant, out.IdPs = t.ID, t.IdPs
	default:
		return errorf(http.StatusBadRequest, "invalid_request", "give email or tenant")
	}
	if out.IdPs == nil {
		out.IdPs = []string{}
	}
	out.IdP = in.IdP
	if out.IdP == "" && len(out.IdPs) > 0 {
		out.IdP = out.IdPs[0]
	}
	if owner, ok := res.TenantOfIdP(out.IdP); out.IdP != "" && (!ok || owner != out.Tenant) {
		return errorf(http.StatusBadRequest, "invalid_request", "idp %q is not an IdP of tenant %q", out.IdP, out.Tenant)
	}
	if err := s.runRules(ctx, snap, &out, in.ClientID, in.Rules, in.Identity); err != nil {
		return err
	}
	if in.Signals != nil {
		sig, err := risk.Sample(in.Signals)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_request", "%v", err)
		}
		set := s.opts.GlobalConditional
		if ta := snap.compiled.Directory.Policies[out.Tenant].Conditional; ta != nil {
			set = ta.Set
		}
		out.Conditional = conditionalResult(set, sig, in.ClientID, out.Tenant)
	}
	return c.JSON(http.StatusOK, out)
}

// runRules runs the tenant's rules (or rules, when not nil) over the sample
// identity as out.IdP's sign-in would, filling out's claims, trace and deny
// message: the one rule run of the dry run and the setup portal.
func (s *Service) runRules(ctx context.Context, snap *snapshot, out *DryRunResult, client string, rules []Rule, id SampleIdentity) error {
	res := snap.compiled.Directory.Resolver
	eng := snap.compiled.Directory.Rules[out.Tenant]
	if rules != nil {
		var err error
		if eng, err = s.opts.Compiler.Engine(out.Tenant, rules); err != nil {
			return err
		}
	}
	// The sign-in's own pipeline (standard claims, rules, email guard S52).
	r, err := claims.Pipeline{Rules: eng, Domains: res}.Explain(ctx, claims.Request{Identity: id.identity(),
		Tenant: out.Tenant, IdP: out.IdP, Client: client})
	var denied *transform.DeniedError
	switch {
	case errors.Is(err, transform.ErrLimit):
		// A rule that would exceed the evaluation's memory or work budget
		// (SECURITY S71) is refused like an invalid rule: a sign-in with it
		// would always fail. The message names the rule and the limit.
		return errorf(http.StatusUnprocessableEntity, "rule_limit", "%v", err)
	case errors.As(err, &denied):
		out.Denied = denied.Message
	case err != nil:
		out.Error = err.Error()
	default:
		out.Claims = r.Claims
	}
	out.Trace = []TraceStep{}
	for _, st := range r.Trace {
		ts := TraceStep{Rule: st.Rule, Global: st.Global, Matched: st.Matched, Denied: st.Denied, Stopped: st.Stopped, Err: st.Err}
		for _, ch := range st.Changes {
			ts.Changes = append(ts.Changes, TraceChange{Action: ch.Action, Claim: ch.Claim, Before: ch.Before, After: ch.After})
		}
		out.Trace = append(out.Trace, ts)
	}
	return nil
}
