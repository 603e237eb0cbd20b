package broker

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

// pageMessageFields are the fields of page data whose string literals are
// catalog messages, translated when the page is rendered.
var pageMessageFields = map[string]bool{"Title": true, "Message": true, "Detail": true, "Text": true}

// pageMessageArgs are the functions that take a message to show, by the
// index of that argument.
var pageMessageArgs = map[string]int{"discoveryPage": 4, "retry": 0, "showAccess": 2, "formError": 1}

// pageMessages collects every message the broker's pages show: the string
// literals given to renderError(f) and T(f), assigned to a page's Title,
// Message, Detail or Text, the scope texts of the consent page, and the
// literals of {{.T "..."}} in the templates.
func pageMessages(t *testing.T) map[string]string {
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
				if i, ok := pageMessageArgs[fn]; ok && i < len(n.Args) {
					if v, ok := lit(n.Args[i]); ok {
						out[v] = fset.Position(n.Pos()).String()
					}
				}
				switch fn {
				case "renderError", "renderErrorf":
					for _, a := range n.Args[2:min(4, len(n.Args))] {
						if v, ok := lit(a); ok {
							out[v] = fset.Position(a.Pos()).String()
						}
					}
				case "T", "Tf":
					if len(n.Args) > 0 {
						if v, ok := lit(n.Args[0]); ok {
							out[v] = fset.Position(n.Pos()).String()
						}
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && pageMessageFields[id.Name] {
					if v, ok := lit(n.Value); ok {
						out[v] = fset.Position(n.Pos()).String()
					}
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && (id.Name == "msg" || id.Name == "title") && i < len(n.Rhs) {
						if v, ok := lit(n.Rhs[i]); ok {
							out[v] = fset.Position(n.Pos()).String()
						}
					}
					if sel, ok := l.(*ast.SelectorExpr); ok && pageMessageFields[sel.Sel.Name] && i < len(n.Rhs) {
						if v, ok := lit(n.Rhs[i]); ok {
							out[v] = fset.Position(n.Pos()).String()
						}
					}
				}
			}
			return true
		})
	}
	for _, v := range scopeText {
		out[v] = "scopeText"
	}
	for _, v := range []string{AccessPending, AccessActive, AccessDenied, AccessExpired, AccessRevoked} {
		out[v] = "access status"
	}
	tmpl, err := filepath.Glob("templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	frame, err := filepath.Glob("../ui/templates/*.html") // the shared head and foot
	if err != nil || len(frame) == 0 {
		t.Fatalf("ui templates: %v, %d files", err, len(frame))
	}
	tmpl = append(tmpl, frame...)
	re := regexp.MustCompile(`\.Tf? "((?:[^"\\]|\\.)*)"`)
	for _, name := range tmpl {
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

// TestPages_EveryMessageInCatalog: every message a page shows is in the
// catalog (package locale), whose test checks every language has it.
func TestPages_EveryMessageInCatalog(t *testing.T) {
	cat := locale.Default()
	msgs := pageMessages(t)
	if len(msgs) < 50 {
		t.Fatalf("found %d page messages; the scan is broken", len(msgs))
	}
	var missing []string
	for m, where := range msgs {
		if !cat.Has(m) {
			missing = append(missing, where+": "+strconv.Quote(m))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d page messages are not in locale/catalog/en.json:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
