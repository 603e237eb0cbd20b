package risk

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
)

// The actions of a policy.
const (
	// ActionAllow admits the sign-in and stops: later policies (a
	// tenant's after the global ones) are not evaluated.
	ActionAllow = "allow"
	// ActionMFA requires multi-factor authentication at the upstream IdP
	// (step-up): the IdP is asked again with its mfa_acr_values.
	ActionMFA = "mfa"
	// ActionFreshLogin requires a sign-in at the IdP during this request:
	// an existing session is not enough.
	ActionFreshLogin = "fresh_login"
	// ActionDeny refuses the sign-in with the policy's message.
	ActionDeny = "deny"
	// ActionShortenSession caps the SSO session and refresh tokens at the
	// policy's session_lifetime.
	ActionShortenSession = "shorten_session"
	// ActionNotify only reports: an audit event and the tenant's webhook.
	ActionNotify = "notify"
)

// Actions lists the valid actions.
var Actions = []string{ActionAllow, ActionMFA, ActionFreshLogin, ActionDeny, ActionShortenSession, ActionNotify}

// Policy is one conditional-access policy.
type Policy struct {
	// Name identifies the policy in audit events and errors.
	Name string
	// If is a CEL condition over signals, user, client and tenant; empty:
	// every sign-in.
	If string
	// Action is one of Actions.
	Action string
	// Message is shown to a user a deny refuses.
	Message string
	// SessionLifetime is the cap of shorten_session.
	SessionLifetime time.Duration
	// Notify also reports the sign-in when the policy applies (every
	// action but notify itself, which always does).
	Notify bool
}

// Requirement is what an authentication context (c1..c25) demands.
type Requirement struct {
	// MFA requires multi-factor authentication.
	MFA bool
	// MaxAge requires an authentication no older than this (0: any age).
	MaxAge time.Duration
	// FreshLogin requires a sign-in at the IdP during this request.
	FreshLogin bool
}

// Contexts are the authentication contexts a tenant defines, by id.
type Contexts map[string]Requirement

// contextID is an authentication context id (Entra's model: c1 to c25).
var contextID = regexp.MustCompile(`^c([1-9]|1[0-9]|2[0-5])$`)

// ValidContext reports whether id is c1 to c25.
func ValidContext(id string) bool { return contextID.MatchString(id) }

// Decision is what the policies decide for one sign-in.
type Decision struct {
	// Level is the sign-in's risk level.
	Level Level
	// MFA and FreshLogin are the requirements the sign-in must meet.
	MFA, FreshLogin bool
	// MaxAge, when positive, is the oldest authentication accepted.
	MaxAge time.Duration
	// Deny refuses the sign-in: Policy names the policy and Message is
	// for the user.
	Deny    bool
	Policy  string
	Message string
	// SessionLifetime, when positive, caps the session and refresh tokens.
	SessionLifetime time.Duration
	// Applied names every policy whose condition held, in order; Notify
	// the ones to report.
	Applied []string
	Notify  []string
	// ACRS are the requested authentication contexts the tenant defines;
	// the tokens carry them once the sign-in meets their requirements.
	ACRS []string
}

// Set is a tenant's compiled policies: the global ones first, then the
// tenant's, and the tenant's authentication contexts. The zero Set (nil)
// decides nothing beyond the risk level. Safe for concurrent use.
type Set struct {
	policies []compiled
	contexts Contexts
	// Zone is where signals.hour and signals.weekday are read; nil: UTC.
	Zone *time.Location
}

type compiled struct {
	Policy
	global bool
	prg    cel.Program // nil: always
}

// CostLimit bounds the CEL cost of one condition (SECURITY S71).
const CostLimit = 10_000

// maxCondition bounds the source of one condition.
const maxCondition = 4096

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	str, dyn := cel.StringType, cel.DynType
	return cel.NewEnv(
		cel.Variable("signals", cel.MapType(str, dyn)),
		cel.Variable("user", cel.MapType(str, dyn)),
		cel.Variable("client", str),
		cel.Variable("tenant", str),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxCondition),
		cel.ParserRecursionLimit(64),
		// No string extension: replace and friends can amplify memory,
		// and policies compare and test values, they do not build them
		// (SECURITY S71).
	)
})

// CompileError is a policy that does not compile.
type CompileError struct {
	// Global marks a global policy; Index is its position.
	Global bool
	Index  int
	Name   string
	Field  string
	Msg    string
}

func (e *CompileError) Error() string {
	where := "policies"
	if e.Global {
		where = "global policies"
	}
	return fmt.Sprintf("%s[%d] (%s): %s: %s", where, e.Index, e.Name, e.Field, e.Msg)
}

// Compile checks and compiles the global and tenant policies and the
// tenant's authentication contexts. Every problem is reported (errors.Join
// of *CompileError).
func Compile(global, tenant []Policy, contexts Contexts) (*Set, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("risk: CEL environment: %w", err)
	}
	set := &Set{contexts: contexts}
	var errs []error
	for _, list := range []struct {
		ps     []Policy
		global bool
	}{{global, true}, {tenant, false}} {
		for i, p := range list.ps {
			fail := func(field, format string, args ...any) {
				errs = append(errs, &CompileError{Global: list.global, Index: i, Name: p.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
			}
			if strings.TrimSpace(p.Name) == "" {
				fail("name", "a policy needs a name")
			}
			switch p.Action {
			case ActionAllow, ActionMFA, ActionFreshLogin, ActionNotify:
			case ActionDeny:
				if p.Message == "" {
					fail("message", "deny needs a message for the user")
				}
			case ActionShortenSession:
				if p.SessionLifetime <= 0 {
					fail("session_lifetime", "shorten_session needs a positive session_lifetime")
				}
			default:
				fail("action", "unknown action %q (want one of %s)", p.Action, strings.Join(Actions, ", "))
			}
			c := compiled{Policy: p, global: list.global}
			if strings.TrimSpace(p.If) != "" {
				prg, err := compileCondition(env, p.If)
				if err != nil {
					fail("if", "%v", err)
					continue
				}
				c.prg = prg
			}
			set.policies = append(set.policies, c)
		}
	}
	for id := range contexts {
		if !ValidContext(id) {
			errs = append(errs, fmt.Errorf("auth_contexts: %q: want an id from c1 to c25", id))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

func compileCondition(env *cel.Env, src string) (cel.Program, error) {
	if len(src) > maxCondition {
		return nil, fmt.Errorf("condition longer than %d bytes", maxCondition)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("condition has type %s, want bool", t)
	}
	opts := []cel.ProgramOption{cel.InterruptCheckFrequency(100), cel.EvalOptions(cel.OptOptimize)}
	// Runtime cost tracking costs about a microsecond per evaluation; when
	// CEL's static estimate (an upper bound, every input size unknown) is
	// within the limit, tracking could never stop the evaluation and is
	// left out, as transform does (SECURITY S71).
	if est, err := env.EstimateCost(ast, noSizes{}); err != nil || est.Max > CostLimit {
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	return env.Program(ast, opts...)
}

// noSizes is a cost estimator that knows no input size.
type noSizes struct{}

func (noSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (noSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Context returns the requirement of authentication context id.
func (s *Set) Context(id string) (Requirement, bool) {
	if s == nil {
		return Requirement{}, false
	}
	r, ok := s.contexts[id]
	return r, ok
}

// HasContexts reports whether the tenant defines authentication contexts.
func (s *Set) HasContexts() bool { return s != nil && len(s.contexts) > 0 }

// Empty reports whether the set has no policy and no context.
func (s *Set) Empty() bool { return s == nil || (len(s.policies) == 0 && len(s.contexts) == 0) }

// Evaluate decides a sign-in with signals sig (Level set by Assess), the
// user's record as rules see it (nil: none) and the client. A condition
// that fails to evaluate (a missing field, the cost limit) counts as
// holding for deny, mfa and fresh_login, and as not holding for allow: an
// error never weakens a policy. The errors are returned beside the
// decision for the log.
func (s *Set) Evaluate(sig *Signals, user map[string]any, client, tenant string) (Decision, error) {
	d := Decision{Level: sig.Level}
	for _, id := range sig.ACRS {
		if r, ok := s.Context(id); ok {
			d.ACRS = append(d.ACRS, id)
			d.MFA = d.MFA || r.MFA
			d.FreshLogin = d.FreshLogin || r.FreshLogin
			if r.MaxAge > 0 && (d.MaxAge == 0 || r.MaxAge < d.MaxAge) {
				d.MaxAge = r.MaxAge
			}
		}
	}
	if s == nil || len(s.policies) == 0 {
		return d, nil
	}
	if user == nil {
		user = map[string]any{}
	}
	vars := map[string]any{"signals": sig.Map(), "user": user, "client": client, "tenant": tenant}
	var errs []error
	for _, p := range s.policies {
		holds := true
		if p.prg != nil {
			out, _, err := p.prg.Eval(vars)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy %q: %w", p.Name, err))
				holds = p.Action != ActionAllow && p.Action != ActionNotify && p.Action != ActionShortenSession
			} else {
				b, ok := out.Value().(bool)
				holds = ok && b
			}
		}
		if !holds {
			continue
		}
		d.Applied = append(d.Applied, p.Name)
		if p.Notify || p.Action == ActionNotify {
			d.Notify = append(d.Notify, p.Name)
		}
		switch p.Action {
		case ActionAllow:
			return d, errors.Join(errs...)
		case ActionMFA:
			d.MFA = true
		case ActionFreshLogin:
			d.FreshLogin = true
		case ActionDeny:
			if !d.Deny {
				d.Deny, d.Policy, d.Message = true, p.Name, p.Message
			}
		case ActionShortenSession:
			if d.SessionLifetime == 0 || p.SessionLifetime < d.SessionLifetime {
				d.SessionLifetime = p.SessionLifetime
			}
		}
	}
	return d, errors.Join(errs...)
}
