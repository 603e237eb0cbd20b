package transform

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/cel-go/cel"
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
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					re, errv := dynamicRegex(args[1])
					if errv != nil {
						return errv
					}
					return regexReplace(re, args[0], args[2])
				}))),
		cel.Function("regexExtract",
			cel.Overload("rg_regexextract_string_string", []*cel.Type{str, str}, str,
				cel.BinaryBinding(func(s, p ref.Val) ref.Val {
					re, errv := dynamicRegex(p)
					if errv != nil {
						return errv
					}
					return regexExtract(re, s)
				}))),
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

func regexReplace(re *regexp.Regexp, s, repl ref.Val) ref.Val {
	ss, ok1 := s.(types.String)
	rs, ok2 := repl.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return types.String(re.ReplaceAllString(string(ss), string(rs)))
}

// regexExtract returns the first capture group of the first match, the
// whole match when the pattern has no group, or "" when nothing matches.
func regexExtract(re *regexp.Regexp, s ref.Val) ref.Val {
	ss, ok := s.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(s)
	}
	m := re.FindStringSubmatch(string(ss))
	switch {
	case m == nil:
		return types.String("")
	case len(m) > 1:
		return types.String(m[1])
	default:
		return types.String(m[0])
	}
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
// invalid pattern is a compile error); dynamic patterns go through a
// bounded cache.
var (
	regexReplaceOptimization = regexOptimization("regexReplace", func(re *regexp.Regexp, v []ref.Val) ref.Val {
		if len(v) != 3 {
			return types.NoSuchOverloadErr()
		}
		return regexReplace(re, v[0], v[2])
	})
	regexExtractOptimization = regexOptimization("regexExtract", func(re *regexp.Regexp, v []ref.Val) ref.Val {
		if len(v) != 2 {
			return types.NoSuchOverloadErr()
		}
		return regexExtract(re, v[0])
	})
)

func regexOptimization(fn string, impl func(*regexp.Regexp, []ref.Val) ref.Val) *interpreter.RegexOptimization {
	return &interpreter.RegexOptimization{
		Function:   fn,
		RegexIndex: 1,
		Factory: func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("%s: invalid pattern: %w", fn, err)
			}
			return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(),
				func(values ...ref.Val) ref.Val { return impl(re, values) }), nil
		},
	}
}

const regexCacheMax = 1024

var (
	regexCache     sync.Map // pattern -> *regexp.Regexp
	regexCacheSize atomic.Int64
)

func dynamicRegex(p ref.Val) (*regexp.Regexp, ref.Val) {
	ps, ok := p.(types.String)
	if !ok {
		return nil, types.MaybeNoSuchOverloadErr(p)
	}
	if re, ok := regexCache.Load(string(ps)); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(string(ps))
	if err != nil {
		return nil, types.NewErr("invalid regex: %v", err)
	}
	if regexCacheSize.Load() < regexCacheMax {
		if _, loaded := regexCache.LoadOrStore(string(ps), re); !loaded {
			regexCacheSize.Add(1)
		}
	}
	return re, nil
}
