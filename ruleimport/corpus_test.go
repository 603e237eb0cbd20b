package ruleimport

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/transform"
)

const (
	wsEmail   = wsClaims + "emailaddress"
	wsUPN     = wsClaims + "upn"
	wsName    = wsClaims + "name"
	msRole    = msClaims + "role"
	msGroupID = msClaims + "groupsid"
	xsGroup   = xsClaims + "Group"
	msWinName = msClaims + "windowsaccountname"
	msAuthn   = msClaims + "authenticationmethod"
)

// sample is an upstream identity and what the documentation says the
// rule set makes of it.
type sample struct {
	name     string
	upstream map[string]any
	// want is the whole output (the rules start from no claims, as AD FS
	// does); nil with denied.
	want   map[string]any
	denied bool
}

// evaluate imports a corpus file and runs it with realmgate's rule engine.
func evaluate(t *testing.T, file string, opts Options, samples []sample) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", file))
	if err != nil {
		t.Fatal(err)
	}
	rs, perr := Parse(string(src))
	if len(perr) > 0 {
		t.Fatalf("Parse(%s): %v", file, perr)
	}
	res := Convert(rs, opts)
	if len(res.Problems) > 0 {
		t.Fatalf("Convert(%s): problems %v", file, res.Problems)
	}
	rules := make([]transform.Rule, len(res.Rules))
	for i, r := range res.Rules {
		rules[i] = TransformRule(r)
	}
	eng, err := transform.Compile(nil, rules, transform.Options{Tenant: "contoso"})
	if err != nil {
		t.Fatalf("Compile(%s): %v", file, err)
	}
	for _, s := range samples {
		t.Run(file+"/"+s.name, func(t *testing.T) {
			out, err := eng.Apply(context.Background(), transform.Input{
				Upstream: s.upstream, Claims: map[string]any{}, Tenant: "contoso", IdP: "contoso-adfs", Client: "app"})
			if s.denied {
				if !errors.Is(err, transform.ErrDenied) {
					t.Fatalf("Apply = %v, %v; want denied", out, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !reflect.DeepEqual(out, s.want) {
				t.Errorf("Apply(%v)\n got %#v\nwant %#v", s.upstream, out, s.want)
			}
		})
	}
}

func list(v ...any) []any { return v }

// TestCorpusPassThroughOrFilter: "Pass through all claim values", "Pass
// through only claim values that start with a specific value", "the
// following rule will accept all e-mail claims with value
// johndoe@fabrikam.com", "accept all e-mail claims not issued by the local
// federation server that have a suffix of boeing.com".
func TestCorpusPassThroughOrFilter(t *testing.T) {
	evaluate(t, "pass-through-or-filter.txt", Options{}, []sample{
		{name: "SAML attributes", upstream: map[string]any{
			wsUPN: "johndoe@fabrikam.com", wsEmail: "johndoe@fabrikam.com", xsGroup: list("Purchasing", "Sales", "Purchasers")},
			want: map[string]any{wsUPN: list("johndoe@fabrikam.com"), "groups": list("Purchasing", "Purchasers"), "email": "johndoe@fabrikam.com"}},
		{name: "OIDC claims by their short names", upstream: map[string]any{
			"upn": "nick@boeing.com", "email": "nick@boeing.com", "groups": list("Sales")},
			want: map[string]any{wsUPN: list("nick@boeing.com"), "email": "nick@boeing.com"}},
		{name: "an e-mail address no rule passes", upstream: map[string]any{wsEmail: "jane@contoso.com"},
			want: map[string]any{}},
	})
}

// TestCorpusTransform: group claims sent as role claims; Purchasers for
// Admins; the e-mail suffix sales.corp.fabrikam.com becomes fabrikam.com;
// role Administrators becomes root; DOMAIN\user becomes FABRIKAM\user.
func TestCorpusTransform(t *testing.T) {
	evaluate(t, "transform.txt", Options{}, []sample{
		{name: "all rules", upstream: map[string]any{
			xsGroup: list("Admins", "Staff"), msRole: "Administrators",
			wsEmail: "Frank@Sales.Corp.Fabrikam.com", wsName: `SALES\frank`},
			want: map[string]any{
				// Rule 4 sees the roles rule 1 issued and the upstream's
				// Administrators; the upstream role itself is not passed on.
				"roles":  list("Admins", "Staff", "root"),
				"groups": list("Purchasers"),
				"email":  "Frank@fabrikam.com",
				"name":   `FABRIKAM\frank`,
			}},
		{name: "nothing to transform", upstream: map[string]any{wsEmail: "ann@fabrikam.com"}, want: map[string]any{}},
	})
}

// TestCorpusGroupMembership: "issues group claims for a user based on an
// incoming group SID"; a role Admin for Domain Admins.
func TestCorpusGroupMembership(t *testing.T) {
	evaluate(t, "group-membership.txt", Options{}, []sample{
		{name: "Domain Admins", upstream: map[string]any{
			msGroupID: list("S-1-5-21-397933417-626991126-188441444-512", "S-1-5-21-397933417-626991126-188441444-513")},
			want: map[string]any{"groups": list("administrators"), "roles": list("Admin")}},
		{name: "Purchasing by the groupsid alias", upstream: map[string]any{
			"groupsid": list("S-1-5-21-397933417-626991126-188441444-1190")},
			want: map[string]any{"roles": list("Buyer")}},
		{name: "no listed group", upstream: map[string]any{msGroupID: "S-1-5-21-1-2-3-513"}, want: map[string]any{}},
	})
}

// TestCorpusPermitDeny: users with a group claim Domain Admins are
// permitted; Domain Users are denied, and "the deny result overrides the
// permit result"; a user no rule permits is denied; the authZ claim only
// for editors who used Windows authentication.
func TestCorpusPermitDeny(t *testing.T) {
	evaluate(t, "permit-deny.txt", Options{}, []sample{
		{name: "permitted", upstream: map[string]any{xsGroup: list("Domain Admins")}, want: map[string]any{}},
		{name: "deny overrides permit", upstream: map[string]any{xsGroup: list("Domain Admins", "Domain Users")}, denied: true},
		{name: "not permitted", upstream: map[string]any{xsGroup: list("Sales")}, denied: true},
		{name: "no claims at all", upstream: map[string]any{}, denied: true},
		{name: "editor with Windows authentication", upstream: map[string]any{
			xsGroup: list("domain admins", "editors"), msAuthn: "urn:federation:authentication:windows"},
			want: map[string]any{xsClaims + "authZ": list("Granted")}},
		{name: "editor with a password", upstream: map[string]any{
			xsGroup: list("Domain Admins", "editors"), msAuthn: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
			want: map[string]any{}},
	})
}

// TestCorpusCustom: "the output for first name {Frank, Alan} and last
// names {Miller, Shen} is {Frank Miller, Frank Shen, Alan Miller, Alan
// Shen}"; a manager claim only for users with direct reports (add puts
// Reports in the input claim set only).
func TestCorpusCustom(t *testing.T) {
	evaluate(t, "custom.txt", Options{}, []sample{
		{name: "cartesian product", upstream: map[string]any{
			"http://exampleschema/firstname": list("Frank", "Alan"), "http://exampleschema/lastname": list("Miller", "Shen")},
			want: map[string]any{"http://exampleschema/name": list("Frank Miller", "Frank Shen", "Alan Miller", "Alan Shen")}},
		{name: "manager", upstream: map[string]any{wsName: `CONTOSO\frank`, "http://exampleschema/directreport": list("ann", "bob")},
			want: map[string]any{xsClaims + "ismanager": list("true")}},
		{name: "not a manager", upstream: map[string]any{wsName: `CONTOSO\ann`}, want: map[string]any{}},
	})
}

// TestCorpusClaimRuleLanguage: the examples of "The Role of the Claim Rule
// Language", including add (Editor reaches the next rule, not the output)
// and issue (each issued claim is also input to later rules).
func TestCorpusClaimRuleLanguage(t *testing.T) {
	evaluate(t, "claim-rule-language.txt", Options{}, []sample{
		{name: "every rule", upstream: map[string]any{
			"http://test/name": "Terry", "http://test/email": "terry@fabrikam.com", "Name": "domain user",
			"http://test/employee": "true", "http://test/group": list("Sales", "Ops")},
			want: map[string]any{
				"http://test/role":  list("employee", "Sales", "Ops"),
				"http://test/name":  list("Terry"),
				"http://test/email": list("terry@fabrikam.com"),
				"Greeting":          list("Hello domain user", "Hello"),
			}},
		{name: "no e-mail, not an editor", upstream: map[string]any{"http://test/name": "Kim", "Name": "guest", "http://test/email": "kim@contoso.com"},
			want: map[string]any{
				"http://test/role": list("employee"),
				"http://test/name": list("Kim"),
				"Greeting":         list("Hello guest"),
			}},
	})
}

// TestCorpusLDAPAttributes: with --ldap-from-upstream, "look up attribute
// values ... from the company and department attributes and then send
// these values", the groups (tokenGroups), the mail of the user found by
// sAMAccountName, title and display name of the user found by mail.
func TestCorpusLDAPAttributes(t *testing.T) {
	evaluate(t, "ldap-attributes.txt", Options{LDAPFromUpstream: true}, []sample{
		{name: "all attributes", upstream: map[string]any{
			msWinName: `CONTOSO\frank`, xsClaims + "company": "Contoso", xsClaims + "department": "Finance",
			xsGroup: list("Finance-Admins"), wsEmail: "frank@contoso.com",
			wsClaims + "title": "CFO", wsClaims + "displayname": "Frank Miller"},
			want: map[string]any{
				xsClaims + "company": list("Contoso"), xsClaims + "department": list("Finance"),
				"groups": list("Finance-Admins"), "email": "frank@contoso.com",
				wsClaims + "title": list("CFO"), wsClaims + "displayname": list("Frank Miller"),
			}},
		{name: "no Windows account name", upstream: map[string]any{wsEmail: "ann@contoso.com", wsClaims + "title": "CEO"},
			want: map[string]any{wsClaims + "title": list("CEO")}},
	})
}

// TestCorpusLDAPWithoutFlag: without --ldap-from-upstream each attribute
// store query is reported at the position of its store = ..., with the
// way out.
func TestCorpusLDAPWithoutFlag(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", "ldap-attributes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := Parse(string(src))
	res := Convert(rs, Options{})
	var got []string
	for _, p := range res.Problems {
		got = append(got, p.Pos.String())
		if !strings.Contains(p.Hint, "--ldap-from-upstream") {
			t.Errorf("problem %v: hint without --ldap-from-upstream", p)
		}
	}
	if want := []string{"14:11", "18:10", "22:10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %v, want %v (%v)", got, want, res.Problems)
	}
	if len(res.Rules) != 0 {
		t.Errorf("rules %v, want none", res.Rules)
	}
}

// TestCorpusUnconvertible: every construct of unconvertible.txt is
// reported at its line and column, with a suggestion, and none is
// silently dropped.
func TestCorpusUnconvertible(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", "unconvertible.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rs, perr := Parse(string(src))
	res := Convert(rs, Options{})
	all := append(perr, res.Problems...)
	SortProblems(all)
	want := []struct{ pos, msg string }{
		{"15:44", `LDAP query of attribute store "Enterprise AD Attribute Store" (mail -> http://test/email) cannot be converted`},
		{"16:43", "SQL attribute store query"},
		{"17:19", `Issuer == "MSFT" names a claims provider`},
		{"19:81", "SQL attribute store query"},
		{"20:76", `expected a claim property`},
		{"22:11", `opaque identifier store "_OpaqueIdStore"`},
		{"23:12", "typographic quote"},
		{"23:86", "typographic quote"},
		{"23:137", "typographic quote"},
		{"24:116", `expected "," or "]" in the claim selector, found identifier "value"`},
		{"25:143", "unknown function toupper"},
		{"26:82", "RE2"},
	}
	if len(all) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(all), len(want), all)
	}
	for i, w := range want {
		if i >= len(all) {
			break
		}
		p := all[i]
		if p.Pos.String() != w.pos || !strings.Contains(p.String(), w.msg) {
			t.Errorf("problem %d = %s, want at %s containing %q", i, p, w.pos, w.msg)
		}
		if p.Hint == "" {
			t.Errorf("problem %d (%s) has no suggestion", i, p)
		}
	}
	if len(res.Rules) != 0 {
		t.Errorf("rules %v, want none: every rule of the file is unconvertible", res.Rules)
	}
}

// TestCorpusGroupsToRoles is the example of docs/adfs-migration.md: group
// claims sent as role claims, and a role root for whoever the first rule
// made an Admins role.
func TestCorpusGroupsToRoles(t *testing.T) {
	evaluate(t, "groups-to-roles.txt", Options{}, []sample{
		{name: "admin", upstream: map[string]any{xsGroup: list("Admins", "Staff")}, want: map[string]any{"roles": list("Admins", "Staff", "root")}},
		{name: "OIDC groups", upstream: map[string]any{"groups": list("Staff")}, want: map[string]any{"roles": list("Staff")}},
	})
}

// TestDocExample: the converted rules docs/adfs-migration.md shows are
// what import-adfs prints for testdata/adfs/groups-to-roles.txt.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "adfs-migration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- doctest: fragment -->\n```yaml\n")
	if !ok {
		t.Fatal("docs/adfs-migration.md has no YAML fragment")
	}
	shown, _, _ := strings.Cut(after, "```")
	src, err := os.ReadFile(filepath.Join("..", "testdata", "adfs", "groups-to-roles.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := Parse(string(src))
	out, err := Convert(rs, Options{}).YAML("")
	if err != nil {
		t.Fatal(err)
	}
	_, rules, _ := strings.Cut(string(out), "rules:\n")
	var want strings.Builder
	for _, l := range strings.SplitAfter(rules, "\n") {
		want.WriteString(strings.TrimPrefix(l, "  "))
	}
	if shown != want.String() {
		t.Errorf("docs/adfs-migration.md shows\n%s\nimport-adfs prints\n%s", shown, want.String())
	}
}
