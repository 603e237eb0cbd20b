package gcpace_test

import (
	"fmt"

	"github.com/realmgate/realmgate/internal/gcpace"
)

// A server with a 16 MiB live heap collects at GOGC=400, one with 256 MiB
// at the default 100.
func ExamplePercentFor() {
	fmt.Println(gcpace.PercentFor(16<<20), gcpace.PercentFor(256<<20))
	// Output: 400 100
}
