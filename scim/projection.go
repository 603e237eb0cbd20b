package scim

import (
	"log/slog"
	"net/http"
	"strings"
)

type slogAttr = slog.Attr

func slogString(k, v string) slog.Attr { return slog.String(k, v) }

// projection is the attributes / excludedAttributes of a request (RFC 7644
// §3.4.2.5, §3.9), resolved to canonical names: "name" or "name.sub"
// (an extension's attributes prefixed by its URI).
type projection struct {
	only    map[string][]string // attribute -> sub-attributes (empty: all of it)
	exclude map[string][]string
}

func parseProjection(rt *resourceType, r *http.Request) (projection, error) {
	var p projection
	var err error
	qs := r.URL.Query()
	if s := qs.Get("attributes"); s != "" {
		if p.only, err = attrList(rt, s); err != nil {
			return p, err
		}
	}
	if s := qs.Get("excludedAttributes"); s != "" {
		if p.exclude, err = attrList(rt, s); err != nil {
			return p, err
		}
	}
	return p, nil
}

func attrList(rt *resourceType, s string) (map[string][]string, error) {
	if len(s) > maxFilterLen {
		return nil, invalidValue("attribute list is longer than %d bytes", maxFilterLen)
	}
	out := map[string][]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		uri, rest := "", item
		if strings.HasPrefix(strings.ToLower(item), "urn:") {
			uri, rest = splitURN(item)
		}
		name, sub, _ := strings.Cut(rest, ".")
		r, err := rt.resolve(uri, name, sub)
		if err != nil {
			if rt.isIgnored(name) {
				continue
			}
			return nil, invalidValue("attributes: %s", err.Error())
		}
		key := r.attr.Name
		if r.ext != nil {
			key = r.ext.ID + ":" + key
		}
		if r.sub != nil {
			out[key] = append(out[key], r.sub.Name)
		} else {
			out[key] = []string{}
		}
	}
	return out, nil
}

// apply keeps or drops attributes of a rendered resource; id and schemas
// are always returned (RFC 7643 §7 "returned": "always").
func (p projection) apply(m map[string]any) map[string]any {
	if p.only != nil {
		out := map[string]any{"schemas": m["schemas"], "id": m["id"]}
		for k, subs := range p.only {
			v, ext, name := pick(m, k)
			if v == nil {
				continue
			}
			if len(subs) > 0 {
				v = keepSubs(v, subs)
			}
			if ext != "" {
				em, _ := out[ext].(map[string]any)
				if em == nil {
					em = map[string]any{}
					out[ext] = em
				}
				em[name] = v
			} else {
				out[name] = v
			}
		}
		m = out
	}
	for k, subs := range p.exclude {
		if k == "id" {
			continue
		}
		_, ext, name := pick(m, k)
		container := m
		if ext != "" {
			container, _ = m[ext].(map[string]any)
		}
		if container == nil {
			continue
		}
		if len(subs) == 0 {
			delete(container, name)
			continue
		}
		container[name] = dropSubs(container[name], subs)
	}
	return m
}

func pick(m map[string]any, key string) (v any, ext, name string) {
	if strings.HasPrefix(key, "urn:") {
		ext, name = splitURN(key)
		em, _ := m[ext].(map[string]any)
		return em[name], ext, name
	}
	return m[key], "", key
}

func keepSubs(v any, subs []string) any {
	keep := func(x any) any {
		mm, ok := x.(map[string]any)
		if !ok {
			return x
		}
		out := map[string]any{}
		for _, s := range subs {
			if sv, ok := mm[s]; ok {
				out[s] = sv
			}
		}
		return out
	}
	if list, ok := v.([]any); ok {
		out := make([]any, len(list))
		for i, e := range list {
			out[i] = keep(e)
		}
		return out
	}
	return keep(v)
}

func dropSubs(v any, subs []string) any {
	drop := func(x any) {
		if mm, ok := x.(map[string]any); ok {
			for _, s := range subs {
				delete(mm, s)
			}
		}
	}
	if list, ok := v.([]any); ok {
		for _, e := range list {
			drop(e)
		}
		return list
	}
	drop(v)
	return v
}
