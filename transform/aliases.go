package transform

import "strings"

// Alias returns the short name rules can also use for a well-known SAML
// attribute / WS-Federation claim type URI (AD FS, Entra ID, the SAML 2.0
// LDAP attribute profile): upstream.upn is
// upstream["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"].
// The full name always works; an alias is added only when the upstream
// identity has no claim of that name already. When several URIs share an
// alias, the first one present in aliasList's order wins.
func Alias(uri string) (string, bool) {
	a, ok := aliasOf(uri)
	return a.alias, ok
}

type aliasEntry struct {
	alias string
	prio  int // index in aliasList: lower wins
}

// aliasOf looks up a claim name; only names with a ':' can be URIs.
func aliasOf(name string) (aliasEntry, bool) {
	if strings.IndexByte(name, ':') < 0 {
		return aliasEntry{}, false
	}
	a, ok := aliasByURI[name]
	return a, ok
}

var aliasByURI = func() map[string]aliasEntry {
	m := make(map[string]aliasEntry, len(aliasList))
	for i, a := range aliasList {
		if _, dup := m[a.uri]; !dup {
			m[a.uri] = aliasEntry{alias: a.alias, prio: i}
		}
	}
	return m
}()

const (
	wsClaims   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	msClaims   = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
	msIdentity = "http://schemas.microsoft.com/identity/claims/"
	adfsClaims = "http://schemas.xmlsoap.org/claims/"
)

// aliasList is ordered: when two URIs map to one alias the earlier wins.
var aliasList = []struct{ uri, alias string }{
	{wsClaims + "upn", "upn"},
	{adfsClaims + "UPN", "upn"},
	{wsClaims + "emailaddress", "email"},
	{adfsClaims + "EmailAddress", "email"},
	{"urn:oid:0.9.2342.19200300.100.1.3", "email"},
	{wsClaims + "name", "name"},
	{wsClaims + "givenname", "given_name"},
	{"urn:oid:2.5.4.42", "given_name"},
	{wsClaims + "surname", "family_name"},
	{"urn:oid:2.5.4.4", "family_name"},
	{wsClaims + "nameidentifier", "nameid"},
	{wsClaims + "privatepersonalidentifier", "ppid"},
	{wsClaims + "authentication", "authentication"},
	{msClaims + "groups", "groups"},
	{adfsClaims + "Group", "groups"},
	{msClaims + "role", "roles"},
	{msClaims + "groupsid", "groupsid"},
	{msClaims + "primarygroupsid", "primarygroupsid"},
	{msClaims + "primarysid", "primarysid"},
	{msClaims + "windowsaccountname", "windowsaccountname"},
	{msClaims + "authenticationmethod", "authenticationmethod"},
	{msClaims + "authenticationinstant", "authenticationinstant"},
	{adfsClaims + "CommonName", "cn"},
	{adfsClaims + "PUID", "puid"},
	{msIdentity + "tenantid", "tenantid"},
	{msIdentity + "objectidentifier", "oid"},
	{msIdentity + "displayname", "displayname"},
	{"urn:oid:2.16.840.1.113730.3.1.241", "displayname"},
	{msIdentity + "identityprovider", "identityprovider"},
	{"http://schemas.microsoft.com/claims/authnmethodsreferences", "amr"},
	{"urn:oid:0.9.2342.19200300.100.1.1", "uid"},
	{"urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "eppn"},
	{"urn:oid:1.3.6.1.4.1.5923.1.1.1.7", "entitlement"},
	{"urn:oid:2.16.840.1.113730.3.1.3", "employee_number"},
	{"urn:oid:2.16.840.1.113730.3.1.4", "employee_type"},
	{"urn:oid:2.5.4.11", "department"},
}
