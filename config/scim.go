package config

import "time"

// SCIM configures the SCIM 2.0 provisioning endpoint of every tenant,
// <issuer>/scim/v2/<tenant>/ (docs/scim.md). Its counters are in the shared
// store, so each limit holds across instances.
type SCIM struct {
	// RequestsPerTenant bounds the authenticated SCIM requests of one
	// tenant's provisioning clients; excess gets 429 with Retry-After.
	// Default 3000/1m: an Entra or Okta provisioning cycle (a few requests
	// a second) with room, and a stop for a runaway client.
	RequestsPerTenant Rate `yaml:"requests_per_tenant,omitempty"`
	// FailuresPerIP bounds the SCIM requests with a missing or wrong bearer
	// token from one client IP; once reached, that IP's SCIM requests get
	// 429 until the window ends. Default 30/10m.
	FailuresPerIP Rate `yaml:"failures_per_ip,omitempty"`
}

// DefaultSCIM is what ApplyDefaults fills in for the scim section (the
// values of scim.DefaultLimits).
var DefaultSCIM = SCIM{
	RequestsPerTenant: Rate{Limit: 3000, Window: Duration(time.Minute)},
	FailuresPerIP:     Rate{Limit: 30, Window: Duration(10 * time.Minute)},
}

// applySCIMDefaults fills in the SCIM limits the file left unset.
func (c *Config) applySCIMDefaults(unset func(string) bool) {
	if c.SCIM.RequestsPerTenant == (Rate{}) && unset("scim.requests_per_tenant") {
		c.SCIM.RequestsPerTenant = DefaultSCIM.RequestsPerTenant
	}
	if c.SCIM.FailuresPerIP == (Rate{}) && unset("scim.failures_per_ip") {
		c.SCIM.FailuresPerIP = DefaultSCIM.FailuresPerIP
	}
}

// scim checks the SCIM limits (a count of at least 1 and a window of 1s
// to 24h, or off).
func (k *checker) scim() {
	k.rate(k.c.SCIM.RequestsPerTenant, "scim.requests_per_tenant")
	k.rate(k.c.SCIM.FailuresPerIP, "scim.failures_per_ip")
}
