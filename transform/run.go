package transform

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// activation exposes the rule input to CEL without building a map per call.
type activation struct {
	upstream map[string]any
	claims   map[string]any
	user     map[string]any
	in       *Input
	// budget bounds what the rules of this evaluation allocate and scan.
	budget budget
}

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "upstream":
		return a.upstream, true
	case "claims":
		return a.claims, true
	case "tenant":
		return a.in.Tenant, true
	case "idp":
		return a.in.IdP, true
	case "client":
		return a.in.Client, true
	case "user":
		return a.user, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (e *Engine) run(ctx context.Context, in Input, trace *[]Step) (map[string]any, error) {
	up, err := upstreamView(in.Upstream)
	if err != nil {
		return nil, fmt.Errorf("transform: tenant %q: upstream identity: %w", e.tenant, err)
	}
	out, err := normalizeMapCap(in.Claims, 0, e.targets)
	if err != nil {
		return nil, fmt.Errorf("transform: tenant %q: input claims: %w", e.tenant, err)
	}
	if out == nil {
		out = make(map[string]any, e.targets)
	}
	// Rules only read user: a record already in normal form (the
	// directory's RuleView, fresh for each call) is used as it is.
	user := in.User
	if !canonical(user, 0) {
		if user, err = normalizeMap(in.User, 0); err != nil {
			return nil, fmt.Errorf("transform: tenant %q: user record: %w", e.tenant, err)
		}
	}
	if user == nil {
		user = map[string]any{}
	}
	act := &activation{upstream: up, claims: out, user: user, in: &in, budget: newBudget(e.maxEval)}
	for _, list := range [][]*compiledRule{e.global, e.rules} {
		for _, r := range list {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("transform: tenant %q: %w", e.tenant, err)
			}
			var step *Step
			if trace != nil {
				*trace = append(*trace, Step{Rule: r.name, Global: r.global})
				step = &(*trace)[len(*trace)-1]
			}
			stop, err := e.runRule(ctx, r, act, step)
			if err != nil {
				if step != nil {
					var de *DeniedError
					if !errors.As(err, &de) {
						step.Err = err.Error()
					}
				}
				return nil, err
			}
			if stop {
				break
			}
		}
	}
	if n := jsonSize(out, 0); n > e.maxBytes {
		return nil, fmt.Errorf("transform: tenant %q: output claims are about %d bytes, over the %d-byte limit: %w",
			e.tenant, n, e.maxBytes, ErrOutputTooLarge)
	}
	return out, nil
}

// runRule runs one rule, reporting whether it stops its list.
func (e *Engine) runRule(ctx context.Context, r *compiledRule, act *activation, step *Step) (bool, error) {
	fail := func(format string, args ...any) error {
		return &RuleError{Tenant: e.tenant, Rule: r.name, Global: r.global, Err: fmt.Errorf(format, args...)}
	}
	if r.cond != nil {
		v, err := eval(ctx, r.cond, act)
		if err != nil {
			return false, fail("if: %w", err)
		}
		b, ok := v.(types.Bool)
		if !ok {
			return false, fail("if: condition evaluated to %s, not bool", v.Type().TypeName())
		}
		if !b {
			return false, nil
		}
	}
	if step != nil {
		step.Matched = true
	}
	if r.deny != "" {
		if step != nil {
			step.Denied = r.deny
		}
		return false, &DeniedError{Rule: r.name, Message: r.deny}
	}
	out := act.claims
	for _, a := range r.set {
		v, err := eval(ctx, a.prg, act)
		if err != nil {
			return false, fail("set %s: %w", a.claim, err)
		}
		if opt, ok := v.(*types.Optional); ok {
			if !opt.HasValue() {
				continue
			}
			v = opt.GetValue()
		}
		before, had := out[a.claim]
		if v == types.NullValue {
			delete(out, a.claim)
			if had {
				record(step, "remove", a.claim, before, nil)
			}
			continue
		}
		nv, err := toNative(&act.budget, v, 0)
		if err != nil {
			return false, fail("set %s: %w", a.claim, err)
		}
		if err := e.checkValue(nv); err != nil {
			return false, fail("set %s: %w", a.claim, err)
		}
		out[a.claim] = nv
		record(step, "set", a.claim, before, nv)
	}
	for _, a := range r.add {
		v, err := eval(ctx, a.prg, act)
		if err != nil {
			return false, fail("add %s: %w", a.claim, err)
		}
		if opt, ok := v.(*types.Optional); ok {
			if !opt.HasValue() {
				continue
			}
			v = opt.GetValue()
		}
		if v == types.NullValue {
			continue
		}
		nv, err := toNative(&act.budget, v, 0)
		if err != nil {
			return false, fail("add %s: %w", a.claim, err)
		}
		vals, ok := nv.([]any)
		if !ok {
			vals = []any{nv}
		}
		if err := e.addValues(&act.budget, out, a.claim, vals, step, "add"); err != nil {
			return false, fail("add %s: %w", a.claim, err)
		}
	}
	if m := r.mapping; m != nil {
		vals := m.apply(act)
		if err := e.addValues(&act.budget, out, m.to, vals, step, "map"); err != nil {
			return false, fail("map to %s: %w", m.to, err)
		}
	}
	for _, c := range r.remove {
		if before, had := out[c]; had {
			delete(out, c)
			record(step, "remove", c, before, nil)
		}
	}
	if r.stop && step != nil {
		step.Stopped = true
	}
	return r.stop, nil
}

func eval(ctx context.Context, p *program, act *activation) (ref.Val, error) {
	prg := p.prg
	var v ref.Val
	var err error
	if ctx.Done() == nil {
		v, _, err = prg.Eval(act) // nothing to cancel: skip the interrupt checks
	} else {
		v, _, err = prg.ContextEval(ctx, act)
	}
	if over := act.budget.over; over != nil {
		// Reported even when the expression absorbed the error (`x || true`).
		return nil, over
	}
	if err != nil {
		return nil, err
	}
	if types.IsUnknownOrError(v) {
		return nil, fmt.Errorf("%v", v)
	}
	return v, nil
}

func record(step *Step, action, claim string, before, after any) {
	if step != nil {
		step.Changes = append(step.Changes, Change{Action: action, Claim: claim, Before: before, After: after})
	}
}

func (e *Engine) checkValue(v any) error {
	if quickBound(v) <= e.maxBytes {
		return nil // cannot be over the limit: no need to scan the text
	}
	if n := jsonSize(v, 0); n > e.maxBytes {
		return fmt.Errorf("value is about %d bytes, over the %d-byte limit: %w", n, e.maxBytes, ErrOutputTooLarge)
	}
	return nil
}

// quickBound is an upper bound of jsonSize for strings and lists of
// strings, found from their lengths without reading the text (at most 6
// bytes per byte, \u escapes); other values get MaxInt, sending them to
// the exact count.
func quickBound(v any) int {
	switch x := v.(type) {
	case string:
		return 6*len(x) + 2
	case []any:
		n := 2
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return math.MaxInt
			}
			n += 6*len(s) + 3
		}
		return n
	}
	return math.MaxInt
}

// addValues appends vals to the claim, making it a list and skipping
// values already present. A new list is built: input slices are never
// modified in place.
func (e *Engine) addValues(b *budget, out map[string]any, claim string, vals []any, step *Step, action string) error {
	if len(vals) == 0 {
		return nil
	}
	before, had := out[claim]
	if had && len(vals) <= 32 && allPresent(before, vals) {
		return nil // nothing new: no copy of the list
	}
	var list []any
	switch bl := before.(type) {
	case nil:
	case []any:
		if errv := b.charge("add", 16*int64(len(bl)+len(vals)), int64(len(bl)+len(vals))); errv != nil {
			return b.over
		}
		list = make([]any, len(bl), len(bl)+len(vals))
		copy(list, bl)
	default:
		list = append(make([]any, 0, 1+len(vals)), bl)
	}
	added := false
	if len(list)+len(vals) <= 32 {
		for _, v := range vals {
			if !containsValue(list, v) {
				list = append(list, v)
				added = true
			}
		}
	} else {
		// Large lists (hundreds of groups): dedupe through a set, not O(n²).
		seen := make(map[any]struct{}, len(list)+len(vals))
		for _, x := range list {
			if isScalar(x) {
				seen[x] = struct{}{}
			}
		}
		for _, v := range vals {
			if isScalar(v) {
				if _, dup := seen[v]; dup {
					continue
				}
				seen[v] = struct{}{}
			}
			list = append(list, v)
			added = true
		}
	}
	if !added && had {
		return nil
	}
	if list == nil {
		list = []any{}
	}
	if err := e.checkValue(list); err != nil {
		return err
	}
	out[claim] = list
	record(step, action, claim, before, list)
	return nil
}

// allPresent reports whether every value of vals is already in the claim
// value cur (a list or a single value).
func allPresent(cur any, vals []any) bool {
	if cur == nil {
		return false // a null claim becomes a list
	}
	list, ok := cur.([]any)
	for _, v := range vals {
		if ok {
			if !containsValue(list, v) {
				return false
			}
		} else if !isScalar(v) || !isScalar(cur) || v != cur {
			return false
		}
	}
	return true
}

// isScalar reports whether v is a comparable claim value.
func isScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, int64, uint64, float64, time.Time:
		return true
	}
	return false
}

// containsValue compares scalars; lists and maps are never equal (they are
// always appended).
func containsValue(list []any, v any) bool {
	if !isScalar(v) {
		return false
	}
	for _, x := range list {
		if isScalar(x) && x == v {
			return true
		}
	}
	return false
}

// apply looks the source values up in the table.
func (m *compiledMap) apply(act *activation) []any {
	var cur any
	switch m.root {
	case "upstream":
		cur = act.upstream
	case "user":
		cur = act.user
	default:
		cur = act.claims
	}
	for _, k := range m.path {
		mm, ok := cur.(map[string]any)
		if !ok {
			cur = nil
			break
		}
		cur = mm[k]
	}
	var src []any
	switch v := cur.(type) {
	case []any:
		src = v
	case nil:
	default:
		src = []any{v}
	}
	var outv []any
	for _, s := range src {
		str, ok := s.(string)
		if !ok {
			continue
		}
		if to, ok := m.table[str]; ok && !containsValue(outv, to) {
			outv = append(outv, to)
		}
	}
	if len(outv) == 0 && m.hasDef {
		outv = []any{m.def}
	}
	return outv
}
