package assemble_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin" // the oidc type
	"github.com/realmgate/realmgate/internal/assemble"
)

// TestCompiler_SameProblemsAfterCompactSources: serve drops the file's
// tenant field sources once started (config.CompactSources); an admin API
// change validated after that reports the same problems, with the same
// text, as before: a domain of a file tenant claimed again (whose message
// names the file's line), a tenant id used by the file, a bad issuer.
func TestCompiler_SameProblemsAfterCompactSources(t *testing.T) {
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\ntenants:\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  - id: f%d\n    domains: [\"corp%d.example\"]\n    providers:\n      - id: fidp%d\n        type: oidc\n        issuer: https://idp.example\n        client_id: rg\n        client_secret: s\n", i, i, i)
	}
	api := &admin.State{Tenants: []*admin.Tenant{{
		Tenant:  config.Tenant{ID: "f1", Providers: []config.Provider{{ID: "aidp", Type: "oidc", Issuer: "http://idp.example", ClientID: "rg"}}},
		Domains: []admin.Domain{{Name: "corp2.example", Verified: true}},
	}}}
	problems := func(compact bool) []admin.Problem {
		file, err := config.Parse("realmgate.yaml", []byte(b.String()), nil)
		if err != nil {
			t.Fatal(err)
		}
		c := assemble.NewCompiler(file, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if _, err := c.Compile(context.Background(), &admin.State{}, false); err != nil { // startup
			t.Fatalf("Compile(no API tenants) = %v", err)
		}
		if compact {
			file.CompactSources()
		}
		_, err = c.Compile(context.Background(), api, true) // a change, validated
		var ve *admin.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Compile(change) = %v, want a ValidationError", err)
		}
		return ve.Problems
	}
	want := problems(false)
	if got := fmt.Sprint(want); !strings.Contains(got, "(line 20)") || !strings.Contains(got, "issuer") {
		t.Fatalf("problems = %s, want the file's domain claimed again (line 20) and the bad issuer", got)
	}
	if got := problems(true); !reflect.DeepEqual(got, want) {
		t.Errorf("problems after CompactSources =\n%+v\nwant\n%+v", got, want)
	}
}
