package ui_test

import (
	"os"
	"testing/fstest"

	"golang.org/x/text/language"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/ui"
)

func Example() {
	pages := fstest.MapFS{"hello.html": {Data: []byte(`{{define "hello"}}<h1>{{.T "Sign in"}}</h1>{{end}}`)}}
	t, err := ui.Templates(pages, "*.html")
	if err != nil {
		panic(err)
	}
	data := struct {
		*locale.Printer
		Title, RequestID string
	}{Printer: locale.Default().Printer(language.English), Title: "Sign in"}
	_ = t.ExecuteTemplate(os.Stdout, "hello", data)
	// Output: <h1>Sign in</h1>
}
