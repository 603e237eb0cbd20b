package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// User is a SCIM User (RFC 7643 §4.1) with the enterprise extension
// (§4.3), as far as realmgate keeps it. The JSON names are the schema's.
type User struct {
	// ID is the directory's identifier of the user; set by the directory.
	ID string `json:"id,omitempty"`
	// ExternalID is the provisioning client's identifier (Entra's objectId, Okta's user id).
	ExternalID string `json:"externalId,omitempty"`
	// UserName is unique in the tenant, compared without regard to case.
	UserName string `json:"userName"`
	// Name holds the parts of the user's name.
	Name *Name `json:"name,omitempty"`
	// DisplayName and the other strings are RFC 7643 §4.1.1's.
	DisplayName       string `json:"displayName,omitempty"`
	NickName          string `json:"nickName,omitempty"`
	ProfileURL        string `json:"profileUrl,omitempty"`
	Title             string `json:"title,omitempty"`
	UserType          string `json:"userType,omitempty"`
	PreferredLanguage string `json:"preferredLanguage,omitempty"`
	Locale            string `json:"locale,omitempty"`
	Timezone          string `json:"timezone,omitempty"`
	// Active false deprovisions the user: every session and refresh token ends.
	Active bool `json:"active"`
	// Emails and PhoneNumbers are multi-valued (RFC 7643 §2.4).
	Emails       []Value `json:"emails,omitempty"`
	PhoneNumbers []Value `json:"phoneNumbers,omitempty"`
	// Groups is read-only: the groups whose members include the user, set by the directory.
	Groups []Ref `json:"groups,omitempty"`
	// Enterprise is the enterprise extension, nil when none of it is set.
	Enterprise *Enterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	// Meta is set by the directory.
	Meta Meta `json:"-"`
}

// Name is a user's name (RFC 7643 §4.1.1).
type Name struct {
	Formatted       string `json:"formatted,omitempty"`
	FamilyName      string `json:"familyName,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

// Value is one value of a multi-valued attribute such as emails (RFC 7643 §2.4).
type Value struct {
	Value   string `json:"value,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Enterprise is the enterprise User extension (RFC 7643 §4.3).
type Enterprise struct {
	EmployeeNumber string   `json:"employeeNumber,omitempty"`
	CostCenter     string   `json:"costCenter,omitempty"`
	Organization   string   `json:"organization,omitempty"`
	Division       string   `json:"division,omitempty"`
	Department     string   `json:"department,omitempty"`
	Manager        *Manager `json:"manager,omitempty"`
}

// Manager is the enterprise extension's manager (RFC 7643 §4.3).
type Manager struct {
	Value       string `json:"value,omitempty"`
	Ref         string `json:"$ref,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// Ref is a reference to another resource: a group's member, a user's group.
type Ref struct {
	Value   string `json:"value"`
	Ref     string `json:"$ref,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
}

// Group is a SCIM Group (RFC 7643 §4.2).
type Group struct {
	// ID is the directory's identifier of the group; set by the directory.
	ID string `json:"id,omitempty"`
	// ExternalID is the provisioning client's identifier.
	ExternalID string `json:"externalId,omitempty"`
	// DisplayName is unique in the tenant; rules see it in user.groups.
	DisplayName string `json:"displayName"`
	// Members are users (type User) of the tenant.
	Members []Ref `json:"members,omitempty"`
	// Meta is set by the directory.
	Meta Meta `json:"-"`
}

// Meta is a resource's metadata kept by the directory (RFC 7643 §3.1).
type Meta struct {
	Created      time.Time
	LastModified time.Time
	// Version changes with every change of the resource; it is the ETag.
	Version string
}

// Limits on what one request may carry (S72-like: nothing unbounded).
const (
	maxStringLen   = 1024 // runes in one attribute value
	maxMultiValues = 20   // values of emails, phoneNumbers
	maxMembers     = 10000
)

// normalize checks a resource sent by a client against rt's schemas and
// returns it with canonical attribute names and types: read-only and
// ignored attributes dropped, "True"/"False" strings turned into booleans
// (Entra sends them), a single value of a multi-valued attribute wrapped.
// Unknown attributes and schemas are refused (invalidSyntax).
func normalize(rt *resourceType, in map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(in))
	for k, v := range in {
		switch {
		case strings.EqualFold(k, "schemas"):
			if err := checkSchemas(rt, v); err != nil {
				return nil, err
			}
			continue
		case rt.extension(k) != nil:
			ext := rt.extension(k)
			if v == nil {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, invalidSyntax("%s must be an object", ext.ID)
			}
			em := make(map[string]any, len(m))
			for ek, ev := range m {
				a := findAttr(ext.Attributes, ek)
				if a == nil {
					return nil, invalidSyntax("unknown attribute %q of %s", ek, ext.ID)
				}
				if err := putValue(em, a, ev, a.Name); err != nil {
					return nil, err
				}
			}
			if len(em) > 0 {
				out[ext.ID] = em
			}
			continue
		case strings.HasPrefix(strings.ToLower(k), "urn:"):
			// An attribute named by its full URN, or an unknown extension.
			uri, name := splitURN(k)
			r, err := rt.resolve(uri, name, "")
			if err != nil || r.ext != nil {
				return nil, invalidSyntax("unknown attribute or schema %q", k)
			}
			if err := putValue(out, r.attr, v, r.attr.Name); err != nil {
				return nil, err
			}
			continue
		}
		if rt.isIgnored(k) {
			continue
		}
		a := rt.attr(k)
		if a == nil {
			return nil, invalidSyntax("unknown attribute %q", k)
		}
		if err := putValue(out, a, v, a.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkSchemas accepts a schemas list naming rt's core schema; other URIs
// are allowed when they name one of its extensions, and ignored otherwise
// (Entra's group requests name a schema of its own that carries nothing).
func checkSchemas(rt *resourceType, v any) error {
	list, ok := v.([]any)
	if !ok {
		return invalidSyntax("schemas must be an array of schema URIs")
	}
	core := false
	for _, s := range list {
		u, ok := s.(string)
		if !ok {
			return invalidSyntax("schemas must be an array of schema URIs")
		}
		if strings.EqualFold(u, rt.schema.ID) {
			core = true
		}
	}
	if !core {
		return invalidSyntax("schemas must include %s", rt.schema.ID)
	}
	return nil
}

// splitURN splits "urn:...:User:name" into its schema URI and attribute name.
func splitURN(k string) (uri, name string) {
	i := strings.LastIndexByte(k, ':')
	return k[:i], k[i+1:]
}

// putValue stores v as attribute a (under name) in m after checking its
// type; read-only and write-only attributes are dropped, null removes.
func putValue(m map[string]any, a *Attribute, v any, name string) error {
	if a.Mutability == readOnly || a.Mutability == writeOnly {
		return nil // RFC 7644 §3.5.1: read-only values in a request are ignored
	}
	if v == nil {
		delete(m, name)
		return nil
	}
	if a.MultiValued {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		limit := maxMultiValues
		if a.Name == "members" {
			limit = maxMembers
		}
		if len(list) > limit {
			return invalidValue("%s: at most %d values", a.Name, limit)
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			if e == nil {
				continue
			}
			x, err := single(a, e)
			if err != nil {
				return err
			}
			out = append(out, x)
		}
		if len(out) == 0 {
			delete(m, name)
			return nil
		}
		m[name] = out
		return nil
	}
	x, err := single(a, v)
	if err != nil {
		return err
	}
	if x == nil {
		delete(m, name)
		return nil
	}
	m[name] = x
	return nil
}

// single checks one value of attribute a.
func single(a *Attribute, v any) (any, error) {
	if a.Type == typeComplex {
		obj, ok := v.(map[string]any)
		if !ok {
			if a.sub("value") != nil && a.MultiValued {
				// "emails": ["a@example.com"]: a bare value.
				return single(a, map[string]any{"value": v})
			}
			return nil, invalidValue("%s must be an object", a.Name)
		}
		out := make(map[string]any, len(obj))
		for k, sv := range obj {
			s := a.sub(k)
			if s == nil {
				return nil, invalidSyntax("unknown sub-attribute %q of %q", k, a.Name)
			}
			if s.Mutability == readOnly && a.Name != "members" && a.Name != "groups" {
				continue
			}
			if sv == nil {
				continue
			}
			x, err := scalar(s, sv, a.Name+"."+s.Name)
			if err != nil {
				return nil, err
			}
			if x != nil {
				out[s.Name] = x
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	return scalar(a, v, a.Name)
}

// scalar checks one simple value; "True" and "False" in any case are
// booleans (Entra sends "active": "False").
func scalar(a *Attribute, v any, path string) (any, error) {
	switch a.Type {
	case typeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, invalidValue("%s must be a boolean", path)
	case typeString, typeReference, typeDateTime:
		s, ok := v.(string)
		if !ok {
			if n, isNum := v.(json.Number); isNum && a.Type == typeString {
				s = n.String() // an employeeNumber sent as a number
			} else {
				return nil, invalidValue("%s must be a string", path)
			}
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxStringLen {
			return nil, invalidValue("%s: at most %d characters of valid UTF-8", path, maxStringLen)
		}
		if strings.ContainsRune(s, 0) {
			return nil, invalidValue("%s must not contain NUL", path)
		}
		if s == "" {
			return nil, nil
		}
		return s, nil
	}
	return nil, invalidValue("%s: unsupported type", path)
}

// decodeBody reads a JSON object, keeping numbers as json.Number.
func decodeBody(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, invalidSyntax("request body is not a JSON object: %s", jsonProblem(err))
	}
	if m == nil {
		return nil, invalidSyntax("request body is not a JSON object")
	}
	if dec.More() {
		return nil, invalidSyntax("request body holds more than one JSON value")
	}
	return m, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("want an object, got %s", te.Value)
	}
	if err.Error() == "EOF" {
		return "empty body"
	}
	return "malformed JSON"
}

// userFrom turns a normalized map into a User.
func userFrom(m map[string]any) (*User, error) {
	var u User
	if err := remarshal(m, &u); err != nil {
		return nil, invalidValue("user: %v", err)
	}
	if u.UserName == "" {
		return nil, invalidValue("userName is required")
	}
	if _, ok := m["active"]; !ok {
		u.Active = true // a user is active unless the client says otherwise
	}
	return &u, nil
}

// groupFrom turns a normalized map into a Group.
func groupFrom(m map[string]any) (*Group, error) {
	var g Group
	if err := remarshal(m, &g); err != nil {
		return nil, invalidValue("group: %v", err)
	}
	if g.DisplayName == "" {
		return nil, invalidValue("displayName is required")
	}
	seen := make(map[string]bool, len(g.Members))
	members := g.Members[:0]
	for _, mb := range g.Members {
		if mb.Value == "" {
			return nil, invalidValue("members: every member needs a value")
		}
		if !seen[mb.Value] {
			seen[mb.Value] = true
			members = append(members, mb)
		}
	}
	g.Members = members
	return &g, nil
}

func remarshal(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// asMap returns a resource's writable attributes as a normalized map (the
// starting point of a PATCH, and what filters see together with id, meta
// and groups).
func asMap(v any) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	_ = dec.Decode(&m)
	return m
}
