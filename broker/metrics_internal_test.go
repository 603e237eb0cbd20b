package broker

import (
	"net/http"
	"testing"
	"time"
)

// TestMetrics_ObserveAllocatesNothing: once a route's series exists,
// measuring a request allocates nothing (the hot path stays cheap).
func TestMetrics_ObserveAllocatesNothing(t *testing.T) {
	m := newMetrics()
	m.routes[routeKey{http.MethodGet, "/authorize"}] = &routeObservers{route: "/authorize", method: http.MethodGet}
	for _, tc := range []struct {
		name, method, route string
		status              int
	}{
		{"known route", http.MethodGet, "/authorize", http.StatusFound},
		{"unmatched route", http.MethodGet, "", http.StatusNotFound},
		{"odd status", http.MethodPost, "/authorize", 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.observe(tc.method, tc.route, tc.status, time.Millisecond) // creates the series
			if n := testing.AllocsPerRun(200, func() { m.observe(tc.method, tc.route, tc.status, time.Millisecond) }); n != 0 {
				t.Errorf("observe(%q, %q, %d) allocates %v times per call, want 0", tc.method, tc.route, tc.status, n)
			}
		})
	}
}
