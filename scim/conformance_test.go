package scim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// fixture is a recorded request sequence of a provisioning client
// (testdata/*.json; each names the documentation it was copied from).
type fixture struct {
	Client  string   `json:"client"`
	Sources []string `json:"sources"`
	Steps   []struct {
		Name          string            `json:"name"`
		Method        string            `json:"method"`
		Path          string            `json:"path"`
		Body          json.RawMessage   `json:"body"`
		Status        int               `json:"status"`
		Save          map[string]string `json:"save"`
		Expect        map[string]any    `json:"expect"`
		Deprovisioned string            `json:"deprovisioned"`
	} `json:"steps"`
}

// TestSCIM_ProvisioningClients replays the requests Microsoft Entra ID's
// and Okta's provisioning services send, as their documentation shows
// them, against the endpoint, checks every status and the values the
// documentation expects, and then has SCIMMY (npm), an implementation of
// RFC 7643/7644 nobody here wrote, validate every response body.
func TestSCIM_ProvisioningClients(t *testing.T) {
	var log []exchange
	for _, real := range []bool{false, true} {
		name := "memory test directory"
		if real {
			name = "users directory"
		}
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, nil, real)
			replayFixtures(t, e)
			log = append(log, e.log...)
		})
	}
	validateWithSCIMMY(t, log)
}

func replayFixtures(t *testing.T, e *env) {
	for _, file := range []string{"testdata/entra.json", "testdata/okta.json"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var fx fixture
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &fx); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(fx.Sources) == 0 || !strings.HasPrefix(fx.Sources[0], "https://") {
				t.Fatalf("%s names no source", file)
			}
			// Each client provisions its own tenant, as in production.
			tenant, token := "acme", e.acme
			if strings.Contains(file, "okta") {
				tenant, token = "other", e.other
			}
			vars := map[string]string{}
			subst := func(s string) string {
				for k, v := range vars {
					s = strings.ReplaceAll(s, "${"+k+"}", v)
				}
				return s
			}
			for _, st := range fx.Steps {
				path := "/scim/v2/" + tenant + encodeQuery(subst(st.Path))
				var body any
				if len(st.Body) > 0 {
					body = []byte(subst(string(st.Body)))
				}
				before := len(e.dir.deprov)
				status, got, _ := e.do(fx.Client+": "+st.Name, st.Method, path, token, body)
				if status != st.Status {
					t.Fatalf("%s: %s %s = %d, want %d: %v", st.Name, st.Method, st.Path, status, st.Status, got)
				}
				for k, want := range st.Expect {
					want = substAll(want, subst)
					if have := dig(got, k); !reflect.DeepEqual(normalizeJSON(have), normalizeJSON(want)) {
						t.Errorf("%s: %s = %#v, want %#v", st.Name, k, have, want)
					}
				}
				for k, from := range st.Save {
					vars[k], _ = dig(got, from).(string)
				}
				if st.Deprovisioned != "" {
					want := tenant + "/" + subst(st.Deprovisioned) + "/"
					if len(e.dir.deprov) == before || !strings.HasPrefix(e.dir.deprov[len(e.dir.deprov)-1], want) {
						t.Errorf("%s: the user was not deprovisioned (calls %v)", st.Name, e.dir.deprov)
					}
				}
			}
		})
	}
}

// substAll substitutes variables in a string or a list of strings.
func substAll(v any, subst func(string) string) any {
	switch x := v.(type) {
	case string:
		return subst(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substAll(e, subst)
		}
		slices.SortFunc(out, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return out
	}
	return v
}

// encodeQuery percent-encodes the query of a documentation's request line
// (Entra's pages print filters unencoded).
func encodeQuery(p string) string {
	path, q, ok := strings.Cut(p, "?")
	if !ok {
		return p
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		panic(err)
	}
	return path + "?" + vals.Encode()
}

func normalizeJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// validateWithSCIMMY runs e2e/node/scimvalidate.mjs over the responses.
func validateWithSCIMMY(t *testing.T, log []exchange) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not in PATH: SCIMMY validation of the responses skipped (apt-get install nodejs npm)")
	}
	dir, err := filepath.Abs("../e2e/node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := e2etest.Node(dir, map[string]string{"scimmy": "1.3.5"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "responses.json")
	b, _ := json.Marshal(log)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := e2etest.NodeCommand(node, dir, "scimvalidate.mjs", file).CombinedOutput()
	if err != nil {
		t.Fatalf("scimvalidate.mjs: %v\n%s", err, out)
	}
	var res struct {
		Checked  int      `json:"checked"`
		Failures []string `json:"failures"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("scimvalidate.mjs printed %q", out)
	}
	bodies := slices.IndexFunc(log, func(x exchange) bool { return x.Body != nil })
	if res.Checked == 0 || bodies < 0 {
		t.Fatalf("SCIMMY checked nothing of %d responses", len(log))
	}
	for _, f := range res.Failures {
		t.Errorf("SCIMMY: %s", f)
	}
	t.Logf("SCIMMY validated %d bodies of %d responses", res.Checked, len(log))
}
