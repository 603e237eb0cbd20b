package transform

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"weak"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// maxExprBytes bounds the length of one rule expression.
const maxExprBytes = 4096

// maxClaimNameBytes bounds the length of a claim name.
const maxClaimNameBytes = 256

type compiledRule struct {
	name    string
	global  bool
	cond    *program // nil: always
	set     []compiledAssign
	add     []compiledAssign
	mapping *compiledMap
	remove  []string
	deny    string
	stop    bool
}

type compiledAssign struct {
	claim string
	prg   *program
}

type compiledMap struct {
	root    string   // "upstream", "claims" or "user"
	path    []string // keys under root
	to      string
	table   map[string]string
	def     string
	hasDef  bool
	srcText string
}

type compiler struct {
	env  *cel.Env
	opts Options
	errs []error
}

func (c *compiler) fail(r string, global bool, field string, format string, args ...any) {
	c.errs = append(c.errs, &CompileError{
		Tenant: c.opts.Tenant, Rule: r, Global: global, Field: field,
		Msg: fmt.Sprintf(format, args...),
	})
}

func (c *compiler) compileList(rules []Rule, global bool) []*compiledRule {
	out := make([]*compiledRule, 0, len(rules))
	seen := make(map[string]bool, len(rules))
	for i, r := range rules {
		name := r.Name
		if name == "" {
			name = "#" + strconv.Itoa(i+1)
			c.fail(name, global, "name", "a rule needs a name")
		} else if seen[name] {
			c.fail(name, global, "name", "duplicate rule name")
		}
		seen[name] = true
		if cr := c.compileRule(name, r, global); cr != nil {
			out = append(out, cr)
		}
	}
	return out
}

func (c *compiler) compileRule(name string, r Rule, global bool) *compiledRule {
	before := len(c.errs)
	cr := &compiledRule{name: name, global: global, deny: r.Deny, stop: r.Stop}
	hasAction := len(r.Set) > 0 || len(r.Add) > 0 || len(r.Remove) > 0 || r.Map != nil
	switch {
	case r.Deny != "" && (hasAction || r.Stop):
		c.fail(name, global, "deny", "a deny rule cannot have other actions")
	case r.Deny == "" && !hasAction && !r.Stop:
		c.fail(name, global, "", "the rule has no action (set, add, remove, map, deny or stop)")
	}
	if strings.TrimSpace(r.If) != "" {
		cr.cond = c.compileExpr(name, global, "if", r.If, true)
	}
	claimSeen := map[string]bool{}
	for _, a := range r.Set {
		field := "set " + a.Claim
		if c.checkClaim(name, global, field, a.Claim) {
			if claimSeen[a.Claim] {
				c.fail(name, global, field, "claim set twice in one rule")
			}
			claimSeen[a.Claim] = true
		}
		cr.set = append(cr.set, compiledAssign{claim: a.Claim, prg: c.compileExpr(name, global, field, a.Expr, false)})
	}
	for _, a := range r.Add {
		field := "add " + a.Claim
		c.checkClaim(name, global, field, a.Claim)
		cr.add = append(cr.add, compiledAssign{claim: a.Claim, prg: c.compileExpr(name, global, field, a.Expr, false)})
	}
	for _, claim := range r.Remove {
		if c.checkClaim(name, global, "remove "+claim, claim) {
			cr.remove = append(cr.remove, claim)
		}
	}
	if r.Map != nil {
		cr.mapping = c.compileMap(name, global, r.Map)
	}
	if len(c.errs) > before {
		return nil
	}
	return cr
}

// checkClaim refuses reserved and malformed claim names.
func (c *compiler) checkClaim(rule string, global bool, field, claim string) bool {
	switch {
	case claim == "":
		c.fail(rule, global, field, "empty claim name")
	case len(claim) > maxClaimNameBytes:
		c.fail(rule, global, field, "claim name longer than %d bytes", maxClaimNameBytes)
	case !utf8.ValidString(claim) || strings.IndexFunc(claim, unicode.IsControl) >= 0:
		c.fail(rule, global, field, "claim name has invalid characters")
	case reserved[claim]:
		c.fail(rule, global, field, "claim %q is reserved: only the broker sets it", claim)
	default:
		return true
	}
	return false
}

// compileExpr parses and type-checks one expression against the input
// schema and plans it. A condition must be bool.
func (c *compiler) compileExpr(rule string, global bool, field, src string, cond bool) *program {
	if strings.TrimSpace(src) == "" {
		c.fail(rule, global, field, "empty expression")
		return nil
	}
	if len(src) > maxExprBytes {
		c.fail(rule, global, field, "expression longer than %d bytes", maxExprBytes)
		return nil
	}
	key := progKey{src: src, cond: cond, costLimit: c.opts.CostLimit}
	if b := cachedProgram(key); b != nil {
		return b
	}
	ast, iss := c.env.Compile(src)
	if iss.Err() != nil {
		errs := iss.Errors()
		ce := &CompileError{Tenant: c.opts.Tenant, Rule: rule, Global: global, Field: field}
		if len(errs) > 0 {
			ce.Line = errs[0].Location.Line()
			ce.Column = errs[0].Location.Column() + 1
			ce.Msg = errs[0].Message
			if len(errs) > 1 {
				ce.Msg += fmt.Sprintf(" (and %d more errors)", len(errs)-1)
			}
		} else {
			ce.Msg = iss.Err().Error()
		}
		c.errs = append(c.errs, ce)
		return nil
	}
	if cond {
		t := ast.OutputType()
		if !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			c.fail(rule, global, field, "condition has type %s, want bool", t)
			return nil
		}
	}
	if err := checkPatterns(ast); err != nil {
		c.fail(rule, global, field, "%v", err)
		return nil
	}
	popts := []cel.ProgramOption{
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
		cel.CustomDecorator(guard()),
		cel.OptimizeRegex(interpreter.MatchesRegexOptimization, regexReplaceOptimization, regexExtractOptimization),
	}
	// Runtime cost tracking costs ~1 us per evaluation. CEL's static
	// estimate is an upper bound of the runtime cost, so when even its
	// maximum (with every input size unknown, i.e. unbounded) is within the
	// limit, tracking could never stop the evaluation and is left out. Only
	// constant-cost expressions qualify: has(upstream.x), literals,
	// lower(upstream.upn). The estimate prices a call of a string function
	// (realmgate's, the strings extension's) at 1: what such a call
	// allocates and scans in proportion to its arguments is charged, before
	// it runs, to the evaluation's budget instead (limits.go, SECURITY S71),
	// so an untracked expression is bounded too. When tracked, realmgate's
	// functions also report their size to the tracker.
	if est, err := c.env.EstimateCost(ast, noSizes{}); err != nil || est.Max > c.opts.CostLimit {
		popts = append(popts, cel.CostLimit(c.opts.CostLimit), cel.CostTrackerOptions(customCostTrackers()...))
	}
	prg, err := c.env.Program(ast, popts...)
	if err != nil {
		c.fail(rule, global, field, "%v", err)
		return nil
	}
	return storeProgram(key, prg)
}

// A cel.Program costs ~10 KB (its function dispatcher), so identical
// expressions, common across tenants using the same recipes, share one
// program. The cache holds programs weakly: an entry lives as long as some
// Engine uses it, so reloading the configuration leaks nothing.
type progKey struct {
	src       string
	cond      bool
	costLimit uint64
}

// program is a compiled, immutable, concurrency-safe expression.
type program struct{ prg cel.Program }

var progCache sync.Map // progKey -> weak.Pointer[program]

func cachedProgram(k progKey) *program {
	if v, ok := progCache.Load(k); ok {
		return v.(weak.Pointer[program]).Value()
	}
	return nil
}

func storeProgram(k progKey, prg cel.Program) *program {
	p := &program{prg: prg}
	wp := weak.Make(p)
	progCache.Store(k, wp)
	runtime.AddCleanup(p, func(k progKey) { progCache.CompareAndDelete(k, wp) }, k)
	return p
}

func (c *compiler) compileMap(rule string, global bool, m *Map) *compiledMap {
	cm := &compiledMap{to: m.To, table: make(map[string]string, len(m.Table)), def: m.Default, hasDef: m.Default != "", srcText: m.From}
	root, path, err := parsePath(m.From)
	if err != nil {
		c.fail(rule, global, "map.from", "%v", err)
	}
	cm.root, cm.path = root, path
	c.checkClaim(rule, global, "map.to", m.To)
	if len(m.Table) == 0 && m.Default == "" {
		c.fail(rule, global, "map.table", "the map has neither a table nor a default")
	}
	for k, v := range m.Table {
		cm.table[k] = v
	}
	return cm
}

// parsePath parses `upstream.a.b`, `claims.x` or `upstream["key"].b`.
func parsePath(s string) (root string, path []string, err error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, ".[")
	if i < 0 {
		return "", nil, fmt.Errorf("path %q: want upstream.<key>, claims.<key> or user.<key>", s)
	}
	root, rest := s[:i], s[i:]
	if root != "upstream" && root != "claims" && root != "user" {
		return "", nil, fmt.Errorf("path %q: must start with upstream, claims or user", s)
	}
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			j := strings.IndexAny(rest, ".[")
			if j < 0 {
				j = len(rest)
			}
			key := rest[:j]
			if key == "" || !isIdent(key) {
				return "", nil, fmt.Errorf("path %q: bad key %q", s, key)
			}
			path = append(path, key)
			rest = rest[j:]
		case '[':
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return "", nil, fmt.Errorf("path %q: missing ]", s)
			}
			key, uerr := strconv.Unquote(strings.TrimSpace(rest[1:j]))
			if uerr != nil {
				return "", nil, fmt.Errorf("path %q: index must be a quoted string", s)
			}
			path = append(path, key)
			rest = rest[j+1:]
		default:
			return "", nil, fmt.Errorf("path %q: unexpected %q", s, rest[:1])
		}
	}
	if len(path) == 0 {
		return "", nil, fmt.Errorf("path %q: no key", s)
	}
	return root, path, nil
}

func isIdent(s string) bool {
	for i, r := range s {
		if r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r)) {
			continue
		}
		return false
	}
	return true
}

// checkPatterns refuses, at compile time, a constant pattern of matches,
// regexReplace or regexExtract that would compile to more than
// maxRegexInsts instructions (regexReplace and regexExtract are also
// checked when their programs are planned; matches is CEL's).
func checkPatterns(a *cel.Ast) error {
	var err error
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if err != nil || e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		idx := 1
		switch call.FunctionName() {
		case "matches":
			if call.IsMemberFunction() {
				idx = 0
			}
		case "regexReplace", "regexExtract":
		default:
			return
		}
		if idx >= len(call.Args()) {
			return
		}
		p := call.Args()[idx]
		if p.Kind() != celast.LiteralKind {
			return
		}
		if s, ok := p.AsLiteral().(types.String); ok {
			if _, perr := parseRegex(string(s)); perr != nil {
				err = fmt.Errorf("%s: invalid pattern: %w", call.FunctionName(), perr)
			}
		}
	}))
	return err
}

// noSizes is a cost estimator that knows nothing: every input size is
// unbounded, so the estimate is a true upper bound.
type noSizes struct{}

func (noSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (noSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
