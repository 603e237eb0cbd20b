package main

import (
	"testing"
	"time"
)

// latencies returns a sorted run result whose requests took each of ds
// (in milliseconds), n times each.
func latencies(n int, ds ...float64) *result {
	r := &result{rate: 1000}
	for _, d := range ds {
		for range n {
			r.lat = append(r.lat, time.Duration(d*float64(time.Millisecond)))
		}
	}
	return r
}

func TestTailOf(t *testing.T) {
	// Each run: 99 fast requests and one slow one per hundred, so its p99
	// (nearest rank) is the fast value; with two slow ones per hundred it
	// is the slow value.
	fast := func(ms float64) *result { return latencies(1, append(repeat(1, 99), ms)...) }
	slow := func(ms float64) *result { return latencies(1, append(repeat(1, 98), ms, ms)...) }
	for _, tc := range []struct {
		name                  string
		runs                  []*result
		within                int
		worst, median, pooled time.Duration
	}{
		{"every run within 5 ms", []*result{fast(50), fast(50), fast(50)}, 3, time.Millisecond, time.Millisecond, time.Millisecond},
		{"one slow run", []*result{fast(50), slow(7), fast(50)}, 2, 7 * time.Millisecond, time.Millisecond, 7 * time.Millisecond},
		{"the median run of an even count is the lower middle", []*result{slow(6), slow(8), fast(50), fast(50)}, 2, 8 * time.Millisecond, time.Millisecond, 6 * time.Millisecond},
		{"slow runs pooled", []*result{slow(6), slow(6), slow(9)}, 0, 9 * time.Millisecond, 6 * time.Millisecond, 6 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tailOf(tc.runs)
			if got.within != tc.within || got.worst != tc.worst || got.median != tc.median || got.pooled != tc.pooled {
				t.Errorf("tailOf() = {within %d, worst %v, median %v, pooled %v}, want {within %d, worst %v, median %v, pooled %v}",
					got.within, got.worst, got.median, got.pooled, tc.within, tc.worst, tc.median, tc.pooled)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
