package admin_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/users"
)

// echoRoutes returns [method, path] of every API route the service
// registered, leaving out echo's own catch-alls for the group.
func echoRoutes(t *testing.T, svc *admin.Service) [][2]string {
	t.Helper()
	e, ok := svc.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("Handler() is %T, want *echo.Echo", svc.Handler())
	}
	var out [][2]string
	for _, r := range e.Routes() {
		if strings.HasSuffix(r.Path, "/*") || r.Path == "/v1" || !slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH"}, r.Method) {
			continue
		}
		out = append(out, [2]string{r.Method, r.Path})
	}
	return out
}

type openAPIDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Info       struct{ Title, Version string } `yaml:"info"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components map[string]map[string]yaml.Node `yaml:"components"`
	Security   []map[string][]string           `yaml:"security"`
}

type operation struct {
	OperationID string                    `yaml:"operationId"`
	Parameters  []map[string]any          `yaml:"parameters"`
	Responses   map[string]map[string]any `yaml:"responses"`
	Security    *[]map[string][]string    `yaml:"security"`
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPI_Valid checks the document's structure: OpenAPI 3.1, every
// $ref resolves, operation ids are unique, every operation has responses
// with valid status codes, and each path's {parameters} are declared as
// required path parameters and no others.
func TestOpenAPI_Valid(t *testing.T) {
	var doc openAPIDoc
	if err := yaml.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") || doc.Info.Title == "" || doc.Info.Version == "" {
		t.Fatalf("openapi %q, info %+v: want 3.1.x with a title and version", doc.OpenAPI, doc.Info)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(admin.OpenAPI, &root); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i++ {
			if n.Kind == yaml.MappingNode && i%2 == 0 && n.Content[i].Value == "$ref" {
				refs = append(refs, n.Content[i+1].Value)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if len(refs) < 50 {
		t.Fatalf("found only %d $refs: the walk is broken", len(refs))
	}
	for _, r := range refs {
		parts := strings.Split(strings.TrimPrefix(r, "#/"), "/")
		if len(parts) != 3 || parts[0] != "components" {
			t.Errorf("$ref %q is not #/components/<kind>/<name>", r)
			continue
		}
		if _, ok := doc.Components[parts[1]][parts[2]]; !ok {
			t.Errorf("$ref %q resolves to nothing", r)
		}
	}
	for _, s := range doc.Security {
		for name := range s {
			if _, ok := doc.Components["securitySchemes"][name]; !ok {
				t.Errorf("security scheme %q is not defined", name)
			}
		}
	}
	paramByRef := func(p map[string]any) (name, in string, required bool) {
		if ref, ok := p["$ref"].(string); ok {
			node := doc.Components["parameters"][ref[strings.LastIndex(ref, "/")+1:]]
			var m map[string]any
			_ = node.Decode(&m)
			p = m
		}
		name, _ = p["name"].(string)
		in, _ = p["in"].(string)
		required, _ = p["required"].(bool)
		return
	}
	ids := map[string]string{}
	for path, item := range doc.Paths {
		var shared []map[string]any
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&shared); err != nil {
				t.Fatal(err)
			}
		}
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			if !slices.Contains([]string{"get", "post", "put", "delete", "patch"}, method) {
				t.Errorf("%s: unknown method", where)
				continue
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q used by %s and %s", op.OperationID, other, where)
			}
			ids[op.OperationID] = where
			if len(op.Responses) == 0 {
				t.Errorf("%s has no responses", where)
			}
			for code := range op.Responses {
				if !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(code) {
					t.Errorf("%s: response %q is not a status code", where, code)
				}
			}
			declared := map[string]bool{}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				if name, in, req := paramByRef(p); in == "path" {
					if !req {
						t.Errorf("%s: path parameter %s is not required", where, name)
					}
					declared[name] = true
				}
			}
			inPath := map[string]bool{}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				inPath[m[1]] = true
				if !declared[m[1]] {
					t.Errorf("%s: {%s} is not declared", where, m[1])
				}
			}
			for name := range declared {
				if !inPath[name] {
					t.Errorf("%s declares path parameter %s that is not in the path", where, name)
				}
			}
		}
	}
}

// TestOpenAPI_MatchesRoutes: the document lists exactly the routes echo serves.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	var doc openAPIDoc
	if err := yaml.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	served := map[string]bool{}
	for _, r := range echoRoutes(t, a.svc) {
		p := regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(r[1], "{$1}")
		served[r[0]+" "+p] = true
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %s is served but not in openapi.yaml", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.yaml documents %s, which is not served", r)
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes served: %v", len(served), served)
	}
	// The API serves the same document, without a token.
	rec := a.call(t, "", "GET", "/v1/openapi.yaml", nil, nil)
	if rec != http.StatusOK {
		t.Fatalf("GET /v1/openapi.yaml = %d, want 200", rec)
	}
	resp, err := a.srv.Client().Get(a.srv.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("Content-Type = %q, want application/yaml", ct)
	}
}

// TestOpenAPI_SchemasMatchModel: each documented schema lists exactly the
// JSON fields of the Go type the API reads and writes.
func TestOpenAPI_SchemasMatchModel(t *testing.T) {
	var doc openAPIDoc
	if err := yaml.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Tenant": admin.Tenant{}, "Domain": admin.Domain{}, "Provider": admin.Provider{}, "Rule": admin.Rule{},
		"MapRule": admin.MapRule{}, "Member": admin.Member{}, "Client": admin.Client{}, "BatchRequest": admin.BatchRequest{},
		"DryRunRequest": admin.DryRunRequest{}, "SampleIdentity": admin.SampleIdentity{}, "DryRunResult": admin.DryRunResult{},
		"TraceStep": admin.TraceStep{}, "Onboarding": admin.Onboarding{},
		"Impersonation": config.Impersonation{}, "TenantRateLimits": config.TenantRateLimits{},
		"User": users.User{}, "UserPage": admin.UserPage{}, "NewUser": admin.NewUser{}, "TenantDirectory": config.TenantDirectory{},
		"SAMLApp": config.SAMLApp{}, "SAMLEndpoint": config.SAMLEndpoint{}, "SAMLLogoutEndpoint": config.SAMLLogoutEndpoint{},
		"SAMLAttribute": config.SAMLAttribute{},
		"Access":        config.Access{}, "AccessRole": config.AccessRole{}, "NewAccessGrant": admin.NewAccessGrant{},
		"AccessDecision": admin.AccessDecision{}, "AccessGrant": broker.AccessGrant{}, "AccessGrantList": admin.AccessGrantList{},
		"TenantAccess": config.TenantAccess{}, "AccessPolicy": config.AccessPolicy{}, "ConditionalResult": admin.ConditionalResult{}, "Consent": admin.ConsentView{},
		"Branding": config.Branding{}, "LogoUpload": admin.LogoUpload{},
	} {
		t.Run(name, func(t *testing.T) {
			node, ok := doc.Components["schemas"][name]
			if !ok {
				t.Fatalf("schema %s is missing", name)
			}
			var schema struct {
				Properties map[string]any `yaml:"properties"`
			}
			if err := node.Decode(&schema); err != nil {
				t.Fatal(err)
			}
			var documented, fields []string
			for p := range schema.Properties {
				documented = append(documented, p)
			}
			fields = jsonFields(reflect.TypeOf(v))
			slices.Sort(documented)
			slices.Sort(fields)
			if !slices.Equal(documented, fields) {
				t.Errorf("schema %s has %v, Go type %T has %v", name, documented, v, fields)
			}
		})
	}
}

// jsonFields are the names encoding/json writes for a struct type: its
// tagged fields and those of embedded structs, a shallower field hiding a
// deeper one of the same name (admin.Tenant's domains hide config.Tenant's).
func jsonFields(typ reflect.Type) []string {
	depth := map[string]int{}
	var walk func(t reflect.Type, d int)
	walk = func(t reflect.Type, d int) {
		for f := range t.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, d+1)
				continue
			}
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			if old, ok := depth[tag]; !ok || d < old {
				depth[tag] = d
			}
		}
	}
	walk(typ, 0)
	return slices.Collect(maps.Keys(depth))
}

// TestModel_DomainsShadowConfig: an API tenant's domains are objects with
// their verification; the embedded configuration model's list of names
// neither appears in JSON nor takes the input.
func TestModel_DomainsShadowConfig(t *testing.T) {
	in := admin.Tenant{Tenant: config.Tenant{ID: "acme", Domains: []string{"hidden.test"}},
		Domains: []admin.Domain{{Name: "acme.test", Verified: true}, {Name: "new.test"}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hidden.test") || !strings.Contains(string(b), `"domains":[{"name":"acme.test","verified":true}`) {
		t.Errorf("Marshal = %s, want the domain objects only", b)
	}
	var out admin.Tenant
	dec := json.NewDecoder(strings.NewReader(`{"id":"acme","domains":[{"name":"acme.test","verified":true},{"name":"new.test"}]}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Domains) != 2 || out.Tenant.Domains != nil {
		t.Errorf("Unmarshal: Domains %+v, config domains %v, want 2 domain objects and no names", out.Domains, out.Tenant.Domains)
	}
	if got, probs := out.Config(); !slices.Equal(got.Domains, []string{"acme.test"}) || len(probs) != 0 {
		t.Errorf("Config() = domains %v, problems %v, want the verified one only", got.Domains, probs)
	}
}
