package ruleimport

import (
	"fmt"
	"sort"
)

// SortProblems orders problems by position (those without one last, as given).
func SortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Problem is one thing an import could not convert, or converted with a
// caveat: where it is, what it is, and what to do about it.
type Problem struct {
	// Pos is where in the input the problem is (zero when it has no place).
	Pos Pos
	// Where names the place when Pos cannot (a JSON path); may be empty.
	Where string
	// Rule is the name of the rule concerned, when known.
	Rule string
	// Msg says what the problem is.
	Msg string
	// Hint suggests what to do instead; may be empty.
	Hint string
}

// String is "line:col: rule "name": message (hint)".
func (p Problem) String() string {
	s := ""
	switch {
	case p.Pos.Line > 0:
		s = p.Pos.String() + ": "
	case p.Where != "":
		s = p.Where + ": "
	}
	if p.Rule != "" {
		s += fmt.Sprintf("rule %q: ", p.Rule)
	}
	s += p.Msg
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// RuleSet is a parsed AD FS rule set: the rules in their order.
type RuleSet struct {
	Rules []*Rule
}

// Rule is one AD FS claim rule: conditions => one issuance statement.
type Rule struct {
	// Name is the @RuleName annotation ("" when there is none).
	Name string
	// Template is the @RuleTemplate annotation ("" for a rule typed by hand).
	Template string
	// Pos is where the rule starts (its first annotation or condition).
	Pos Pos
	// Text is the rule's source text, annotations included.
	Text string
	// Conds are the conditions joined by &&; empty means always.
	Conds []*Cond
	// Action is the issuance statement.
	Action *Action
}

// Aggregate functions of a condition.
const (
	aggNone      = ""
	aggExists    = "EXISTS"
	aggNotExists = "NOT EXISTS"
	aggCount     = "COUNT"
)

// Cond is one condition: a claim selector `c:[Type == "...", ...]` or an
// aggregate EXISTS([...]), NOT EXISTS([...]), COUNT([...]) > n.
type Cond struct {
	Pos Pos
	// Var is the selector's variable (c, c1); "" when untagged.
	Var string
	// Agg is the aggregate function, aggNone for a selector.
	Agg string
	// Tests are the selector's comma-separated tests.
	Tests []*Test
	// CountOp and Count are COUNT's comparison.
	CountOp tokKind
	Count   int
}

// Test is one `Property op expression` inside a selector.
type Test struct {
	Pos Pos
	// Prop is Type, Value, Issuer, OriginalIssuer or ValueType (canonical case).
	Prop string
	// Op is tokEq, tokNeq, tokMatch or tokNotMatch.
	Op   tokKind
	Expr Expr
}

// Action is an issuance statement: issue(...) or add(...).
type Action struct {
	Pos Pos
	// Verb is "issue" or "add".
	Verb string
	// Copy is the variable of `claim = c`, "" otherwise.
	Copy string
	// Params are the named properties of a new claim.
	Params []*Param
	// Store is set for an attribute store query.
	Store *StoreQuery
}

// Param is one `Name = expression` of a new claim.
type Param struct {
	Pos Pos
	// Name is Type, Value, ValueType, Issuer, OriginalIssuer or Properties.
	Name string
	// Key is the property name of Properties["key"].
	Key  string
	Expr Expr
}

// StoreQuery is `store = "...", types = (...), query = "...", param = ...`.
type StoreQuery struct {
	Pos    Pos
	Store  string
	Types  []string
	Query  string
	Params []Expr
}

// Expr is a string expression of the claim rule language.
type Expr interface{ exprPos() Pos }

// StrLit is a string literal.
type StrLit struct {
	Pos Pos
	Val string
}

// PropRef is `c.Value`, `c.Type`, `c.Properties["key"]`...
type PropRef struct {
	Pos  Pos
	Var  string
	Prop string
	Key  string
}

// Concat is `a + b`.
type Concat struct {
	Pos  Pos
	L, R Expr
}

// Call is a function call such as regexreplace(c.Value, "...", "...").
type Call struct {
	Pos  Pos
	Fn   string
	Args []Expr
}

func (e *StrLit) exprPos() Pos  { return e.Pos }
func (e *PropRef) exprPos() Pos { return e.Pos }
func (e *Concat) exprPos() Pos  { return e.Pos }
func (e *Call) exprPos() Pos    { return e.Pos }
