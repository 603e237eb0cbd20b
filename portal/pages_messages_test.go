package portal_test

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

// messageFields are the fields of the portal's data whose string literals
// are catalog messages, translated when a page is rendered.
var messageFields = map[string]bool{"Title": true, "Message": true, "Detail": true, "Status": true, "Label": true, "Steps": true}

// messageArgs are the functions that take a message, by the index of that argument.
var messageArgs = map[string]int{"T": 0, "Tf": 0, "add": 1}

// portalMessages collects every message the portal's pages show: string
// literals given to T and Tf, to add (a value's label), assigned to the
// fields above (every element of a Steps list), and the literals of
// {{.T "..."}} in the templates and the ui frame.
func portalMessages(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lit := func(e ast.Expr) (string, bool) {
		bl, ok := e.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(bl.Value)
		return v, err == nil && v != ""
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				var fn string
				switch f := n.Fun.(type) {
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				case *ast.Ident:
					fn = f.Name
				}
				if i, ok := messageArgs[fn]; ok && i < len(n.Args) {
					if v, ok := lit(n.Args[i]); ok {
						out[v] = fset.Position(n.Pos()).String()
					}
				}
			case *ast.KeyValueExpr:
				id, ok := n.Key.(*ast.Ident)
				if !ok || !messageFields[id.Name] {
					return true
				}
				if v, ok := lit(n.Value); ok {
					out[v] = fset.Position(n.Pos()).String()
				}
				if cl, ok := n.Value.(*ast.CompositeLit); ok {
					for _, e := range cl.Elts {
						if v, ok := lit(e); ok {
							out[v] = fset.Position(e.Pos()).String()
						}
					}
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && messageFields[sel.Sel.Name] && i < len(n.Rhs) {
						if v, ok := lit(n.Rhs[i]); ok {
							out[v] = fset.Position(n.Pos()).String()
						}
					}
				}
			}
			return true
		})
	}
	tmpl, err := filepath.Glob("templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	frame, err := filepath.Glob("../ui/templates/*.html")
	if err != nil || len(frame) == 0 {
		t.Fatalf("ui templates: %v, %d files", err, len(frame))
	}
	re := regexp.MustCompile(`\.Tf? "((?:[^"\\]|\\.)*)"`)
	for _, name := range append(tmpl, frame...) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			v, err := strconv.Unquote(`"` + m[1] + `"`)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, m[1], err)
			}
			out[v] = name
		}
	}
	return out
}

// TestPages_EveryMessageInCatalog: every message a portal page shows is in
// the catalog (package locale), whose test checks every language has it.
func TestPages_EveryMessageInCatalog(t *testing.T) {
	cat := locale.Default()
	msgs := portalMessages(t)
	if len(msgs) < 80 {
		t.Fatalf("found %d portal messages; the scan is broken", len(msgs))
	}
	var missing []string
	for m, where := range msgs {
		if !cat.Has(m) {
			missing = append(missing, where+": "+strconv.Quote(m))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d portal messages are not in locale/catalog/en.json:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
