package config

import (
	"slices"
	"time"
)

// GrantDeviceCode is the device authorization grant (RFC 8628 §3.4) as a
// client lists it in grant_types.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceAuthorization configures the device authorization grant (RFC 8628,
// docs/device-flow.md) for CLIs and TVs: a client listing
// urn:ietf:params:oauth:grant-type:device_code in grant_types asks
// <issuer>/device_authorization for a device code and a user code, the
// person types the user code at <issuer>/device and signs in there through
// home-realm discovery, and the device polls the token endpoint.
type DeviceAuthorization struct {
	// CodeLifetime is how long a device code and its user code live
	// (expires_in): 1m to 30m. Default 10m.
	CodeLifetime Duration `yaml:"code_lifetime,omitempty"`
	// Interval is the least time between two polls of one device code:
	// 1s to 60s. A faster poll gets slow_down and the device's interval
	// grows by 5s (RFC 8628 §3.5). Default 5s.
	Interval Duration `yaml:"interval,omitempty"`
	// UserCodesPerIP bounds the user codes one client IP (an IPv6 client's
	// /64) may submit on the verification page, right or wrong: user codes
	// are 8 letters, so guessing one must stay bounded. Default 10/15m;
	// "off" is refused.
	UserCodesPerIP Rate `yaml:"user_codes_per_ip,omitempty"`
}

// deviceOnly reports whether the client's grants sign users in only on
// the verification page (no authorization code): it needs no redirect URI.
func (cl *Client) deviceOnly() bool {
	return slices.Contains(cl.GrantTypes, GrantDeviceCode) && !slices.Contains(cl.GrantTypes, GrantAuthorizationCode)
}

// deviceFlow checks the device_authorization section.
func (k *checker) deviceFlow() {
	d := k.c.DeviceAuthorization
	if l := d.CodeLifetime.Duration(); l != 0 && (l < time.Minute || l > 30*time.Minute) {
		k.add("device_authorization.code_lifetime", "%s is out of range: want 1m to 30m, or unset for the default 10m", l)
	}
	if i := d.Interval.Duration(); i != 0 && (i < time.Second || i > time.Minute) {
		k.add("device_authorization.interval", "%s is out of range: want 1s to 60s, or unset for the default 5s", i)
	}
	if d.UserCodesPerIP.Off() {
		k.add("device_authorization.user_codes_per_ip", "cannot be off: user codes are short and guessing them must stay bounded")
	}
}
