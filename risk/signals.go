// Package risk is conditional access: the signals of one sign-in (client
// IP, country and network from MaxMind-format databases, named locations,
// deny and anonymizer lists, first sign-in from a country or network,
// impossible travel, recent failures, the app, the user's groups, the time
// of day), a risk level computed from them, and per-tenant and global
// policies (CEL conditions over signals, user and client) whose actions
// are allow, require multi-factor authentication, require a fresh sign-in,
// deny, shorten the session and notify. It depends on no other package of
// realmgate: the broker gathers the inputs, keeps the per-user history in
// its store and carries out the decision.
package risk

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Location is a named location: the networks (CIDR prefixes) and
// countries it covers. Trusted locations lower the risk level and are
// what policies usually exempt (signals.trusted_location).
type Location struct {
	Name      string
	Prefixes  []netip.Prefix
	Countries []string
	Trusted   bool
}

// Sensor turns what the broker knows of a sign-in into Signals. Its zero
// value works (no databases, no lists).
type Sensor struct {
	// Geo reads the country and network of an address; nil: unknown.
	Geo *Geo
	// Locations are the named locations, in order.
	Locations []Location
	// Deny lists addresses that are refused (signals.denied_ip).
	Deny []netip.Prefix
	// Anonymizers lists VPN, proxy and Tor networks (signals.anonymizer),
	// beside what the GeoIP database marks anonymous.
	Anonymizers []netip.Prefix
	// TravelSpeed is the great-circle speed, in km/h, above which travel
	// from the previous sign-in is impossible; 0: 1000 km/h.
	TravelSpeed float64
	// FailureThreshold is the count of failed sign-ins since the last
	// success that raises the risk to medium; 0: 3.
	FailureThreshold int
}

// Input is what the broker knows of a sign-in.
type Input struct {
	// Now is the time of the sign-in, in the zone policies see the hour
	// and weekday in.
	Now time.Time
	// IP is the client IP (through trusted proxies only, SECURITY S73).
	IP netip.Addr
	// Client is the application (client id) being signed in to.
	Client string
	// Groups are the user's group names (directory and upstream).
	Groups []string
	// MFA: the authentication at hand was multi-factor.
	MFA bool
	// Compromised: an administrator confirmed the user compromised.
	Compromised bool
	// ACRS are the authentication contexts the app asked for (c1..c25).
	ACRS []string
}

// Signals are the facts of one sign-in, as policies see them
// (signals.<name>, Map).
type Signals struct {
	IP               string
	Country          string
	ASN              uint32
	Org              string
	Locations        []string
	TrustedLocation  bool
	DeniedIP         bool
	Anonymizer       bool
	FirstSignIn      bool // no history: nothing is new yet
	NewCountry       bool
	NewNetwork       bool
	ImpossibleTravel bool
	TravelKmh        float64
	Failures         int
	App              string
	Groups           []string
	Hour             int
	Weekday          int // 0 Sunday
	MFA              bool
	Compromised      bool
	ACRS             []string
	Level            Level

	place Place
	now   time.Time
}

// Sense gathers the signals that need no history.
func (s *Sensor) Sense(in Input) Signals {
	sig := Signals{App: in.Client, Groups: in.Groups, Hour: in.Now.Hour(), Weekday: int(in.Now.Weekday()),
		MFA: in.MFA, Compromised: in.Compromised, ACRS: in.ACRS, now: in.Now}
	if !in.IP.IsValid() {
		return sig
	}
	ip := in.IP.Unmap()
	sig.IP = ip.String()
	sig.place = s.Geo.Lookup(ip)
	sig.Country, sig.ASN, sig.Org, sig.Anonymizer = sig.place.Country, sig.place.ASN, sig.place.Org, sig.place.Anonymous
	for _, l := range s.Locations {
		if inPrefixes(l.Prefixes, ip) || (sig.Country != "" && slices.Contains(l.Countries, sig.Country)) {
			sig.Locations = append(sig.Locations, l.Name)
			sig.TrustedLocation = sig.TrustedLocation || l.Trusted
		}
	}
	sig.DeniedIP = inPrefixes(s.Deny, ip)
	sig.Anonymizer = sig.Anonymizer || inPrefixes(s.Anonymizers, ip)
	return sig
}

func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// History is what is kept of a user's previous sign-in (the broker keeps
// it in its store, one small record per user, with the bounded set of the
// countries and networks the user signed in from: Members).
type History struct {
	At       time.Time
	Country  string
	ASN      uint32
	Lat, Lon float64
	Located  bool
	// Failures counts the sign-ins refused since the last one admitted.
	Failures int
}

// MaxMembers bounds the set of countries and networks kept per user.
const MaxMembers = 32

// Now is the history this sign-in leaves.
func (sig *Signals) Now() History {
	return History{At: sig.now, Country: sig.Country, ASN: sig.ASN, Lat: sig.place.Lat, Lon: sig.place.Lon, Located: sig.place.Located}
}

// Members are the set entries this sign-in adds: its country and network.
func (sig *Signals) Members() []string {
	var m []string
	if sig.Country != "" {
		m = append(m, "c"+sig.Country)
	}
	if sig.ASN != 0 {
		m = append(m, "a"+strconv.FormatUint(uint64(sig.ASN), 10))
	}
	return m
}

// Compare completes the signals with the previous sign-in (prev; nil:
// none) and whether the user's set already held each of Members.
func (s *Sensor) Compare(sig *Signals, prev *History, seen []bool) {
	if prev == nil {
		sig.FirstSignIn = true
		return
	}
	sig.Failures = prev.Failures
	i := 0
	if sig.Country != "" {
		sig.NewCountry = i < len(seen) && !seen[i]
		i++
	}
	if sig.ASN != 0 {
		sig.NewNetwork = i < len(seen) && !seen[i]
	}
	if prev.Located && sig.place.Located {
		km := greatCircleKm(prev.Lat, prev.Lon, sig.place.Lat, sig.place.Lon)
		hours := sig.now.Sub(prev.At).Hours()
		// Under a minute apart counts as a minute; nearby moves (within
		// the databases' accuracy, 100 km) never count.
		hours = math.Max(hours, 1.0/60)
		sig.TravelKmh = math.Round(km / hours)
		limit := s.TravelSpeed
		if limit == 0 {
			limit = 1000
		}
		sig.ImpossibleTravel = km > 100 && sig.TravelKmh > limit
	}
}

// greatCircleKm is the haversine distance between two points on Earth.
func greatCircleKm(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Encode is the stored form of h: "1 <unix> <country> <asn> <lat> <lon> <failures>".
func (h History) Encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, "1 "...)
	b = strconv.AppendInt(b, h.At.Unix(), 10)
	b = append(b, ' ')
	c := h.Country
	if c == "" {
		c = "-"
	}
	b = append(b, c...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.ASN), 10)
	if h.Located {
		b = append(b, ' ')
		b = strconv.AppendFloat(b, h.Lat, 'f', 4, 64)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, h.Lon, 'f', 4, 64)
	} else {
		b = append(b, " - -"...)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(h.Failures), 10)
	return b
}

// DecodeHistory reads a stored history; nil when b is empty or not one.
func DecodeHistory(b []byte) *History {
	f := strings.Fields(string(b))
	if len(f) != 7 || f[0] != "1" {
		return nil
	}
	var h History
	at, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return nil
	}
	h.At = time.Unix(at, 0)
	if f[2] != "-" {
		h.Country = f[2]
	}
	asn, _ := strconv.ParseUint(f[3], 10, 32)
	h.ASN = uint32(asn)
	if f[4] != "-" {
		lat, err1 := strconv.ParseFloat(f[4], 64)
		lon, err2 := strconv.ParseFloat(f[5], 64)
		h.Lat, h.Lon, h.Located = lat, lon, err1 == nil && err2 == nil
	}
	h.Failures, _ = strconv.Atoi(f[6])
	return &h
}

// Level is a sign-in's risk level.
type Level int

// The risk levels, in order.
const (
	Low Level = iota
	Medium
	High
)

// String is the level's name: "low", "medium" or "high".
func (l Level) String() string {
	switch l {
	case High:
		return "high"
	case Medium:
		return "medium"
	}
	return "low"
}

// ParseLevel reads a level name.
func ParseLevel(s string) (Level, bool) {
	switch s {
	case "low":
		return Low, true
	case "medium":
		return Medium, true
	case "high":
		return High, true
	}
	return Low, false
}

// Assess sets the risk level from the signals: high for a confirmed
// compromised user, a denied or anonymizing address, or impossible travel;
// medium for a first sign-in from a country or network, or repeated
// failures; otherwise low. A trusted location lowers medium to low.
func (s *Sensor) Assess(sig *Signals) Level {
	threshold := s.FailureThreshold
	if threshold == 0 {
		threshold = 3
	}
	switch {
	case sig.Compromised || sig.DeniedIP || sig.Anonymizer || sig.ImpossibleTravel:
		sig.Level = High
	case (sig.NewCountry || sig.NewNetwork || sig.Failures >= threshold) && !sig.TrustedLocation:
		sig.Level = Medium
	default:
		sig.Level = Low
	}
	return sig.Level
}

// Map is the signals as policies see them (signals.<key>).
func (sig *Signals) Map() map[string]any {
	groups := sig.Groups
	if groups == nil {
		groups = []string{}
	}
	acrs := sig.ACRS
	if acrs == nil {
		acrs = []string{}
	}
	locs := sig.Locations
	if locs == nil {
		locs = []string{}
	}
	return map[string]any{
		"ip": sig.IP, "country": sig.Country, "asn": int64(sig.ASN), "network_org": sig.Org,
		"locations": locs, "trusted_location": sig.TrustedLocation, "denied_ip": sig.DeniedIP,
		"anonymizer": sig.Anonymizer, "first_sign_in": sig.FirstSignIn, "new_country": sig.NewCountry,
		"new_network": sig.NewNetwork, "impossible_travel": sig.ImpossibleTravel, "travel_kmh": sig.TravelKmh,
		"failures": int64(sig.Failures), "app": sig.App, "groups": groups, "hour": int64(sig.Hour),
		"weekday": int64(sig.Weekday), "mfa": sig.MFA, "compromised": sig.Compromised, "acrs": acrs,
		"risk": sig.Level.String(),
	}
}
