package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// revalidate is what the admin API does with a change after startup
// (internal/assemble's Compiler): a copy of the file configuration with
// its tenants (providers copied) and more, defaults applied, validated.
func revalidate(c *Config, more ...Tenant) (*Config, string) {
	cp := *c
	cp.Tenants = nil
	for _, t := range c.Tenants {
		t.Providers = slices.Clone(t.Providers)
		cp.Tenants = append(cp.Tenants, t)
	}
	cp.Tenants = append(cp.Tenants, more...)
	cp.ApplyDefaults()
	return &cp, fmt.Sprint(cp.Validate())
}

// TestCompactSources_SameProblemsAfterStartup: after CompactSources (serve
// calls it once started), validating the configuration with another
// tenant, as an admin API change does, reports the same problems with
// the same text (a domain claimed twice names the line of the file's
// claim) and applies the same defaults, while most tenant fields' sources
// are gone; with the tenants decoded by one decoder and in parts.
func TestCompactSources_SameProblemsAfterStartup(t *testing.T) {
	data := tenantsYAML(23, "s", func(i int) string {
		if i == 5 {
			return "        scopes: [openid]\n    domains: [\"corp5.example\", \"*.corp5.example\"]\n"
		}
		return ""
	})
	data = []byte(strings.Replace(string(data), "    domains: [\"corp5.example\"]\n", "", 1))
	bad := Tenant{ID: "t3", Domains: []string{"*.corp5.example", "bad domain"},
		Providers: []Provider{{ID: "idp9", Type: "oidc", Issuer: "http://idp.example", ClientID: "x"}}}
	for _, parts := range []bool{false, true} {
		t.Run(fmt.Sprintf("parts=%v", parts), func(t *testing.T) {
			defer func(m, p int) { parallelDecodeMin, decodeParts = m, p }(parallelDecodeMin, decodeParts)
			parallelDecodeMin, decodeParts = 1<<30, 3
			if parts {
				parallelDecodeMin = 4
			}
			c, err := Parse("t.yaml", data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (c.src.tenantParts != nil) != parts {
				t.Fatalf("decoded in parts: %v, want %v", c.src.tenantParts != nil, parts)
			}
			wantCfg, want := revalidate(c, bad)
			if !strings.Contains(want, `"t5" (line `) || !strings.Contains(want, "tenants[23].providers[0].issuer") {
				t.Fatalf("Validate (before) = %s\nwant a domain claimed twice and a bad issuer", want)
			}
			before := 0
			each := func(s source, fn func(string, fieldSource)) {
				s.fields.each(fn)
				for _, m := range s.tenantParts {
					m.each(fn)
				}
			}
			each(c.src, func(string, fieldSource) { before++ })
			orig := c.src

			c.CompactSources()
			gotCfg, got := revalidate(c, bad)
			if got != want {
				t.Errorf("Validate after CompactSources =\n%s\nwant\n%s", got, want)
			}
			gotCfg.src, wantCfg.src = source{}, source{}
			if !reflect.DeepEqual(gotCfg, wantCfg) {
				t.Errorf("ApplyDefaults after CompactSources differs from before")
			}
			after := 0
			each(c.src, func(string, fieldSource) { after++ })
			if after*3 > before {
				t.Errorf("CompactSources kept %d of %d field sources, want under a third", after, before)
			}
			each(orig, func(path string, f fieldSource) {
				i, rel, inTenant := splitTenantPath(path)
				switch {
				case !inTenant, rel == "", f.empty, strings.HasPrefix(rel, ".domains[") && !strings.Contains(rel[1:], "."):
					if got := c.src.lineOf(path); got != int(f.line) {
						t.Errorf("lineOf(%q) = %d, want %d (kept)", path, got, f.line)
					}
				default:
					if got, want := c.src.lineOf(path), orig.lineOf(tenantsPath+"["+fmt.Sprint(i)+"]"); got != want {
						t.Errorf("lineOf(%q) = %d, want its tenant's line %d", path, got, want)
					}
				}
				if f.empty && !c.src.isExplicit(path) {
					t.Errorf("isExplicit(%q) = false after CompactSources: an explicit empty value was dropped", path)
				}
			})
		})
	}
}

// TestCompactSources_KeepsExplicitEmpty: the tenant fields given an empty
// value explicitly keep their flag, which defaults and checks read (an
// explicit "scopes: []" is refused, not replaced by the default scopes).
func TestCompactSources_KeepsExplicitEmpty(t *testing.T) {
	data := tenantsYAML(3, "s", func(i int) string {
		if i == 1 {
			return "        scopes: []\n"
		}
		return ""
	})
	c := &Config{}
	d := &decoder{src: source{file: "t.yaml"}, lookup: func(string) (string, bool) { return "", false }, maxVisits: maxVisits}
	root, err := d.document(data)
	if err != nil {
		t.Fatal(err)
	}
	d.sizeFields(root, 100)
	d.decode(root, reflect.ValueOf(c).Elem(), 0, 0)
	c.src = d.src
	const path = "tenants[1].providers[0].scopes"
	if !c.src.isExplicit(path) {
		t.Fatalf("isExplicit(%q) = false, want true", path)
	}
	c.CompactSources()
	if !c.src.isExplicit(path) {
		t.Errorf("isExplicit(%q) = false after CompactSources, want true", path)
	}
	if c.src.isExplicit("tenants[1].providers[0].issuer") {
		t.Errorf("isExplicit(issuer) = true after CompactSources: a non-empty field was kept")
	}
	if _, msg := revalidate(c); !strings.Contains(msg, `tenants[1].providers[0].scopes: must include "openid"`) {
		t.Errorf("Validate after CompactSources = %s, want the explicit empty scopes refused", msg)
	}
}
