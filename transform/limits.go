package transform

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/common/functions"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// ErrLimit is wrapped when a rule evaluation would exceed its memory or
// work budget (MaxEvalBytes, MaxEvalWork, the regular-expression limits).
// The sign-in fails closed, as on any other rule error (SECURITY S71).
var ErrLimit = errors.New("transform: rule evaluation limit exceeded")

// DefaultMaxEvalBytes bounds the bytes the functions of one evaluation (one
// Apply or Explain: every rule of a sign-in) may allocate when
// Options.MaxEvalBytes is zero: strings built by concatenation, functions
// and conversions, lists built by split, and the claim values produced. A
// function computes the size of its result and charges it before
// allocating, so a rule is refused before it allocates more than this.
const DefaultMaxEvalBytes = 1 << 20

// MaxEvalWork bounds the work of the string and regular-expression
// functions in one evaluation, in bytes scanned (a regular expression
// scan counts the input length times 1 + a sixteenth of the pattern's
// instruction count; indexOf counts input times needle). CEL's own
// operators are bounded by the cost limit.
const MaxEvalWork = 32 << 20

// maxRegexInsts bounds the compiled size of a regular expression, counted
// with repetitions expanded (x{1000} is 1000 instructions): compiling one
// costs about 250 bytes per instruction.
const maxRegexInsts = 2000

// maxDynamicPatternBytes bounds the length of a regular expression computed
// at evaluation time (constant patterns are bounded by the 4 KiB expression).
const maxDynamicPatternBytes = 4096

// budget is the per-evaluation allowance every guarded function charges
// before it allocates. The first refusal is sticky: a later charge fails
// too, and eval reports it even when CEL absorbed the error (`x || true`).
type budget struct {
	mem, work int64 // remaining
	max       int64 // the memory limit, for messages
	over      error
}

func newBudget(maxBytes int64) budget {
	return budget{mem: maxBytes, work: MaxEvalWork, max: maxBytes}
}

// charge takes mem bytes and work units, or returns the limit error.
func (b *budget) charge(fn string, mem, work int64) ref.Val {
	if b.over != nil {
		return types.WrapErr(b.over)
	}
	switch {
	case mem > b.mem:
		b.over = fmt.Errorf("%s would allocate %s, over what is left of the %d-byte evaluation budget: %w",
			fn, sizeText(mem), b.max, ErrLimit)
	case work > b.work:
		b.over = fmt.Errorf("%s would scan %s, over what is left of the %d-unit evaluation work budget: %w",
			fn, sizeText(work), int64(MaxEvalWork), ErrLimit)
	default:
		b.mem -= mem
		b.work -= work
		return nil
	}
	return types.WrapErr(b.over)
}

// refund returns unused bytes of an upper-bound charge.
func (b *budget) refund(mem int64) {
	if mem > 0 {
		b.mem += mem
	}
}

func sizeText(n int64) string {
	if n >= math.MaxInt64/2 {
		return "an unbounded amount"
	}
	return fmt.Sprintf("%d bytes", n)
}

// budgetOf finds the evaluation's budget in the activation chain (CEL
// wraps the activation for context checks, cost tracking and
// comprehensions). Outside an evaluation (constant folding) a fresh budget
// still caps the single call.
func budgetOf(vars interpreter.Activation) *budget {
	for v := vars; v != nil; v = v.Parent() {
		if a, ok := v.(*activation); ok {
			return &a.budget
		}
	}
	b := newBudget(DefaultMaxEvalBytes)
	return &b
}

// Saturating arithmetic: bounds computed from hostile sizes must not wrap.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// args holds a call's evaluated arguments by value (no allocation).
type args [4]ref.Val

func strArg(v ref.Val) int64 {
	if s, ok := v.(types.String); ok {
		return int64(len(s))
	}
	return 0
}

// callImpl runs a guarded call: it charges the budget, then computes.
type callImpl func(b *budget, a args, n int) ref.Val

// guardedCall replaces a planned CEL call: it evaluates the arguments,
// then runs impl with the evaluation's budget. It keeps the call's id,
// function, overload and arguments, so the regex optimizer and the cost
// tracker see it as the call it replaces.
type guardedCall struct {
	id       int64
	function string
	overload string
	argv     []interpreter.Interpretable
	impl     callImpl
}

var _ interpreter.InterpretableCall = (*guardedCall)(nil)

func (c *guardedCall) ID() int64                         { return c.id }
func (c *guardedCall) Function() string                  { return c.function }
func (c *guardedCall) OverloadID() string                { return c.overload }
func (c *guardedCall) Args() []interpreter.Interpretable { return c.argv }

func (c *guardedCall) Eval(vars interpreter.Activation) ref.Val {
	var a args
	n := len(c.argv)
	for i, arg := range c.argv {
		v := arg.Eval(vars)
		if types.IsUnknownOrError(v) {
			return v
		}
		a[i] = v
	}
	return c.impl(budgetOf(vars), a, n)
}

// pricer returns the bytes a call may allocate and the work it does, from
// its arguments, before it runs.
type pricer func(a args, n int) (mem, work int64)

// priced charges price, then calls the binding CEL would have called.
func priced(fn string, price pricer, o *functions.Overload) callImpl {
	return func(b *budget, a args, n int) ref.Val {
		mem, work := price(a, n)
		if errv := b.charge(fn, mem, work); errv != nil {
			return errv
		}
		switch {
		case n == 1 && o.Unary != nil:
			return o.Unary(a[0])
		case n == 2 && o.Binary != nil:
			return o.Binary(a[0], a[1])
		case o.Function != nil:
			return callVarArgs(o.Function, a, n)
		}
		return types.NewErr("no such overload: %s", fn)
	}
}

// callVarArgs slices its own copy of the arguments: slicing a in the
// caller would move every call's arguments to the heap.
func callVarArgs(f functions.FunctionOp, a args, n int) ref.Val {
	return f(a[:n]...)
}

// guardDecorator replaces every call that allocates or scans in proportion
// to its arguments with a guardedCall. bindings are the environment's
// function bindings by overload id and function name.
func guardDecorator(bindings map[string]*functions.Overload) interpreter.InterpretableDecorator {
	return func(i interpreter.Interpretable) (interpreter.Interpretable, error) {
		call, ok := i.(interpreter.InterpretableCall)
		if !ok {
			return i, nil
		}
		if _, done := call.(*guardedCall); done {
			return i, nil
		}
		fn, ov := call.Function(), call.OverloadID()
		var impl callImpl
		switch fn {
		case "regexReplace":
			impl = regexReplaceImpl(nil)
		case "regexExtract":
			impl = regexExtractImpl(nil)
		case "matches":
			impl = matchesImpl
		default:
			price, guarded := pricers[fn]
			if !guarded || (ov != "" && skipOverload[ov]) {
				return i, nil
			}
			key := ov
			if key == "" {
				key = fn // dynamic dispatch over the function's overloads
			}
			o, ok := bindings[key]
			if !ok {
				return i, nil
			}
			impl = priced(fn, price, o)
		}
		return &guardedCall{id: call.ID(), function: fn, overload: ov, argv: call.Args(), impl: impl}, nil
	}
}

// skipOverload lists overloads of priced functions that neither allocate
// nor scan (integer addition, list concatenation, which is lazy, the size
// of a list): they are left unwrapped.
var skipOverload = map[string]bool{
	"add_int64": true, "add_uint64": true, "add_double": true, "add_list": true,
	"add_timestamp_duration": true, "add_duration_timestamp": true, "add_duration_duration": true,
	"size_bytes": true, "bytes_size": true, "size_list": true, "list_size": true, "size_map": true, "map_size": true,
	"int64_to_string": true, "uint64_to_string": true, "double_to_string": true, "string_to_string": true,
	"bool_to_string": true, "timestamp_to_string": true, "duration_to_string": true, "bytes_to_bytes": true,
}

// pricers prices the functions that allocate or scan in proportion to
// their arguments, by name; argument types are checked at run time, as a
// call with dyn arguments dispatches dynamically. Runes cost 4 bytes and an
// invalid UTF-8 byte becomes a 3-byte U+FFFD, hence the factors.
var pricers = map[string]pricer{
	"_+_": func(a args, n int) (int64, int64) {
		var l int64
		for _, v := range a[:n] {
			switch x := v.(type) {
			case types.String:
				l += int64(len(x))
			case types.Bytes:
				l += int64(len(x))
			}
		}
		return l, l
	},
	"size": func(a args, n int) (int64, int64) { return 0, strArg(a[0]) },
	"string": func(a args, n int) (int64, int64) {
		if b, ok := a[0].(types.Bytes); ok {
			return 3 * int64(len(b)), int64(len(b))
		}
		return 0, 0
	},
	"bytes":       func(a args, n int) (int64, int64) { l := strArg(a[0]); return l, l },
	"lower":       linear(3),
	"upper":       linear(3),
	"emailDomain": linear(3),
	"mailPrefix":  linear(0),
	"trim":        linear(0),
	"lowerAscii":  linear(8),
	"upperAscii":  linear(8),
	"reverse":     linear(8),
	"charAt":      linear(4),
	"substring":   linear(8),
	"strings.quote": func(a args, n int) (int64, int64) {
		l := strArg(a[0])
		return mulSat(l, 16) + 2, l
	},
	"indexOf":     indexPrice,
	"lastIndexOf": indexPrice,
	"replace":     replacePrice,
	"split":       splitPrice,
	"join":        joinPrice,
	"format":      formatPrice,
}

// linear prices a function of its first argument: factor bytes allocated
// per input byte, one work unit per byte.
func linear(factor int64) pricer {
	return func(a args, n int) (int64, int64) {
		l := strArg(a[0])
		return mulSat(l, factor), l
	}
}

// indexPrice: ext indexOf converts both strings to runes and compares
// naively, O(len(s) * len(sub)).
func indexPrice(a args, n int) (int64, int64) {
	s, sub := strArg(a[0]), strArg(a[1])
	return 4 * (s + sub), mulSat(s+1, max(sub, 1))
}

// replacePrice is the exact size of strings.Replace's result.
func replacePrice(a args, n int) (int64, int64) {
	s, ok1 := a[0].(types.String)
	old, ok2 := a[1].(types.String)
	repl, ok3 := a[2].(types.String)
	if !ok1 || !ok2 || !ok3 {
		return 0, 0
	}
	var count int64
	if old == "" {
		count = int64(utf8.RuneCountInString(string(s))) + 1
	} else {
		count = int64(strings.Count(string(s), string(old)))
	}
	if n == 4 {
		if lim, ok := a[3].(types.Int); ok && lim >= 0 && int64(lim) < count {
			count = int64(lim)
		}
	}
	grow := int64(len(repl)) - int64(len(old))
	out := int64(len(s))
	if grow > 0 {
		out = addSat(out, mulSat(count, grow))
	}
	return out, addSat(int64(len(s)), out)
}

// splitPrice: a list of count+1 string headers (16 bytes each); an empty
// separator splits every rune.
func splitPrice(a args, n int) (int64, int64) {
	s, ok1 := a[0].(types.String)
	sep, ok2 := a[1].(types.String)
	if !ok1 || !ok2 {
		return 0, 0
	}
	var parts int64
	if sep == "" {
		parts = int64(utf8.RuneCountInString(string(s)))
	} else {
		parts = int64(strings.Count(string(s), string(sep))) + 1
	}
	if n == 3 {
		if lim, ok := a[2].(types.Int); ok && lim >= 0 && int64(lim) < parts {
			parts = int64(lim)
		}
	}
	return 16*parts + 64, int64(len(s))
}

// joinPrice is the exact size of the joined string: the elements plus a
// separator between each two. It walks the list once, allocating nothing
// beyond CEL's element views.
func joinPrice(a args, n int) (int64, int64) {
	l, ok := a[0].(traits.Lister)
	if !ok {
		return 0, 0
	}
	var sep int64
	if n == 2 {
		sep = strArg(a[1])
	}
	size, ok := l.Size().(types.Int)
	if !ok || size <= 0 {
		return 0, 0
	}
	total := mulSat(int64(size)-1, sep)
	for i := types.Int(0); i < size; i++ {
		total = addSat(total, strArg(l.Get(i)))
	}
	return total, total
}

// formatPrice bounds "fmt".format(list): the format text, each argument
// rendered (renderBound), and per clause up to 350 digits plus its
// precision (%.Nf of a large double).
func formatPrice(a args, n int) (int64, int64) {
	f, ok := a[0].(types.String)
	if !ok || n != 2 {
		return 0, 0
	}
	total := int64(len(f))
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		total = addSat(total, 350)
		if i < len(f) && f[i] == '.' {
			var prec int64
			for i++; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
				prec = addSat(mulSat(prec, 10), int64(f[i]-'0'))
			}
			total = addSat(total, prec)
		}
	}
	total = addSat(total, renderBound(a[1], 0))
	return total, total
}

// renderBound over-estimates the text of a value as format renders it
// (strings in lists are quoted and escaped, %x doubles them).
func renderBound(v ref.Val, depth int) int64 {
	if depth > maxDepth {
		return math.MaxInt64
	}
	switch x := v.(type) {
	case types.String:
		return addSat(mulSat(int64(len(x)), 10), 2)
	case types.Bytes:
		return addSat(mulSat(int64(len(x)), 4), 3)
	case traits.Lister:
		size, _ := x.Size().(types.Int)
		total := int64(2)
		for i := types.Int(0); i < size; i++ {
			total = addSat(total, addSat(renderBound(x.Get(i), depth+1), 2))
		}
		return total
	case traits.Mapper:
		total := int64(2)
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			total = addSat(total, addSat(addSat(renderBound(k, depth+1), renderBound(x.Get(k), depth+1)), 4))
		}
		return total
	case ref.Type:
		return int64(len(x.TypeName())) + 8
	}
	return 80 // numbers (66 for %b of an int64), bools, null, timestamps, durations
}
