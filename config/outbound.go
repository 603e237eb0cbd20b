package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Outbound limits the HTTP requests realmgate makes to addresses an
// upstream document or a tenant admin chooses (SECURITY S70): OIDC
// discovery, JWKS, token and userinfo endpoints, OAuth 2.0 and GitHub API
// endpoints, SAML metadata and back-channel logout URIs. Every such request
// goes through one client whose dialer checks the address after DNS
// resolution and, by default, reaches public unicast addresses only: never
// loopback, private (RFC 1918, fc00::/7), shared (CGNAT 100.64/10),
// link-local, multicast, unspecified, reserved or cloud-metadata addresses
// (169.254.169.254, fd00:ec2::254, 100.100.100.200, ...), in any IPv6 form
// that reaches them. It follows redirects only within the first request's
// scheme, host and port, uses no proxy (HTTP_PROXY and HTTPS_PROXY are
// ignored: a proxy would connect past the check), and fails a response body
// longer than max_body_bytes.
type Outbound struct {
	// AllowLoopback lets upstream requests reach 127.0.0.0/8 and ::1: for
	// development and tests, or an IdP on the same host. Any tenant admin can
	// then point an IdP at this host's own services.
	AllowLoopback bool `yaml:"allow_loopback,omitempty"`
	// AllowPrivate lets upstream requests reach RFC 1918 (10/8, 172.16/12,
	// 192.168/16), fc00::/7 and CGNAT 100.64/10 addresses: for IdPs on an
	// internal network. Cloud-metadata addresses stay refused.
	AllowPrivate bool `yaml:"allow_private,omitempty"`
	// AllowCIDRs are CIDR prefixes upstream requests may reach whatever their
	// class, e.g. ["10.20.0.0/16"] for one internal IdP network. A
	// cloud-metadata address is reached only through a prefix naming exactly
	// that address (169.254.169.254/32); 0.0.0.0 and :: never.
	AllowCIDRs []string `yaml:"allow_cidrs,omitempty"`
	// MaxBodyBytes bounds each upstream response body, after decompression;
	// a longer body fails the request. Default 2097152 (2 MiB; 0 means the default).
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// Timeout bounds each upstream request, redirects and body included
	// (connectors may use a shorter one). Default 30s (0 means the default).
	Timeout Duration `yaml:"timeout,omitempty"`
}

// Prefixes returns AllowCIDRs parsed; entries that do not parse are
// left out (Validate reports them).
func (o Outbound) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range o.AllowCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Bounds of the outbound settings.
const (
	maxOutboundBody    = 64 << 20
	maxOutboundTimeout = 10 * time.Minute
)

// outbound checks the outbound section.
func (k *checker) outbound() {
	o := k.c.Outbound
	for i, s := range o.AllowCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			k.add(fmt.Sprintf("outbound.allow_cidrs[%d]", i), "%q is not a CIDR prefix like 10.20.0.0/16", s)
		}
	}
	if o.MaxBodyBytes < 0 || o.MaxBodyBytes > maxOutboundBody {
		k.add("outbound.max_body_bytes", "%d is out of range: want 1 to %d, or 0 for the default 2097152", o.MaxBodyBytes, maxOutboundBody)
	}
	if t := o.Timeout.Duration(); t < 0 || t > maxOutboundTimeout {
		k.add("outbound.timeout", "%s is out of range: want up to %s, or 0 for the default 30s", o.Timeout, Duration(maxOutboundTimeout))
	}
}

// outboundWarnings advises on an outbound policy that opens internal
// addresses while tenant admins can choose upstream URLs.
func (k *checker) outboundWarnings() {
	o := k.c.Outbound
	if !o.AllowLoopback && !o.AllowPrivate && len(o.AllowCIDRs) == 0 {
		return
	}
	for _, t := range k.c.AdminAPI.Tokens {
		if t.Tenant != "" {
			k.add("outbound", "allows internal addresses while per-tenant admin tokens exist: a tenant admin can point an IdP URL at them")
			return
		}
	}
}
