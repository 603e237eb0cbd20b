// Package ui is the frame every page of realmgate shares: the document
// head with its style sheet (WCAG 2.2 AA: contrast, a visible focus ring),
// the footer with the request id, and the way a package adds its pages to
// it. The broker's sign-in pages and the setup portal are built on it.
//
// A page's data must offer what the frame reads: Lang and T (an embedded
// *locale.Printer), Title (a catalog message, translated by the frame) and
// RequestID. Data that is Branded (embeds or returns a Brand) gets its
// tenant's or client's look.
package ui

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
)

//go:embed templates/*.html
var files embed.FS

// base holds the "head" and "foot" templates.
var base = template.Must(template.New("ui").Funcs(template.FuncMap{"brand": brandOf}).ParseFS(files, "templates/*.html"))

// Templates returns the frame with the pages of fsys that match patterns
// added: each page calls {{template "head" .}} and {{template "foot" .}}.
// html/template escapes every value contextually (S54).
func Templates(fsys fs.FS, patterns ...string) (*template.Template, error) {
	t, err := base.Clone()
	if err != nil {
		return nil, fmt.Errorf("ui: clone frame: %w", err)
	}
	t, err = t.ParseFS(fsys, patterns...)
	if err != nil {
		return nil, fmt.Errorf("ui: parse pages: %w", err)
	}
	return t, nil
}

// FocusRing is the colour of the focus outline of every control (WCAG 2.2
// §1.4.11 and §2.4.7): at least 3:1 against the page's white and grey.
const FocusRing = "#b34700"
