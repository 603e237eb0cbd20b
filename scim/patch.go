package scim

import (
	"encoding/json"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// maxOperations bounds the operations of one PATCH request.
const maxOperations = 1000

// patchRequest is a PATCH body (RFC 7644 §3.5.2).
type patchRequest struct {
	Schemas    []string         `json:"schemas"`
	Operations []patchOperation `json:"Operations"`
}

type patchOperation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// parsePatch reads a PATCH body. Operation names are accepted in any case
// (Entra sends "Replace", "Add", "Remove").
func parsePatch(body []byte) ([]patchOperation, error) {
	m, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	for k := range m {
		switch strings.ToLower(k) {
		case "schemas", "operations":
		default:
			return nil, invalidSyntax("unknown member %q of a PATCH request", k)
		}
	}
	var req patchRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&req); err != nil {
		return nil, invalidSyntax("PATCH request: %s", jsonProblem(err))
	}
	ok := false
	for _, s := range req.Schemas {
		ok = ok || strings.EqualFold(s, PatchOpSchema)
	}
	if !ok {
		return nil, invalidSyntax("schemas must be [%q]", PatchOpSchema)
	}
	if len(req.Operations) == 0 {
		return nil, invalidSyntax("PATCH request has no Operations")
	}
	if len(req.Operations) > maxOperations {
		return nil, invalidValue("PATCH request has more than %d Operations", maxOperations)
	}
	for i := range req.Operations {
		op := &req.Operations[i]
		op.Op = strings.ToLower(op.Op)
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return nil, invalidSyntax("operation %d: op must be add, replace or remove, not %q", i, op.Op)
		}
	}
	return req.Operations, nil
}

// patcher applies operations to a resource's normalized map.
type patcher struct {
	rt  *resourceType
	doc map[string]any
	id  string // the resource's id: a value object may repeat it (Okta)
}

// apply applies every operation in order; the first failure refuses all
// of them (RFC 7644 §3.5.2: a PATCH is atomic).
func applyPatch(rt *resourceType, doc map[string]any, id string, ops []patchOperation) error {
	p := &patcher{rt: rt, doc: doc, id: id}
	for i, op := range ops {
		var value any
		if len(op.Value) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(op.Value)))
			dec.UseNumber()
			if err := dec.Decode(&value); err != nil {
				return invalidSyntax("operation %d: value: %s", i, jsonProblem(err))
			}
		}
		if err := p.one(op.Op, op.Path, value); err != nil {
			if e, ok := err.(*Error); ok {
				e.Detail = "operation " + itoa(i) + ": " + e.Detail
			}
			return err
		}
	}
	return nil
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func (p *patcher) one(op, path string, value any) error {
	if path == "" {
		if op == "remove" {
			return &Error{Status: 400, ScimType: ScimTypeNoTarget, Detail: "remove needs a path"}
		}
		obj, ok := value.(map[string]any)
		if !ok {
			return invalidValue("an operation without a path needs an object value")
		}
		// Each member names an attribute, or a path as Entra sends them:
		// "name.givenName", "urn:...:enterprise:2.0:User:employeeNumber".
		// An extension's object is applied member by member.
		for k, v := range obj {
			switch {
			case strings.EqualFold(k, "schemas"):
				continue
			case p.rt.extension(k) != nil:
				ext := p.rt.extension(k)
				em, ok := v.(map[string]any)
				if !ok {
					return invalidValue("%s must be an object", ext.ID)
				}
				for ek, ev := range em {
					if err := p.one(op, ext.ID+":"+ek, ev); err != nil {
						return err
					}
				}
				continue
			}
			if err := p.one(op, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	pp, err := parsePath(path)
	if err != nil {
		return err
	}
	r, err := p.rt.resolve(pp.AttributePath.URI(), pp.AttributePath.AttributeName, pp.AttributePath.SubAttributeName())
	if err != nil {
		if p.rt.isIgnored(pp.AttributePath.AttributeName) && pp.AttributePath.URI() == "" {
			return nil // an attribute realmgate does not keep
		}
		return err
	}
	if err := p.mutable(r, value); err != nil {
		return err
	}
	if r.attr.Mutability == readOnly {
		return nil // the id, repeated (Okta)
	}
	container := p.container(r.ext, op != "remove")
	if container == nil {
		return nil // removing from an extension that is not set
	}
	if pp.ValueExpression != nil {
		return p.filtered(op, r, pp, container, value)
	}
	name := r.attr.Name
	if r.sub != nil {
		return p.subAttr(op, r, container, value)
	}
	switch op {
	case "remove":
		if r.attr.MultiValued && value != nil {
			// Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}
			return p.removeValues(container, r.attr, value)
		}
		delete(container, name)
		return nil
	case "add":
		if r.attr.MultiValued {
			tmp := map[string]any{}
			if err := putValue(tmp, r.attr, value, name); err != nil {
				return err
			}
			cur := values(container[name])
			for _, nv := range values(tmp[name]) {
				if !containsValue(cur, nv) {
					cur = append(cur, nv)
				}
			}
			if len(cur) > maxOf(r.attr) {
				return invalidValue("%s: at most %d values", name, maxOf(r.attr))
			}
			if len(cur) > 0 {
				container[name] = cur
			}
			return nil
		}
		fallthrough
	default: // replace, or add of a single-valued attribute
		if r.attr.Type == typeComplex && !r.attr.MultiValued {
			tmp := map[string]any{}
			if err := putValue(tmp, r.attr, value, name); err != nil {
				return err
			}
			merged, _ := container[name].(map[string]any)
			if merged == nil {
				merged = map[string]any{}
			}
			nv, _ := tmp[name].(map[string]any)
			for k, v := range nv {
				merged[k] = v
			}
			if len(merged) > 0 {
				container[name] = merged
			}
			return nil
		}
		return putValue(container, r.attr, value, name)
	}
}

// mutable refuses a change of the id (Okta repeats it, unchanged, in a
// group's value object) or of another read-only attribute.
func (p *patcher) mutable(r resolved, value any) error {
	if r.attr.Mutability != readOnly {
		return nil
	}
	if r.attr == idAttr {
		if s, ok := value.(string); ok && s == p.id {
			return nil
		}
	}
	return &Error{Status: 400, ScimType: ScimTypeMutability, Detail: "attribute " + r.attr.Name + " is read-only"}
}

func maxOf(a *Attribute) int {
	if a.Name == "members" {
		return maxMembers
	}
	return maxMultiValues
}

// container returns the map holding the path's attribute: the document, or
// the extension's object (created when create is set).
func (p *patcher) container(ext *Schema, create bool) map[string]any {
	if ext == nil {
		return p.doc
	}
	m, _ := p.doc[ext.ID].(map[string]any)
	if m == nil && create {
		m = map[string]any{}
		p.doc[ext.ID] = m
	}
	return m
}

// subAttr handles "name.givenName" and "emails.type".
func (p *patcher) subAttr(op string, r resolved, container map[string]any, value any) error {
	name := r.attr.Name
	if r.attr.MultiValued {
		// Applies to every value (RFC 7644 §3.5.2.3).
		for _, el := range values(container[name]) {
			m, _ := el.(map[string]any)
			if m == nil {
				continue
			}
			if err := setSub(op, r.sub, m, value); err != nil {
				return err
			}
		}
		return nil
	}
	m, _ := container[name].(map[string]any)
	if m == nil {
		if op == "remove" {
			return nil
		}
		m = map[string]any{}
	}
	if err := setSub(op, r.sub, m, value); err != nil {
		return err
	}
	if len(m) == 0 {
		delete(container, name)
	} else {
		container[name] = m
	}
	return nil
}

func setSub(op string, s *Attribute, m map[string]any, value any) error {
	if op == "remove" || value == nil {
		delete(m, s.Name)
		return nil
	}
	v, err := scalar(s, value, s.Name)
	if err != nil {
		return err
	}
	if v == nil {
		delete(m, s.Name)
	} else {
		m[s.Name] = v
	}
	return nil
}

// filtered handles `members[value eq "x"]` and `emails[type eq "work"].value`.
func (p *patcher) filtered(op string, r resolved, pp filter.Path, container map[string]any, value any) error {
	if !r.attr.MultiValued || r.attr.Type != typeComplex {
		return invalidPath("%s is not a multi-valued complex attribute", r.attr.Name)
	}
	f := &Filter{rt: p.rt, expr: pp.ValueExpression}
	if err := f.check(pp.ValueExpression, r.attr); err != nil {
		return invalidPath("%s", err.Error())
	}
	var sub *Attribute
	if pp.SubAttribute != nil {
		if sub = r.attr.sub(*pp.SubAttribute); sub == nil {
			return invalidPath("unknown sub-attribute %q of %s", *pp.SubAttribute, r.attr.Name)
		}
	}
	name := r.attr.Name
	cur := values(container[name])
	out := make([]any, 0, len(cur))
	matched := false
	for _, el := range cur {
		m, _ := el.(map[string]any)
		if m == nil || !f.eval(pp.ValueExpression, m, r.attr) {
			out = append(out, el)
			continue
		}
		matched = true
		switch {
		case op == "remove" && sub == nil:
			continue // drop the value
		case sub != nil:
			if err := setSub(op, sub, m, value); err != nil {
				return err
			}
		default: // replace or add of whole matching values: merge the object
			obj, ok := value.(map[string]any)
			if !ok {
				return invalidValue("%s[...] needs an object value", name)
			}
			nv, err := single(r.attr, obj)
			if err != nil {
				return err
			}
			if nm, ok := nv.(map[string]any); ok {
				for k, v := range nm {
					m[k] = v
				}
			}
		}
		if len(m) > 0 {
			out = append(out, m)
		}
	}
	if !matched && op != "remove" {
		// `emails[type eq "work"].value` on a user with no work email:
		// add one, made of the filter's equalities and the value (what
		// Entra means).
		m, ok := equalities(pp.ValueExpression, r.attr)
		if !ok {
			return &Error{Status: 400, ScimType: ScimTypeNoTarget, Detail: "no value of " + name + " matches the path's filter"}
		}
		if sub != nil {
			if err := setSub(op, sub, m, value); err != nil {
				return err
			}
		} else if obj, isObj := value.(map[string]any); isObj {
			for k, v := range obj {
				m[k] = v
			}
		}
		nv, err := single(r.attr, m)
		if err != nil {
			return err
		}
		if nv != nil {
			out = append(out, nv)
		}
	}
	if len(out) > maxOf(r.attr) {
		return invalidValue("%s: at most %d values", name, maxOf(r.attr))
	}
	if len(out) == 0 {
		delete(container, name)
	} else {
		container[name] = out
	}
	return nil
}

// equalities returns the sub-attribute values a filter made only of
// `sub eq "v"` joined by and pins down.
func equalities(e filter.Expression, parent *Attribute) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(e filter.Expression) bool
	walk = func(e filter.Expression) bool {
		switch x := e.(type) {
		case *filter.LogicalExpression:
			return x.Operator == filter.AND && walk(x.Left) && walk(x.Right)
		case *filter.AttributeExpression:
			s := parent.sub(x.AttributePath.AttributeName)
			if x.Operator != filter.EQ || s == nil {
				return false
			}
			v := x.CompareValue
			if str, ok := v.(string); ok {
				v = unescape(str)
			}
			out[s.Name] = v
			return true
		}
		return false
	}
	return out, walk(e)
}

// removeValues removes the listed values (compared by their "value").
func (p *patcher) removeValues(container map[string]any, a *Attribute, value any) error {
	drop := map[string]bool{}
	for _, v := range values(value) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["value"].(string); ok {
				drop[s] = true
			}
		case string:
			drop[x] = true
		}
	}
	cur := values(container[a.Name])
	out := make([]any, 0, len(cur))
	for _, el := range cur {
		if m, ok := el.(map[string]any); ok {
			if s, ok := m["value"].(string); ok && drop[s] {
				continue
			}
		}
		out = append(out, el)
	}
	if len(out) == 0 {
		delete(container, a.Name)
	} else {
		container[a.Name] = out
	}
	return nil
}

// containsValue reports whether list holds a value equal to v (for
// complex values: the same "value" and "type").
func containsValue(list []any, v any) bool {
	nm, isMap := v.(map[string]any)
	for _, e := range list {
		if !isMap {
			if e == v {
				return true
			}
			continue
		}
		em, ok := e.(map[string]any)
		if ok && em["value"] == nm["value"] && em["type"] == nm["type"] {
			return true
		}
	}
	return false
}

// parsePath parses a PATCH path (RFC 7644 §3.5.2, the PATH rule of
// Figure 1) within the filter limits.
func parsePath(s string) (p filter.Path, err error) {
	if len(s) > maxFilterLen {
		return p, invalidPath("path is longer than %d bytes", maxFilterLen)
	}
	if d, ok := nesting(s); !ok || d > 1 {
		return p, invalidPath("path %q is not valid", clip(s, 100))
	}
	defer func() {
		if r := recover(); r != nil {
			err = invalidPath("path could not be parsed")
		}
	}()
	p, perr := filter.ParsePathNumber([]byte(s))
	if perr != nil {
		return p, invalidPath("path %q is not valid (RFC 7644 §3.5.2)", clip(s, 100))
	}
	return p, nil
}
