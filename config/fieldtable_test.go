package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/internal/scaleconfig"
)

func TestSplitTenantPath(t *testing.T) {
	tests := []struct {
		path string
		i    int
		rest string
		ok   bool
	}{
		{"tenants[0]", 0, "", true},
		{"tenants[12].providers[0].issuer", 12, ".providers[0].issuer", true},
		{"tenants[007].id", 0, "", false}, // never written by the decoder
		{"tenants[-1].id", 0, "", false},
		{"tenants[x].id", 0, "", false},
		{"tenants[]", 0, "", false},
		{"tenants[", 0, "", false},
		{"tenants", 0, "", false},
		{"tenantsX[1]", 0, "", false},
		{"clients[1].id", 0, "", false},
		{"tenants[99999999999999999999].id", 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			i, rest, ok := splitTenantPath(tc.path)
			if ok != tc.ok || (ok && (i != tc.i || rest != tc.rest)) {
				t.Errorf("splitTenantPath(%q) = %d, %q, %v, want %d, %q, %v", tc.path, i, rest, ok, tc.i, tc.rest, tc.ok)
			}
		})
	}
}

// TestFieldTable_TenantFieldsInTheArena: the fields of tenants are kept in
// the table's arena, not as map keys (a map entry a field was a sixth of
// loading 100k tenants), and are found there with their lines, each
// tenant's own.
func TestFieldTable_TenantFieldsInTheArena(t *testing.T) {
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\nkeys:\n  secret: 0123456789abcdef0123456789abcdef\ntenants:\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  - id: t%d\n    domains: [t%d.example]\n    providers:\n      - id: p%d\n        type: oidc\n        issuer: https://idp%d.example\n        client_id: c\n        client_secret: s\n        name: ~\n", i, i, i, i)
	}
	c, err := Parse("f.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := range c.src.fields.other {
		if strings.HasPrefix(p, "tenants[") {
			t.Errorf("tenant field %q is a map key, want it in the arena", p)
		}
	}
	tests := []struct {
		path     string
		line     int
		explicit bool
	}{
		{"tenants", 4, true},
		{"tenants[0]", 5, true},
		{"tenants[1].domains[0]", 15, true},
		{"tenants[2].providers[0].issuer", 28, true},
		{"tenants[2].providers[0].name", 31, false}, // null: in the file, not given a value
		{"tenants[2].providers[0].nope", 26, false}, // not in the file: its parent's line
		{"tenants[3].id", 4, false},                 // no such tenant: the list's line
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := c.src.lineOf(tc.path); got != tc.line {
				t.Errorf("lineOf(%q) = %d, want %d", tc.path, got, tc.line)
			}
			if got := c.src.isExplicit(tc.path); got != tc.explicit {
				t.Errorf("isExplicit(%q) = %v, want %v", tc.path, got, tc.explicit)
			}
		})
	}
}

// TestFieldTable_RoomForTemplateTenants: the room a table makes for the
// tenants of a file is enough for tenants onboarded from one template
// (internal/scaleconfig's, which issue 21's 100k-tenant file is made of):
// a table that grows is copied whole, which at 100k tenants allocated
// 80 MB more while loading.
func TestFieldTable_RoomForTemplateTenants(t *testing.T) {
	var b bytes.Buffer
	if err := scaleconfig.Write(&b, scaleconfig.Options{Tenants: 3000, SharedIssuer: "https://login.idp.example"}); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	defer func(pm, pw int) { parallelMin, parseWays = pm, pw }(parallelMin, parseWays)
	parallelMin, parseWays = 0, 2
	c, err := Parse("scale.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(data[bytes.Index(data, []byte("\ntenants:\n")):], []byte{'\n'})
	fields, pathBytes := 0, 0
	for _, p := range c.src.tenantParts {
		fields += len(p.entries)
		pathBytes += len(p.arena)
	}
	if fields == 0 {
		t.Fatal("the tenants were not decoded in parts")
	}
	if room := lines * fieldsPerTwoLines / 2; fields > room {
		t.Errorf("%d tenant fields in %d lines, want at most the %d the tables make room for", fields, lines, room)
	}
	if room := lines * fieldPathBytesPerLine; pathBytes > room {
		t.Errorf("%d bytes of tenant field paths in %d lines, want at most the %d the tables make room for", pathBytes, lines, room)
	}
}
