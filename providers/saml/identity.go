package saml

import (
	"strings"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers"
)

// Well-known attribute names: AD FS / WS-Federation claim types, Entra ID
// claims, and the X.500 / eduPerson OIDs of SAML V2.0 X.500/LDAP Attribute
// Profile, each with the short alias rules see as upstream.<alias>.
var oidAliases = map[string]string{
	"urn:oid:0.9.2342.19200300.100.1.3":   "mail",
	"urn:oid:0.9.2342.19200300.100.1.1":   "uid",
	"urn:oid:2.5.4.42":                    "givenName",
	"urn:oid:2.5.4.4":                     "sn",
	"urn:oid:2.5.4.3":                     "cn",
	"urn:oid:2.16.840.1.113730.3.1.241":   "displayName",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.6":    "eduPersonPrincipalName",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.7":    "eduPersonEntitlement",
	"urn:oid:1.3.6.1.4.1.5923.1.5.1.1":    "isMemberOf",
	"urn:oid:1.2.840.113556.1.4.221":      "sAMAccountName",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.10":   "eduPersonTargetedID",
	"urn:oid:0.9.2342.19200300.100.1.1.1": "uid",
}

// listAliases are attributes that are lists even with one value, so rules
// can test membership the same way whatever the count.
var listAliases = map[string]bool{
	"groups": true, "role": true, "roles": true, "isMemberOf": true, "memberOf": true,
	"eduPersonEntitlement": true, "authnmethodsreferences": true, "wids": true,
}

// alias returns the short name of an attribute: the OID's LDAP name, or the
// last path segment of a claim-type URI
// (http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn -> upn).
func alias(name string) string {
	if a, ok := oidAliases[name]; ok {
		return a
	}
	if strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://") {
		if i := strings.LastIndexByte(strings.TrimRight(name, "/"), '/'); i >= 0 {
			return strings.TrimRight(name, "/")[i+1:]
		}
	}
	return ""
}

// identity maps a verified assertion to a providers.Identity. Every
// attribute is kept under its Name (URIs as they are), and also under its
// short alias and FriendlyName when those are free; multi-valued attributes
// are lists.
func (c *Connector) identity(a *crewjam.Assertion, md *idpMetadata) (providers.Identity, error) {
	nameID := a.Subject.NameID
	if nameID == nil || strings.TrimSpace(nameID.Value) == "" {
		return providers.Identity{}, c.invalid("no NameID")
	}
	claims := map[string]any{}
	aliases := map[string]any{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == "" {
				continue
			}
			var vals []any
			for _, v := range at.Values {
				s := v.Value
				if v.NameID != nil {
					s = v.NameID.Value
				}
				vals = append(vals, strings.TrimSpace(s))
			}
			short := alias(at.Name)
			var val any = vals
			if len(vals) == 1 && !listAliases[short] && !listAliases[at.FriendlyName] {
				val = vals[0]
			}
			if len(vals) == 0 {
				val = []any{}
			}
			claims[at.Name] = val
			for _, k := range []string{short, at.FriendlyName} {
				if k != "" && k != at.Name {
					if _, taken := aliases[k]; !taken {
						aliases[k] = val
					}
				}
			}
		}
	}
	for k, v := range aliases {
		if _, taken := claims[k]; !taken {
			claims[k] = v
		}
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			switch v := claims[k].(type) {
			case string:
				if v != "" {
					return v
				}
			case []any:
				if len(v) > 0 {
					if s, ok := v[0].(string); ok && s != "" {
						return s
					}
				}
			}
		}
		return ""
	}
	id := providers.Identity{
		Issuer:            md.entity.EntityID,
		Subject:           strings.TrimSpace(nameID.Value),
		Email:             first("emailaddress", "email", "mail", "Email", "EmailAddress"),
		Name:              first("displayname", "displayName", "cn", "Name"),
		GivenName:         first("givenname", "givenName", "firstName", "FirstName"),
		FamilyName:        first("surname", "sn", "lastName", "LastName"),
		PreferredUsername: first("upn", "eduPersonPrincipalName", "uid", "sAMAccountName", "windowsaccountname", "name"),
		Claims:            claims,
	}
	if c.cfg.SubjectAttribute != "" {
		id.Subject = first(c.cfg.SubjectAttribute)
		if id.Subject == "" {
			return providers.Identity{}, c.invalid("subject attribute %q missing", c.cfg.SubjectAttribute)
		}
	} else if nameID.Format == NameIDTransient {
		// A transient NameID changes every login: no stable subject.
		return providers.Identity{}, c.invalid("transient NameID cannot identify a user; ask the IdP for a persistent or email NameID, or set a subject attribute")
	}
	claims["name_id"] = strings.TrimSpace(nameID.Value)
	if nameID.Format != "" {
		claims["name_id_format"] = nameID.Format
	}
	if id.Email == "" && nameID.Format == NameIDEmail {
		id.Email = strings.TrimSpace(nameID.Value)
	}
	if id.Name == "" {
		id.Name = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	}
	// The IdP asserts the address of its own directory; the broker still
	// keeps it only inside the tenant's verified domains (S52).
	id.EmailVerified = id.Email != ""
	for _, st := range a.AuthnStatements {
		if id.AuthTime.IsZero() || st.AuthnInstant.After(id.AuthTime) {
			id.AuthTime = st.AuthnInstant
		}
		if st.SessionIndex != "" {
			claims["session_index"] = st.SessionIndex
			claims["sid"] = st.SessionIndex // the broker indexes sessions by sid for Single Logout
		}
		if ref := st.AuthnContext.AuthnContextClassRef; ref != nil && ref.Value != "" {
			id.ACR = ref.Value
		}
	}
	id.AMR = amr(id.ACR, claims["authnmethodsreferences"])
	return id, nil
}

// amr derives RFC 8176 method references from the SAML authentication
// context class (SAML Authn Context §3.4) and Entra / AD FS's
// authnmethodsreferences claim.
func amr(acr string, refs any) []string {
	var out []string
	add := func(v string) {
		for _, o := range out {
			if o == v {
				return
			}
		}
		out = append(out, v)
	}
	switch acr {
	case "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport", "urn:oasis:names:tc:SAML:2.0:ac:classes:Password":
		add("pwd")
	case "urn:oasis:names:tc:SAML:2.0:ac:classes:X509", "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI":
		add("sc")
	case "urn:federation:authentication:windows", "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos":
		add("wia") // Windows integrated authentication (Microsoft)
	}
	list, _ := refs.([]any)
	for _, r := range list {
		s, _ := r.(string)
		switch {
		case strings.HasSuffix(s, "/multipleauthn"):
			add("mfa")
		case strings.HasSuffix(s, "/password") || strings.HasSuffix(s, ":PasswordProtectedTransport"):
			add("pwd")
		}
	}
	return out
}
