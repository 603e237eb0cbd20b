package ruleimport

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses AD FS claim rule language text: what
// `(Get-AdfsRelyingPartyTrust -Name X).IssuanceTransformRules` prints, a
// sequence of rules, each optionally preceded by @RuleTemplate and
// @RuleName annotations. Every syntax error is returned as a Problem with
// its line and column; a rule with an error is left out of the RuleSet and
// parsing goes on with the next rule.
func Parse(src string) (*RuleSet, []Problem) {
	if len(src) > maxInputBytes {
		return &RuleSet{}, []Problem{{Msg: fmt.Sprintf("the rule text is %d bytes, over the %d-byte limit", len(src), maxInputBytes)}}
	}
	lx := newLexer(src)
	p := &parser{src: src, toks: lx.all()}
	p.errs = lx.errs
	p.lexErrs = lx.errOffs
	rs := &RuleSet{}
	for p.peek().kind != tokEOF && len(p.errs) < maxProblems {
		if r := p.rule(); r != nil {
			rs.Rules = append(rs.Rules, r)
		}
	}
	return rs, p.errs
}

type parser struct {
	src  string
	toks []token
	i    int
	errs []Problem
	// lexErrs are the offsets of the lexer's errors: a rule holding one
	// is left out (the error is reported already).
	lexErrs []int
	// rule is the name of the rule being parsed, for problems.
	ruleName string
}

// bail aborts the parse of the current rule.
type bail struct{}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) advance() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) failAt(pos Pos, msg, hint string) {
	if len(p.errs) < maxProblems {
		p.errs = append(p.errs, Problem{Pos: pos, Rule: p.ruleName, Msg: msg, Hint: hint})
	}
	panic(bail{})
}

func (p *parser) expect(k tokKind, hint string) token {
	t := p.peek()
	if t.kind != k {
		p.failAt(t.pos, fmt.Sprintf("expected %q, found %s", k.String(), t.describe()), hint)
	}
	return p.advance()
}

// isWord reports whether t is the identifier w, in any case: the
// language's keywords are not case-sensitive (the documentation writes
// both issue(Type = ...) and issue(type = ...)).
func isWord(t token, w string) bool { return t.kind == tokIdent && strings.EqualFold(t.text, w) }

// rule parses one rule; on an error it skips to the next rule and returns nil.
func (p *parser) rule() (r *Rule) {
	start := p.peek()
	r = &Rule{Pos: start.pos}
	p.ruleName = ""
	defer func() {
		if e := recover(); e != nil {
			if _, ok := e.(bail); !ok {
				panic(e)
			}
			p.recoverRule(start)
			r = nil
		}
	}()
	for p.peek().kind == tokAnnot {
		at := p.advance()
		p.expect(tokAssign, `an annotation is @Name = "value"`)
		v := p.expect(tokString, `an annotation is @Name = "value"`)
		switch strings.ToLower(at.text) {
		case "rulename":
			r.Name = v.text
			p.ruleName = v.text
		case "ruletemplate":
			r.Template = v.text
		}
	}
	if p.peek().kind != tokImply {
		r.Conds = append(r.Conds, p.cond())
		for p.peek().kind == tokAnd {
			p.advance()
			r.Conds = append(r.Conds, p.cond())
		}
	}
	p.expect(tokImply, `a rule is: conditions => issue(...) or add(...);`)
	r.Action = p.action()
	end := p.toks[p.i-1].end
	switch t := p.peek(); {
	case t.kind == tokSemi:
		p.advance()
		end = t.end
	case t.kind == tokEOF:
		// The last rule's semicolon is often left out when rules are
		// copied one at a time.
	default:
		prev := p.toks[p.i-1]
		// Report at the end of the statement, go on with the next rule.
		pos := prev.pos
		pos.Col += len([]rune(p.src[prev.off:prev.end]))
		if len(p.errs) < maxProblems {
			p.errs = append(p.errs, Problem{Pos: pos, Rule: p.ruleName,
				Msg: fmt.Sprintf(`expected ";" after the issuance statement, found %s`, t.describe()), Hint: `end every rule with ";"`})
		}
		r.Text = strings.TrimSpace(p.src[start.off:end])
		return nil
	}
	r.Text = strings.TrimSpace(p.src[start.off:end])
	for _, off := range p.lexErrs {
		if off > start.off && off <= end {
			return nil
		}
	}
	return r
}

// recoverRule skips past the next ";" (or to the next annotation, which
// starts a rule), making sure the parser moves on.
func (p *parser) recoverRule(start token) {
	if p.i < len(p.toks) && p.toks[p.i].off == start.off && p.peek().kind != tokEOF {
		p.advance()
	}
	for {
		t := p.peek()
		switch t.kind {
		case tokEOF:
			return
		case tokSemi:
			p.advance()
			return
		case tokAnnot:
			return
		}
		p.advance()
	}
}

// cond parses one condition.
func (p *parser) cond() *Cond {
	t := p.peek()
	c := &Cond{Pos: t.pos}
	switch {
	case isWord(t, "not") && isWord(p.peekAt(1), "exists"):
		p.advance()
		p.advance()
		c.Agg = aggNotExists
		p.aggregateArg(c)
	case isWord(t, "exists") && p.peekAt(1).kind == tokLParen:
		p.advance()
		c.Agg = aggExists
		p.aggregateArg(c)
	case isWord(t, "count") && p.peekAt(1).kind == tokLParen:
		p.advance()
		c.Agg = aggCount
		p.aggregateArg(c)
		op := p.advance()
		switch op.kind {
		case tokEq, tokNeq, tokLt, tokLe, tokGt, tokGe:
		default:
			p.failAt(op.pos, fmt.Sprintf("expected a comparison after COUNT(...), found %s", op.describe()), "COUNT([...]) > 0")
		}
		n := p.expect(tokNumber, "COUNT compares with a whole number")
		v, err := strconv.Atoi(n.text)
		if err != nil || v > 1<<20 {
			p.failAt(n.pos, fmt.Sprintf("number %s is too large", n.text), "")
		}
		c.CountOp, c.Count = op.kind, v
	case t.kind == tokIdent && p.peekAt(1).kind == tokColon:
		c.Var = p.advance().text
		p.advance()
		c.Tests = p.selector()
	case t.kind == tokLBracket:
		c.Tests = p.selector()
	default:
		p.failAt(t.pos, fmt.Sprintf("expected a condition, found %s", t.describe()),
			`a condition is c:[Type == "..."], EXISTS([...]), NOT EXISTS([...]) or COUNT([...]) > n`)
	}
	return c
}

func (p *parser) aggregateArg(c *Cond) {
	p.expect(tokLParen, c.Agg+"([...])")
	c.Tests = p.selector()
	p.expect(tokRParen, c.Agg+"([...])")
}

// properties a selector can test and a new claim can set.
var claimProps = map[string]string{
	"type": "Type", "value": "Value", "valuetype": "ValueType",
	"issuer": "Issuer", "originalissuer": "OriginalIssuer", "properties": "Properties",
}

// selector parses `[test, test, ...]`.
func (p *parser) selector() []*Test {
	p.expect(tokLBracket, "a claim selector is [Type == \"...\", Value == \"...\"]")
	var tests []*Test
	for p.peek().kind != tokRBracket {
		t := p.peek()
		prop, ok := claimProps[strings.ToLower(t.text)]
		if t.kind != tokIdent || !ok || prop == "Properties" {
			p.failAt(t.pos, fmt.Sprintf("expected Type, Value, ValueType, Issuer or OriginalIssuer, found %s", t.describe()),
				"a selector tests claim properties, e.g. [Type == \"...\", Value =~ \"...\"]")
		}
		p.advance()
		op := p.advance()
		switch op.kind {
		case tokEq, tokNeq, tokMatch, tokNotMatch:
		default:
			hint := "the operators are ==, !=, =~ (regular expression match) and !~"
			if op.kind == tokAssign {
				hint = "a test compares with ==; = assigns in issue(...)"
			}
			p.failAt(op.pos, fmt.Sprintf("expected ==, !=, =~ or !~ after %s, found %s", prop, op.describe()), hint)
		}
		tests = append(tests, &Test{Pos: t.pos, Prop: prop, Op: op.kind, Expr: p.expr()})
		switch n := p.peek(); n.kind {
		case tokComma:
			p.advance()
		case tokRBracket:
		default:
			p.failAt(n.pos, fmt.Sprintf(`expected "," or "]" in the claim selector, found %s`, n.describe()),
				"separate the tests of a selector with commas")
		}
	}
	p.advance()
	return tests
}

// action parses issue(...) or add(...).
func (p *parser) action() *Action {
	t := p.peek()
	a := &Action{Pos: t.pos}
	switch {
	case isWord(t, "issue"):
		a.Verb = "issue"
	case isWord(t, "add"):
		a.Verb = "add"
	default:
		p.failAt(t.pos, fmt.Sprintf("expected issue or add, found %s", t.describe()), "the statement after => is issue(...) or add(...)")
	}
	p.advance()
	p.expect(tokLParen, a.Verb+"(...)")
	first := p.peek()
	switch {
	case isWord(first, "claim") && p.peekAt(1).kind == tokAssign:
		p.advance()
		p.advance()
		a.Copy = p.expect(tokIdent, "claim = c copies the claim selected by c").text
	case isWord(first, "store") && p.peekAt(1).kind == tokAssign:
		a.Store = p.store()
	default:
		seen := map[string]bool{}
		for {
			pt := p.peek()
			prop, ok := claimProps[strings.ToLower(pt.text)]
			if pt.kind != tokIdent || !ok {
				p.failAt(pt.pos, fmt.Sprintf("expected a claim property (Type, Value, ValueType, Issuer, OriginalIssuer, Properties[...]), found %s", pt.describe()),
					`e.g. issue(Type = "...", Value = c.Value)`)
			}
			p.advance()
			prm := &Param{Pos: pt.pos, Name: prop}
			if prop == "Properties" {
				p.expect(tokLBracket, `Properties["name"] = "value"`)
				prm.Key = p.expect(tokString, `Properties["name"] = "value"`).text
				p.expect(tokRBracket, `Properties["name"] = "value"`)
			}
			key := prop + "[" + prm.Key + "]"
			if seen[key] {
				p.failAt(pt.pos, fmt.Sprintf("%s is set twice", prop), "")
			}
			seen[key] = true
			p.expect(tokAssign, prop+" = expression")
			prm.Expr = p.expr()
			a.Params = append(a.Params, prm)
			if p.peek().kind != tokComma {
				break
			}
			p.advance()
		}
		if !seen["Type[]"] {
			p.failAt(t.pos, a.Verb+"(...) without Type", "a new claim needs Type = \"...\"")
		}
	}
	p.expect(tokRParen, "close "+a.Verb+"(...)")
	return a
}

// store parses an attribute store query.
func (p *parser) store() *StoreQuery {
	sq := &StoreQuery{Pos: p.peek().pos}
	p.advance()
	p.advance()
	sq.Store = p.expect(tokString, `store = "Active Directory"`).text
	for p.peek().kind == tokComma {
		p.advance()
		k := p.peek()
		switch {
		case isWord(k, "types"):
			p.advance()
			p.expect(tokAssign, `types = ("...", "...")`)
			p.expect(tokLParen, `types = ("...", "...")`)
			for {
				sq.Types = append(sq.Types, p.expect(tokString, `types = ("...", "...")`).text)
				if p.peek().kind != tokComma {
					break
				}
				p.advance()
			}
			p.expect(tokRParen, `types = ("...", "...")`)
		case isWord(k, "query"):
			p.advance()
			p.expect(tokAssign, `query = "..."`)
			sq.Query = p.expect(tokString, `query = "..."`).text
		case isWord(k, "param"):
			p.advance()
			p.expect(tokAssign, `param = expression`)
			sq.Params = append(sq.Params, p.expr())
		default:
			p.failAt(k.pos, fmt.Sprintf("expected types, query or param, found %s", k.describe()), "")
		}
	}
	return sq
}

// expr parses `term + term + ...`.
func (p *parser) expr() Expr {
	e := p.term(0)
	for p.peek().kind == tokPlus {
		t := p.advance()
		e = &Concat{Pos: t.pos, L: e, R: p.term(0)}
	}
	return e
}

// maxExprDepth bounds the nesting of function calls.
const maxExprDepth = 32

func (p *parser) term(depth int) Expr {
	t := p.peek()
	switch {
	case t.kind == tokString:
		p.advance()
		return &StrLit{Pos: t.pos, Val: t.text}
	case t.kind == tokIdent && p.peekAt(1).kind == tokDot:
		p.advance()
		p.advance()
		pt := p.expect(tokIdent, "c.Value, c.Type, c.Issuer, c.OriginalIssuer, c.ValueType or c.Properties[\"...\"]")
		prop, ok := claimProps[strings.ToLower(pt.text)]
		if !ok {
			p.failAt(pt.pos, fmt.Sprintf("a claim has no property %q", pt.text), "the properties are Type, Value, ValueType, Issuer, OriginalIssuer and Properties[\"name\"]")
		}
		ref := &PropRef{Pos: t.pos, Var: t.text, Prop: prop}
		if prop == "Properties" {
			p.expect(tokLBracket, `c.Properties["name"]`)
			ref.Key = p.expect(tokString, `c.Properties["name"]`).text
			p.expect(tokRBracket, `c.Properties["name"]`)
		}
		return ref
	case t.kind == tokIdent && p.peekAt(1).kind == tokLParen:
		if depth >= maxExprDepth {
			p.failAt(t.pos, "function calls nested too deeply", "")
		}
		p.advance()
		p.advance()
		call := &Call{Pos: t.pos, Fn: t.text}
		for p.peek().kind != tokRParen {
			call.Args = append(call.Args, p.exprDepth(depth+1))
			if p.peek().kind != tokComma {
				break
			}
			p.advance()
		}
		p.expect(tokRParen, "close "+t.text+"(...)")
		return call
	case t.kind == tokIdent:
		p.failAt(t.pos, fmt.Sprintf("unexpected %s", t.describe()), `a value is a "string", c.Value, a + b or regexreplace(...); quote literal strings`)
	}
	p.failAt(t.pos, fmt.Sprintf("expected a value, found %s", t.describe()), `a value is a "string", c.Value, a + b or regexreplace(...)`)
	return nil
}

func (p *parser) exprDepth(depth int) Expr {
	e := p.term(depth)
	for p.peek().kind == tokPlus {
		t := p.advance()
		e = &Concat{Pos: t.pos, L: e, R: p.term(depth)}
	}
	return e
}
