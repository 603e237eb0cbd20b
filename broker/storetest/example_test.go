package storetest_test

import (
	"testing"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/storetest"
	"github.com/realmgate/realmgate/store"
)

// A Store package runs the suite from its own tests, handing it a fresh
// store per subtest.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			s := memstore.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	}
	_ = testConformance // func TestConformance(t *testing.T) in a _test.go file
}
