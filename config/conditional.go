package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ConditionalAccess is the file-wide conditional access setup
// (docs/conditional-access.md): where the GeoIP databases are, the named
// locations and IP lists every tenant's policies see, and the global
// policies, evaluated before each tenant's own at every sign-in.
type ConditionalAccess struct {
	// GeoIP names the MaxMind-format database files (GeoLite2, GeoIP2 or
	// DB-IP lite) that give a client IP its country and network. Optional:
	// without them signals.country and signals.asn are empty.
	GeoIP GeoIP `yaml:"geoip,omitempty" json:"geoip,omitzero"`
	// Locations are named locations: CIDR prefixes and/or countries, seen
	// by policies as signals.locations (names) and signals.trusted_location.
	Locations []NamedLocation `yaml:"locations,omitempty" json:"locations,omitempty"`
	// DenyIPs are CIDR prefixes whose sign-ins are high risk
	// (signals.denied_ip); a policy decides what to do with them.
	DenyIPs []string `yaml:"deny_ips,omitempty" json:"deny_ips,omitempty"`
	// AnonymizerIPs are CIDR prefixes of VPNs, proxies and Tor exits
	// (signals.anonymizer), besides what the GeoIP database marks anonymous.
	AnonymizerIPs []string `yaml:"anonymizer_ips,omitempty" json:"anonymizer_ips,omitempty"`
	// TravelSpeedKmh is the great-circle speed from the user's previous
	// sign-in above which travel is impossible (signals.impossible_travel).
	// Default 1000.
	TravelSpeedKmh int `yaml:"travel_speed_kmh,omitempty" json:"travel_speed_kmh,omitempty"`
	// FailureThreshold is how many refused sign-ins since the last
	// admitted one make the risk medium. Default 3.
	FailureThreshold int `yaml:"failure_threshold,omitempty" json:"failure_threshold,omitempty"`
	// HistoryTTL is how long a user's sign-in history (previous sign-in,
	// countries and networks seen) is kept after their last sign-in.
	// Default 90 days ("2160h").
	HistoryTTL Duration `yaml:"history_ttl,omitempty" json:"history_ttl,omitempty"`
	// Policies are the global policies, evaluated before each tenant's.
	Policies []AccessPolicy `yaml:"policies,omitempty" json:"policies,omitempty"`
}

// GeoIP names MaxMind-format database files.
type GeoIP struct {
	// CountryDB is a country or city database (GeoLite2-Country.mmdb,
	// GeoLite2-City.mmdb, dbip-city-lite.mmdb); a city database also
	// enables impossible travel.
	CountryDB string `yaml:"country_db,omitempty" json:"country_db,omitempty"`
	// ASNDB is an ASN database (GeoLite2-ASN.mmdb): signals.asn.
	ASNDB string `yaml:"asn_db,omitempty" json:"asn_db,omitempty"`
}

// NamedLocation is a named set of networks and countries.
type NamedLocation struct {
	// Name is what policies see in signals.locations.
	Name string `yaml:"name" json:"name"`
	// CIDRs are the location's networks (203.0.113.0/24).
	CIDRs []string `yaml:"cidrs,omitempty" json:"cidrs,omitempty"`
	// Countries are ISO 3166-1 alpha-2 codes (DE, US).
	Countries []string `yaml:"countries,omitempty" json:"countries,omitempty"`
	// Trusted marks a location (the office network) that lowers the risk
	// level: signals.trusted_location.
	Trusted bool `yaml:"trusted,omitempty" json:"trusted,omitempty"`
}

// AccessPolicy is one conditional access policy.
type AccessPolicy struct {
	// Name identifies the policy in audit events and dry runs.
	Name string `yaml:"name" json:"name"`
	// If is a CEL condition over signals, user, client and tenant
	// (docs/conditional-access.md lists the signals); empty: always.
	If string `yaml:"if,omitempty" json:"if,omitempty"`
	// Action is allow (admit and stop evaluating), mfa (require
	// multi-factor authentication at the upstream IdP), fresh_login
	// (require a sign-in at the IdP now), deny (refuse with message),
	// shorten_session (cap the session at session_lifetime) or notify.
	Action string `yaml:"action" json:"action"`
	// Message is shown to the user a deny refuses.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	// SessionLifetime is the cap shorten_session sets ("1h").
	SessionLifetime Duration `yaml:"session_lifetime,omitempty" json:"session_lifetime,omitempty"`
	// Notify also reports a sign-in the policy applies to: an audit event
	// and the tenant's webhook.
	Notify bool `yaml:"notify,omitempty" json:"notify,omitempty"`
}

// TenantAccess is a tenant's conditional access: its policies (after the
// global ones), its authentication contexts, and how risk is reported.
type TenantAccess struct {
	// Policies are the tenant's policies, in order.
	Policies []AccessPolicy `yaml:"policies,omitempty" json:"policies,omitempty"`
	// AuthContexts maps authentication context ids (c1 to c25), which
	// apps request with the claims parameter ("acrs"), to what they
	// require; tokens carry the met ones in acrs.
	AuthContexts map[string]AuthContext `yaml:"auth_contexts,omitempty" json:"auth_contexts,omitempty"`
	// RiskClaim adds the sign-in's risk level (low, medium, high) to
	// tokens as risk_level (clients registered for it, SECURITY S75).
	RiskClaim bool `yaml:"risk_claim,omitempty" json:"risk_claim,omitempty"`
	// WebhookURL receives a JSON POST for every notify (through the
	// outbound client, SECURITY S70). Optional.
	WebhookURL string `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty"`
	// TimeZone is the IANA zone of signals.hour and signals.weekday
	// (Europe/Berlin). Default UTC.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	// Compromised is the action for a user an administrator confirmed
	// compromised, when no policy decides otherwise: deny (default) or
	// mfa.
	Compromised string `yaml:"compromised,omitempty" json:"compromised,omitempty"`
}

// AuthContext is what an authentication context requires.
type AuthContext struct {
	// MFA requires multi-factor authentication at the upstream IdP.
	MFA bool `yaml:"mfa,omitempty" json:"mfa,omitempty"`
	// MaxAge requires an upstream authentication no older than this ("10m").
	MaxAge Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	// FreshLogin requires a sign-in at the IdP during the request.
	FreshLogin bool `yaml:"fresh_login,omitempty" json:"fresh_login,omitempty"`
}

// accessActions are the valid AccessPolicy.Action values.
var accessActions = []string{"allow", "mfa", "fresh_login", "deny", "shorten_session", "notify"}

var authContextID = regexp.MustCompile(`^c([1-9]|1[0-9]|2[0-5])$`)

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// conditional checks conditional_access and every tenant's conditional_access.
// CEL conditions are compiled (and their errors reported) when the
// configuration is assembled, as claims rules are.
func (k *checker) conditional() {
	ca := k.c.ConditionalAccess
	for i, l := range ca.Locations {
		p := fmt.Sprintf("conditional_access.locations[%d]", i)
		if strings.TrimSpace(l.Name) == "" {
			k.add(p+".name", "a location needs a name")
		}
		if len(l.CIDRs) == 0 && len(l.Countries) == 0 {
			k.add(p, "location %q lists neither cidrs nor countries", l.Name)
		}
		k.prefixes(p+".cidrs", l.CIDRs)
		for j, c := range l.Countries {
			if !countryCode.MatchString(c) {
				k.add(fmt.Sprintf("%s.countries[%d]", p, j), "%q is not an ISO 3166-1 alpha-2 code like DE", c)
			}
		}
	}
	k.prefixes("conditional_access.deny_ips", ca.DenyIPs)
	k.prefixes("conditional_access.anonymizer_ips", ca.AnonymizerIPs)
	if ca.TravelSpeedKmh < 0 {
		k.add("conditional_access.travel_speed_kmh", "must not be negative")
	}
	if ca.FailureThreshold < 0 {
		k.add("conditional_access.failure_threshold", "must not be negative")
	}
	if ca.HistoryTTL < 0 {
		k.add("conditional_access.history_ttl", "must not be negative")
	}
	k.accessPolicies("conditional_access.policies", ca.Policies)
	for i, t := range k.c.Tenants {
		if t.ConditionalAccess != nil {
			k.tenantAccess(fmt.Sprintf("tenants[%d].conditional_access", i), t.ConditionalAccess)
		}
	}
}

// tenantAccess checks one tenant's conditional_access (path names it).
func (k *checker) tenantAccess(path string, ta *TenantAccess) {
	k.accessPolicies(path+".policies", ta.Policies)
	for id, ac := range ta.AuthContexts {
		if !authContextID.MatchString(id) {
			k.add(path+".auth_contexts", "%q is not an authentication context id: want c1 to c25", id)
		}
		if ac.MaxAge < 0 {
			k.add(path+".auth_contexts."+id+".max_age", "must not be negative")
		}
	}
	if ta.WebhookURL != "" {
		if msg := checkHTTPURL(ta.WebhookURL); msg != "" {
			k.add(path+".webhook_url", "%s", msg)
		}
	}
	if ta.TimeZone != "" {
		if _, err := time.LoadLocation(ta.TimeZone); err != nil {
			k.add(path+".time_zone", "%q is not an IANA time zone like Europe/Berlin", ta.TimeZone)
		}
	}
	if ta.Compromised != "" && ta.Compromised != "deny" && ta.Compromised != "mfa" {
		k.add(path+".compromised", "%q: want deny or mfa", ta.Compromised)
	}
}

// CheckTenantAccess returns the problems of a tenant's conditional_access
// as field: message lines (the admin API checks a tenant record with it).
func CheckTenantAccess(ta *TenantAccess) []string {
	k := &checker{c: &Config{}}
	k.tenantAccess("conditional_access", ta)
	out := make([]string, len(k.probs))
	for i, p := range k.probs {
		out[i] = p.Field + ": " + p.Message
	}
	return out
}

func (k *checker) accessPolicies(path string, ps []AccessPolicy) {
	names := map[string]bool{}
	for i, p := range ps {
		at := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case strings.TrimSpace(p.Name) == "":
			k.add(at+".name", "a policy needs a name")
		case names[p.Name]:
			k.add(at+".name", "policy name %q is used twice", p.Name)
		}
		names[p.Name] = true
		if !slices.Contains(accessActions, p.Action) {
			k.add(at+".action", "%q: want one of %s", p.Action, strings.Join(accessActions, ", "))
		}
		if p.Action == "deny" && strings.TrimSpace(p.Message) == "" {
			k.add(at+".message", "a deny policy needs a message for the user")
		}
		if p.Action == "shorten_session" && p.SessionLifetime <= 0 {
			k.add(at+".session_lifetime", "shorten_session needs a positive session_lifetime like \"1h\"")
		}
	}
}

func (k *checker) prefixes(path string, ps []string) {
	for i, p := range ps {
		if _, err := netip.ParsePrefix(p); err != nil {
			k.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a CIDR prefix like 203.0.113.0/24", p)
		}
	}
}
