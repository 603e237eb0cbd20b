// Package localetest proves in tests that every message a package's pages
// show is in the catalog (package locale): it reads the package's Go files
// and templates for the message literals they hand to the page, so a
// message added without its translations fails a test.
package localetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/locale"
)

// Scan says where a package's pages take their messages from.
type Scan struct {
	// Dir is the package's directory ("." from its own tests).
	Dir string
	// Fields are struct fields whose string literals, or list of string
	// literals, are messages (Title: "...", Steps: []string{...}).
	Fields map[string]bool
	// Args are the functions and methods, by name, that take messages, with
	// the indexes of those arguments.
	Args map[string][]int
	// Vars are local variables assigned messages (msg := "...").
	Vars map[string]bool
	// Templates are globs, relative to Dir, of templates whose
	// {{.T "..."}} and {{.Tf "..."}} literals are messages.
	Templates []string
}

var templateMessage = regexp.MustCompile(`\.Tf? "((?:[^"\\]|\\.)*)"`)

// Messages returns every message s finds, each with where it was found.
func Messages(t testing.TB, s Scan) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	lit := func(e ast.Expr) (string, bool) {
		bl, ok := e.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(bl.Value)
		return v, err == nil && v != ""
	}
	found := func(e ast.Expr) {
		if v, ok := lit(e); ok {
			out[v] = fset.Position(e.Pos()).String()
		}
	}
	for _, f := range parseFiles(t, fset, s.Dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				for _, i := range s.Args[funcName(n)] {
					if i < len(n.Args) {
						found(n.Args[i])
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && s.Fields[id.Name] {
					found(n.Value)
					if cl, ok := n.Value.(*ast.CompositeLit); ok {
						for _, e := range cl.Elts {
							found(e)
						}
					}
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if i >= len(n.Rhs) {
						break
					}
					switch l := l.(type) {
					case *ast.Ident:
						if s.Vars[l.Name] {
							found(n.Rhs[i])
						}
					case *ast.SelectorExpr:
						if s.Fields[l.Sel.Name] {
							found(n.Rhs[i])
						}
					}
				}
			}
			return true
		})
	}
	for _, g := range s.Templates {
		names, err := filepath.Glob(filepath.Join(s.Dir, g))
		if err != nil || len(names) == 0 {
			t.Fatalf("templates %s: %v, %d files", g, err, len(names))
		}
		for _, name := range names {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range templateMessage.FindAllStringSubmatch(string(raw), -1) {
				v, err := strconv.Unquote(`"` + m[1] + `"`)
				if err != nil {
					t.Fatalf("%s: %q: %v", name, m[1], err)
				}
				out[v] = name
			}
		}
	}
	return out
}

// Concatenated reports message arguments of s.Args built with +: such a
// message cannot be translated (Tf and its kin take the parts instead).
func Concatenated(t testing.TB, s Scan) []string {
	t.Helper()
	fset := token.NewFileSet()
	var out []string
	for _, f := range parseFiles(t, fset, s.Dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				for _, i := range s.Args[funcName(call)] {
					if i < len(call.Args) {
						if b, ok := call.Args[i].(*ast.BinaryExpr); ok && b.Op == token.ADD {
							out = append(out, fset.Position(b.Pos()).String())
						}
					}
				}
			}
			return true
		})
	}
	return out
}

// CheckCatalog fails t for each of msgs the catalog lacks; fewer than
// atLeast messages means the scan itself is broken.
func CheckCatalog(t testing.TB, msgs map[string]string, atLeast int) {
	t.Helper()
	if len(msgs) < atLeast {
		t.Fatalf("found %d page messages, want at least %d: the scan is broken", len(msgs), atLeast)
	}
	cat := locale.Default()
	var missing []string
	for m, where := range msgs {
		if !cat.Has(m) {
			missing = append(missing, where+": "+strconv.Quote(m))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d page messages are not in locale/catalog/en.json (add them there and translate them in every language):\n%s",
			len(missing), strings.Join(missing, "\n"))
	}
}

func funcName(c *ast.CallExpr) string {
	switch f := c.Fun.(type) {
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.Ident:
		return f.Name
	}
	return ""
}

// parseFiles parses the package's non-test Go files in dir.
func parseFiles(t testing.TB, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}
