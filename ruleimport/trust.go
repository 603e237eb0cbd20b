package ruleimport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"

	"github.com/realmgate/realmgate/config"
)

// adfsTrust is what `Get-AdfsRelyingPartyTrust -Name X | ConvertTo-Json
// -Depth 4` prints: the properties of a relying party trust that make a
// SAML app. Values whose shape PowerShell varies (certificates, URIs,
// enums) are read by hand.
type adfsTrust struct {
	Name                       string          `json:"Name"`
	Identifier                 json.RawMessage `json:"Identifier"`
	Enabled                    *bool           `json:"Enabled"`
	SamlEndpoints              json.RawMessage `json:"SamlEndpoints"`
	RequestSigningCertificate  json.RawMessage `json:"RequestSigningCertificate"`
	EncryptionCertificate      json.RawMessage `json:"EncryptionCertificate"`
	EncryptClaims              *bool           `json:"EncryptClaims"`
	SignedSamlRequestsRequired bool            `json:"SignedSamlRequestsRequired"`
	SamlResponseSignature      json.RawMessage `json:"SamlResponseSignature"`
	SignatureAlgorithm         string          `json:"SignatureAlgorithm"`
	TokenLifetime              int             `json:"TokenLifetime"`
	IssuanceTransformRules     string          `json:"IssuanceTransformRules"`
	IssuanceAuthorizationRules string          `json:"IssuanceAuthorizationRules"`
	AccessControlPolicyName    string          `json:"AccessControlPolicyName"`
}

type adfsEndpoint struct {
	Binding          json.RawMessage `json:"Binding"`
	Protocol         json.RawMessage `json:"Protocol"`
	Location         json.RawMessage `json:"Location"`
	ResponseLocation json.RawMessage `json:"ResponseLocation"`
	Index            int             `json:"Index"`
	IsDefault        bool            `json:"IsDefault"`
}

// TrustResult is a converted relying party trust.
type TrustResult struct {
	// Client is the SAML app registration.
	Client config.Client
	// Rules are its claims rules (each scoped to the client), the
	// issuance authorization rules first.
	Rules *Result
}

// trustField is the JSON path of a problem of the trust export.
func trustProblem(res *Result, where, hint, format string, args ...any) {
	res.Problems = append(res.Problems, Problem{Where: where, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func trustNote(res *Result, where, format string, args ...any) {
	res.Notes = append(res.Notes, Problem{Where: where, Msg: fmt.Sprintf(format, args...)})
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// ConvertTrust converts an AD FS relying party trust, exported as JSON
// (`Get-AdfsRelyingPartyTrust -Name X | ConvertTo-Json -Depth 4`), into a
// SAML app registration (clients[].saml) and its rules. clientID names the
// app ("" derives it from the trust's Name); tenant is the one tenant
// whose users may use it. The problems of the rule text are at their
// line:column within IssuanceTransformRules or IssuanceAuthorizationRules
// (their Where says which).
func ConvertTrust(src []byte, clientID, tenant string, opts Options) (*TrustResult, error) {
	var t adfsTrust
	trimmed := bytes.TrimSpace(src)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var all []json.RawMessage
		if err := json.Unmarshal(trimmed, &all); err != nil {
			return nil, fmt.Errorf("ruleimport: reading the relying party trust: %w", err)
		}
		if len(all) != 1 {
			return nil, fmt.Errorf("ruleimport: the export holds %d relying party trusts; export one (Get-AdfsRelyingPartyTrust -Name ...)", len(all))
		}
		trimmed = all[0]
	}
	if err := json.Unmarshal(trimmed, &t); err != nil {
		return nil, fmt.Errorf("ruleimport: reading the relying party trust: %w", err)
	}
	if clientID == "" {
		clientID = strings.Trim(slugRE.ReplaceAllString(strings.ToLower(t.Name), "-"), "-")
	}
	if clientID == "" {
		return nil, fmt.Errorf("ruleimport: the trust has no Name to derive the client id from: give one")
	}
	res := &Result{Comments: map[string]string{}}
	app := &config.SAMLApp{}
	cl := config.Client{ID: clientID, AllowedTenants: []string{tenant}, SAML: app}

	ids := strings1(t.Identifier)
	if len(ids) == 0 {
		return nil, fmt.Errorf("ruleimport: the trust has no Identifier (the SAML entity ID)")
	}
	app.EntityID = ids[0]
	if len(ids) > 1 {
		trustNote(res, "Identifier", "realmgate knows an app by one entity ID, %s; the other identifiers (%s) are not kept", ids[0], strings.Join(ids[1:], ", "))
	}
	if t.Enabled != nil && !*t.Enabled {
		trustNote(res, "Enabled", "the trust is disabled in AD FS; the SAML app is registered anyway")
	}

	var eps []adfsEndpoint
	if len(t.SamlEndpoints) > 0 && string(t.SamlEndpoints) != "null" {
		if err := json.Unmarshal(t.SamlEndpoints, &eps); err != nil {
			var one adfsEndpoint
			if err1 := json.Unmarshal(t.SamlEndpoints, &one); err1 != nil {
				return nil, fmt.Errorf("ruleimport: reading SamlEndpoints: %w (export with ConvertTo-Json -Depth 4)", err)
			}
			eps = []adfsEndpoint{one}
		}
	}
	for i, ep := range eps {
		where := fmt.Sprintf("SamlEndpoints[%d]", i)
		loc := uriString(ep.Location)
		binding := strings.ToLower(enumString(ep.Binding, samlBindings))
		switch proto := strings.ToLower(enumString(ep.Protocol, samlProtocols)); proto {
		case "samlassertionconsumer":
			if binding != "post" {
				trustNote(res, where, "the %s AssertionConsumerService %s is not kept: realmgate sends responses with HTTP-POST only", enumString(ep.Binding, samlBindings), loc)
				continue
			}
			idx := ep.Index
			app.ACS = append(app.ACS, config.SAMLEndpoint{URL: loc, Binding: config.SAMLBindingPost, Index: &idx, Default: ep.IsDefault})
		case "samllogout":
			if app.SLO != nil {
				trustNote(res, where, "realmgate keeps one SingleLogoutService; %s is not kept", loc)
				continue
			}
			b := config.SAMLBindingRedirect
			if binding == "post" {
				b = config.SAMLBindingPost
			} else if binding != "redirect" {
				trustProblem(res, where, "", "the %s SingleLogoutService %s cannot be used: realmgate logs out with HTTP-Redirect or HTTP-POST", enumString(ep.Binding, samlBindings), loc)
				continue
			}
			slo := &config.SAMLLogoutEndpoint{URL: loc, Binding: b}
			if r := uriString(ep.ResponseLocation); r != "" && r != loc {
				slo.ResponseURL = r
			}
			app.SLO = slo
		default:
			trustNote(res, where, "the %s endpoint %s has no realmgate equivalent and is not kept", enumString(ep.Protocol, samlProtocols), loc)
		}
	}
	if len(app.ACS) == 0 {
		trustProblem(res, "SamlEndpoints", "export with ConvertTo-Json -Depth 4, or add the app's ACS URL by hand", "the trust has no HTTP-POST AssertionConsumerService endpoint")
	}
	defaults := 0
	for _, a := range app.ACS {
		if a.Default {
			defaults++
		}
	}
	if defaults > 1 {
		for i := range app.ACS {
			app.ACS[i].Default = app.ACS[i].Default && defaults == 0
		}
		trustNote(res, "SamlEndpoints", "several endpoints are marked default; the first is realmgate's default")
	}

	if pemText, err := certificates(t.RequestSigningCertificate); err != nil {
		trustProblem(res, "RequestSigningCertificate", "export with ConvertTo-Json -Depth 4, or paste the certificate in PEM", "%v", err)
	} else {
		app.SigningCert = pemText
	}
	app.RequireSignedRequests = t.SignedSamlRequestsRequired
	if app.RequireSignedRequests && app.SigningCert == "" {
		trustProblem(res, "SignedSamlRequestsRequired", "add the app's signing certificate", "signed requests are required but the trust has no request signing certificate")
		app.RequireSignedRequests = false
	}
	if t.EncryptClaims == nil || *t.EncryptClaims {
		if pemText, err := certificates(t.EncryptionCertificate); err != nil {
			trustProblem(res, "EncryptionCertificate", "export with ConvertTo-Json -Depth 4, or paste the certificate in PEM", "%v", err)
		} else {
			app.EncryptionCert = pemText
		}
	}
	switch s := strings.ToLower(enumString(t.SamlResponseSignature, responseSignatures)); s {
	case "", "assertiononly":
	case "messageonly":
		app.Sign = config.SAMLSignResponse
	case "messageandassertion":
		app.Sign = config.SAMLSignBoth
	default:
		trustNote(res, "SamlResponseSignature", "unknown value %q: realmgate signs the assertion", s)
	}
	if a := strings.ToLower(t.SignatureAlgorithm); strings.HasSuffix(a, "rsa-sha1") {
		trustNote(res, "SignatureAlgorithm", "AD FS signs this app's tokens with RSA-SHA1; realmgate signs with RSA-SHA256 only: check the app accepts it")
	}
	if t.TokenLifetime > 0 {
		minutes := t.TokenLifetime
		if max := int(config.MaxSAMLAssertionLifetime.Duration().Minutes()); minutes > max {
			trustNote(res, "TokenLifetime", "%d minutes is over realmgate's limit; the assertion lifetime is %d minutes", minutes, max)
			minutes = max
		}
		var d config.Duration
		if err := d.UnmarshalText(fmt.Appendf(nil, "%dm", minutes)); err == nil {
			app.AssertionLifetime = d
		}
	}

	// The rules: authorization first (AD FS runs it before issuance), each
	// set scoped to the app.
	opts.Client = clientID
	all := &Result{Comments: map[string]string{}}
	names := map[string]bool{}
	for _, set := range []struct{ where, text, prefix string }{
		{"IssuanceAuthorizationRules", t.IssuanceAuthorizationRules, "authorization"},
		{"IssuanceTransformRules", t.IssuanceTransformRules, ""},
	} {
		if strings.TrimSpace(set.text) == "" {
			continue
		}
		rs, perr := Parse(set.text)
		o := opts
		o.prefix = set.prefix
		o.names = names
		r := Convert(rs, o)
		for _, p := range append(perr, r.Problems...) {
			p.Where = set.where
			all.Problems = append(all.Problems, p)
		}
		for _, n := range r.Notes {
			n.Where = set.where
			all.Notes = append(all.Notes, n)
		}
		all.Rules = append(all.Rules, r.Rules...)
		for k, v := range r.Comments {
			all.Comments[k] = v
		}
		if set.prefix == "" {
			all.Issued, all.NameIDFormat = r.Issued, r.NameIDFormat
		}
	}
	if strings.TrimSpace(t.IssuanceAuthorizationRules) == "" {
		switch p := t.AccessControlPolicyName; {
		case p == "" || strings.EqualFold(p, "Permit everyone"):
		default:
			trustProblem(res, "AccessControlPolicyName", "express it with the client's allowed_idps or with deny rules scoped to the client (docs/adfs-migration.md)",
				"the access control policy %q cannot be converted", p)
		}
	}
	all.Problems = append(res.Problems, all.Problems...)
	all.Notes = append(res.Notes, all.Notes...)

	// The NameID and the attributes come from the claims the rules issue.
	seen := map[string]bool{}
	for _, ic := range all.Issued {
		if ic.Type == NameIDType {
			app.NameIDClaim = ic.Claim
			app.NameIDFormat = nameIDFormat(all, all.NameIDFormat)
			continue
		}
		if seen[ic.Type] {
			continue
		}
		seen[ic.Type] = true
		app.Attributes = append(app.Attributes, config.SAMLAttribute{Name: ic.Type, Claim: ic.Claim})
	}
	return &TrustResult{Client: cl, Rules: all}, nil
}

// nameIDFormat maps a NameID format URN to clients[].saml's name for it.
func nameIDFormat(res *Result, urn string) string {
	if urn == "" {
		return "unspecified"
	}
	for short, u := range config.SAMLNameIDFormats {
		if u == urn {
			return short
		}
	}
	trustNote(res, "IssuanceTransformRules", "the NameID format %s is not one realmgate issues; the app gets unspecified", urn)
	return "unspecified"
}

// PowerShell writes enums as numbers unless -EnumsAsStrings is given.
var (
	samlBindings       = []string{"Artifact", "POST", "Redirect", "SOAP"}
	samlProtocols      = []string{"SAMLArtifactResolution", "SAMLAssertionConsumer", "SAMLLogout", "SAMLSingleSignOn"}
	responseSignatures = []string{"AssertionOnly", "MessageAndAssertion", "MessageOnly"}
)

// enumString reads a string, or the number of one of names.
func enumString(raw json.RawMessage, names []string) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n >= 0 && n < len(names) {
		return names[n]
	}
	return ""
}

// uriString reads a System.Uri as ConvertTo-Json writes it: a string, or
// an object with AbsoluteUri / OriginalString.
func uriString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct{ AbsoluteUri, OriginalString string }
	if json.Unmarshal(raw, &o) == nil {
		if o.OriginalString != "" {
			return o.OriginalString
		}
		return o.AbsoluteUri
	}
	return ""
}

// strings1 reads a string or a list of strings.
func strings1(raw json.RawMessage) []string {
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return []string{s}
	}
	return nil
}

// certificates reads X509Certificate2 values as ConvertTo-Json writes
// them (objects with RawData, a list of byte values or base64), a list of
// them, or base64 / PEM text, and returns them as PEM.
func certificates(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	var ders [][]byte
	var add func(json.RawMessage) error
	add = func(r json.RawMessage) error {
		var s string
		if json.Unmarshal(r, &s) == nil {
			if strings.HasPrefix(strings.TrimSpace(s), "-----") {
				certs, err := config.ParseCertificates(s)
				if err != nil {
					return err
				}
				for _, c := range certs {
					ders = append(ders, c.Raw)
				}
				return nil
			}
			if strings.HasPrefix(s, "System.Security.") {
				return fmt.Errorf("the certificate was written as %q: export with a greater -Depth", s)
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
			if err != nil {
				return fmt.Errorf("certificate is neither PEM nor base64: %w", err)
			}
			ders = append(ders, der)
			return nil
		}
		var list []json.RawMessage
		if json.Unmarshal(r, &list) == nil {
			for _, e := range list {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		}
		var obj struct {
			RawData json.RawMessage `json:"RawData"`
		}
		if err := json.Unmarshal(r, &obj); err != nil || len(obj.RawData) == 0 {
			return fmt.Errorf("a certificate without RawData")
		}
		var bs []int
		if json.Unmarshal(obj.RawData, &bs) == nil {
			der := make([]byte, len(bs))
			for i, b := range bs {
				if b < 0 || b > 255 {
					return fmt.Errorf("RawData holds %d, not a byte", b)
				}
				der[i] = byte(b)
			}
			ders = append(ders, der)
			return nil
		}
		return add(obj.RawData)
	}
	if err := add(raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, der := range ders {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	out := b.String()
	if out != "" {
		if _, err := config.ParseCertificates(out); err != nil {
			return "", err
		}
	}
	return out, nil
}
