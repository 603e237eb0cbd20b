package ruleimport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/transform"
)

// entraPolicy is the definition of an Entra ID claimsMappingPolicy
// (https://learn.microsoft.com/entra/identity-platform/reference-claims-customization).
// encoding/json matches the keys without regard to case, as Entra does
// (SamlClaimType, SAMLClaimType).
type entraPolicy struct {
	ClaimsMappingPolicy *struct {
		Version               json.RawMessage  `json:"Version"`
		IncludeBasicClaimSet  json.RawMessage  `json:"IncludeBasicClaimSet"`
		ClaimsSchema          []entraSchema    `json:"ClaimsSchema"`
		ClaimsTransformation  []entraTransform `json:"ClaimsTransformation"`
		ClaimsTransformations []entraTransform `json:"ClaimsTransformations"`
	} `json:"ClaimsMappingPolicy"`
	// Definition is set when the input is the Graph object
	// (GET /policies/claimsMappingPolicies/{id}): the policy is its first string.
	Definition []string `json:"definition"`
}

type entraSchema struct {
	Source           string `json:"Source"`
	ID               string `json:"ID"`
	ExtensionID      string `json:"ExtensionID"`
	Value            string `json:"Value"`
	SamlClaimType    string `json:"SamlClaimType"`
	JwtClaimType     string `json:"JwtClaimType"`
	SamlNameFormat   string `json:"SamlNameFormat"`
	TransformationID string `json:"TransformationId"`
}

type entraTransform struct {
	ID                   string `json:"ID"`
	TransformationMethod string `json:"TransformationMethod"`
	InputClaims          []struct {
		ClaimTypeReferenceID    string `json:"ClaimTypeReferenceId"`
		TransformationClaimType string `json:"TransformationClaimType"`
	} `json:"InputClaims"`
	InputParameters []struct {
		ID    string `json:"ID"`
		Value string `json:"Value"`
	} `json:"InputParameters"`
	OutputClaims []struct {
		ClaimTypeReferenceID    string `json:"ClaimTypeReferenceId"`
		TransformationClaimType string `json:"TransformationClaimType"`
	} `json:"OutputClaims"`
}

// entraAttributes maps the Entra ID user attributes a policy names to the
// upstream claims that carry them, first found wins: the names Entra's
// OIDC tokens use, and realmgate's aliases of the SAML claim types.
var entraAttributes = map[string][]string{
	"userprincipalname":            {"upn", "preferred_username"},
	"mail":                         {"email"},
	"givenname":                    {"given_name"},
	"surname":                      {"family_name"},
	"displayname":                  {"displayname", "name"},
	"objectid":                     {"oid"},
	"employeeid":                   {"employeeid"},
	"department":                   {"department"},
	"jobtitle":                     {"jobtitle", "job_title"},
	"onpremisessamaccountname":     {"onpremisessamaccountname", "samaccountname"},
	"onpremisessecurityidentifier": {"onpremisessecurityidentifier", "primarysid"},
	"groups":                       {"groups"},
	"country":                      {"country", "ctry"},
	"city":                         {"city"},
	"companyname":                  {"companyname"},
	"streetaddress":                {"streetaddress"},
	"postalcode":                   {"postalcode"},
	"telephonenumber":              {"telephonenumber"},
	"mobilephone":                  {"mobilephone", "mobile"},
}

// entraSource is a CEL optional of the upstream claim carrying a user attribute.
func entraSource(id string) string {
	keys := entraAttributes[strings.ToLower(id)]
	if len(keys) == 0 {
		keys = []string{id}
		if l := strings.ToLower(id); l != id {
			keys = append(keys, l)
		}
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("upstream[?%s]", quote(k))
	}
	return strings.Join(parts, ".or(") + strings.Repeat(")", len(parts)-1)
}

// ConvertEntra converts an Entra ID claims mapping policy (the policy's
// JSON definition, or the Graph claimsMappingPolicy object holding it)
// into realmgate rules: one rule per ClaimsSchema entry, a Join or
// ExtractMailPrefix transformation included. Problems name the JSON path
// (ClaimsSchema[2]) of what could not be converted.
func ConvertEntra(src []byte, opts Options) (*Result, error) {
	var p entraPolicy
	dec := json.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("ruleimport: reading the claims mapping policy: %w", err)
	}
	if p.ClaimsMappingPolicy == nil && len(p.Definition) > 0 {
		if err := json.Unmarshal([]byte(p.Definition[0]), &p); err != nil {
			return nil, fmt.Errorf("ruleimport: reading definition[0] of the claims mapping policy: %w", err)
		}
	}
	if p.ClaimsMappingPolicy == nil {
		return nil, fmt.Errorf("ruleimport: no ClaimsMappingPolicy object (want {\"ClaimsMappingPolicy\": {...}} or a Graph claimsMappingPolicy with a definition)")
	}
	pol := p.ClaimsMappingPolicy
	c := &converter{opts: opts, res: &Result{Comments: map[string]string{}}, names: map[string]bool{}, issued: map[string]bool{}}
	transforms := map[string]entraTransform{}
	for _, t := range append(pol.ClaimsTransformation, pol.ClaimsTransformations...) {
		transforms[t.ID] = t
	}
	schema := map[string]entraSchema{}
	for _, s := range pol.ClaimsSchema {
		if s.ID != "" {
			schema[s.ID] = s
		}
	}
	if b := strings.Trim(strings.ToLower(string(pol.IncludeBasicClaimSet)), `"`); b == "false" {
		c.res.Notes = append(c.res.Notes, Problem{Where: "IncludeBasicClaimSet",
			Msg: "IncludeBasicClaimSet false has no equivalent: realmgate always issues its standard claims (a client receives those its scopes allow)"})
	}
	problem := func(where, hint, format string, args ...any) {
		c.res.Problems = append(c.res.Problems, Problem{Where: where, Msg: fmt.Sprintf(format, args...), Hint: hint})
	}
	inputs := map[string]bool{}
	for _, t := range transforms {
		for _, in := range t.InputClaims {
			inputs[in.ClaimTypeReferenceID] = true
		}
	}
	for i, s := range pol.ClaimsSchema {
		where := fmt.Sprintf("ClaimsSchema[%d]", i)
		claim, attr := entraClaim(s)
		if claim == "" {
			if !inputs[s.ID] {
				c.res.Notes = append(c.res.Notes, Problem{Where: where,
					Msg: fmt.Sprintf("the entry %q names neither a JwtClaimType nor a SamlClaimType and feeds no transformation: Entra emits nothing for it", s.ID)})
			}
			continue // a transformation's input only
		}
		if transform.IsReserved(claim) || reservedExtra[claim] {
			problem(where, "map it to another claim name", "claim %q is reserved in realmgate: only the broker sets it", claim)
			continue
		}
		var rule config.Rule
		switch strings.ToLower(s.Source) {
		case "user":
			if s.ID == "" {
				problem(where, "", "a user source needs an ID (the user attribute)")
				continue
			}
			id := s.ID
			if s.ExtensionID != "" {
				id = s.ExtensionID
			}
			rule = config.Rule{Name: c.unique(fmt.Sprintf("entra: %s from user.%s", claim, strings.ToLower(id))),
				If: c.scope(""), Set: map[string]string{claim: entraSource(id)}}
		case "transformation":
			t, ok := transforms[s.TransformationID]
			if !ok {
				problem(where, "", "TransformationId %q names no ClaimsTransformation", s.TransformationID)
				continue
			}
			expr, cond, err := entraTransformExpr(t, schema)
			if err != nil {
				problem(where, "write the transformation as a realmgate rule (docs/rules.md has recipes)", "transformation %q: %v", t.ID, err)
				continue
			}
			rule = config.Rule{Name: c.unique(fmt.Sprintf("entra: %s from %s %s", claim, t.TransformationMethod, t.ID)),
				If: c.scope(cond), Set: map[string]string{claim: expr}}
		case "":
			problem(where, `add "Source": "user"`, "the entry has no Source")
			continue
		default:
			problem(where, "set the value with a realmgate rule (set: {claim: '\"value\"'}) or from the upstream identity",
				"source %q (the %s's own attributes) has no equivalent in realmgate", s.Source, strings.ToLower(s.Source))
			continue
		}
		c.res.Rules = append(c.res.Rules, rule)
		c.res.Comments[rule.Name] = fmt.Sprintf("Entra %s: Source %s, ID %s", where, s.Source, s.ID)
		if attr != "" && !c.issued[attr] {
			c.issued[attr] = true
			c.res.Issued = append(c.res.Issued, IssuedClaim{Type: attr, Claim: claim})
		}
	}
	c.check()
	return c.res, nil
}

// entraClaim is the realmgate claim an entry becomes (its JWT claim
// name, else the SAML claim type mapped as AD FS types are) and the SAML
// attribute it names.
func entraClaim(s entraSchema) (claim, attr string) {
	attr = s.SamlClaimType
	if attr == "" {
		attr = s.JwtClaimType
	}
	switch {
	case s.JwtClaimType != "":
		return s.JwtClaimType, attr
	case s.SamlClaimType != "":
		name, _ := ClaimName(s.SamlClaimType)
		return name, attr
	}
	return "", ""
}

// entraTransformExpr is the CEL of a transformation's output and the
// condition under which it has one.
func entraTransformExpr(t entraTransform, schema map[string]entraSchema) (expr, cond string, err error) {
	input := func(role string) (string, string, bool) {
		for _, in := range t.InputClaims {
			if strings.EqualFold(in.TransformationClaimType, role) {
				src := in.ClaimTypeReferenceID
				if s, ok := schema[src]; ok && strings.EqualFold(s.Source, "user") {
					src = s.ID
					if s.ExtensionID != "" {
						src = s.ExtensionID
					}
				}
				o := entraSource(src)
				return o + ".value()", o + ".hasValue()", true
			}
		}
		for _, p := range t.InputParameters {
			if strings.EqualFold(p.ID, role) {
				return quote(p.Value), "", true
			}
		}
		return "", "", false
	}
	var conds []string
	add := func(c string) {
		if c != "" {
			conds = append(conds, c)
		}
	}
	switch strings.ToLower(t.TransformationMethod) {
	case "join":
		s1, c1, ok1 := input("string1")
		s2, c2, ok2 := input("string2")
		sepv, _, ok3 := input("separator")
		if !ok1 || !ok2 {
			return "", "", fmt.Errorf("the Join transformation needs string1 and string2")
		}
		if !ok3 {
			sepv = `""`
		}
		add(c1)
		add(c2)
		return fmt.Sprintf("%s + %s + %s", s1, sepv, s2), strings.Join(conds, " && "), nil
	case "extractmailprefix":
		m, cm, ok := input("mail")
		if !ok {
			return "", "", fmt.Errorf("ExtractMailPrefix needs the input claim mail")
		}
		add(cm)
		return fmt.Sprintf("mailPrefix(%s)", m), strings.Join(conds, " && "), nil
	}
	return "", "", fmt.Errorf("the transformation method %q cannot be converted (claims mapping policies have Join and ExtractMailPrefix)", t.TransformationMethod)
}
