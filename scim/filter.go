package scim

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"
)

// Filter limits: the parser is recursive, so nesting is bounded before it
// runs, and so is the length (RFC 7644 §3.4.2.2 sets none; a filter from
// Entra or Okta is one or two comparisons).
const (
	maxFilterLen   = 2048
	maxFilterDepth = 16
)

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2) checked against a
// resource type: every attribute it names exists.
type Filter struct {
	rt   *resourceType
	expr filter.Expression
}

// ParseFilter parses a filter for rt. The grammar is
// github.com/scim2/filter-parser's; before it runs, the length and the
// nesting of parentheses and brackets are bounded, and one shape Entra
// sends that the grammar lacks, `emails[type eq "work"].value eq "x"`, is
// read as `emails[type eq "work" and value eq "x"]`.
func parseFilter(rt *resourceType, s string) (f *Filter, err error) {
	if len(s) > maxFilterLen {
		return nil, invalidFilter("filter is longer than %d bytes", maxFilterLen)
	}
	if strings.TrimSpace(s) == "" {
		return nil, invalidFilter("filter is empty")
	}
	if d, ok := nesting(s); !ok {
		return nil, invalidFilter("filter has unbalanced quotes, parentheses or brackets")
	} else if d > maxFilterDepth {
		return nil, invalidFilter("filter nests deeper than %d", maxFilterDepth)
	}
	defer func() {
		if p := recover(); p != nil { // the parser must never take the process down
			f, err = nil, invalidFilter("filter could not be parsed")
		}
	}()
	expr, perr := filter.ParseFilterNumber([]byte(s))
	if perr != nil {
		if alt, ok := rewriteValuePathCompare(s); ok {
			expr, perr = filter.ParseFilterNumber([]byte(alt))
		}
	}
	if perr != nil {
		return nil, invalidFilter("filter %q is not valid (RFC 7644 §3.4.2.2)", clip(s, 100))
	}
	f = &Filter{rt: rt, expr: expr}
	if err := f.check(expr, nil); err != nil {
		return nil, err
	}
	return f, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// nesting returns the deepest nesting of ( and [ outside strings, and
// whether quotes and brackets balance.
func nesting(s string) (int, bool) {
	depth, max := 0, 0
	inStr, esc := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '(', '[':
			depth++
			if depth > max {
				max = depth
			}
		case ')', ']':
			depth--
			if depth < 0 {
				return max, false
			}
		}
	}
	return max, !inStr && depth == 0
}

// rewriteValuePathCompare turns `attr[f].sub op value` into
// `attr[f and sub op value]` (Microsoft Entra's user-matching query).
func rewriteValuePathCompare(s string) (string, bool) {
	var b strings.Builder
	changed := false
	inStr, esc := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			b.WriteByte(c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
		}
		if c == ']' && i+1 < len(s) && s[i+1] == '.' {
			rest, n, ok := readCompare(s[i+2:])
			if ok {
				b.WriteString(" and ")
				b.WriteString(rest)
				b.WriteByte(']')
				i += 1 + n
				changed = true
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), changed
}

// readCompare reads `sub op value` (or `sub pr`) at the start of s and
// returns it and how many bytes it took.
func readCompare(s string) (string, int, bool) {
	i := 0
	for i < len(s) && (isNameChar(s[i])) {
		i++
	}
	if i == 0 {
		return "", 0, false
	}
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j == i || j+2 > len(s) {
		return "", 0, false
	}
	op := strings.ToLower(s[j : j+2])
	switch op {
	case "pr":
		return s[:j+2], j + 2, true
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		return "", 0, false
	}
	k := j + 2
	for k < len(s) && s[k] == ' ' {
		k++
	}
	if k == j+2 || k >= len(s) {
		return "", 0, false
	}
	if s[k] == '"' {
		esc := false
		for m := k + 1; m < len(s); m++ {
			switch {
			case esc:
				esc = false
			case s[m] == '\\':
				esc = true
			case s[m] == '"':
				return s[:m+1], m + 1, true
			}
		}
		return "", 0, false
	}
	m := k
	for m < len(s) && s[m] != ' ' && s[m] != ')' && s[m] != ']' {
		m++
	}
	return s[:m], m, true
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$'
}

// check resolves every attribute path of e against the resource type;
// inside a value path, against the sub-attributes of parent.
func (f *Filter) check(e filter.Expression, parent *Attribute) error {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if err := f.check(x.Left, parent); err != nil {
			return err
		}
		return f.check(x.Right, parent)
	case *filter.NotExpression:
		return f.check(x.Expression, parent)
	case *filter.ValuePath:
		if parent != nil {
			return invalidFilter("filters inside [ ] cannot nest")
		}
		r, err := f.path(x.AttributePath, nil)
		if err != nil {
			return err
		}
		if r.sub != nil || r.attr.Type != typeComplex {
			return invalidFilter("%s[...] needs a complex attribute", x.AttributePath)
		}
		return f.check(x.ValueFilter, r.attr)
	case *filter.AttributeExpression:
		if _, err := f.path(x.AttributePath, parent); err != nil {
			return err
		}
		switch x.Operator {
		case filter.PR, filter.EQ, filter.NE, filter.CO, filter.SW, filter.EW, filter.GT, filter.GE, filter.LT, filter.LE:
		default:
			return invalidFilter("unknown operator %q", x.Operator)
		}
		return nil
	}
	return invalidFilter("unsupported filter expression")
}

// path resolves a filter's attribute path; within a value path the
// attribute is a sub-attribute of parent.
func (f *Filter) path(p filter.AttributePath, parent *Attribute) (resolved, error) {
	if parent != nil {
		if p.URIPrefix != nil || p.SubAttribute != nil {
			return resolved{}, invalidFilter("%q is not a sub-attribute of %s", p.String(), parent.Name)
		}
		s := parent.sub(p.AttributeName)
		if s == nil {
			return resolved{}, invalidFilter("unknown sub-attribute %q of %s", p.AttributeName, parent.Name)
		}
		return resolved{attr: s}, nil
	}
	r, err := f.rt.resolve(p.URI(), p.AttributeName, p.SubAttributeName())
	if err != nil {
		return r, invalidFilter("%s", err.Error())
	}
	return r, nil
}

// Match reports whether the resource (its rendered JSON form) matches.
func (f *Filter) Match(res map[string]any) bool { return f.eval(f.expr, res, nil) }

func (f *Filter) eval(e filter.Expression, res map[string]any, parent *Attribute) bool {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			return f.eval(x.Left, res, parent) && f.eval(x.Right, res, parent)
		}
		return f.eval(x.Left, res, parent) || f.eval(x.Right, res, parent)
	case *filter.NotExpression:
		return !f.eval(x.Expression, res, parent)
	case *filter.ValuePath:
		r, _ := f.path(x.AttributePath, nil)
		for _, el := range values(lookup(res, r.ext, r.attr)) {
			if m, ok := el.(map[string]any); ok && f.eval(x.ValueFilter, m, r.attr) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		var r resolved
		var vals []any
		if parent != nil {
			r, _ = f.path(x.AttributePath, parent)
			vals = values(res[r.attr.Name])
		} else {
			r, _ = f.path(x.AttributePath, nil)
			vals = values(lookup(res, r.ext, r.attr))
		}
		a := r.attr
		if r.sub != nil {
			vals = subValues(vals, r.sub.Name)
			a = r.sub
		} else if a.Type == typeComplex {
			// RFC 7644 §3.4.2.2: a complex attribute without a
			// sub-attribute is compared through its "value".
			if s := a.sub("value"); s != nil {
				vals, a = subValues(vals, "value"), s
			}
		}
		if x.Operator == filter.PR {
			for _, v := range vals {
				if present(v) {
					return true
				}
			}
			return false
		}
		for _, v := range vals {
			if compare(a, v, x.Operator, x.CompareValue) {
				return true
			}
		}
		// ne matches a missing attribute too.
		return x.Operator == filter.NE && len(vals) == 0
	}
	return false
}

// lookup returns the value of a top-level attribute of a rendered resource.
func lookup(res map[string]any, ext *Schema, a *Attribute) any {
	if ext != nil {
		m, _ := res[ext.ID].(map[string]any)
		return m[a.Name]
	}
	return res[a.Name]
}

func values(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

func subValues(vals []any, name string) []any {
	var out []any
	for _, v := range vals {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m[name]; ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// compare applies op to an attribute value and a filter's value (RFC 7644
// §3.4.2.2, Table 3), by the attribute's type and caseExact.
func compare(a *Attribute, v any, op filter.CompareOperator, want any) bool {
	switch a.Type {
	case typeBoolean:
		b, ok1 := v.(bool)
		w, ok2 := want.(bool)
		if !ok1 || !ok2 {
			return false
		}
		switch op {
		case filter.EQ:
			return b == w
		case filter.NE:
			return b != w
		}
		return false
	case typeDateTime:
		t, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
		ws, _ := want.(string)
		w, err2 := time.Parse(time.RFC3339Nano, ws)
		if err1 != nil || err2 != nil {
			return false
		}
		return ordered(t.Compare(w), op)
	case typeInteger, typeDecimal:
		n1, ok1 := number(v)
		n2, ok2 := number(want)
		if !ok1 || !ok2 {
			return false
		}
		c := 0
		if n1 < n2 {
			c = -1
		} else if n1 > n2 {
			c = 1
		}
		return ordered(c, op)
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	w, ok := want.(string)
	if !ok {
		return false
	}
	w = unescape(w)
	if !a.CaseExact {
		s, w = strings.ToLower(s), strings.ToLower(w)
	}
	switch op {
	case filter.EQ:
		return s == w
	case filter.NE:
		return s != w
	case filter.CO:
		return strings.Contains(s, w)
	case filter.SW:
		return strings.HasPrefix(s, w)
	case filter.EW:
		return strings.HasSuffix(s, w)
	}
	return ordered(strings.Compare(s, w), op)
}

func ordered(c int, op filter.CompareOperator) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.NE:
		return c != 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil && !math.IsInf(f, 0)
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// unescape decodes the JSON escapes of a filter's string value (the parser
// keeps them as written: `"a\"b"` arrives as `a\"b`).
func unescape(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return s
	}
	return out
}

// equality returns the attribute and value of a filter that is, or is an
// "and" containing, `attr eq "value"` on one of the given top-level core
// attributes: the directory answers it by an index instead of a scan.
func (f *Filter) equality(names ...string) (attr, value string, ok bool) {
	var walk func(e filter.Expression) bool
	walk = func(e filter.Expression) bool {
		switch x := e.(type) {
		case *filter.LogicalExpression:
			return x.Operator == filter.AND && (walk(x.Left) || walk(x.Right))
		case *filter.AttributeExpression:
			if x.Operator != filter.EQ {
				return false
			}
			r, err := f.path(x.AttributePath, nil)
			if err != nil || r.ext != nil {
				return false
			}
			name := r.attr.Name
			if r.sub != nil {
				name += "." + r.sub.Name
			} else if r.attr.Type == typeComplex {
				name += ".value"
			}
			s, isStr := x.CompareValue.(string)
			if !isStr {
				return false
			}
			for _, n := range names {
				if n == name {
					attr, value = n, unescape(s)
					return true
				}
			}
		case *filter.ValuePath:
			r, err := f.path(x.AttributePath, nil)
			if err != nil || r.ext != nil {
				return false
			}
			// emails[type eq "work" and value eq "x"]
			var inner func(e filter.Expression) bool
			inner = func(e filter.Expression) bool {
				switch y := e.(type) {
				case *filter.LogicalExpression:
					return y.Operator == filter.AND && (inner(y.Left) || inner(y.Right))
				case *filter.AttributeExpression:
					s, isStr := y.CompareValue.(string)
					if y.Operator != filter.EQ || !isStr || !strings.EqualFold(y.AttributePath.AttributeName, "value") {
						return false
					}
					for _, n := range names {
						if n == r.attr.Name+".value" {
							attr, value = n, unescape(s)
							return true
						}
					}
				}
				return false
			}
			return inner(x.ValueFilter)
		}
		return false
	}
	ok = walk(f.expr)
	return attr, value, ok
}
