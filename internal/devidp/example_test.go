package devidp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/realmgate/realmgate/internal/devidp"
)

// Example starts the README demo's IdP and reads ACME's discovery document.
// In `realmgate dev` the handler listens on 127.0.0.1:8081.
func Example() {
	opts := devidp.DefaultDemo("http://127.0.0.1:8081")
	opts.Algorithm = "ES256" // quicker to start than RSA
	idp, err := devidp.New(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	idp.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/acme/.well-known/openid-configuration", nil))
	var md struct {
		Issuer      string   `json:"issuer"`
		Token       string   `json:"token_endpoint"`
		PKCE        []string `json:"code_challenge_methods_supported"`
		ISSResponse bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &md); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(md.Issuer)
	fmt.Println(md.Token)
	fmt.Println(md.PKCE, md.ISSResponse)

	_, err = devidp.New(devidp.Options{BaseURL: "http://127.0.0.1:8081"})
	fmt.Println(err)
	// Output:
	// http://127.0.0.1:8081/acme
	// http://127.0.0.1:8081/acme/token
	// [S256] true
	// devidp: development IdP refuses to start outside dev mode
}
