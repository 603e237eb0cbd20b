// Package transform is the claims rule engine: it turns an upstream identity
// into realmgate's normalized claims by running a tenant's compiled rules.
// It depends on no other package of realmgate.
//
// Rules are written in CEL (github.com/google/cel-go), compiled once when the
// configuration loads (Compile), and evaluated per sign-in (Engine.Apply).
// Global rules run before a tenant's rules. Any error while a rule runs fails
// the sign-in (fail closed); a deny rule fails it with a *DeniedError that
// wraps ErrDenied. docs/rules.md documents the language with recipes.
package transform

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// ErrDenied is returned (wrapped, with the rule's message) when a rule denies the sign-in.
var ErrDenied = errors.New("transform: sign-in denied by rule")

// ErrCompile is wrapped by every *CompileError: a rule is not valid.
var ErrCompile = errors.New("transform: invalid rule")

// ErrOutputTooLarge is wrapped when the output claims (or one claim value)
// exceed Options.MaxOutputBytes.
var ErrOutputTooLarge = errors.New("transform: output claims too large")

// DefaultMaxOutputBytes caps the size of the output claims, measured as
// their JSON encoding, when Options.MaxOutputBytes is zero.
const DefaultMaxOutputBytes = 64 << 10

// DefaultCostLimit is the CEL cost limit of one expression evaluation when
// Options.CostLimit is zero.
const DefaultCostLimit uint64 = 100_000

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
	// User is the user's tenant directory record as rules see it (`user`:
	// user.groups, user.attributes.plan, ...; users.User.RuleView); nil
	// when there is none, which rules see as an empty map.
	User map[string]any
}

// Assignment is one `claim: expression` entry of a rule's set or add action.
type Assignment struct {
	// Claim is the output claim the expression writes to.
	Claim string
	// Expr is the CEL expression computing the value.
	Expr string
}

// Map translates the values found at a path through a table into values
// added to an output claim (AD FS "group membership to claim", Keycloak
// "claim to role").
type Map struct {
	// From is the path of the source values: `upstream.groups`,
	// `claims.department` or `upstream["http://schemas.xmlsoap.org/claims/Group"]`.
	// A string value is one value; a list contributes each of its elements.
	From string
	// To is the output claim the mapped values are added to (as a list).
	To string
	// Table maps a source value (exact, case-sensitive match) to an output value.
	Table map[string]string
	// Default, when not empty, is added when no source value matched the table.
	Default string
}

// Rule is one claims rule. The actions of a rule whose condition holds run
// in this order: Set (entries in the order given; the config loader sorts
// them by claim name), Add, Map, Remove, then Stop. Deny excludes the other
// actions.
type Rule struct {
	// Name identifies the rule in errors, traces and audit events; required
	// and unique within its list.
	Name string
	// If is an optional CEL condition; the rule acts only when it is true.
	If string
	// Set replaces claims with the values of CEL expressions. A result of
	// optional.none() leaves the claim unchanged; null removes it.
	Set []Assignment
	// Add appends values (one value, or each element of a list) to claims,
	// making them lists and skipping values already present.
	Add []Assignment
	// Remove deletes claims.
	Remove []string
	// Map translates values through a table into a claim.
	Map *Map
	// Deny, when not empty, is the message shown to the user when the rule
	// denies the sign-in. A deny rule has no other action.
	Deny string
	// Stop ends the evaluation of the rule list this rule belongs to (a
	// global rule's stop skips the remaining global rules only).
	Stop bool
}

// Options tune Compile.
type Options struct {
	// Tenant is the tenant id, used in error messages and traces.
	Tenant string
	// CostLimit bounds the CEL cost of each expression evaluation; zero means DefaultCostLimit.
	CostLimit uint64
	// MaxOutputBytes bounds the JSON size of the output claims; zero means DefaultMaxOutputBytes.
	MaxOutputBytes int
	// MaxEvalBytes bounds what the functions of one evaluation (every rule
	// of one sign-in) may allocate; zero means DefaultMaxEvalBytes.
	MaxEvalBytes int64
}

// Reserved lists the claims that rules can neither set, add, map to nor
// remove: the broker alone issues them (SECURITY S50, S51). Read-only.
var Reserved = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "tid", "idp",
	"auth_time", "azp", "jti", "sid", "at_hash", "c_hash", "s_hash", "cnf",
}

var reserved = func() map[string]bool {
	m := make(map[string]bool, len(Reserved))
	for _, c := range Reserved {
		m[c] = true
	}
	return m
}()

// IsReserved reports whether rules may not change claim.
func IsReserved(claim string) bool { return reserved[claim] }

// DeniedError is the error of a deny rule. It wraps ErrDenied; Message is
// the text to show the user.
type DeniedError struct {
	// Rule is the name of the rule that denied the sign-in.
	Rule string
	// Message is the rule's deny message.
	Message string
}

// Error implements error.
func (e *DeniedError) Error() string {
	return fmt.Sprintf("transform: sign-in denied by rule %q: %s", e.Rule, e.Message)
}

// Unwrap returns ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// RuleError is a runtime failure of one rule: the sign-in must fail.
type RuleError struct {
	// Tenant is the tenant whose policy ran (Options.Tenant).
	Tenant string
	// Rule is the name of the failing rule.
	Rule string
	// Global is true for a global rule.
	Global bool
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *RuleError) Error() string {
	return fmt.Sprintf("transform: %s: %v", ruleLabel(e.Tenant, e.Rule, e.Global), e.Err)
}

// Unwrap returns the cause.
func (e *RuleError) Unwrap() error { return e.Err }

// CompileError says why a rule does not compile. It wraps ErrCompile.
type CompileError struct {
	// Tenant is Options.Tenant.
	Tenant string
	// Rule is the rule name (or its index when unnamed).
	Rule string
	// Global is true for a global rule.
	Global bool
	// Field is the part of the rule at fault: "if", "set email", "map.from"...
	Field string
	// Line and Column locate the error in the expression (1-based); zero when unknown.
	Line, Column int
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *CompileError) Error() string {
	s := "transform: " + ruleLabel(e.Tenant, e.Rule, e.Global)
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Line > 0 {
		s += fmt.Sprintf(": %d:%d", e.Line, e.Column)
	}
	return s + ": " + e.Msg
}

// Unwrap returns ErrCompile.
func (e *CompileError) Unwrap() error { return ErrCompile }

func ruleLabel(tenant, rule string, global bool) string {
	if global {
		return fmt.Sprintf("global rule %q", rule)
	}
	return fmt.Sprintf("tenant %q rule %q", tenant, rule)
}

// Engine runs compiled rules. A nil *Engine passes the claims through unchanged.
// An Engine is immutable and safe for concurrent use.
type Engine struct {
	tenant   string
	global   []*compiledRule
	rules    []*compiledRule
	maxBytes int
	// maxEval is Options.MaxEvalBytes.
	maxEval int64
	// targets is how many distinct claims the rules can write: the output
	// map is sized for them once instead of growing during a sign-in.
	targets int
}

// Result is the outcome of Explain: the output claims and what each rule did.
type Result struct {
	// Claims are the output claims (nil when the sign-in was denied or failed).
	Claims map[string]any
	// Trace has one step per rule evaluated, in order.
	Trace []Step
}

// Step records what one rule did.
type Step struct {
	// Rule is the rule name.
	Rule string
	// Global is true for a global rule.
	Global bool
	// Matched is true when the rule's condition held (or it has none).
	Matched bool
	// Changes lists the claims the rule changed.
	Changes []Change
	// Denied is the deny message when the rule denied the sign-in.
	Denied string
	// Stopped is true when the rule ended its rule list.
	Stopped bool
	// Err is the runtime error that failed the rule, if any.
	Err string
}

// Change is one claim changed by a rule.
type Change struct {
	// Action is "set", "add", "map" or "remove".
	Action string
	// Claim is the claim changed.
	Claim string
	// Before is the claim's value before the action (nil when absent).
	Before any
	// After is the claim's value after the action (nil when removed).
	After any
}

// Apply runs the rules over in and returns the output claims, or an error
// wrapping ErrDenied when a rule denies the sign-in. Any other error also
// means the sign-in must fail (fail closed); it is a *RuleError naming the
// rule when a rule failed.
func (e *Engine) Apply(ctx context.Context, in Input) (map[string]any, error) {
	if e == nil {
		out := make(map[string]any, len(in.Claims))
		for k, v := range in.Claims {
			out[k] = v
		}
		return out, nil
	}
	return e.run(ctx, in, nil)
}

// Explain runs the rules like Apply and also returns a trace of which rule
// fired and what it changed, for the what-if tester. On a deny or failure the
// trace is returned with the error.
func (e *Engine) Explain(ctx context.Context, in Input) (Result, error) {
	if e == nil {
		out, err := e.Apply(ctx, in)
		return Result{Claims: out}, err
	}
	var trace []Step
	out, err := e.run(ctx, in, &trace)
	return Result{Claims: out, Trace: trace}, err
}

// Tenant returns the tenant id the engine was compiled for.
func (e *Engine) Tenant() string {
	if e == nil {
		return ""
	}
	return e.tenant
}

// Compile checks and compiles global rules (run first) and a tenant's rules.
// All problems found are returned joined; each is a *CompileError naming the
// tenant, the rule, the field and the position in the expression.
func Compile(global, tenant []Rule, opts Options) (*Engine, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("transform: building CEL environment: %w", err)
	}
	if opts.CostLimit == 0 {
		opts.CostLimit = DefaultCostLimit
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.MaxEvalBytes <= 0 {
		opts.MaxEvalBytes = DefaultMaxEvalBytes
	}
	c := &compiler{env: env, opts: opts}
	e := &Engine{tenant: opts.Tenant, maxBytes: opts.MaxOutputBytes, maxEval: opts.MaxEvalBytes}
	e.global = c.compileList(global, true)
	e.rules = c.compileList(tenant, false)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	e.targets = countTargets(e.global, e.rules)
	return e, nil
}

// countTargets counts the distinct claims set, added or mapped to.
func countTargets(lists ...[]*compiledRule) int {
	seen := map[string]bool{}
	for _, list := range lists {
		for _, r := range list {
			for _, a := range r.set {
				seen[a.claim] = true
			}
			for _, a := range r.add {
				seen[a.claim] = true
			}
			if r.mapping != nil {
				seen[r.mapping.to] = true
			}
		}
	}
	return len(seen)
}

// SortedAssignments turns a `claim: expr` map into assignments sorted by
// claim name, the order in which a rule's set (or add) entries apply.
func SortedAssignments(m map[string]string) []Assignment {
	out := make([]Assignment, 0, len(m))
	for k, v := range m {
		out = append(out, Assignment{Claim: k, Expr: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Claim < out[j].Claim })
	return out
}
