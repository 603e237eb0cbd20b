package mmdbtest_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/realmgate/realmgate/internal/mmdbtest"
)

const testdataCity = "../../testdata/geoip/test-city.mmdb"

// TestTestdataCity: testdata/geoip/test-city.mmdb is Build("GeoLite2-City",
// TestCity). REALMGATE_UPDATE_TESTDATA=1 writes it.
func TestTestdataCity(t *testing.T) {
	b, err := mmdbtest.Build("GeoLite2-City", mmdbtest.TestCity)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("REALMGATE_UPDATE_TESTDATA") == "1" {
		if err := os.WriteFile(testdataCity, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(testdataCity)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Errorf("%s is stale: run REALMGATE_UPDATE_TESTDATA=1 go test ./internal/mmdbtest/", testdataCity)
	}
}
