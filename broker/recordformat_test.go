package broker_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker"
)

var (
	storeKey   = regexp.MustCompile(`^[a-z]{2,}:`)
	codeLength = regexp.MustCompile(`^[0-9]+:`)
)

// TestRecordFormat_JSONForEarlierReleases: with JSONRecords (config
// store.record_format: json) the session, the pending auth request and
// upstream sign-in, the code and its grant, and the user's directory record are written in
// the JSON form releases before the binary records read, and a sign-in
// and a refresh work on them; without it they are binary. Both forms are
// read either way (the codecs' ReadsJSONForm tests).
func TestRecordFormat_JSONForEarlierReleases(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
	}{{"binary", false}, {"json", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *broker.Config) { c.JSONRecords = tc.json })
			tr, _ := e.signIn()
			if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusOK {
				t.Fatalf("refresh = %d %v, want 200", r.status, r.body)
			}
			e.store.mu.Lock()
			w := append([]string(nil), e.store.writes...)
			e.store.mu.Unlock()
			seen := map[string]bool{}
			check := func(kind, v string) {
				seen[kind] = true
				if isJSON := strings.HasPrefix(v, "{"); isJSON != tc.json {
					t.Errorf("%s record %.40q: JSON form %v, want %v", kind, v, isJSON, tc.json)
				}
			}
			// The recorder keeps keys and values in one list; a value that
			// is itself a key is an index entry, not the record.
			value := func(i int) (string, bool) {
				if i >= len(w) || storeKey.MatchString(w[i]) {
					return "", false
				}
				return w[i], true
			}
			for i, k := range w {
				v, ok := value(i + 1)
				switch {
				case !ok:
				case strings.HasPrefix(k, "ss:"):
					check("session", v)
				case strings.HasPrefix(k, "ul:"):
					check("upstream sign-in", v)
				case strings.HasPrefix(k, "ar:"):
					check("auth request", v)
				case strings.HasPrefix(k, "cd:{"):
					check("code", codeLength.ReplaceAllString(v, "")) // store.JoinCodeRecord's length of the grant
				case strings.HasSuffix(k, "/u"):
					if v, ok := value(i + 2); ok {
						check("user", v)
					}
				}
			}
			for _, kind := range []string{"session", "upstream sign-in", "auth request", "code", "user"} {
				if !seen[kind] {
					t.Errorf("no %s record written during the sign-in", kind)
				}
			}
		})
	}
}
