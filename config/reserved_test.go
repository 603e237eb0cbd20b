package config

import (
	"maps"
	"slices"
	"testing"

	"github.com/realmgate/realmgate/claims"
)

// TestReservedClaims_S75_SameAsThePipeline: clients[].claims refuses exactly
// the claims the broker sets itself (config imports nothing of ours, so it
// keeps its own copy, and this test keeps the two equal).
func TestReservedClaims_S75_SameAsThePipeline(t *testing.T) {
	got, want := slices.Sorted(maps.Keys(reservedClaim)), slices.Sorted(maps.Keys(claims.Reserved))
	if !slices.Equal(got, want) {
		t.Fatalf("config's reserved claims = %v, want the pipeline's %v", got, want)
	}
}
