package ruleimport

// Well-known claim types (AD FS, WS-Federation, Entra ID).
const (
	wsClaims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	msClaims = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
	xsClaims = "http://schemas.xmlsoap.org/claims/"

	// PermitType and DenyType are AD FS's authorization claim types.
	PermitType = "http://schemas.microsoft.com/authorization/claims/permit"
	DenyType   = "http://schemas.microsoft.com/authorization/claims/deny"

	// NameIDType is the claim type AD FS sends as the SAML NameID.
	NameIDType = wsClaims + "nameidentifier"
	// formatProperty is the claim property that carries the NameID format.
	formatProperty = "http://schemas.xmlsoap.org/ws/2005/05/identity/claimproperties/format"
)

// claimNames maps the claim types realmgate has a normalized claim for
// (DESIGN.md, "Tokens: the normalized claims") to that claim. single
// claims are strings in realmgate's tokens; the others are lists.
var claimNames = map[string]struct {
	name   string
	single bool
}{
	wsClaims + "emailaddress": {"email", true},
	xsClaims + "EmailAddress": {"email", true},
	wsClaims + "name":         {"name", true},
	wsClaims + "givenname":    {"given_name", true},
	wsClaims + "surname":      {"family_name", true},
	msClaims + "role":         {"roles", false},
	xsClaims + "Group":        {"groups", false},
	msClaims + "groups":       {"groups", false},
	// The NameID is one value: the claim keeps its URI as its name.
	NameIDType: {NameIDType, true},
}

// ClaimName returns the realmgate claim an AD FS claim type becomes: the
// normalized claim for the well-known types (emailaddress is email, role
// is roles, Group is groups, ...), otherwise the claim type itself, URI
// and all. single reports a claim realmgate keeps as one string (email,
// name, given_name, family_name, and the nameidentifier claim a SAML app's
// NameID comes from); every other claim is a list.
func ClaimName(claimType string) (name string, single bool) {
	if n, ok := claimNames[claimType]; ok {
		return n.name, n.single
	}
	return claimType, false
}

// ClaimTypes lists the well-known claim types and the claim each becomes,
// for documentation and tests.
func ClaimTypes() map[string]string {
	out := make(map[string]string, len(claimNames))
	for t, n := range claimNames {
		out[t] = n.name
	}
	return out
}
