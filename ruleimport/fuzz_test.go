package ruleimport

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzImportADFS: no input makes the parser or the converter panic or
// hang. (That what is converted compiles is checked by Convert itself in
// every other test; cel-go under the fuzzer's instrumentation is too slow
// to run here.)
func FuzzImportADFS(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "adfs", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{"", "=>", "c:[", `"`, `@RuleName = "x"`, "/*", `c:[Type == "a"] && c:[Type == "a"] => issue(claim = c);`,
		`c1:[Type=="a"]&&c2:[Type=="b",Value==c1.Value]&&c3:[Type=="c",Value!=c2.Value]=>issue(Type="d",Value=c1.Value+c2.Value+c3.Value);`,
		`COUNT([Type == "a"]) > 99999999999999999999 => add(Type = "b", Value = "c");`, "regexreplace(regexreplace(regexreplace("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		rs, _ := Parse(src)
		for _, opts := range []Options{{noCompile: true}, {LDAPFromUpstream: true, Client: "app", noCompile: true}} {
			res := Convert(rs, opts)
			for _, p := range res.Problems {
				if p.Msg == "" {
					t.Fatalf("a problem without a message: %+v", p)
				}
			}
			out, err := res.YAML("fuzz")
			if err != nil {
				t.Fatalf("YAML: %v", err)
			}
			// The rule text copied into comments cannot end them.
			var doc struct {
				Rules []map[string]any `yaml:"rules"`
			}
			if err := yaml.Unmarshal(out, &doc); err != nil || len(doc.Rules) != len(res.Rules) {
				t.Fatalf("the output does not read back (%v): %d rules, want %d\n%s", err, len(doc.Rules), len(res.Rules), out)
			}
		}
	})
}
