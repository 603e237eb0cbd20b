package broker_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
)

// metricValue returns the value of the series of family name whose labels
// include want (a counter's value or a histogram's sample count), and
// whether it exists.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// labelValues lists every value label takes in family name.
func labelValues(t *testing.T, reg *prometheus.Registry, name, label string) []string {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}

func TestMetrics_SignInsLatencyAndErrors(t *testing.T) {
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerIP: perMinute(100)},
		map[string]broker.TenantLimits{"initech": {StartsPerTenant: &broker.RateLimit{Limit: 1, Window: 3600e9}}}))
	reg := prometheus.NewRegistry()
	if err := e.broker.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	e.signIn()
	e.signIn()
	// An upstream outage at the callback.
	b := e.browser()
	state := e.toUpstream(b, "alice@acme.test")
	e.acme.mu.Lock()
	e.acme.err = providers.ErrUnavailable
	e.acme.mu.Unlock()
	get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
	e.acme.mu.Lock()
	e.acme.err = errors.New("bad signature")
	e.acme.mu.Unlock()
	b = e.browser()
	state = e.toUpstream(b, "alice@acme.test")
	get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
	// A store outage.
	e.store.down.Store(true)
	get(t, nil, e.authorizeURL(authParams(s256(authVerifier))))
	e.store.down.Store(false)
	// Throttled: initech allows one start per hour.
	hint := map[string]string{"login_hint": "peter@initech.test", "idp_hint": "initech-a"}
	e.startAt(e.browser(), hint, nil)
	e.startAt(e.browser(), hint, nil)
	// A choice of an IdP nobody configured must not become a label value.
	v := authParams(s256(authVerifier))
	v.Del("login_hint")
	b = e.browser()
	resp := get(t, b, e.authorizeURL(v))
	r := mustQuery(t, resp.Header.Get("Location")).Get("r")
	postForm(t, b, e.issuer+"/login", url.Values{"r": {r}, "idp": {"attacker-chosen-<script>"}})
	// Raw paths with unbounded values go to route templates.
	for _, p := range []string{"/callback/x1", "/callback/x2", "/no/such/path/1", "/no/such/path/2"} {
		get(t, nil, e.issuer+p)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"realmgate_signins_total", map[string]string{"tenant": "acme", "idp": "acme-idp", "outcome": "success"}, 2},
		{"realmgate_signins_total", map[string]string{"tenant": "acme", "idp": "acme-idp", "outcome": "started"}, 4},
		{"realmgate_signins_total", map[string]string{"tenant": "acme", "idp": "acme-idp", "outcome": "failure"}, 2},
		{"realmgate_signins_total", map[string]string{"tenant": "initech", "idp": "initech-a", "outcome": "throttled"}, 1},
		{"realmgate_signins_total", map[string]string{"tenant": "", "idp": "", "outcome": "refused"}, 3}, // idp_not_offered, 2 unknown callbacks,
		{"realmgate_upstream_errors_total", map[string]string{"idp": "acme-idp", "reason": "upstream_unavailable"}, 1},
		{"realmgate_upstream_errors_total", map[string]string{"idp": "acme-idp", "reason": "upstream_invalid_response"}, 1},
		{"realmgate_store_errors_total", map[string]string{"op": "request"}, 1},
		{"realmgate_throttled_total", map[string]string{"limit": "starts_per_tenant"}, 1},
		{"realmgate_http_request_duration_seconds", map[string]string{"route": "/token", "method": "POST", "code": "2xx"}, 2},
		{"realmgate_http_request_duration_seconds", map[string]string{"route": "/authorize", "method": "GET", "code": "5xx"}, 1},
		{"realmgate_http_request_duration_seconds", map[string]string{"route": "/callback/:idp", "method": "GET", "code": "4xx"}, 3},
		{"realmgate_http_request_duration_seconds", map[string]string{"route": "/callback/:idp", "method": "GET", "code": "3xx"}, 2},
		{"realmgate_http_request_duration_seconds", map[string]string{"route": "/authorize", "method": "GET", "code": "4xx"}, 1},
	} {
		got, ok := metricValue(t, reg, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	for _, route := range labelValues(t, reg, "realmgate_http_request_duration_seconds", "route") {
		if strings.Contains(route, "x1") || strings.Contains(route, "/no/such") {
			t.Errorf("latency route label %q is a raw path, want a route template", route)
		}
	}
	for _, idp := range labelValues(t, reg, "realmgate_signins_total", "idp") {
		if strings.Contains(idp, "attacker") {
			t.Errorf("sign-in idp label %q came from the request", idp)
		}
	}
	if _, ok := metricValue(t, reg, "realmgate_http_request_duration_seconds", map[string]string{"route": "other"}); !ok {
		t.Error("unmatched paths are not counted under route \"other\"")
	}
	// A second registration of the same collectors fails rather than
	// silently double counting.
	if err := e.broker.RegisterMetrics(reg); err == nil {
		t.Error("RegisterMetrics twice on one registry = nil, want an error")
	}
}
