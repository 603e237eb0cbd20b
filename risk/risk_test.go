package risk_test

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/mmdbtest"
	"github.com/realmgate/realmgate/risk"
)

// testGeo is a tiny city database and ASN database: Berlin (DE, AS3320),
// Paris (FR, AS3215), New York (US, AS7922) and an anonymous proxy.
func testGeo(t testing.TB) *risk.Geo {
	t.Helper()
	city := func(cc string, lat, lon float64) map[string]any {
		return map[string]any{"country": map[string]any{"iso_code": cc},
			"location": map[string]any{"latitude": lat, "longitude": lon}}
	}
	cityDB, err := mmdbtest.Build("GeoLite2-City", []mmdbtest.Network{
		{Prefix: "198.51.100.0/24", Record: city("DE", 52.52, 13.405)},
		{Prefix: "203.0.113.0/25", Record: city("FR", 48.8566, 2.3522)},
		{Prefix: "203.0.113.128/25", Record: city("US", 40.7128, -74.006)},
		{Prefix: "192.0.2.0/24", Record: map[string]any{"country": map[string]any{"iso_code": "NL"},
			"traits": map[string]any{"is_anonymous_proxy": true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	asnDB, err := mmdbtest.Build("GeoLite2-ASN", []mmdbtest.Network{
		{Prefix: "198.51.100.0/24", Record: map[string]any{"autonomous_system_number": 3320, "autonomous_system_organization": "DTAG"}},
		{Prefix: "203.0.113.0/25", Record: map[string]any{"autonomous_system_number": 3215, "autonomous_system_organization": "Orange"}},
		{Prefix: "203.0.113.128/25", Record: map[string]any{"autonomous_system_number": 7922, "autonomous_system_organization": "Comcast"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := risk.GeoFromBytes(cityDB, asnDB)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGeoLookup(t *testing.T) {
	g := testGeo(t)
	for _, tc := range []struct {
		ip      string
		country string
		asn     uint32
		anon    bool
	}{
		{"198.51.100.7", "DE", 3320, false},
		{"203.0.113.5", "FR", 3215, false},
		{"203.0.113.200", "US", 7922, false},
		{"192.0.2.1", "NL", 0, true},
		{"10.0.0.1", "", 0, false},
		{"::ffff:198.51.100.7", "DE", 3320, false},
		{"2001:db8::1", "", 0, false},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			p := g.Lookup(netip.MustParseAddr(tc.ip))
			if p.Country != tc.country || p.ASN != tc.asn || p.Anonymous != tc.anon {
				t.Errorf("Lookup(%s) = %+v, want country %q asn %d anonymous %v", tc.ip, p, tc.country, tc.asn, tc.anon)
			}
		})
	}
}

// signIn runs one sign-in through the sensor against a history kept in
// memory as the broker keeps it in its store.
type userHistory struct {
	last    []byte
	members map[string]bool
}

func (h *userHistory) signIn(s *risk.Sensor, in risk.Input) risk.Signals {
	sig := s.Sense(in)
	var seen []bool
	for _, m := range sig.Members() {
		seen = append(seen, h.members[m])
		h.members[m] = true
	}
	prev := risk.DecodeHistory(h.last)
	h.last = sig.Now().Encode()
	s.Compare(&sig, prev, seen)
	s.Assess(&sig)
	return sig
}

func TestSignals(t *testing.T) {
	g := testGeo(t)
	s := &risk.Sensor{Geo: g,
		Locations: []risk.Location{{Name: "office", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}, Trusted: true},
			{Name: "france", Countries: []string{"FR"}}},
		Deny:        []netip.Prefix{netip.MustParsePrefix("198.51.100.66/32")},
		Anonymizers: []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25")}}
	t0 := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	ip := netip.MustParseAddr
	t.Run("first sign-in has nothing new", func(t *testing.T) {
		h := &userHistory{members: map[string]bool{}}
		sig := h.signIn(s, risk.Input{Now: t0, IP: ip("198.51.100.7"), Client: "app", Groups: []string{"eng"}})
		if !sig.FirstSignIn || sig.NewCountry || sig.NewNetwork || sig.Level != risk.Low {
			t.Errorf("first sign-in: %+v", sig)
		}
		if !slices.Equal(sig.Locations, []string{"office"}) || !sig.TrustedLocation {
			t.Errorf("Locations = %v trusted %v, want [office] true", sig.Locations, sig.TrustedLocation)
		}
		if sig.Hour != 9 || sig.Weekday != int(time.Monday) || sig.App != "app" {
			t.Errorf("hour %d weekday %d app %q", sig.Hour, sig.Weekday, sig.App)
		}
	})
	t.Run("new country and network, impossible travel", func(t *testing.T) {
		h := &userHistory{members: map[string]bool{}}
		h.signIn(s, risk.Input{Now: t0, IP: ip("198.51.100.7")})
		sig := h.signIn(s, risk.Input{Now: t0.Add(time.Hour), IP: ip("203.0.113.200")}) // Berlin -> New York in 1 h
		if !sig.NewCountry || !sig.NewNetwork || !sig.ImpossibleTravel || sig.Level != risk.High {
			t.Errorf("Berlin to New York in an hour: %+v", sig)
		}
		if sig.TravelKmh < 6000 || sig.TravelKmh > 6600 {
			t.Errorf("TravelKmh = %v, want about 6380", sig.TravelKmh)
		}
		// Back in New York a day later: known country, no travel.
		sig = h.signIn(s, risk.Input{Now: t0.Add(25 * time.Hour), IP: ip("203.0.113.201")})
		if sig.NewCountry || sig.NewNetwork || sig.ImpossibleTravel || sig.Level != risk.Low {
			t.Errorf("second sign-in from New York: %+v", sig)
		}
		// Paris a day after that: a new country, possible travel: medium.
		sig = h.signIn(s, risk.Input{Now: t0.Add(49 * time.Hour), IP: ip("203.0.113.5")})
		if !sig.NewCountry || sig.ImpossibleTravel || sig.Level != risk.Medium {
			t.Errorf("Paris a day later: %+v", sig)
		}
		if !slices.Equal(sig.Locations, []string{"france"}) {
			t.Errorf("Locations = %v, want [france]", sig.Locations)
		}
	})
	t.Run("deny list and anonymizers", func(t *testing.T) {
		for _, tc := range []struct {
			ip         string
			deny, anon bool
		}{{"198.51.100.66", true, false}, {"198.51.100.200", false, true}, {"192.0.2.9", false, true}} {
			sig := s.Sense(risk.Input{Now: t0, IP: ip(tc.ip)})
			s.Assess(&sig)
			if sig.DeniedIP != tc.deny || sig.Anonymizer != tc.anon || sig.Level != risk.High {
				t.Errorf("Sense(%s) = denied %v anonymizer %v level %v, want %v %v high", tc.ip, sig.DeniedIP, sig.Anonymizer, sig.Level, tc.deny, tc.anon)
			}
		}
	})
	t.Run("recent failures", func(t *testing.T) {
		prev := risk.History{At: t0, Failures: 3}
		sig := s.Sense(risk.Input{Now: t0.Add(time.Minute), IP: ip("203.0.113.5")})
		s.Compare(&sig, risk.DecodeHistory(prev.Encode()), []bool{true, true})
		if s.Assess(&sig); sig.Failures != 3 || sig.Level != risk.Medium {
			t.Errorf("after 3 failures: failures %d level %v, want 3 medium", sig.Failures, sig.Level)
		}
	})
	t.Run("compromised", func(t *testing.T) {
		sig := s.Sense(risk.Input{Now: t0, IP: ip("198.51.100.7"), Compromised: true})
		if s.Assess(&sig); sig.Level != risk.High {
			t.Errorf("compromised user: level %v, want high", sig.Level)
		}
	})
}

func TestPolicyActions(t *testing.T) {
	sig := risk.Signals{Country: "US", NewCountry: true, App: "payroll", Groups: []string{"admins"}, Hour: 3, Level: risk.Medium, ACRS: []string{"c1", "c9"}}
	global := []risk.Policy{{Name: "deny-anon", If: "signals.anonymizer", Action: risk.ActionDeny, Message: "No VPNs."}}
	for _, tc := range []struct {
		name   string
		pols   []risk.Policy
		check  func(risk.Decision) bool
		expect string
	}{
		{"mfa on new country", []risk.Policy{{Name: "p", If: `signals.new_country`, Action: risk.ActionMFA}},
			func(d risk.Decision) bool { return d.MFA && !d.Deny }, "MFA"},
		{"fresh login at night", []risk.Policy{{Name: "p", If: `signals.hour < 6`, Action: risk.ActionFreshLogin}},
			func(d risk.Decision) bool { return d.FreshLogin }, "FreshLogin"},
		{"deny with message", []risk.Policy{{Name: "p", If: `signals.country in ["US", "CA"] && "admins" in signals.groups`, Action: risk.ActionDeny, Message: "Admins sign in from the EU."}},
			func(d risk.Decision) bool {
				return d.Deny && d.Message == "Admins sign in from the EU." && d.Policy == "p"
			}, "Deny"},
		{"shorten session, smallest wins", []risk.Policy{
			{Name: "a", If: `signals.risk == "medium"`, Action: risk.ActionShortenSession, SessionLifetime: time.Hour},
			{Name: "b", If: `client == "payroll"`, Action: risk.ActionShortenSession, SessionLifetime: 10 * time.Minute}},
			func(d risk.Decision) bool { return d.SessionLifetime == 10*time.Minute }, "SessionLifetime 10m"},
		{"notify", []risk.Policy{{Name: "n", If: `signals.new_country`, Action: risk.ActionNotify},
			{Name: "m", If: `signals.new_country`, Action: risk.ActionMFA, Notify: true}},
			func(d risk.Decision) bool { return slices.Equal(d.Notify, []string{"n", "m"}) && d.MFA }, "Notify [n m]"},
		{"allow stops evaluation", []risk.Policy{{Name: "trusted", If: `signals.app == "payroll"`, Action: risk.ActionAllow},
			{Name: "m", Action: risk.ActionMFA}},
			func(d risk.Decision) bool { return slices.Equal(d.Applied, []string{"trusted"}) }, "Applied [trusted]"},
		{"false condition does nothing", []risk.Policy{{Name: "p", If: `signals.country == "DE"`, Action: risk.ActionDeny, Message: "x"}},
			func(d risk.Decision) bool { return !d.Deny && len(d.Applied) == 0 }, "nothing"},
		{"failing condition never weakens", []risk.Policy{{Name: "p", If: `signals.nosuchsignal == 1`, Action: risk.ActionMFA}},
			func(d risk.Decision) bool { return d.MFA }, "MFA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := risk.Compile(global, tc.pols, risk.Contexts{"c1": {MFA: true, MaxAge: 5 * time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := set.Evaluate(&sig, nil, sig.App, "acme")
			if !tc.check(d) {
				t.Errorf("Evaluate = %+v, want %s", d, tc.expect)
			}
			if !slices.Equal(d.ACRS, []string{"c1"}) || d.MaxAge != 5*time.Minute {
				t.Errorf("ACRS = %v MaxAge %v, want [c1] (c9 is not defined) 5m", d.ACRS, d.MaxAge)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  risk.Policy
		want string
	}{
		{"unknown action", risk.Policy{Name: "p", Action: "block"}, `unknown action "block"`},
		{"deny without message", risk.Policy{Name: "p", Action: risk.ActionDeny}, "needs a message"},
		{"shorten without lifetime", risk.Policy{Name: "p", Action: risk.ActionShortenSession}, "session_lifetime"},
		{"syntax", risk.Policy{Name: "p", If: "signals.country ==", Action: risk.ActionMFA}, "if:"},
		{"not bool", risk.Policy{Name: "p", If: `"x"`, Action: risk.ActionMFA}, "want bool"},
		{"unknown variable", risk.Policy{Name: "p", If: `upstream.x == 1`, Action: risk.ActionMFA}, "undeclared reference"},
		{"no name", risk.Policy{Action: risk.ActionMFA}, "needs a name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := risk.Compile(nil, []risk.Policy{tc.pol}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile(%+v) = %v, want an error containing %q", tc.pol, err, tc.want)
			}
		})
	}
	if _, err := risk.Compile(nil, nil, risk.Contexts{"c26": {MFA: true}}); err == nil {
		t.Error("Compile accepted authentication context c26")
	}
}

// TestTenantIsolation: two tenants' sets decide independently.
func TestTenantIsolation(t *testing.T) {
	a, err := risk.Compile(nil, []risk.Policy{{Name: "a", If: "signals.new_country", Action: risk.ActionDeny, Message: "no"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := risk.Compile(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := risk.Signals{NewCountry: true}
	if d, _ := a.Evaluate(&sig, nil, "c", "a"); !d.Deny {
		t.Errorf("tenant a: %+v, want deny", d)
	}
	if d, _ := b.Evaluate(&sig, nil, "c", "b"); d.Deny {
		t.Errorf("tenant b: %+v, want no deny", d)
	}
}

// BenchmarkSignIn is the CPU that signals and policies add to one sign-in:
// the GeoIP lookups, named locations, the comparison with the history and
// five policies (issue 16: at most 50 µs).
func BenchmarkSignIn(b *testing.B) {
	g := testGeo(b)
	s := &risk.Sensor{Geo: g, Locations: []risk.Location{{Name: "office", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Trusted: true}},
		Deny: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	set, err := risk.Compile([]risk.Policy{{Name: "deny-anon", If: "signals.anonymizer || signals.denied_ip", Action: risk.ActionDeny, Message: "no"}},
		[]risk.Policy{
			{Name: "office", If: "signals.trusted_location", Action: risk.ActionAllow},
			{Name: "new-country", If: `signals.new_country || signals.impossible_travel`, Action: risk.ActionMFA, Notify: true},
			{Name: "admins", If: `"admins" in signals.groups && signals.risk != "low"`, Action: risk.ActionFreshLogin},
			{Name: "night", If: `signals.hour < 6 && client == "payroll"`, Action: risk.ActionShortenSession, SessionLifetime: time.Hour},
		}, risk.Contexts{"c1": {MFA: true}})
	if err != nil {
		b.Fatal(err)
	}
	prev := risk.History{At: time.Unix(1_765_000_000, 0), Country: "DE", ASN: 3320, Lat: 52.52, Lon: 13.405, Located: true}.Encode()
	user := map[string]any{"groups": []string{"admins"}}
	now := time.Unix(1_765_003_600, 0).UTC()
	ip := netip.MustParseAddr("203.0.113.200")
	b.ReportAllocs()
	// CPU time, not wall time: on a shared machine the wall clock also
	// counts the time other processes hold the cores.
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		sig := s.Sense(risk.Input{Now: now, IP: ip, Client: "payroll", Groups: []string{"admins"}, ACRS: []string{"c1"}})
		_ = sig.Now().Encode()
		_ = sig.Members()
		s.Compare(&sig, risk.DecodeHistory(prev), []bool{false, false})
		s.Assess(&sig)
		if d, _ := set.Evaluate(&sig, user, "payroll", "acme"); !d.MFA {
			b.Fatal("no MFA")
		}
	}
}

func TestSample(t *testing.T) {
	sig, err := risk.Sample(map[string]any{"country": "US", "new_country": true, "groups": []any{"admins"}, "hour": float64(3)})
	if err != nil || sig.Country != "US" || !sig.NewCountry || sig.Level != risk.Medium || sig.Hour != 3 || !slices.Equal(sig.Groups, []string{"admins"}) {
		t.Errorf("Sample = %+v, %v; want US, new country, medium, hour 3, [admins]", sig, err)
	}
	for _, bad := range []map[string]any{{"nosuch": 1}, {"country": 1}, {"hour": float64(25)}, {"risk": "extreme"}, {"groups": "admins"}} {
		if _, err := risk.Sample(bad); err == nil {
			t.Errorf("Sample(%v) succeeded, want an error", bad)
		}
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPolicy_S71_Bounded: a condition cannot make the evaluation allocate
// or loop without bound: the strings extension is absent, and a
// comprehension over the signals stops at the cost limit.
func TestPolicy_S71_Bounded(t *testing.T) {
	if _, err := risk.Compile(nil, []risk.Policy{{Name: "amp", If: `signals.ip.replace(".", "` + strings.Repeat("x", 1000) + `") != ""`, Action: risk.ActionMFA}}, nil); err == nil {
		t.Error("Compile accepted a string replace (memory amplification)")
	}
	set, err := risk.Compile(nil, []risk.Policy{{Name: "loop", Action: risk.ActionDeny, Message: "x",
		If: `signals.groups.all(a, signals.groups.all(b, signals.groups.all(c, a + b + c != "")))`}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = strings.Repeat("g", 100)
	}
	sig := risk.Signals{Groups: groups}
	d, err := set.Evaluate(&sig, nil, "app", "acme")
	if err == nil || !d.Deny {
		t.Errorf("Evaluate(8 million steps) = %+v, %v; want the cost limit to stop it, and the deny to hold (fail closed)", d, err)
	}
}
