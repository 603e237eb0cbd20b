package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/realmgate/realmgate/internal/scaleconfig"
)

// writeScaleConfig writes a configuration with n tenants sharing one IdP
// issuer to a temporary file.
func writeScaleConfig(tb testing.TB, n int) string {
	tb.Helper()
	var b bytes.Buffer
	if err := scaleconfig.Write(&b, scaleconfig.Options{Tenants: n, SharedIssuer: "https://login.idp.example"}); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), fmt.Sprintf("tenants-%d.yaml", n))
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkCheckConfig is `realmgate check-config` on files of many tenants.
func BenchmarkCheckConfig(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		path := writeScaleConfig(b, n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				var stderr bytes.Buffer
				if code := cmdCheckConfig([]string{path}, io.Discard, &stderr); code != 0 {
					b.Fatalf("check-config = %d: %s", code, stderr.String())
				}
			}
		})
	}
}
