package demoapp_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/realmgate/realmgate/internal/demoapp"
)

// Example builds the README's demo app. Nothing contacts realmgate until the
// first sign-in, so the home page works before the issuer is up.
func Example() {
	app, err := demoapp.New(demoapp.Options{
		Issuer:       "http://127.0.0.1:8080",
		ClientID:     "notes-app",
		ClientSecret: "notes-secret",
		RedirectURL:  "http://127.0.0.1:9000/callback",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	app.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	fmt.Println(rec.Code, strings.Contains(body, "Sign in"), strings.Contains(body, "alice@acme.test"))
	// Output:
	// 200 true true
}
