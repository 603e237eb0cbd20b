package transform

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/functions"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// celEnv is the one CEL environment every rule compiles in: the input
// schema, CEL's standard library with the strings, sets, lists and optional
// extensions, and realmgate's functions. It is built once.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	str := cel.StringType
	dyn := cel.DynType
	return cel.NewEnv(
		cel.Variable("upstream", cel.MapType(str, dyn)),
		cel.Variable("claims", cel.MapType(str, dyn)),
		cel.Variable("tenant", str),
		cel.Variable("idp", str),
		cel.Variable("client", str),
		cel.Variable("user", cel.MapType(str, dyn)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxExprBytes),
		cel.ParserRecursionLimit(64),
		ext.Strings(),
		cel.Function("lower",
			cel.Overload("rg_lower_string", []*cel.Type{str}, str, cel.UnaryBinding(strFunc(strings.ToLower)))),
		cel.Function("upper",
			cel.Overload("rg_upper_string", []*cel.Type{str}, str, cel.UnaryBinding(strFunc(strings.ToUpper)))),
		cel.Function("mailPrefix",
			cel.Overload("rg_mailprefix_string", []*cel.Type{str}, str, cel.UnaryBinding(strFunc(mailPrefix)))),
		cel.Function("emailDomain",
			cel.Overload("rg_emaildomain_string", []*cel.Type{str}, str, cel.UnaryBinding(strFunc(emailDomain)))),
		cel.Function("regexReplace",
			cel.Overload("rg_regexreplace_string_string_string", []*cel.Type{str, str, str}, str,
				cel.FunctionBinding(unbudgeted(regexReplaceImpl(nil))))),
		cel.Function("regexExtract",
			cel.Overload("rg_regexextract_string_string", []*cel.Type{str, str}, str,
				cel.FunctionBinding(unbudgeted(regexExtractImpl(nil))))),
		cel.Function("split",
			cel.Overload("rg_split_string_string", []*cel.Type{str, str}, cel.ListType(str),
				cel.BinaryBinding(splitFunc))),
		cel.Function("join",
			cel.Overload("rg_join_list_string", []*cel.Type{cel.ListType(dyn), str}, str,
				cel.BinaryBinding(joinFunc))),
		cel.Function("get",
			// The map is declared dyn: a map(string, dyn) parameter makes
			// cel-go inspect the map's entries on every call.
			cel.Overload("rg_get_dyn_string_dyn", []*cel.Type{dyn, str, dyn}, dyn,
				cel.FunctionBinding(getFunc))),
	)
})

// guard is the decorator every program is planned with: it bounds the
// calls that allocate or scan in proportion to their arguments, wrapping
// the environment's own bindings (SECURITY S71).
var guard = sync.OnceValue(func() interpreter.InterpretableDecorator {
	bindings := map[string]*functions.Overload{}
	if env, err := celEnv(); err == nil {
		for name, fd := range env.Functions() {
			if _, ok := pricers[name]; !ok {
				continue
			}
			bs, err := fd.Bindings()
			if err != nil {
				continue
			}
			for _, o := range bs {
				bindings[o.Operator] = o
			}
		}
	}
	return guardDecorator(bindings)
})

// customCostTrackers price realmgate's functions for CEL's runtime cost
// tracker (when an expression is tracked) like CEL prices its string
// functions: one per call plus a tenth per byte read or produced.
func customCostTrackers() []interpreter.CostTrackerOption {
	ids := []string{"rg_lower_string", "rg_upper_string", "rg_mailprefix_string", "rg_emaildomain_string",
		"rg_regexreplace_string_string_string", "rg_regexextract_string_string", "rg_split_string_string",
		"rg_join_list_string"}
	opts := make([]interpreter.CostTrackerOption, len(ids))
	for i, id := range ids {
		opts[i] = interpreter.OverloadCostTracker(id, func(args []ref.Val, result ref.Val) *uint64 {
			var n int64
			for _, a := range args {
				n += strArg(a)
			}
			switch r := result.(type) {
			case types.String:
				n += int64(len(r))
			case traits.Sizer:
				if sz, ok := r.Size().(types.Int); ok {
					n += 16 * int64(sz)
				}
			}
			c := 1 + uint64(n)/10
			return &c
		})
	}
	return opts
}

func strFunc(f func(string) string) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		return types.String(f(string(s)))
	}
}

// mailPrefix returns the local part of an email address (Entra
// ExtractMailPrefix): everything before the last "@", or s when it has none.
func mailPrefix(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

// emailDomain returns the lower-cased domain of an email address, or "".
func emailDomain(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return strings.ToLower(s[i+1:])
	}
	return ""
}

func splitFunc(s, sep ref.Val) ref.Val {
	ss, ok1 := s.(types.String)
	sp, ok2 := sep.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	if ss == "" {
		return types.NewStringList(types.DefaultTypeAdapter, nil)
	}
	return types.NewStringList(types.DefaultTypeAdapter, strings.Split(string(ss), string(sp)))
}

func joinFunc(l, sep ref.Val) ref.Val {
	list, ok1 := l.(traits.Lister)
	sp, ok2 := sep.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	var b strings.Builder
	i := 0
	for it := list.Iterator(); it.HasNext() == types.True; i++ {
		e := it.Next()
		s, ok := e.(types.String)
		if !ok {
			return types.NewErr("join: element %d is %s, not string", i, e.Type().TypeName())
		}
		if i > 0 {
			b.WriteString(string(sp))
		}
		b.WriteString(string(s))
	}
	return types.String(b.String())
}

// getFunc is get(map, key, default): the value at key, or default when the
// key is absent or its value is null. It never errors on a missing key.
func getFunc(args ...ref.Val) ref.Val {
	m, ok := args[0].(traits.Mapper)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[0])
	}
	v, found := m.Find(args[1])
	if !found || v == nil || v == types.NullValue {
		return args[2]
	}
	return v
}

// Regexes with a constant pattern are compiled when the rule compiles (an
// invalid or oversized pattern is a compile error); dynamic patterns go
// through a bounded cache.
var (
	regexReplaceOptimization = regexOptimization("regexReplace", regexReplaceImpl)
	regexExtractOptimization = regexOptimization("regexExtract", regexExtractImpl)
)

func regexOptimization(fn string, impl func(*compiledRegex) callImpl) *interpreter.RegexOptimization {
	return &interpreter.RegexOptimization{
		Function:   fn,
		RegexIndex: 1,
		Factory: func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
			cr, err := compileRegex(pattern)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid pattern: %w", fn, err)
			}
			return &guardedCall{id: call.ID(), function: call.Function(), overload: call.OverloadID(),
				argv: call.Args(), impl: impl(cr)}, nil
		},
	}
}

// compiledRegex is a compiled pattern and its instruction count.
type compiledRegex struct {
	re    *regexp.Regexp
	insts int64
}

// parseRegex parses a pattern and counts the instructions it compiles to,
// repetitions expanded, refusing one over maxRegexInsts before compiling.
func parseRegex(pattern string) (int64, error) {
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	if n := progSize(parsed); n > maxRegexInsts {
		return 0, fmt.Errorf("pattern expands to %s instructions, over the limit of %d: %w",
			strings.TrimSuffix(sizeText(n), " bytes"), maxRegexInsts, ErrLimit)
	}
	return progSize(parsed), nil
}

func compileRegex(pattern string) (*compiledRegex, error) {
	n, err := parseRegex(pattern)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &compiledRegex{re: re, insts: n}, nil
}

// progSize over-estimates the number of instructions of a parsed pattern,
// with x{n,m} counted m times (RE2 compiles repetitions by copying).
func progSize(re *syntax.Regexp) int64 {
	switch re.Op {
	case syntax.OpRepeat:
		count := int64(re.Max)
		if re.Max < 0 {
			count = int64(re.Min) + 1
		}
		return addSat(2, mulSat(max(count, 1), progSize(re.Sub[0])))
	case syntax.OpLiteral:
		return int64(len(re.Rune)) + 1
	}
	n := int64(2)
	for _, sub := range re.Sub {
		n = addSat(n, progSize(sub))
	}
	return n
}

// regexWork is the work of a scan: input length times the program size.
func regexWork(l, insts int64) int64 {
	return mulSat(l+1, 1+insts/16)
}

// regexReplaceImpl is regexReplace(s, re, repl) with a constant (cr) or
// computed pattern.
func regexReplaceImpl(cr *compiledRegex) callImpl {
	return func(b *budget, a args, n int) ref.Val {
		s, ok1 := a[0].(types.String)
		r, ok2 := a[2].(types.String)
		if n != 3 || !ok1 || !ok2 {
			return types.NoSuchOverloadErr()
		}
		re := cr
		if re == nil {
			var errv ref.Val
			if re, errv = dynamicRegex(b, a[1]); errv != nil {
				return errv
			}
		}
		return regexReplace(b, re, string(s), string(r))
	}
}

// regexReplace charges the size of the result before building it. Each
// match becomes the replacement with every $ reference expanded to at most
// the match, so the result is at most len(s) + matches*len(repl) +
// dollars*matched. When the quick bound (every byte a match) does not fit
// in the budget, a counting scan finds matches and matched first.
func regexReplace(b *budget, cr *compiledRegex, s, r string) ref.Val {
	ls, lr := int64(len(s)), int64(len(r))
	dollars := int64(strings.Count(r, "$"))
	work := regexWork(ls, cr.insts)
	if errv := b.charge("regexReplace", 0, work); errv != nil {
		return errv
	}
	bound := addSat(addSat(ls, mulSat(ls+1, lr)), mulSat(dollars, ls))
	if bound > b.mem {
		// The scan's own result is at most s.
		if errv := b.charge("regexReplace", ls, work); errv != nil {
			return errv
		}
		var matches, matched int64
		cr.re.ReplaceAllStringFunc(s, func(m string) string {
			matches++
			matched += int64(len(m))
			return ""
		})
		bound = addSat(addSat(ls-matched, mulSat(matches, lr)), mulSat(dollars, matched))
	}
	if errv := b.charge("regexReplace", bound, 0); errv != nil {
		return errv
	}
	out := cr.re.ReplaceAllString(s, r)
	b.refund(bound - int64(len(out)))
	return types.String(out)
}

// regexExtractImpl is regexExtract(s, re): the first capture group of the
// first match, the whole match when the pattern has no group, or "" when
// nothing matches.
func regexExtractImpl(cr *compiledRegex) callImpl {
	return func(b *budget, a args, n int) ref.Val {
		s, ok := a[0].(types.String)
		if n != 2 || !ok {
			return types.MaybeNoSuchOverloadErr(a[0])
		}
		re := cr
		if re == nil {
			var errv ref.Val
			if re, errv = dynamicRegex(b, a[1]); errv != nil {
				return errv
			}
		}
		groups := int64(re.re.NumSubexp()) + 1
		if errv := b.charge("regexExtract", 32*groups, regexWork(int64(len(s)), re.insts)); errv != nil {
			return errv
		}
		m := re.re.FindStringSubmatch(string(s))
		switch {
		case m == nil:
			return types.String("")
		case len(m) > 1:
			return types.String(m[1])
		default:
			return types.String(m[0])
		}
	}
}

// matchesImpl is CEL's matches with a computed pattern, through the
// bounded cache (constant patterns are compiled with the rule).
func matchesImpl(b *budget, a args, n int) ref.Val {
	s, ok := a[0].(types.String)
	if n != 2 || !ok {
		return types.MaybeNoSuchOverloadErr(a[0])
	}
	re, errv := dynamicRegex(b, a[1])
	if errv != nil {
		return errv
	}
	if errv := b.charge("matches", 0, regexWork(int64(len(s)), re.insts)); errv != nil {
		return errv
	}
	return types.Bool(re.re.MatchString(string(s)))
}

// unbudgeted runs a guarded implementation with a budget of its own: the
// binding CEL falls back to if a call escaped the guard decorator.
func unbudgeted(impl callImpl) func(...ref.Val) ref.Val {
	return func(vals ...ref.Val) ref.Val {
		var a args
		if len(vals) > len(a) {
			return types.NoSuchOverloadErr()
		}
		copy(a[:], vals)
		b := newBudget(DefaultMaxEvalBytes)
		return impl(&b, a, len(vals))
	}
}

const (
	regexCacheMax      = 1024
	regexCacheMaxBytes = 8 << 20
	regexInstBytes     = 256 // about what one compiled instruction costs
)

var (
	regexCache      sync.Map // pattern -> *compiledRegex
	regexCacheSize  atomic.Int64
	regexCacheBytes atomic.Int64
)

// dynamicRegex compiles a computed pattern, charging the compilation to
// the budget; the cache keeps at most regexCacheMax patterns and
// regexCacheMaxBytes of compiled programs, across all tenants.
func dynamicRegex(b *budget, p ref.Val) (*compiledRegex, ref.Val) {
	ps, ok := p.(types.String)
	if !ok {
		return nil, types.MaybeNoSuchOverloadErr(p)
	}
	if cr, ok := regexCache.Load(string(ps)); ok {
		return cr.(*compiledRegex), nil
	}
	if len(ps) > maxDynamicPatternBytes {
		return nil, types.WrapErr(fmt.Errorf("computed pattern of %d bytes, over the %d-byte limit: %w",
			len(ps), maxDynamicPatternBytes, ErrLimit))
	}
	l := int64(len(ps))
	if errv := b.charge("regex", 64*l, l); errv != nil { // the parse tree
		return nil, errv
	}
	insts, err := parseRegex(string(ps))
	if err != nil {
		if errors.Is(err, ErrLimit) {
			return nil, types.WrapErr(err)
		}
		return nil, types.NewErr("invalid regex: %v", err)
	}
	size := regexInstBytes*insts + l
	if errv := b.charge("regex", size, size); errv != nil {
		return nil, errv
	}
	re, err := regexp.Compile(string(ps))
	if err != nil {
		return nil, types.NewErr("invalid regex: %v", err)
	}
	cr := &compiledRegex{re: re, insts: insts}
	if regexCacheSize.Load() < regexCacheMax && regexCacheBytes.Load()+size <= regexCacheMaxBytes {
		if _, loaded := regexCache.LoadOrStore(string(ps), cr); !loaded {
			regexCacheSize.Add(1)
			regexCacheBytes.Add(size)
		}
	}
	return cr, nil
}
