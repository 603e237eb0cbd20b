package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// ProviderType is what validation knows of one kind of upstream IdP
// (providers[].type). Each type's package registers it at init, through
// idp.Register, which also registers the type's connector and onboarding
// values; the configuration model itself names no type.
type ProviderType struct {
	// Name is the value of providers[].type, such as "oidc".
	Name string
	// DisplayName is a provider's default name ("GitHub"); empty: the
	// provider's id.
	DisplayName string
	// Fields are the type-specific settings of Provider the type uses, by
	// YAML name ("issuer", "client_id", ...). Another type-specific setting
	// set on a provider of this type is reported as not used by it. id,
	// type, name, upstream_logout and mfa_acr_values belong to every type.
	Fields []string
	// Settings are the keys of providers[].settings the type takes: the
	// place for a new type's own settings.
	Settings []string
	// OpenID says the type speaks OpenID Connect: its scopes default to
	// DefaultScopes and must include "openid".
	OpenID bool
	// Check reports the problems of one provider of this type, beyond the
	// checks every provider gets (id, fields used, client_id when the type
	// uses it, URL fields, scopes). Optional.
	Check func(c *ProviderCheck)
	// Warn reports advice about a valid provider of this type. Optional.
	Warn func(c *ProviderCheck)
}

var (
	providerTypesMu sync.RWMutex
	providerTypes   = map[string]ProviderType{}
)

// commonProviderFields are every type's settings.
var commonProviderFields = []string{"id", "type", "name", "pending", "upstream_logout", "mfa_acr_values", "settings"}

// RegisterProviderType makes a provider type known to validation. It
// panics on an empty or taken name, or a field Provider does not have: a
// programming error, found at init.
func RegisterProviderType(t ProviderType) {
	providerTypesMu.Lock()
	defer providerTypesMu.Unlock()
	if t.Name == "" {
		panic("config: provider type without a name")
	}
	if _, dup := providerTypes[t.Name]; dup {
		panic(fmt.Sprintf("config: provider type %q registered twice", t.Name))
	}
	known := providerFieldIndex()
	for _, f := range t.Fields {
		if _, ok := known[f]; !ok || slices.Contains(commonProviderFields, f) {
			panic(fmt.Sprintf("config: provider type %q: %q is not a type-specific setting of providers", t.Name, f))
		}
	}
	providerTypes[t.Name] = t
}

// LookupProviderType returns the registered type called name.
func LookupProviderType(name string) (ProviderType, bool) {
	providerTypesMu.RLock()
	defer providerTypesMu.RUnlock()
	t, ok := providerTypes[name]
	return t, ok
}

// ProviderTypeNames returns the registered type names, sorted.
func ProviderTypeNames() []string {
	providerTypesMu.RLock()
	defer providerTypesMu.RUnlock()
	return slices.Sorted(maps.Keys(providerTypes))
}

// providerFieldIndex maps Provider's YAML names to field indexes.
var providerFieldIndex = sync.OnceValue(func() map[string]int {
	return structFields(reflect.TypeFor[Provider]())
})

// ProviderCheck is one provider being validated, handed to its type's
// Check and Warn.
type ProviderCheck struct {
	// P is the provider, defaults applied.
	P *Provider
	// Type is the provider's registered type.
	Type ProviderType
	k    *checker
	path string
}

// Problem reports what is wrong with field (relative to the provider,
// like "issuer" or "settings.realm"; empty for the provider itself).
func (c *ProviderCheck) Problem(field, format string, args ...any) {
	p := c.path
	if field != "" {
		p += "." + field
	}
	c.k.add(p, format, args...)
}

// Required reports field as required for the type when value is empty.
func (c *ProviderCheck) Required(field, value string) {
	if value == "" {
		c.Problem(field, "is required for type %q", c.Type.Name)
	}
}

// Explicit reports whether the file gave field (relative to the provider)
// a value, even a zero one.
func (c *ProviderCheck) Explicit(field string) bool {
	return c.k.c.src.isExplicit(c.path + "." + field)
}

// URL reports field unless value (when set) is an absolute https URL
// (http only on a loopback host) without user info, query or fragment.
func (c *ProviderCheck) URL(field, value string) {
	if value == "" {
		return
	}
	if msg := CheckHTTPURL(value); msg != "" {
		c.Problem(field, "%s", msg)
	}
}

// CheckHTTPURL checks an issuer or endpoint URL: absolute, https (http
// only on a loopback host), no user info, query or fragment. It returns
// what is wrong, or "".
func CheckHTTPURL(s string) string { return checkHTTPURL(s) }

// CheckRedirectURI checks a URI a browser is sent to (redirect URIs,
// RelayState targets): absolute, no fragment or user info, https or http
// on loopback or a private-use scheme. It returns what is wrong, or "".
func CheckRedirectURI(s string) string { return checkRedirectURI(s) }

// IsDomainName reports whether d is a DNS domain name of two or more
// labels (any case, an optional trailing dot), not localhost.
func IsDomainName(d string) bool {
	h := normalizeDomain(d)
	return validHostname(h) && h != "localhost"
}

// providerSet returns, sorted, the type-specific YAML names p sets: a
// non-zero value, or a duration the file gave explicitly. It runs once per
// provider of a file (100k tenants: 100k times), so the field list is
// worked out once and a zero field is looked up only when it is a duration.
func (k *checker) providerSet(p *Provider, path string) []string {
	v := reflect.ValueOf(p).Elem()
	var set []string
	for _, f := range providerSpecificFields() {
		fv := v.Field(f.index)
		// A duration given as 0 is set (and refused by the type's check).
		if !fv.IsZero() || (fv.Kind() == reflect.Int64 && k.c.src.isExplicit(path+"."+f.name)) {
			set = append(set, f.name)
		}
	}
	return set
}

// providerField is one type-specific field of Provider.
type providerField struct {
	name  string
	index int
}

// providerSpecificFields are Provider's fields that are not in
// commonProviderFields, sorted by YAML name.
var providerSpecificFields = sync.OnceValue(func() []providerField {
	var out []providerField
	for name, i := range providerFieldIndex() {
		if !slices.Contains(commonProviderFields, name) {
			out = append(out, providerField{name, i})
		}
	}
	slices.SortFunc(out, func(a, b providerField) int { return strings.Compare(a.name, b.name) })
	return out
})

// typeNames lists the registered types for a message: "a, b or c".
func typeNames() string {
	names := ProviderTypeNames()
	switch len(names) {
	case 0:
		return "none is registered in this build"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
