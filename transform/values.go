package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// maxDepth bounds the nesting of claim values, in and out.
const maxDepth = 32

var errTooDeep = errors.New("value nested too deeply")

// normalizeMap deep-copies m into the value forms rules see and produce:
// string, bool, int64, uint64, float64, time.Time, nil, []any and map[string]any.
//
// Values already in those forms are shared, not copied: the engine never
// modifies a value in place.
func normalizeMap(m map[string]any, depth int) (map[string]any, error) {
	return normalizeMapCap(m, depth, 4)
}

// normalizeMapCap is normalizeMap leaving room for extra more entries.
func normalizeMapCap(m map[string]any, depth, extra int) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m)+extra)
	for k, v := range m {
		nv, err := normalize(v, depth+1)
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", k, err)
		}
		out[k] = nv
	}
	return out, nil
}

// canonical reports whether v is already in normalized form.
func canonical(v any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, float64, time.Time:
		return true
	case []any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, float64, time.Time:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint8:
		return uint64(x), nil
	case float32:
		return float64(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if f, err := x.Float64(); err == nil {
			return f, nil
		}
		return string(x), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []any:
		if canonical(x, depth) {
			return x, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			ne, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case map[string]any:
		if canonical(x, depth) {
			return x, nil
		}
		return normalizeMap(x, depth)
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			ne, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("unsupported map key type %s", rv.Type().Key())
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			ne, err := normalize(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[it.Key().String()] = ne
		}
		return out, nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), depth+1)
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

// upstreamView normalizes the upstream claims and adds the short alias of
// every well-known SAML attribute URI present (see Alias), unless a claim
// of that name already exists. When the input needs neither, it is used as
// it is (rules never modify it).
func upstreamView(up map[string]any) (map[string]any, error) {
	if up == nil {
		return map[string]any{}, nil
	}
	needCopy := false
	for k, v := range up {
		if !canonical(v, 1) {
			needCopy = true
			break
		}
		if _, ok := aliasOf(k); ok {
			needCopy = true
			break
		}
	}
	if !needCopy {
		return up, nil
	}
	out, err := normalizeMap(up, 0)
	if err != nil {
		return nil, err
	}
	var done [8]aliasEntry // the aliases written so far, with the priority that won
	aliases := done[:0]
	for k := range up {
		ae, ok := aliasOf(k)
		if !ok {
			continue
		}
		if _, orig := up[ae.alias]; orig {
			continue
		}
		i := 0
		for i < len(aliases) && aliases[i].alias != ae.alias {
			i++
		}
		if i == len(aliases) {
			aliases = append(aliases, ae)
		} else if ae.prio < aliases[i].prio {
			aliases[i].prio = ae.prio
		} else {
			continue
		}
		out[ae.alias] = out[k]
	}
	return out, nil
}

// toNative converts a CEL value into a claim value, charging the lists and
// maps it builds to the budget first.
func toNative(b *budget, v ref.Val, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("result %v is not a JSON number", f)
		}
		return f, nil
	case types.Null:
		return nil, nil
	case types.Timestamp:
		return x.Time, nil
	case types.Duration:
		return x.Duration.String(), nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return toNative(b, x.GetValue(), depth+1)
	}
	if types.IsUnknownOrError(v) {
		return nil, fmt.Errorf("%v", v)
	}
	if l, ok := v.(traits.Lister); ok {
		n, ok := l.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("list without size")
		}
		if b.charge("list", 16*int64(n), int64(n)) != nil {
			return nil, b.over
		}
		out := make([]any, 0, int(n))
		it := l.Iterator()
		for it.HasNext() == types.True {
			e, err := toNative(b, it.Next(), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		n, ok := m.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("map without size")
		}
		if b.charge("map", 64*int64(n), int64(n)) != nil {
			return nil, b.over
		}
		out := make(map[string]any, int(n))
		it := m.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is %s, want string", k, k.Type().TypeName())
			}
			e, err := toNative(b, m.Get(k), depth+1)
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("result of type %s cannot be a claim value", v.Type().TypeName())
}

// jsonSize estimates the JSON encoding size of a claim value, quickly and
// without allocating. It over- rather than under-estimates escapes.
func jsonSize(v any, depth int) int {
	if depth > maxDepth+2 {
		return 0
	}
	switch x := v.(type) {
	case nil:
		return 4
	case string:
		return strSize(x)
	case bool:
		return 5
	case int64:
		return len(strconv.FormatInt(x, 10))
	case uint64:
		return len(strconv.FormatUint(x, 10))
	case float64:
		return 24
	case time.Time:
		return 40
	case []any:
		n := 2
		for _, e := range x {
			n += jsonSize(e, depth+1) + 1
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			n += strSize(k) + 2 + jsonSize(e, depth+1)
		}
		return n
	}
	return 64
}

// jsonEscaped marks the ASCII bytes encoding/json escapes (control
// characters, quote, backslash and the HTML-sensitive <, >, &).
var jsonEscaped = func() (t [128]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = true
	}
	return t
}()

// strSize over-estimates the JSON size of s: 5 extra bytes per escaped byte,
// and six bytes per byte when it is not valid UTF-8 (each invalid byte is
// written as \ufffd). One pass for ASCII
// text (the common case); UTF-8 is validated only when a byte is >= 0x80.
func strSize(s string) int {
	n := 2 + len(s)
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
		} else if jsonEscaped[c] {
			n += 5
		}
	}
	if !ascii && !utf8.ValidString(s) {
		return 2 + 6*len(s)
	}
	return n
}
