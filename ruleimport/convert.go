package ruleimport

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/transform"
)

// Options tune Convert.
type Options struct {
	// LDAPFromUpstream converts queries of an LDAP attribute store (Active
	// Directory, AD LDS) into reading the claim types they would produce
	// from the upstream identity, for an upstream IdP that releases those
	// attributes itself. Without it such a query is a Problem.
	LDAPFromUpstream bool
	// Client, when set, scopes every rule to sign-ins to this client
	// (`client == "id"`), as an AD FS relying party trust's rules apply to
	// that relying party only, and prefixes the rule names with it.
	Client string

	// prefix, when set, starts the rule names (after Client).
	prefix string
	// names, when set, are the rule names used already (shared by the
	// rule sets of one trust).
	names map[string]bool

	// noCompile skips compiling the result (the fuzz test: cel-go under
	// coverage instrumentation is too slow to fuzz with).
	noCompile bool
}

// Result is a converted rule set.
type Result struct {
	// Rules are the realmgate rules, in order, for a tenant's rules list.
	Rules []config.Rule
	// Comments holds, by rule name, the text to write above the rule: the
	// AD FS rule it came from and any caveat.
	Comments map[string]string
	// Problems are the constructs that could not be converted: each AD FS
	// rule concerned is left out of Rules.
	Problems []Problem
	// Notes are caveats of rules that were converted.
	Notes []Problem
	// Issued lists, in order, the claim types the rules issue and the
	// realmgate claim each became: the attributes a SAML app sends.
	Issued []IssuedClaim
	// NameIDFormat is the NameID format a rule set with
	// Properties[".../claimproperties/format"] on a nameidentifier claim.
	NameIDFormat string
}

// IssuedClaim is one claim type an imported rule set issues.
type IssuedClaim struct {
	// Type is the AD FS claim type (the SAML attribute name).
	Type string
	// Claim is the realmgate claim it became.
	Claim string
}

// maxConds bounds the conditions of one rule: the CEL of a rule grows
// with their square, and realmgate's expressions are at most 4 KiB.
const maxConds = 8

// knownAuthorities are the issuers AD FS gives claims it produces itself.
var knownAuthorities = map[string]bool{"AD AUTHORITY": true, "LOCAL AUTHORITY": true, "SELF AUTHORITY": true}

// assumedIssuer is the Issuer realmgate evaluates Issuer tests against:
// the upstream IdP plays the part of Active Directory.
const assumedIssuer = "AD AUTHORITY"

// converter holds the state of one Convert.
type converter struct {
	opts     Options
	res      *Result
	names    map[string]bool
	read     map[string]bool // claim types some rule's conditions read
	readFrom []map[string]bool
	scratch  map[string]bool // scratch claims written
	permit   bool
	issued   map[string]bool
}

// ruleErr is a problem that makes one AD FS rule unconvertible.
type ruleErr struct {
	pos       Pos
	msg, hint string
}

func (e *ruleErr) Error() string { return e.msg }

func fail(pos Pos, hint, format string, args ...any) error {
	return &ruleErr{pos: pos, msg: fmt.Sprintf(format, args...), hint: hint}
}

// Convert turns a parsed AD FS rule set into realmgate rules with AD FS's
// semantics: rules run in order; `issue` puts claims in the output and in
// the input claim set later rules see, `add` in the input claim set only.
// The input claim set lives in claims named "adfs:<claim type>", loaded
// from the upstream identity by a first rule and removed by a last one.
// Whatever cannot be converted is a Problem naming its line and column.
func Convert(rs *RuleSet, opts Options) *Result {
	c := &converter{opts: opts, res: &Result{Comments: map[string]string{}}, names: opts.names,
		read: map[string]bool{}, scratch: map[string]bool{}, issued: map[string]bool{}}
	if c.names == nil {
		c.names = map[string]bool{}
	}
	// Which claim types each rule's conditions read, and which the rules
	// after it read: an add or issue of a type nobody reads later needs no
	// input-set copy.
	c.readFrom = make([]map[string]bool, len(rs.Rules)+1)
	c.readFrom[len(rs.Rules)] = map[string]bool{}
	for i := len(rs.Rules) - 1; i >= 0; i-- {
		m := map[string]bool{}
		for t := range c.readFrom[i+1] {
			m[t] = true
		}
		for _, t := range readTypes(rs.Rules[i], opts) {
			m[t] = true
		}
		c.readFrom[i] = m
	}
	var body []config.Rule
	for i, r := range rs.Rules {
		rules, notes, err := c.rule(i, r)
		name := displayName(i, r)
		if err != nil {
			var re *ruleErr
			if errors.As(err, &re) {
				c.res.Problems = append(c.res.Problems, Problem{Pos: re.pos, Rule: name, Msg: re.msg, Hint: re.hint})
			} else {
				c.res.Problems = append(c.res.Problems, Problem{Pos: r.Pos, Rule: name, Msg: err.Error()})
			}
			continue
		}
		if len(rules) > 0 {
			for _, t := range readTypes(r, opts) {
				c.read[t] = true
			}
		}
		for _, n := range notes {
			n.Rule = name
			c.res.Notes = append(c.res.Notes, n)
		}
		if len(rules) > 0 {
			c.res.Comments[rules[0].Name] = ruleComment(r, notes)
		}
		body = append(body, rules...)
	}
	var out []config.Rule
	if len(c.read) > 0 {
		pre := config.Rule{Name: c.unique("adfs: load the incoming claims"), If: c.scope(""), Add: map[string]string{}}
		for t := range c.read {
			pre.Add[scratch(t)] = upstreamValues(t)
			c.scratch[t] = true
		}
		c.res.Comments[pre.Name] = "AD FS's input claim set starts as the upstream identity's claims of the types the rules read."
		out = append(out, pre)
	}
	out = append(out, body...)
	if c.permit {
		chk := config.Rule{Name: c.unique("adfs: permit required"),
			If:   c.scope(fmt.Sprintf("size(%s) == 0", inputList(PermitType))),
			Deny: "Access denied: no authorization rule permits you to sign in to this application."}
		c.res.Comments[chk.Name] = "AD FS issuance authorization: a sign-in no rule permitted is denied (deny rules above deny at once)."
		out = append(out, chk)
	}
	if len(c.scratch) > 0 {
		rm := config.Rule{Name: c.unique("adfs: drop the input claim set")}
		for t := range c.scratch {
			rm.Remove = append(rm.Remove, scratch(t))
		}
		sort.Strings(rm.Remove)
		c.res.Comments[rm.Name] = "The input claim set is not part of the output."
		out = append(out, rm)
	}
	c.res.Rules = out
	if !opts.noCompile {
		c.check()
	}
	return c.res
}

// check compiles the result with realmgate's rule engine: what it refuses
// (a limit, say) becomes a Problem, so that the output always loads.
func (c *converter) check() {
	rules := make([]transform.Rule, len(c.res.Rules))
	for i, r := range c.res.Rules {
		rules[i] = TransformRule(r)
	}
	if _, err := transform.Compile(nil, rules, transform.Options{Tenant: "import"}); err != nil {
		bad := map[string]bool{}
		for _, e := range flatten(err) {
			var ce *transform.CompileError
			if errors.As(e, &ce) {
				bad[ce.Rule] = true
				c.res.Problems = append(c.res.Problems, Problem{Rule: ce.Rule, Msg: "the converted rule does not compile: " + ce.Msg})
			} else {
				c.res.Problems = append(c.res.Problems, Problem{Msg: e.Error()})
			}
		}
		kept := c.res.Rules[:0]
		for _, r := range c.res.Rules {
			if !bad[r.Name] {
				kept = append(kept, r)
			}
		}
		c.res.Rules = kept
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// TransformRule is the transform.Rule of a configuration rule (as
// internal/assemble builds it).
func TransformRule(r config.Rule) transform.Rule {
	t := transform.Rule{Name: r.Name, If: r.If, Set: transform.SortedAssignments(r.Set),
		Add: transform.SortedAssignments(r.Add), Remove: r.Remove, Deny: r.Deny, Stop: r.Stop}
	if r.Map != nil {
		t.Map = &transform.Map{From: r.Map.From, To: r.Map.To, Table: r.Map.Table, Default: r.Map.Default}
	}
	return t
}

// upstreamValues reads a claim type from the upstream identity: by its
// URI, else by realmgate's short alias of it (the name an OIDC IdP uses).
func upstreamValues(claimType string) string {
	if a, ok := transform.Alias(claimType); ok {
		return fmt.Sprintf("get(upstream, %s, get(upstream, %s, []))", quote(claimType), quote(a))
	}
	return fmt.Sprintf("get(upstream, %s, [])", quote(claimType))
}

func displayName(i int, r *Rule) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("rule at line %d", r.Pos.Line)
}

// unique makes a rule name unique in the output.
func (c *converter) unique(name string) string {
	if c.opts.prefix != "" {
		name = c.opts.prefix + ": " + name
	}
	if c.opts.Client != "" {
		name = c.opts.Client + ": " + name
	}
	n := name
	for i := 2; c.names[n]; i++ {
		n = fmt.Sprintf("%s (%d)", name, i)
	}
	c.names[n] = true
	return n
}

// scope adds the client condition to a rule condition.
func (c *converter) scope(cond string) string {
	if c.opts.Client == "" {
		return cond
	}
	cl := "client == " + quote(c.opts.Client)
	if cond == "" {
		return cl
	}
	return cl + " && (" + cond + ")"
}

func ruleComment(r *Rule, notes []Problem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "AD FS rule at line %d", r.Pos.Line)
	if r.Template != "" {
		fmt.Fprintf(&b, " (template %s)", r.Template)
	}
	b.WriteString(":\n")
	lines := strings.Split(r.Text, "\n")
	for i, l := range lines {
		if i == 12 {
			fmt.Fprintf(&b, "  ... (%d more lines)\n", len(lines)-i)
			break
		}
		b.WriteString("  " + strings.TrimRight(l, " \t\r") + "\n")
	}
	for _, n := range notes {
		b.WriteString("NOTE: " + n.Msg)
		if n.Hint != "" {
			b.WriteString(" (" + n.Hint + ")")
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// readTypes lists the claim types a rule reads from the input claim set.
func readTypes(r *Rule, opts Options) []string {
	var out []string
	for _, cd := range r.Conds {
		if t, ok := typeOf(cd); ok {
			out = append(out, t)
		}
	}
	if r.Action != nil && r.Action.Store != nil && opts.LDAPFromUpstream {
		out = append(out, r.Action.Store.Types...)
	}
	return out
}

// typeOf is the claim type a condition selects (Type == "literal").
func typeOf(cd *Cond) (string, bool) {
	for _, t := range cd.Tests {
		if t.Prop == "Type" && t.Op == tokEq {
			if s, ok := t.Expr.(*StrLit); ok {
				return s.Val, true
			}
		}
	}
	return "", false
}

// sel is a claim selector being converted.
type sel struct {
	cond  *Cond
	typ   string
	v     string   // its CEL variable
	preds []string // CEL tests of its variable
	refs  map[string]bool
}

// rule converts one AD FS rule into one or two realmgate rules.
func (c *converter) rule(i int, r *Rule) ([]config.Rule, []Problem, error) {
	var notes []Problem
	note := func(pos Pos, hint, format string, args ...any) {
		notes = append(notes, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...), Hint: hint})
	}
	if len(r.Conds) > maxConds {
		return nil, nil, fail(r.Conds[maxConds].Pos, "split the rule, passing what the first part finds on with add()",
			"more than %d conditions in one rule", maxConds)
	}
	// Claim selectors and aggregates.
	var sels []*sel
	byVar := map[string]*sel{}
	var conds []string
	for _, cd := range r.Conds {
		s, err := c.selector(cd, len(sels), byVar, note)
		if err != nil {
			return nil, nil, err
		}
		if cd.Agg == aggNone {
			sels = append(sels, s)
			if cd.Var != "" {
				if byVar[strings.ToLower(cd.Var)] != nil {
					return nil, nil, fail(cd.Pos, "give each selector its own variable", "variable %s is bound twice", cd.Var)
				}
				byVar[strings.ToLower(cd.Var)] = s
			}
			continue
		}
		if len(s.refs) > 0 {
			return nil, nil, fail(cd.Pos, "test the other claim in a selector of its own", "%s([...]) refers to a claim variable", cd.Agg)
		}
		list := inputList(s.typ)
		pred := strings.Join(s.preds, " && ")
		switch cd.Agg {
		case aggExists, aggNotExists:
			e := fmt.Sprintf("size(%s) > 0", list)
			if pred != "" {
				e = fmt.Sprintf("%s.exists(%s, %s)", list, s.v, pred)
			}
			if cd.Agg == aggNotExists {
				e = "!" + e
				if pred == "" {
					e = fmt.Sprintf("size(%s) == 0", list)
				}
			}
			conds = append(conds, e)
		case aggCount:
			n := "size(" + list + ")"
			if pred != "" {
				n = fmt.Sprintf("size(%s.filter(%s, %s))", list, s.v, pred)
			}
			conds = append(conds, fmt.Sprintf("%s %s %d", n, cd.CountOp, cd.Count))
		}
	}
	a := r.Action
	// What the statement issues: claim types and the CEL value of each.
	type output struct {
		typ   string
		value string // CEL of one value, over the selector variables
		refs  map[string]bool
		pos   Pos
	}
	var outs []output
	switch {
	case a.Copy != "":
		s := byVar[strings.ToLower(a.Copy)]
		if s == nil {
			return nil, nil, fail(a.Pos, "bind it first: c:[Type == \"...\"] => issue(claim = c)", "claim = %s: no selector binds %s", a.Copy, a.Copy)
		}
		if a.Verb == "add" {
			note(a.Pos, "", "add(claim = %s) changes nothing: the claim is already in the input claim set; no realmgate rule is needed", a.Copy)
			return nil, notes, nil
		}
		outs = append(outs, output{typ: s.typ, value: s.v, refs: map[string]bool{s.v: true}, pos: a.Pos})
	case a.Store != nil:
		types, err := c.store(a.Store, note)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range types {
			outs = append(outs, output{typ: t, value: "", pos: a.Store.Pos})
		}
	default:
		o := output{pos: a.Pos, value: `""`, refs: map[string]bool{}}
		for _, p := range a.Params {
			switch p.Name {
			case "Type":
				switch e := p.Expr.(type) {
				case *StrLit:
					o.typ = e.Val
				case *PropRef:
					s := byVar[strings.ToLower(e.Var)]
					if s == nil || e.Prop != "Type" {
						return nil, nil, fail(p.Pos, `write the claim type: Type = "http://..."`, "the claim type must be a string or c.Type")
					}
					o.typ = s.typ
				default:
					return nil, nil, fail(p.Pos, `write the claim type: Type = "http://..."`, "a computed claim type cannot be converted")
				}
			case "Value":
				v, err := c.expr(p.Expr, byVar, o.refs)
				if err != nil {
					return nil, nil, err
				}
				o.value = v
			case "ValueType":
				// Copying the matched claim's own (ValueType = c.ValueType,
				// as the templates write) changes nothing.
				if s, ok := p.Expr.(*StrLit); ok && s.Val != "http://www.w3.org/2001/XMLSchema#string" {
					note(p.Pos, "", "ValueType is not converted: realmgate's claim values are JSON strings")
				}
			case "Issuer", "OriginalIssuer":
				if _, ok := p.Expr.(*PropRef); !ok {
					note(p.Pos, "", "%s is not converted: realmgate issues every claim itself", p.Name)
				}
			case "Properties":
				if p.Key == formatProperty {
					if s, ok := p.Expr.(*StrLit); ok {
						c.res.NameIDFormat = s.Val
						note(p.Pos, "", "the NameID format %s becomes the SAML app's name_id_format (import-adfs-trust)", s.Val)
						continue
					}
				}
				note(p.Pos, "", "Properties[%q] is not converted: claim properties are not part of realmgate's claims", p.Key)
			}
		}
		outs = append(outs, o)
	}
	// The selectors a value (or another selector) depends on are iterated;
	// the others need only exist.
	active := map[string]bool{}
	for _, o := range outs {
		for v := range o.refs {
			active[v] = true
		}
	}
	for _, s := range sels {
		for v := range s.refs {
			active[v] = true
			active[s.v] = true
		}
	}
	var chain []*sel
	for _, s := range sels {
		if active[s.v] {
			chain = append(chain, s)
			continue
		}
		list := inputList(s.typ)
		if len(s.preds) == 0 {
			conds = append(conds, fmt.Sprintf("size(%s) > 0", list))
		} else {
			conds = append(conds, fmt.Sprintf("%s.exists(%s, %s)", list, s.v, strings.Join(s.preds, " && ")))
		}
	}
	if len(chain) > 0 {
		conds = append([]string{existsChain(chain)}, conds...)
	}
	cond := strings.Join(conds, " && ")
	name := c.unique(displayName(i, r))
	main := config.Rule{Name: name, If: c.scope(cond)}
	var follow *config.Rule
	for _, o := range outs {
		if o.typ == "" {
			return nil, nil, fail(o.pos, `issue(Type = "...", Value = ...)`, "the claim type is missing")
		}
		// The values, one per combination of the selected claims.
		values := o.value // one value: add takes it as it is
		if a.Store != nil {
			values = inputList(o.typ)
		} else if len(chain) > 0 {
			values = product(chain, o.value)
		}
		if a.Verb == "issue" && o.typ == DenyType {
			if len(outs) > 1 {
				return nil, nil, fail(o.pos, "issue the deny claim in a rule of its own", "a deny claim among other claims cannot be converted")
			}
			main.Deny = fmt.Sprintf("Access denied by the rule %q.", displayName(i, r))
			return []config.Rule{main}, notes, nil
		}
		// A store's claim types are in the input claim set from the start.
		toScratch := a.Store == nil && (c.readFrom[i+1][o.typ] || (a.Verb == "issue" && o.typ == PermitType))
		if a.Verb == "issue" && o.typ == PermitType {
			c.permit = true
		}
		if a.Verb == "issue" && o.typ != PermitType {
			claim, single := ClaimName(o.typ)
			if transform.IsReserved(claim) || reservedExtra[claim] {
				return nil, nil, fail(o.pos, "issue it under another claim type", "claim %q is reserved in realmgate: only the broker sets it", claim)
			}
			if single {
				if main.Set == nil {
					main.Set = map[string]string{}
				}
				v := o.value
				if a.Store != nil || len(chain) > 0 {
					v = values + "[0]"
				}
				main.Set[claim] = v
			} else {
				if main.Add == nil {
					main.Add = map[string]string{}
				}
				main.Add[claim] = values
			}
			if !c.issued[o.typ] {
				c.issued[o.typ] = true
				c.res.Issued = append(c.res.Issued, IssuedClaim{Type: o.typ, Claim: claim})
			}
			if single && len(chain) > 0 {
				note(o.pos, "", "%s is one string in realmgate: when several claims match, the first value is used", claim)
			}
		}
		if !toScratch {
			if a.Verb == "add" && a.Store == nil {
				note(o.pos, "", "add(Type = %q): no later rule reads this claim type; nothing to convert", o.typ)
			}
			continue
		}
		c.scratch[o.typ] = true
		// Adds apply in claim-name order: when the input-set copy of a
		// type this rule also reads would be appended before an output
		// computed from it, it moves to a rule of its own after this one.
		target := &main
		if a.Verb == "issue" && c.readsType(sels, o.typ) {
			if claim, single := ClaimName(o.typ); !single && scratch(o.typ) < claim {
				if follow == nil {
					follow = &config.Rule{Name: c.unique(displayName(i, r) + " (input claim set)"), If: main.If}
				}
				target = follow
			}
		}
		if target.Add == nil {
			target.Add = map[string]string{}
		}
		target.Add[scratch(o.typ)] = values
	}
	if len(main.Set) == 0 && len(main.Add) == 0 {
		if follow != nil {
			follow.Name = main.Name
			return []config.Rule{*follow}, notes, nil
		}
		c.names[name] = false
		return nil, notes, nil
	}
	if follow != nil {
		return []config.Rule{main, *follow}, notes, nil
	}
	return []config.Rule{main}, notes, nil
}

// reservedExtra are claims the broker's pipeline keeps to itself besides
// transform.Reserved (claims.Reserved).
var reservedExtra = map[string]bool{"gid": true, "client_id": true, "scope": true, "act": true}

func (c *converter) readsType(sels []*sel, t string) bool {
	for _, s := range sels {
		if s.typ == t {
			return true
		}
	}
	return false
}

// existsChain is true when the selectors match together: nested exists,
// so that a selector testing another's value sees each of its values.
func existsChain(chain []*sel) string {
	e := ""
	for k := len(chain) - 1; k >= 0; k-- {
		s := chain[k]
		parts := append([]string(nil), s.preds...)
		if e != "" {
			parts = append(parts, e)
		}
		list := inputList(s.typ)
		if len(parts) == 0 {
			e = fmt.Sprintf("size(%s) > 0", list)
		} else {
			e = fmt.Sprintf("%s.exists(%s, %s)", list, s.v, strings.Join(parts, " && "))
		}
	}
	return e
}

// product is the list of value for each combination of the chain's
// claims (AD FS runs a rule once per match of its conditions).
func product(chain []*sel, value string) string {
	s := chain[0]
	list := inputList(s.typ)
	parts := append([]string(nil), s.preds...)
	if len(chain) == 1 {
		if value == s.v {
			if len(parts) == 0 {
				return list
			}
			return fmt.Sprintf("%s.filter(%s, %s)", list, s.v, strings.Join(parts, " && "))
		}
		if len(parts) == 0 {
			return fmt.Sprintf("%s.map(%s, %s)", list, s.v, value)
		}
		return fmt.Sprintf("%s.map(%s, %s, %s)", list, s.v, strings.Join(parts, " && "), value)
	}
	// Keep only the values with which the rest matches, so that no inner
	// list is empty, and flatten through join and split.
	parts = append(parts, existsChain(chain[1:]))
	inner := product(chain[1:], value)
	return fmt.Sprintf("split(join(%s.map(%s, %s, join(%s, %s)), %s), %s)",
		list, s.v, strings.Join(parts, " && "), inner, sep, sep, sep)
}

// selector converts the tests of one claim selector or aggregate.
func (c *converter) selector(cd *Cond, idx int, byVar map[string]*sel, note func(Pos, string, string, ...any)) (*sel, error) {
	s := &sel{cond: cd, v: "x" + strconv.Itoa(idx), refs: map[string]bool{}}
	if cd.Agg != aggNone {
		s.v = "a"
	}
	typed := false
	for _, t := range cd.Tests {
		switch t.Prop {
		case "Type":
			lit, ok := t.Expr.(*StrLit)
			if t.Op != tokEq || !ok {
				return nil, fail(t.Pos, "write one rule per claim type, each with Type == \"...\"",
					"a selector matching claim types with %s cannot be converted: realmgate reads claims by type", t.Op)
			}
			if typed && lit.Val != s.typ {
				return nil, fail(t.Pos, "", "the selector tests two claim types")
			}
			s.typ, typed = lit.Val, true
			if lit.Val != strings.TrimSpace(lit.Val) {
				note(t.Pos, "remove the spaces unless the claim type really has them", "the claim type %q has leading or trailing spaces", lit.Val)
			}
		case "Value":
			rhs, err := c.expr(t.Expr, byVar, s.refs)
			if err != nil {
				return nil, err
			}
			switch t.Op {
			case tokEq:
				s.preds = append(s.preds, fmt.Sprintf("%s == %s", s.v, rhs))
			case tokNeq:
				s.preds = append(s.preds, fmt.Sprintf("%s != %s", s.v, rhs))
			case tokMatch, tokNotMatch:
				if lit, ok := t.Expr.(*StrLit); ok {
					if err := checkRegex(lit.Val); err != nil {
						var re *regexError
						errors.As(err, &re)
						return nil, fail(t.Expr.exprPos(), re.hint, "regular expression %q: %s", lit.Val, re.msg)
					}
				}
				m := fmt.Sprintf("%s.matches(%s)", s.v, rhs)
				if t.Op == tokNotMatch {
					m = "!" + m
				}
				s.preds = append(s.preds, m)
			}
		case "Issuer", "OriginalIssuer":
			lit, ok := t.Expr.(*StrLit)
			if !ok {
				return nil, fail(t.Pos, "remove the test", "a computed %s test cannot be converted", t.Prop)
			}
			var holds bool
			switch t.Op {
			case tokEq, tokNeq:
				if !knownAuthorities[lit.Val] {
					return nil, fail(t.Expr.exprPos(), "remove the test, or give that claims provider a realmgate IdP of its own and test idp in a realmgate rule",
						"%s %s %q names a claims provider: realmgate takes every incoming claim from the tenant's IdP", t.Prop, t.Op, lit.Val)
				}
				holds = (lit.Val == assumedIssuer) == (t.Op == tokEq)
			default:
				re, err := regexp.Compile(lit.Val)
				if err != nil {
					return nil, fail(t.Expr.exprPos(), "", "regular expression %q: %v", lit.Val, err)
				}
				holds = re.MatchString(assumedIssuer) == (t.Op == tokMatch)
			}
			if !holds {
				return nil, fail(t.Pos, "remove the test if the rule should apply to the claims of the upstream IdP",
					"%s %s %q never holds in realmgate: every incoming claim counts as issued by %s (the upstream IdP)", t.Prop, t.Op, lit.Val, assumedIssuer)
			}
		case "ValueType":
			lit, ok := t.Expr.(*StrLit)
			if !ok || (t.Op != tokEq && t.Op != tokNeq) {
				return nil, fail(t.Pos, "remove the test", "this ValueType test cannot be converted")
			}
			celType, known := map[string]string{
				"http://www.w3.org/2001/XMLSchema#string":  "string",
				"http://www.w3.org/2001/XMLSchema#boolean": "bool",
				"http://www.w3.org/2001/XMLSchema#integer": "int",
			}[lit.Val]
			if !known {
				return nil, fail(t.Expr.exprPos(), "remove the test", "ValueType %q has no realmgate equivalent", lit.Val)
			}
			op := "=="
			if t.Op == tokNeq {
				op = "!="
			}
			s.preds = append(s.preds, fmt.Sprintf("type(%s) %s %s", s.v, op, celType))
		}
	}
	if !typed {
		hint := `name the claim type: c:[Type == "http://..."]; to pass every claim through, write one rule per claim type`
		return nil, fail(cd.Pos, hint, "a selector without Type == \"...\" matches claims of any type: realmgate reads claims by type")
	}
	return s, nil
}

// expr converts a string expression to CEL; refs collects the selector
// variables it reads.
func (c *converter) expr(e Expr, byVar map[string]*sel, refs map[string]bool) (string, error) {
	switch x := e.(type) {
	case *StrLit:
		return quote(x.Val), nil
	case *PropRef:
		s := byVar[strings.ToLower(x.Var)]
		if s == nil {
			return "", fail(x.Pos, "a variable is bound by an earlier selector of the same rule: c:[...]",
				"%s is not bound by an earlier selector", x.Var)
		}
		switch x.Prop {
		case "Value":
			refs[s.v] = true
			return s.v, nil
		case "Type":
			return quote(s.typ), nil
		case "Issuer", "OriginalIssuer":
			return quote(assumedIssuer), nil
		}
		return "", fail(x.Pos, "use c.Value", "%s.%s cannot be converted: realmgate claims have values only", x.Var, x.Prop)
	case *Concat:
		l, err := c.expr(x.L, byVar, refs)
		if err != nil {
			return "", err
		}
		r, err := c.expr(x.R, byVar, refs)
		if err != nil {
			return "", err
		}
		return l + " + " + r, nil
	case *Call:
		if !strings.EqualFold(x.Fn, "regexreplace") {
			return "", fail(x.Pos, "the claim rule language's function is regexreplace; for anything else write a realmgate rule by hand (docs/rules.md)",
				"unknown function %s", x.Fn)
		}
		if len(x.Args) != 3 {
			return "", fail(x.Pos, "regexreplace(value, pattern, replacement)", "regexreplace takes 3 arguments, not %d", len(x.Args))
		}
		in, err := c.expr(x.Args[0], byVar, refs)
		if err != nil {
			return "", err
		}
		pat, ok := x.Args[1].(*StrLit)
		if !ok {
			return "", fail(x.Args[1].exprPos(), "write the pattern as a string", "a computed regexreplace pattern cannot be converted")
		}
		if err := checkRegex(pat.Val); err != nil {
			var re *regexError
			errors.As(err, &re)
			return "", fail(pat.Pos, re.hint, "regular expression %q: %s", pat.Val, re.msg)
		}
		rep, ok := x.Args[2].(*StrLit)
		if !ok {
			return "", fail(x.Args[2].exprPos(), "write the replacement as a string", "a computed regexreplace replacement cannot be converted")
		}
		r, err := replacement(rep.Val)
		if err != nil {
			return "", fail(rep.Pos, "use $1 or ${name}", "replacement %q: %v", rep.Val, err)
		}
		return fmt.Sprintf("regexReplace(%s, %s, %s)", in, quote(pat.Val), quote(r)), nil
	}
	return "", fmt.Errorf("unknown expression %T", e)
}

// sqlQuery recognizes the query of a SQL attribute store.
// placeholder is a query part that is only a parameter, {0}.
var placeholder = regexp.MustCompile(`^\s*\{\d+\}\s*$`)

var sqlQuery = regexp.MustCompile(`(?i)^\s*(select|exec|execute)\b`)

// store converts an attribute store query, with LDAPFromUpstream, into
// the claim types it produces.
func (c *converter) store(sq *StoreQuery, note func(Pos, string, string, ...any)) ([]string, error) {
	if len(sq.Types) == 0 {
		return nil, fail(sq.Pos, `types = ("http://...")`, "the attribute store query names no claim types")
	}
	switch {
	case strings.HasPrefix(sq.Store, "_OpaqueIdStore"):
		return nil, fail(sq.Pos, "realmgate's sub is already a stable, opaque identifier per tenant and upstream subject: send sub (or a SAML app's persistent NameID)",
			"the opaque identifier store %q cannot be converted", sq.Store)
	case strings.HasPrefix(sq.Store, "_"):
		return nil, fail(sq.Pos, "", "AD FS's internal attribute store %q cannot be converted", sq.Store)
	case sqlQuery.MatchString(sq.Query) || strings.Contains(strings.ToLower(sq.Store), "sql"):
		return nil, fail(sq.Pos, "have the upstream IdP send these values as claims, or compute them in realmgate rules",
			"the SQL attribute store query %q cannot be converted: realmgate queries no database during sign-in", sq.Query)
	}
	parts := strings.Split(sq.Query, ";")
	if len(parts) < 2 {
		return nil, fail(sq.Pos, "", "the attribute store query %q is not an LDAP query (filter;attributes[;domain\\user])", sq.Query)
	}
	// Active Directory: filter;attr1,attr2;domain\user. Other LDAP
	// stores (AD LDS): filter;attr1;attr2 or filter;attr1,attr2.
	attrParts := parts[1:]
	if strings.EqualFold(strings.TrimSpace(sq.Store), "Active Directory") ||
		(len(parts) >= 3 && placeholder.MatchString(parts[len(parts)-1])) {
		attrParts = parts[1:2] // the last part is the domain\user to query
	}
	var attrs []string
	for _, p := range attrParts {
		for _, a := range strings.Split(p, ",") {
			if a = strings.TrimSpace(a); a != "" {
				attrs = append(attrs, a)
			}
		}
	}
	if len(attrs) != len(sq.Types) {
		return nil, fail(sq.Pos, "", "the query asks for %d attributes (%s) but names %d claim types", len(attrs), strings.Join(attrs, ", "), len(sq.Types))
	}
	var pairs []string
	for i, a := range attrs {
		pairs = append(pairs, fmt.Sprintf("%s -> %s", a, sq.Types[i]))
	}
	if !c.opts.LDAPFromUpstream {
		return nil, fail(sq.Pos, "realmgate queries no directory during sign-in: have the upstream IdP send these attributes as claims of those types, then import with --ldap-from-upstream",
			"the LDAP query of attribute store %q (%s) cannot be converted", sq.Store, strings.Join(pairs, ", "))
	}
	note(sq.Pos, "", "the LDAP query of %q (%s) reads these claim types from the upstream identity (--ldap-from-upstream)", sq.Store, strings.Join(pairs, ", "))
	return sq.Types, nil
}
