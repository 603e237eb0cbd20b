package config

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// parseFusedAndNot parses data in parts (parse and decode), with the
// tenants decoded while they are parsed and without (the tree first).
func parseFusedAndNot(t *testing.T, data []byte, env map[string]string) (fused, tree *Config, fusedErr, treeErr error) {
	t.Helper()
	defer func(pm, pw, dm, dp int, fuse bool) {
		parallelMin, parseWays, parallelDecodeMin, decodeParts, fuseDecode = pm, pw, dm, dp, fuse
	}(parallelMin, parseWays, parallelDecodeMin, decodeParts, fuseDecode)
	parallelMin, parseWays, parallelDecodeMin, decodeParts = 0, 3, 4, 3
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fuseDecode = false
	tree, treeErr = Parse("t.yaml", data, lookup)
	fuseDecode = true
	fused, fusedErr = Parse("t.yaml", data, lookup)
	return fused, tree, fusedErr, treeErr
}

// TestFusedDecode_SameAsTree: a tenants list decoded while it is parsed
// gives what decoding the parsed tree gives (TestDecodeTenantsParallel_SameAsOneDecoder
// compares that with one decoder): the same values, the same line and
// "given" flag for every field path, the same problems in the same order,
// also when the parts give the list back (the node budget) or it has a
// ${VAR} (never decoded while parsed).
func TestFusedDecode_SameAsTree(t *testing.T) {
	env := map[string]string{"SECRET": "s$3cret", "NAME0": "a", "NAME1": "b", "NAME2": "c", "NAME3": "d"}
	bomb := "    b0: &b0 {name: x}\n" // anchors in unknown fields, merged into a rule: 10^6 visits
	for i := 1; i < 8; i++ {
		bomb += fmt.Sprintf("    b%d: &b%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*b%d, ", i-1), 10), ", "))
	}
	bomb += "    rules:\n      - <<: *b7\n"
	tests := []struct {
		name    string
		extra   func(i int) string
		valid   bool
		mention string
	}{
		{"valid", func(i int) string {
			if i%3 == 0 {
				return "        scopes: [openid, email]\n    name: Tenant $$ 1\n"
			}
			return "    subdomain: \"\"\n"
		}, true, ""},
		{"${VAR} in tenants", func(i int) string { return fmt.Sprintf("    name: ${NAME%d}\n", i%4) }, true, ""},
		{"problems in many tenants", func(i int) string {
			switch i % 6 {
			case 1:
				return "    colour: blue\n"
			case 2:
				return "        clock_skew: fifteen\n"
			case 3:
				return "    domains: [\"corp1.example\"]\n" // defined twice, and a domain of tenant 1
			case 4:
				return "    providers: {}\n"
			}
			return ""
		}, false, ""},
		{"anchors and merge keys inside a tenant (yaml.v3)", func(i int) string {
			return fmt.Sprintf("    base%d: &b%d {x: 1}\n", i, i)
		}, false, ""},
		{"the node budget: the parts give the list back", func(i int) string {
			if i == 17 {
				return bomb
			}
			return ""
		}, false, "document too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fused, tree, fusedErr, treeErr := parseFusedAndNot(t, tenantsYAML(23, "s$$3cret", tc.extra), env)
			if (treeErr == nil) != tc.valid {
				t.Fatalf("Parse (tree) = %v, want valid %v", treeErr, tc.valid)
			}
			if fmt.Sprint(fusedErr) != fmt.Sprint(treeErr) {
				t.Fatalf("Parse (fused) = %v\nwant (tree) %v", fusedErr, treeErr)
			}
			if tc.mention != "" && !strings.Contains(fmt.Sprint(treeErr), tc.mention) {
				t.Fatalf("Parse (tree) = %v, want it to mention %q", treeErr, tc.mention)
			}
			if !tc.valid {
				fp, _ := fusedErr.(*ValidationError)
				tp, _ := treeErr.(*ValidationError)
				if fp == nil || tp == nil || !reflect.DeepEqual(fp.Problems, tp.Problems) {
					t.Fatalf("problems (fused) = %+v\nwant %+v", fp, tp)
				}
				return
			}
			sameSources(t, "fused", fused.src, tree.src)
			fused.src, tree.src = source{}, source{}
			if !reflect.DeepEqual(fused, tree) {
				t.Errorf("config decoded while parsed differs from the tree's")
			}
		})
	}
}

// TestFusedDecode_NodesNotKept: decoding a large tenants list while it is
// parsed does not keep the nodes of the whole list: a load allocates
// less than two thirds of what it did with the tree of the list first
// (about half at 4,000 tenants; the nodes were 0.8 of a 100k-tenant
// file's 1.7 GB peak). Bytes allocated do not depend on the machine's load.
func TestFusedDecode_NodesNotKept(t *testing.T) {
	data := tenantsYAML(4000, "s", func(int) string { return "" })
	defer func(pm, pw, dm, dp int, fuse bool) {
		parallelMin, parseWays, parallelDecodeMin, decodeParts, fuseDecode = pm, pw, dm, dp, fuse
	}(parallelMin, parseWays, parallelDecodeMin, decodeParts, fuseDecode)
	parallelMin, parseWays, parallelDecodeMin, decodeParts = 0, 2, 2000, 2
	allocated := func(fuse bool) uint64 {
		fuseDecode = fuse
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := Parse("t.yaml", data, nil); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	tree, fused := allocated(false), allocated(true)
	t.Logf("4000 tenants: %d bytes allocated with the tree first, %d decoded while parsed", tree, fused)
	if fused*3 > tree*2 {
		t.Errorf("Parse allocated %d bytes decoding while parsing, want under 2/3 of %d (the tree first)", fused, tree)
	}
}

// TestParse_ValuesDoNotKeepTheText: a value read from a large file is a
// copy, not a substring of the text the fast path parsed (one string per
// part), which would stay alive, whole, as long as any value of the part
// did: one tenant id kept after the load keeps a few bytes, not the file.
func TestParse_ValuesDoNotKeepTheText(t *testing.T) {
	data := tenantsYAML(4000, "s", func(int) string { return "" })
	defer func(pm, pw int) { parallelMin, parseWays = pm, pw }(parallelMin, parseWays)
	parallelMin, parseWays = 0, 2
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	c, err := Parse("t.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := c.Tenants[len(c.Tenants)-1].ID
	c = nil
	kept := int64(heap()) - int64(before)
	t.Logf("kept %d bytes after the load for tenant %q (the file is %d bytes)", kept, id, len(data))
	if kept > int64(len(data)/8) {
		t.Errorf("one tenant id kept %d bytes alive, want under %d (an eighth of the file)", kept, len(data)/8)
	}
	runtime.KeepAlive(id)
	runtime.KeepAlive(data)
}

// eachSource calls fn with every field source of s, its tenant parts'
// included.
func eachSource(s source, fn func(string, fieldSource)) {
	s.fields.each(fn)
	for _, m := range s.tenantParts {
		m.each(fn)
	}
}

// sameSources checks that got holds the field sources of want, each with
// its line and explicitness, and no others (at least 5 a tenant of the
// 23-tenant test files).
func sameSources(t *testing.T, name string, got, want source) {
	t.Helper()
	n, w := 0, 0
	eachSource(got, func(string, fieldSource) { n++ })
	eachSource(want, func(path string, f fieldSource) {
		w++
		if l := got.lineOf(path); l != int(f.line) {
			t.Errorf("lineOf(%q) = %d, want %d", path, l, f.line)
		}
		if e := got.isExplicit(path); e != f.explicit {
			t.Errorf("isExplicit(%q) = %v, want %v", path, e, f.explicit)
		}
	})
	if n != w || w < 23*5 {
		t.Errorf("field paths (%s) = %d, want %d (and at least 5 a tenant)", name, n, w)
	}
}
