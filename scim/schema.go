package scim

import "strings"

// Schema URIs of the resources (RFC 7643 §8.7.1, §4.3, §8.7.2).
const (
	UserSchema           = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupSchema          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaSchema         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	resourceTypeSchema   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	spConfigSchema       = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// Attribute types (RFC 7643 §2.3).
const (
	typeString    = "string"
	typeBoolean   = "boolean"
	typeDecimal   = "decimal"
	typeInteger   = "integer"
	typeDateTime  = "dateTime"
	typeReference = "reference"
	typeComplex   = "complex"
)

// Mutability, returned and uniqueness values (RFC 7643 §7).
const (
	readOnly  = "readOnly"
	readWrite = "readWrite"
	immutable = "immutable"
	writeOnly = "writeOnly"
)

// Attribute is one attribute definition as the /Schemas endpoint publishes
// it (RFC 7643 §7); the package also reads it to process requests: names
// are matched without regard to case, types are checked, read-only values
// in requests are ignored and write-only ones never returned.
type Attribute struct {
	Name            string       `json:"name"`
	Type            string       `json:"type"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description"`
	Required        bool         `json:"required"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      string       `json:"mutability"`
	Returned        string       `json:"returned"`
	Uniqueness      string       `json:"uniqueness"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
}

// sub returns the sub-attribute named name, whatever its case.
func (a *Attribute) sub(name string) *Attribute { return findAttr(a.SubAttributes, name) }

func findAttr(attrs []*Attribute, name string) *Attribute {
	for _, a := range attrs {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// Schema is one schema (RFC 7643 §7).
type Schema struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Attributes  []*Attribute `json:"attributes"`
}

func str(name, desc string, opts ...func(*Attribute)) *Attribute {
	a := &Attribute{Name: name, Type: typeString, Description: desc, Mutability: readWrite, Returned: "default", Uniqueness: "none"}
	for _, o := range opts {
		o(a)
	}
	return a
}

func ofType(t string) func(*Attribute)   { return func(a *Attribute) { a.Type = t } }
func required(a *Attribute)              { a.Required = true }
func caseExact(a *Attribute)             { a.CaseExact = true }
func multi(a *Attribute)                 { a.MultiValued = true }
func mut(m string) func(*Attribute)      { return func(a *Attribute) { a.Mutability = m } }
func returned(r string) func(*Attribute) { return func(a *Attribute) { a.Returned = r } }
func unique(u string) func(*Attribute)   { return func(a *Attribute) { a.Uniqueness = u } }
func canonical(v ...string) func(*Attribute) {
	return func(a *Attribute) { a.CanonicalValues = v }
}
func refs(t ...string) func(*Attribute) {
	return func(a *Attribute) { a.Type, a.ReferenceTypes = typeReference, t }
}
func subs(s ...*Attribute) func(*Attribute) {
	return func(a *Attribute) { a.Type, a.SubAttributes = typeComplex, s }
}

// multiValuedOf is the usual sub-attributes of a multi-valued attribute (RFC 7643 §2.4).
func multiValuedOf(valueDesc string, types ...string) func(*Attribute) {
	return subs(
		str("value", valueDesc),
		str("display", "A human-readable name, primarily used for display purposes."),
		str("type", "A label indicating the attribute's function.", canonical(types...)),
		str("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute.", ofType(typeBoolean)),
	)
}

// userSchema is the core User schema (RFC 7643 §4.1, §8.7.1) as far as
// realmgate keeps it. Attributes of the RFC's schema that realmgate does not
// keep (addresses, ims, photos, entitlements, roles, x509Certificates) are
// accepted in requests and ignored; password is accepted and never stored:
// users sign in at their identity provider, never with a password here.
var userSchema = &Schema{ID: UserSchema, Name: "User", Description: "User Account", Attributes: []*Attribute{
	str("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.", required, unique("server")),
	str("name", "The components of the user's real name.", subs(
		str("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
		str("familyName", "The family name of the User, or last name in most Western languages."),
		str("givenName", "The given name of the User, or first name in most Western languages."),
		str("middleName", "The middle name(s) of the User."),
		str("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages."),
		str("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages."),
	)),
	str("displayName", "The name of the User, suitable for display to end-users."),
	str("nickName", "The casual way to address the user in real life."),
	str("profileUrl", "A fully qualified URL pointing to a page representing the User's online profile.", refs("external")),
	str("title", "The user's title, such as \"Vice President\"."),
	str("userType", "Used to identify the relationship between the organization and the user."),
	str("preferredLanguage", "Indicates the User's preferred written or spoken language."),
	str("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
	str("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
	str("active", "A Boolean value indicating the User's administrative status.", ofType(typeBoolean)),
	str("password", "Accepted and discarded: users sign in at their identity provider.", mut(writeOnly), returned("never")),
	str("emails", "Email addresses for the user.", multi, multiValuedOf("Email addresses for the user.", "work", "home", "other")),
	str("phoneNumbers", "Phone numbers for the User.", multi, multiValuedOf("Phone number of the User.", "work", "home", "mobile", "fax", "pager", "other")),
	str("groups", "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.", multi, mut(readOnly), subs(
		str("value", "The identifier of the User's group.", mut(readOnly)),
		str("$ref", "The URI of the corresponding 'Group' resource to which the user belongs.", refs("Group"), mut(readOnly)),
		str("display", "A human-readable name, primarily used for display purposes.", mut(readOnly)),
		str("type", "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.", canonical("direct", "indirect"), mut(readOnly)),
	)),
}}

// enterpriseSchema is the enterprise User extension (RFC 7643 §4.3, §8.7.1).
var enterpriseSchema = &Schema{ID: EnterpriseUserSchema, Name: "EnterpriseUser", Description: "Enterprise User", Attributes: []*Attribute{
	str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
	str("costCenter", "Identifies the name of a cost center."),
	str("organization", "Identifies the name of an organization."),
	str("division", "Identifies the name of a division."),
	str("department", "Identifies the name of a department."),
	str("manager", "The User's manager.", subs(
		str("value", "The id of the SCIM resource representing the User's manager."),
		str("$ref", "The URI of the SCIM resource representing the User's manager.", refs("User")),
		str("displayName", "The displayName of the User's manager.", mut(readOnly)),
	)),
}}

// groupSchema is the core Group schema (RFC 7643 §4.2, §8.7.1).
var groupSchema = &Schema{ID: GroupSchema, Name: "Group", Description: "Group", Attributes: []*Attribute{
	str("displayName", "A human-readable name for the Group.", required, unique("server")),
	str("members", "A list of members of the Group.", multi, subs(
		str("value", "Identifier of the member of this Group.", mut(immutable)),
		str("$ref", "The URI corresponding to a SCIM resource that is a member of this Group.", refs("User", "Group"), mut(immutable)),
		str("display", "A human-readable name, primarily used for display purposes.", mut(immutable)),
		str("type", "A label indicating the type of resource, e.g., 'User' or 'Group'.", canonical("User", "Group"), mut(immutable)),
	)),
}}

// ignoredUserAttrs are attributes of the RFC's User schema realmgate does
// not keep: accepted in a request and dropped.
var ignoredUserAttrs = []string{"addresses", "ims", "photos", "entitlements", "roles", "x509Certificates"}

// commonAttrs are the attributes every resource has (RFC 7643 §3.1): id and
// meta are set by the service provider, externalId by the client.
var (
	idAttr         = str("id", "Unique identifier for the resource as defined by the service provider.", caseExact, mut(readOnly), returned("always"), unique("server"))
	externalIDAttr = str("externalId", "Identifier of the resource as defined by the provisioning client.", caseExact)
	metaAttr       = str("meta", "Resource metadata.", mut(readOnly), subs(
		str("resourceType", "The name of the resource type of the resource.", caseExact, mut(readOnly)),
		str("created", "The DateTime that the resource was added to the service provider.", ofType(typeDateTime), mut(readOnly)),
		str("lastModified", "The most recent DateTime that the details of this resource were updated at the service provider.", ofType(typeDateTime), mut(readOnly)),
		str("location", "The URI of the resource being returned.", refs("uri"), caseExact, mut(readOnly)),
		str("version", "The version of the resource being returned.", caseExact, mut(readOnly)),
	))
)

// resourceType describes one kind of resource: its core schema, its
// extensions and the names it is served under.
type resourceType struct {
	name       string // User, Group
	endpoint   string // /Users, /Groups
	schema     *Schema
	extensions []*Schema
	ignored    []string
}

var (
	userType  = &resourceType{name: "User", endpoint: "/Users", schema: userSchema, extensions: []*Schema{enterpriseSchema}, ignored: ignoredUserAttrs}
	groupType = &resourceType{name: "Group", endpoint: "/Groups", schema: groupSchema}
)

// attr finds a top-level attribute of the core schema or a common one.
func (rt *resourceType) attr(name string) *Attribute {
	switch {
	case strings.EqualFold(name, "id"):
		return idAttr
	case strings.EqualFold(name, "externalId"):
		return externalIDAttr
	case strings.EqualFold(name, "meta"):
		return metaAttr
	}
	return findAttr(rt.schema.Attributes, name)
}

// extension returns the extension schema with URI uri, whatever its case.
func (rt *resourceType) extension(uri string) *Schema {
	for _, s := range rt.extensions {
		if strings.EqualFold(s.ID, uri) {
			return s
		}
	}
	return nil
}

func (rt *resourceType) isIgnored(name string) bool {
	for _, n := range rt.ignored {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// resolved is an attribute path resolved against a resource type: the
// schema the attribute lives in ("" for the core schema), the attribute and
// optionally its sub-attribute, each with its canonical name.
type resolved struct {
	ext  *Schema // nil: core schema or common attribute
	attr *Attribute
	sub  *Attribute // nil: the whole attribute
}

// resolve resolves uri (optional), name and sub (optional) of a filter or
// PATCH path. A URI naming the core schema is the same as none.
func (rt *resourceType) resolve(uri, name, sub string) (resolved, error) {
	var r resolved
	switch {
	case uri == "" || strings.EqualFold(uri, rt.schema.ID):
		r.attr = rt.attr(name)
	default:
		r.ext = rt.extension(uri)
		if r.ext == nil {
			return r, invalidPath("unknown schema %q", uri)
		}
		r.attr = findAttr(r.ext.Attributes, name)
	}
	if r.attr == nil {
		return r, invalidPath("unknown attribute %q", name)
	}
	if sub != "" {
		if r.attr.Type != typeComplex {
			return r, invalidPath("attribute %q has no sub-attribute %q", r.attr.Name, sub)
		}
		if r.sub = r.attr.sub(sub); r.sub == nil {
			return r, invalidPath("unknown sub-attribute %q of %q", sub, r.attr.Name)
		}
	}
	return r, nil
}
