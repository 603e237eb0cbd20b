// Command configref writes docs/configuration.md, the configuration file
// reference, from the config package's source: every field of config.Config
// and the structs it holds, with its YAML key, its type, its default (read
// from config.ApplyDefaults) and its doc comment. A field without a doc
// comment is an error. Regenerate after changing a config struct:
//
//	go generate ./config
//
// or, from the repository root,
//
//	go run ./internal/configref -config config -out docs/configuration.md
//
// TestConfigReference_UpToDate fails while the committed file differs.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/realmgate/realmgate/config"
)

func main() {
	dir := flag.String("config", "config", "directory of the config package source")
	out := flag.String("out", "docs/configuration.md", "file to write")
	flag.Parse()
	doc, err := Generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configref:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "configref:", err)
		os.Exit(1)
	}
}

// field is one struct field as the source declares it.
type field struct {
	goName string
	key    string   // yaml key
	typ    ast.Expr // declared type
	doc    string   // doc comment, one paragraph
}

// section is one mapping of the configuration file: the fields of one
// struct at one path.
type section struct {
	path   string // dotted YAML path, "" for the top level; lists end in "[]"
	goType string
	doc    string
	fields []field
	values reflect.Value // the defaulted value at path, invalid inside lists
}

// ErrUndocumented is returned by Generate when a field has no doc comment.
var ErrUndocumented = errors.New("configref: fields without a doc comment")

// Generate renders the reference from the Go source in dir (the config
// package).
func Generate(dir string) ([]byte, error) {
	structs, typeDocs, consts, err := parseStructs(dir)
	if err != nil {
		return nil, err
	}
	def := config.Config{}
	def.AdminAPI.Tokens = []config.AdminToken{{}} // its listen default applies only with tokens
	def.ApplyDefaults()

	var sections []section
	var undocumented []string
	var walk func(path, typeName string, v reflect.Value)
	walk = func(path, typeName string, v reflect.Value) {
		fields := structs[typeName]
		s := section{path: path, goType: typeName, doc: typeDocs[typeName], fields: fields, values: v}
		sections = append(sections, s)
		for _, f := range fields {
			if f.doc == "" {
				undocumented = append(undocumented, "config."+typeName+"."+f.goName)
			}
			name, list := structName(f.typ, structs)
			if name == "" {
				continue
			}
			child := join(path, f.key)
			var cv reflect.Value
			if v.IsValid() && !list {
				cv = v.FieldByName(f.goName)
				if cv.Kind() == reflect.Pointer {
					cv = reflect.Value{} // optional block: no defaults of its own
				}
			}
			if list {
				child += "[]"
			}
			walk(child, name, cv)
		}
	}
	walk("", "Config", reflect.ValueOf(def))
	if len(undocumented) > 0 {
		sort.Strings(undocumented)
		return nil, fmt.Errorf("%w: %s", ErrUndocumented, strings.Join(undocumented, ", "))
	}
	return render(sections, structs, consts), nil
}

// parseStructs returns the struct types of the package in dir (tests
// excluded) with their fields, and the doc comment of every type.
func parseStructs(dir string) (map[string][]field, map[string]string, map[string]string, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("configref: %w", err)
	}
	sort.Strings(names)
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("configref: parse %s: %w", name, err)
		}
		if f.Name.Name == "config" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, nil, nil, fmt.Errorf("configref: no package config in %s", dir)
	}
	structs := map[string][]field{}
	docs := map[string]string{}
	consts := map[string]string{} // string constants, by name
	for _, file := range files {
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if ok && gd.Tok == token.CONST {
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								if v, err := strconv.Unquote(lit.Value); err == nil {
									consts[n.Name] = v
								}
							}
						}
					}
				}
			}
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				docs[ts.Name.Name] = paragraph(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				var fs []field
				for _, f := range st.Fields.List {
					if f.Tag == nil || len(f.Names) == 0 || !f.Names[0].IsExported() {
						continue
					}
					tag := reflect.StructTag(strings.Trim(f.Tag.Value, "`"))
					key, _, _ := strings.Cut(tag.Get("yaml"), ",")
					if key == "" || key == "-" {
						continue
					}
					for _, n := range f.Names {
						fs = append(fs, field{goName: n.Name, key: key, typ: f.Type, doc: paragraph(f.Doc)})
					}
				}
				structs[ts.Name.Name] = fs
			}
		}
	}
	if _, ok := structs["Config"]; !ok {
		return nil, nil, nil, fmt.Errorf("configref: no type Config in %s", dir)
	}
	return structs, docs, consts, nil
}

// paragraph joins a comment group into one line.
func paragraph(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}

// structName returns the config struct a field holds (directly, through a
// pointer, or as list elements), or "".
func structName(e ast.Expr, structs map[string][]field) (name string, list bool) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return structName(t.X, structs)
	case *ast.ArrayType:
		n, _ := structName(t.Elt, structs)
		return n, n != ""
	case *ast.Ident:
		if _, ok := structs[t.Name]; ok && t.Name != "Rate" {
			return t.Name, false
		}
	}
	return "", false
}

// typeName describes a field's type for the reader.
func typeName(e ast.Expr, structs map[string][]field) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeName(t.X, structs)
	case *ast.ArrayType:
		if n, _ := structName(t.Elt, structs); n != "" {
			return "list of mappings"
		}
		return "list of " + typeName(t.Elt, structs) + "s"
	case *ast.MapType:
		return "mapping of " + typeName(t.Key, structs) + " to " + typeName(t.Value, structs)
	case *ast.Ident:
		switch t.Name {
		case "string":
			return "string"
		case "bool":
			return "boolean"
		case "int", "int64", "int32":
			return "integer"
		case "Duration":
			return "duration"
		case "Rate":
			return "rate"
		}
		if _, ok := structs[t.Name]; ok {
			return "mapping"
		}
		return t.Name
	}
	return fmt.Sprintf("%T", e)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// defaultOf renders the default of a field, or "" when it has none.
func defaultOf(v reflect.Value, goName string) string {
	if !v.IsValid() {
		return ""
	}
	f := v.FieldByName(goName)
	if !f.IsValid() || f.IsZero() {
		return ""
	}
	switch f.Kind() {
	case reflect.Slice, reflect.Map, reflect.Struct, reflect.Pointer:
		if s, ok := f.Interface().(fmt.Stringer); ok && f.Kind() == reflect.Struct {
			return "`" + s.String() + "`"
		}
		return ""
	}
	if s, ok := f.Interface().(fmt.Stringer); ok {
		return "`" + s.String() + "`"
	}
	return fmt.Sprintf("`%v`", f.Interface())
}

const header = `# Configuration reference

<!-- Generated by internal/configref from the config package's source; do not edit.
     Regenerate with: go generate ./config -->

realmgate reads one YAML file (` + "`realmgate serve --config FILE`" + `; ` + "`realmgate check-config FILE`" + `
reports every problem at once with file:line). Unknown keys are errors. Every
scalar value may hold ` + "`${VAR}`" + `, replaced by the environment variable (an unset
variable is an error, except in ` + "`realmgate rules test`" + `, where it is a placeholder);
` + "`$$`" + ` is a literal ` + "`$`" + `. Durations read like ` + "`90s`" + `, ` + "`15m`" + `, ` + "`24h`" + `; rates like
` + "`120/1m`" + ` or ` + "`off`" + `. [testdata/config/realmgate.example.yaml](../testdata/config/realmgate.example.yaml)
shows the whole shape.

Each section below is one mapping of the file; ` + "`[]`" + ` marks a list of mappings.
The default column shows what applies when a key is absent (blank: empty, off
or zero, unless the description says otherwise).
`

func render(sections []section, structs map[string][]field, consts map[string]string) []byte {
	names := goNames(structs, consts)
	var b bytes.Buffer
	b.WriteString(header)
	first := map[string]string{} // struct type -> path of the section that describes it
	for _, s := range sections {
		if _, ok := first[s.goType]; ok {
			continue // the same struct at another path (global and tenant rules)
		}
		first[s.goType] = s.path
		title := "Top level"
		if s.path != "" {
			title = "`" + s.path + "`"
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if s.doc != "" {
			fmt.Fprintf(&b, "%s\n\n", cell(prose(s.doc, names)))
		}
		b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
		for _, f := range s.fields {
			doc := f.doc
			for _, sep := range []string{" ", ",", ":"} {
				if rest, ok := strings.CutPrefix(doc, f.goName+sep); ok {
					doc = "`" + f.key + "`" + sep + rest
					break
				}
			}
			doc = prose(doc, names)
			key := "`" + f.key + "`"
			if n, _ := structName(f.typ, structs); n != "" {
				// A struct is described once, under its first path.
				key = "[" + key + "](#" + slug(firstPath(sections, n)) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", key, typeName(f.typ, structs), defaultOf(s.values, f.goName), cell(doc))
		}
	}
	return b.Bytes()
}

// firstPath is the path of the first section describing goType.
func firstPath(sections []section, goType string) string {
	for _, s := range sections {
		if s.goType == goType {
			return s.path
		}
	}
	return ""
}

// goNames maps Go names that doc comments use to what the file calls them:
// CamelCase field names that mean one YAML key wherever they appear, and
// string constants (DefaultOpsListen) to their values.
func goNames(structs map[string][]field, consts map[string]string) map[string]string {
	keys := map[string]map[string]bool{}
	for _, fs := range structs {
		for _, f := range fs {
			if keys[f.goName] == nil {
				keys[f.goName] = map[string]bool{}
			}
			keys[f.goName][f.key] = true
		}
	}
	out := map[string]string{}
	for name, ks := range keys {
		upper := 0
		for _, r := range name {
			if r >= 'A' && r <= 'Z' {
				upper++
			}
		}
		if len(ks) == 1 && upper >= 2 {
			for k := range ks {
				out[name] = "`" + k + "`"
			}
		}
	}
	for name, v := range consts {
		if _, ok := out[name]; !ok {
			out[name] = "`" + v + "`"
		}
	}
	return out
}

var goWord = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// prose replaces the Go names of names in a doc comment.
func prose(doc string, names map[string]string) string {
	return goWord.ReplaceAllStringFunc(doc, func(w string) string {
		if r, ok := names[w]; ok {
			return r
		}
		return w
	})
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// slug is the anchor GitHub gives the heading "`path`".
func slug(path string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(path) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		}
	}
	return b.String()
}
