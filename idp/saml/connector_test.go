package saml

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
)

// TestSAMLConnector_Errors: files that went missing or changed since the
// configuration was checked stop the build with the provider named.
func TestSAMLConnector_Errors(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    config.Provider
		want string
	}{
		{"missing metadata file", config.Provider{MetadataFile: filepath.Join(dir, "none.xml")}, "none.xml"},
		{"bad key file", config.Provider{Metadata: "<x/>", SPKeyFile: filepath.Join(dir, "bad.key"), SPCertFile: filepath.Join(dir, "bad.key")}, "sp key"},
		{"binding", config.Provider{MetadataURL: "https://idp.example/md", Binding: "artifact"}, "binding"},
		{"idp initiated without allow-list", config.Provider{MetadataURL: "https://idp.example/md", IdPInitiated: true}, "RelayState allow-list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.ID, tc.p.Type = "s", Name
			_, err := connector(&tc.p, idp.Env{Issuer: "https://login.example.com", Logger: logger})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("connector(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}
