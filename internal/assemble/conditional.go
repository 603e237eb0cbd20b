package assemble

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/risk"
)

// ConditionalConfig is the broker's form of conditional_access: the GeoIP
// databases opened, the lists parsed, the global policies compiled.
func ConditionalConfig(cfg *config.Config) (broker.ConditionalConfig, error) {
	ca := cfg.ConditionalAccess
	var ac broker.ConditionalConfig
	sensor, err := Sensor(ca)
	if err != nil {
		return ac, err
	}
	ac.Sensor, ac.HistoryTTL = sensor, ca.HistoryTTL.Duration()
	if len(ca.Policies) > 0 {
		set, err := risk.Compile(Policies(ca.Policies), nil, nil)
		if err != nil {
			return ac, fmt.Errorf("conditional_access.policies: %w", err)
		}
		ac.Global = set
	}
	return ac, nil
}

// Sensor builds the signal sensor of conditional_access (opening its
// GeoIP databases).
func Sensor(ca config.ConditionalAccess) (*risk.Sensor, error) {
	s := &risk.Sensor{TravelSpeed: float64(ca.TravelSpeedKmh), FailureThreshold: ca.FailureThreshold}
	if ca.GeoIP.CountryDB != "" || ca.GeoIP.ASNDB != "" {
		g, err := risk.OpenGeo(ca.GeoIP.CountryDB, ca.GeoIP.ASNDB)
		if err != nil {
			return nil, fmt.Errorf("conditional_access.geoip: %w", err)
		}
		s.Geo = g
	}
	var err error
	if s.Deny, err = prefixes(ca.DenyIPs); err != nil {
		return nil, fmt.Errorf("conditional_access.deny_ips: %w", err)
	}
	if s.Anonymizers, err = prefixes(ca.AnonymizerIPs); err != nil {
		return nil, fmt.Errorf("conditional_access.anonymizer_ips: %w", err)
	}
	for _, l := range ca.Locations {
		ps, err := prefixes(l.CIDRs)
		if err != nil {
			return nil, fmt.Errorf("conditional_access.locations %q: %w", l.Name, err)
		}
		s.Locations = append(s.Locations, risk.Location{Name: l.Name, Prefixes: ps, Countries: l.Countries, Trusted: l.Trusted})
	}
	return s, nil
}

func prefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Policies is the risk package's form of policies.
func Policies(ps []config.AccessPolicy) []risk.Policy {
	out := make([]risk.Policy, 0, len(ps))
	for _, p := range ps {
		out = append(out, risk.Policy{Name: p.Name, If: p.If, Action: p.Action, Message: p.Message,
			SessionLifetime: p.SessionLifetime.Duration(), Notify: p.Notify})
	}
	return out
}

// TenantConditional compiles a tenant's conditional_access after the global
// policies; nil, nil when the tenant has none.
func TenantConditional(global []config.AccessPolicy, ta *config.TenantAccess) (*broker.TenantConditional, error) {
	if ta == nil {
		return nil, nil
	}
	ctxs := risk.Contexts{}
	for id, c := range ta.AuthContexts {
		ctxs[id] = risk.Requirement{MFA: c.MFA, MaxAge: c.MaxAge.Duration(), FreshLogin: c.FreshLogin}
	}
	set, err := risk.Compile(Policies(global), Policies(ta.Policies), ctxs)
	if err != nil {
		return nil, err
	}
	if ta.TimeZone != "" {
		z, err := time.LoadLocation(ta.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("time_zone %q: %w", ta.TimeZone, err)
		}
		set.Zone = z
	}
	return &broker.TenantConditional{Set: set, RiskClaim: ta.RiskClaim, Webhook: ta.WebhookURL, CompromisedMFA: ta.Compromised == "mfa"}, nil
}
