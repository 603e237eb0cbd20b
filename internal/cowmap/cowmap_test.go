package cowmap

import (
	"fmt"
	"maps"
	"testing"
)

func TestCloneIsolation(t *testing.T) {
	base := New[int](0)
	for i := range 2000 {
		base.Set(fmt.Sprint(i), i)
	}
	c := base.Clone()
	c.Set("0", -1)
	c.Set("new", 7)
	c.Delete("1")
	c.Delete("absent")
	tests := []struct {
		name    string
		m       *Map[int]
		key     string
		want    int
		wantOK  bool
		wantLen int
	}{
		{"base keeps its value", base, "0", 0, true, 2000},
		{"base has no new key", base, "new", 0, false, 2000},
		{"base keeps a key the clone deleted", base, "1", 1, true, 2000},
		{"clone has its value", c, "0", -1, true, 2000},
		{"clone has its new key", c, "new", 7, true, 2000},
		{"clone lost the deleted key", c, "1", 0, false, 2000},
		{"clone shares the rest", c, "1999", 1999, true, 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := tc.m.Get(tc.key); got != tc.want || ok != tc.wantOK {
				t.Errorf("Get(%q) = %d, %v, want %d, %v", tc.key, got, ok, tc.want, tc.wantOK)
			}
			if got := tc.m.Len(); got != tc.wantLen {
				t.Errorf("Len() = %d, want %d", got, tc.wantLen)
			}
			if got := len(maps.Collect(tc.m.All())); got != tc.wantLen {
				t.Errorf("len(All()) = %d, want %d", got, tc.wantLen)
			}
		})
	}
}

func TestZeroAndNil(t *testing.T) {
	var z Map[string]
	if _, ok := z.Get("a"); ok {
		t.Error("zero Map: Get(a) found")
	}
	z.Set("a", "b")
	if got := z.Value("a"); got != "b" {
		t.Errorf("Value(a) = %q, want b", got)
	}
	var n *Map[string]
	if n.Len() != 0 || n.Value("a") != "" || len(maps.Collect(n.All())) != 0 {
		t.Error("nil Map is not empty")
	}
	if c := n.Clone(); c.Len() != 0 {
		t.Errorf("nil Clone().Len() = %d", c.Len())
	}
	m := FromMap(map[string]int{"x": 1, "y": 2})
	if m.Len() != 2 || m.Value("y") != 2 {
		t.Errorf("FromMap: Len %d, y=%d", m.Len(), m.Value("y"))
	}
}

// TestChangeCostDoesNotGrow checks that cloning a map and changing one
// entry allocates the same at 100k entries as at 1k: the other entries
// are shared, not copied.
func TestChangeCostDoesNotGrow(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{1000, 100000} {
		m := New[int](n)
		for i := range n {
			m.Set(fmt.Sprint(i), i)
		}
		allocs[n] = testing.AllocsPerRun(20, func() {
			c := m.Clone()
			c.Set("changed", 1)
			c.Delete("5")
		})
	}
	t.Logf("allocations of one change: %v at 1k, %v at 100k", allocs[1000], allocs[100000])
	// A Go map of n/512 entries (one shard) is one or two allocations
	// whatever n; copying the whole map would be hundreds at 100k.
	if allocs[100000] > 2*allocs[1000]+4 {
		t.Errorf("allocations of one change: %v at 1k, %v at 100k: the change copies more than its shard", allocs[1000], allocs[100000])
	}
}
