package clocktest_test

import (
	"fmt"
	"time"

	"github.com/realmgate/realmgate/internal/clocktest"
)

func Example() {
	c := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c.Advance(90 * time.Second)
	fmt.Println(c.Now().Format(time.RFC3339))
	// Output: 2026-01-02T03:05:35Z
}
