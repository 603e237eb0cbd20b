package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
)

// yamlRule is the configuration shape of a rule (see realmgate.example.yaml);
// the config package decodes the same shape.
type yamlRule struct {
	Name   string            `yaml:"name"`
	If     string            `yaml:"if"`
	Set    map[string]string `yaml:"set"`
	Add    map[string]string `yaml:"add"`
	Remove []string          `yaml:"remove"`
	Map    *struct {
		From    string            `yaml:"from"`
		To      string            `yaml:"to"`
		Table   map[string]string `yaml:"table"`
		Default string            `yaml:"default"`
	} `yaml:"map"`
	Deny string `yaml:"deny"`
	Stop bool   `yaml:"stop"`
}

func (y yamlRule) rule() Rule {
	r := Rule{Name: y.Name, If: y.If, Set: SortedAssignments(y.Set), Add: SortedAssignments(y.Add), Remove: y.Remove, Deny: y.Deny, Stop: y.Stop}
	if y.Map != nil {
		r.Map = &Map{From: y.Map.From, To: y.Map.To, Table: y.Map.Table, Default: y.Map.Default}
	}
	return r
}

// A recipe's block may carry other markers (the doc-block test's) between
// its name and its fence.
var recipeRE = regexp.MustCompile("(?s)<!-- recipe: ([a-z0-9-]+) -->\\s*(?:<!--[^>]*-->\\s*)*```yaml\\n(.*?)```")

// docRecipes reads the recipes of docs/rules.md.
func docRecipes(t *testing.T) map[string][]Rule {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "rules.md"))
	if err != nil {
		t.Fatalf("reading docs/rules.md: %v", err)
	}
	out := map[string][]Rule{}
	for _, m := range recipeRE.FindAllSubmatch(doc, -1) {
		var yr []yamlRule
		dec := yaml.NewDecoder(bytes.NewReader(m[2]))
		dec.KnownFields(true)
		if err := dec.Decode(&yr); err != nil {
			t.Fatalf("recipe %s: decoding YAML: %v", m[1], err)
		}
		rules := make([]Rule, len(yr))
		for i, y := range yr {
			rules[i] = y.rule()
		}
		out[string(m[1])] = rules
	}
	if len(out) == 0 {
		t.Fatal("no recipes found in docs/rules.md")
	}
	return out
}

func loadIdentity(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// absent marks a claim that must not be in the output.
type absentClaim struct{}

var absent = absentClaim{}

// TestRecipes runs every recipe of docs/rules.md over realistic AD FS and
// Entra ID identities.
func TestRecipes(t *testing.T) {
	recipes := docRecipes(t)
	const (
		adfs       = "adfs_identity.json"
		contractor = "adfs_contractor.json"
		entraOIDC  = "entra_oidc_identity.json"
		entraSAML  = "entra_saml_identity.json"
	)
	tests := []struct {
		recipe   string
		identity string
		client   string
		want     map[string]any
		denied   string
	}{
		{recipe: "adfs-pass-through", identity: adfs, want: map[string]any{"upn": "Alice.Smith@contoso.com", "email": "Alice.Smith@Contoso.com"}},
		{recipe: "adfs-pass-through", identity: contractor, want: map[string]any{"upn": "bob.jones@contoso.com", "email": absent}},
		{recipe: "adfs-filter", identity: adfs, want: map[string]any{"email": "alice.smith@contoso.com", "groups": []any{"Finance-Admins"}}},
		{recipe: "adfs-filter", identity: contractor, want: map[string]any{"email": absent, "groups": []any{}}},
		{recipe: "adfs-filter", identity: entraOIDC, want: map[string]any{"email": "megan.bowen@contoso.com", "groups": []any{}}},
		{recipe: "adfs-transform", identity: adfs, want: map[string]any{"preferred_username": "alice.smith", "email": "alice.smith@contoso.example"}},
		{recipe: "adfs-transform", identity: contractor, want: map[string]any{"preferred_username": "bob.jones", "email": absent}},
		{recipe: "adfs-group-membership", identity: adfs, want: map[string]any{"roles": []any{"admin", "vpn"}}},
		{recipe: "adfs-group-membership", identity: contractor, want: map[string]any{"roles": []any{"contractor"}}},
		{recipe: "adfs-group-membership", identity: entraOIDC, want: map[string]any{"roles": absent}},
		{recipe: "adfs-ldap-attributes", identity: adfs, want: map[string]any{"given_name": "Alice", "family_name": "Smith", "department": "Finance", "name": "Alice Smith"}},
		{recipe: "adfs-ldap-attributes", identity: contractor, want: map[string]any{"department": absent, "name": "Bob Jones"}},
		{recipe: "adfs-permit", identity: adfs, client: "payroll", want: map[string]any{}},
		{recipe: "adfs-permit", identity: contractor, client: "payroll", denied: "Only Finance administrators may use Payroll."},
		{recipe: "adfs-permit", identity: contractor, client: "notes-app", want: map[string]any{}},
		{recipe: "adfs-deny", identity: adfs, want: map[string]any{}},
		{recipe: "adfs-deny", identity: contractor, denied: "Contractors cannot sign in to this application."},
		{recipe: "adfs-deny", identity: entraOIDC, denied: "Your account is not permitted to sign in."},
		{recipe: "entra-join", identity: entraOIDC, want: map[string]any{"mail_alias": "MeganB@contoso.com"}},
		{recipe: "entra-extract-mail-prefix", identity: entraOIDC, want: map[string]any{"preferred_username": "Megan.Bowen"}},
		{recipe: "entra-extract-mail-prefix", identity: entraSAML, want: map[string]any{"preferred_username": "Megan.Bowen"}},
		{recipe: "entra-to-lower-upper", identity: entraSAML, want: map[string]any{"email": "megan.bowen@contoso.com", "name": "MEGAN BOWEN"}},
		{recipe: "entra-regex-replace", identity: entraOIDC, want: map[string]any{"employee_number": "4211"}},
		{recipe: "entra-regex-replace", identity: entraSAML, want: map[string]any{"employee_number": absent}},
		{recipe: "entra-extract", identity: entraOIDC, want: map[string]any{"upn_domain": "contoso.onmicrosoft.com"}},
		{recipe: "entra-extract", identity: adfs, want: map[string]any{"upn_domain": "contoso.com"}},
		{recipe: "entra-group-filter", identity: entraOIDC, want: map[string]any{"groups": []any{"editors", "viewers"}, "roles": []any{"admin", "editor"}}},
		{recipe: "entra-group-filter", identity: entraSAML, want: map[string]any{"groups": []any{}, "roles": []any{"admin", "editor"}}},
		{recipe: "entra-if-empty", identity: entraOIDC, want: map[string]any{"department": "Unassigned", "job_title": "Marketing Manager"}},
		{recipe: "entra-if-empty", identity: adfs, want: map[string]any{"department": "Finance", "job_title": absent}},
	}
	tested := map[string]bool{}
	for _, tc := range tests {
		tested[tc.recipe] = true
		t.Run(tc.recipe+"/"+tc.identity+"/"+tc.client, func(t *testing.T) {
			rules, ok := recipes[tc.recipe]
			if !ok {
				t.Fatalf("recipe %q is not in docs/rules.md", tc.recipe)
			}
			e := mustCompile(t, nil, rules, Options{Tenant: "contoso"})
			base := map[string]any{"sub": "b3BhcXVl", "tid": "contoso", "idp": "contoso-adfs"}
			out, err := e.Apply(context.Background(), Input{
				Upstream: loadIdentity(t, tc.identity), Claims: base,
				Tenant: "contoso", IdP: "contoso-adfs", Client: tc.client,
			})
			if tc.denied != "" {
				var de *DeniedError
				if !errors.As(err, &de) || de.Message != tc.denied {
					t.Fatalf("Apply error = %v, want deny %q", err, tc.denied)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for k, v := range base {
				if out[k] != v {
					t.Errorf("claim %s = %v, want %v (untouched)", k, out[k], v)
				}
			}
			for k, want := range tc.want {
				got, ok := out[k]
				if want == absent {
					if ok {
						t.Errorf("claim %s = %#v, want it absent", k, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("claim %s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
	var untested []string
	for name := range recipes {
		if !tested[name] {
			untested = append(untested, name)
		}
	}
	sort.Strings(untested)
	if len(untested) > 0 {
		t.Errorf("recipes in docs/rules.md without a test: %v", untested)
	}
}
