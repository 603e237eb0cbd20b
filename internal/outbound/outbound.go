// Package outbound is the one HTTP client for every request whose address a
// tenant admin or an upstream document can influence (SECURITY S70): OIDC
// discovery, JWKS, token and userinfo endpoints, OAuth 2.0 and GitHub API
// endpoints, SAML metadata, back-channel logout URIs.
//
// The client guards the network, not the URL:
//   - its dialer checks every address it is about to connect to, after DNS
//     resolution (a name that resolves, or rebinds, to 127.0.0.1 is refused
//     like the literal), and refuses loopback, private, shared (CGNAT),
//     link-local, multicast, unspecified, reserved and cloud-metadata
//     addresses, IPv4-mapped, NAT64 and 6to4 forms included, unless the
//     Policy allows them;
//   - it uses no proxy (a proxy would connect on its behalf, past the check);
//   - it follows a redirect only to the same scheme, host and port as the
//     first request, at most MaxRedirects times;
//   - it fails, rather than truncates, a response body longer than
//     Policy.MaxBodyBytes (after decompression), and bounds every request
//     with a timeout.
//
// Refusals are errors matched with errors.Is against ErrForbiddenAddress,
// ErrForbiddenRedirect and ErrBodyTooLarge; their text names the address
// and its class, never a URL, header or body. The package logs nothing.
package outbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Errors returned (wrapped) by the client; match them with errors.Is.
var (
	// ErrForbiddenAddress means the dialer refused the resolved address.
	ErrForbiddenAddress = errors.New("outbound: forbidden address")
	// ErrForbiddenRedirect means a redirect left the first request's origin
	// (scheme, host, port) or exceeded MaxRedirects.
	ErrForbiddenRedirect = errors.New("outbound: redirect not followed")
	// ErrBodyTooLarge means a response body exceeded Policy.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("outbound: response body too large")
)

// Defaults applied to a zero Policy field.
const (
	// DefaultTimeout bounds a whole request, redirects and body included.
	// Connectors usually set a shorter one of their own.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxBodyBytes bounds a response body: 2 MiB, the largest body a
	// connector reads (SAML metadata); the others stop at 1 MiB themselves.
	DefaultMaxBodyBytes = 2 << 20
	// MaxRedirects is how many same-origin redirects one request follows.
	MaxRedirects = 5
	// dialTimeout bounds one connection attempt.
	dialTimeout = 10 * time.Second
)

// Policy says which addresses the client may reach and how much it reads.
// The zero Policy is the production default: public unicast addresses only.
type Policy struct {
	// AllowLoopback lets the client reach 127.0.0.0/8 and ::1 (development,
	// tests, an IdP on the same host).
	AllowLoopback bool
	// AllowPrivate lets the client reach RFC 1918 (10/8, 172.16/12,
	// 192.168/16), unique-local fc00::/7 and shared CGNAT 100.64/10 addresses
	// (IdPs on an internal network). Cloud-metadata addresses stay refused.
	AllowPrivate bool
	// AllowCIDRs are prefixes the client may reach whatever their class
	// (link-local, multicast, reserved, ...). A cloud-metadata address is
	// reached only when a prefix names exactly that address (/32 or /128);
	// an unspecified address (0.0.0.0, ::) never.
	AllowCIDRs []netip.Prefix
	// MaxBodyBytes bounds each response body; a longer one fails with
	// ErrBodyTooLarge. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout bounds each request. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Address classes, as named in refusals.
const (
	classPublic      = ""
	classLoopback    = "loopback"
	classPrivate     = "private"
	classShared      = "shared (CGNAT)"
	classLinkLocal   = "link-local"
	classMulticast   = "multicast"
	classUnspecified = "unspecified"
	classReserved    = "reserved"
	classMetadata    = "cloud metadata"
)

// metadataAddrs are cloud instance-metadata and host services: AWS, GCP,
// Azure IMDS and OpenStack (169.254.169.254), AWS ECS task metadata
// (169.254.170.2), AWS IMDS over IPv6 (fd00:ec2::254), Alibaba Cloud
// (100.100.100.200) and Azure's WireServer (168.63.129.16, a public address).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
}

var (
	sharedCGNAT  = netip.MustParsePrefix("100.64.0.0/10")  // RFC 6598
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")      // RFC 791: "this network"
	reserved240  = netip.MustParsePrefix("240.0.0.0/4")    // RFC 1112, broadcast included
	ietfProto    = netip.MustParsePrefix("192.0.0.0/24")   // RFC 6890 protocol assignments
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")  // RFC 2544
	v4Compatible = netip.MustParsePrefix("::/96")          // RFC 4291 §2.5.5.1 (deprecated)
	nat64        = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
	sixToFour    = netip.MustParsePrefix("2002::/16")      // RFC 3056
	discardV6    = netip.MustParsePrefix("100::/64")       // RFC 6666
	siteLocalV6  = netip.MustParsePrefix("fec0::/10")      // RFC 3879 (deprecated)
	teredo       = netip.MustParsePrefix("2001::/32")      // RFC 4380: embeds an obfuscated IPv4
)

// classify names the class of ip; classPublic for a public unicast address.
// IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is classified as the IPv4
// address it reaches.
func classify(ip netip.Addr) string {
	ip = embeddedIPv4(ip.WithZone(""))
	for _, m := range metadataAddrs {
		if ip == m {
			return classMetadata
		}
	}
	switch {
	case ip.IsUnspecified():
		return classUnspecified
	case ip.IsLoopback():
		return classLoopback
	case ip.IsPrivate():
		return classPrivate
	case sharedCGNAT.Contains(ip):
		return classShared
	case ip.IsLinkLocalUnicast(), siteLocalV6.Contains(ip):
		return classLinkLocal
	case ip.IsMulticast():
		return classMulticast
	case thisNetwork.Contains(ip), reserved240.Contains(ip), ietfProto.Contains(ip), benchmarking.Contains(ip),
		v4Compatible.Contains(ip), nat64Local.Contains(ip), discardV6.Contains(ip), teredo.Contains(ip):
		return classReserved
	}
	return classPublic
}

// embeddedIPv4 returns the IPv4 address an IPv4-mapped (::ffff:a.b.c.d),
// NAT64 (64:ff9b::a.b.c.d) or 6to4 (2002:AABB:CCDD::) address reaches, or
// ip itself.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if ip.Is4In6() {
		return ip.Unmap()
	}
	if !ip.Is6() {
		return ip
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return ip
}

// Check reports whether the policy lets the client connect to ip: nil, or
// an error wrapping ErrForbiddenAddress that names ip and its class.
func (p Policy) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	class := classify(ip)
	switch class {
	case classPublic:
		return nil
	case classUnspecified: // connects to this host on most systems
		return forbidden(ip, class)
	case classMetadata:
		target := embeddedIPv4(ip)
		for _, pfx := range p.AllowCIDRs {
			if pfx.IsSingleIP() && (pfx.Addr() == ip || pfx.Addr() == target) {
				return nil
			}
		}
		return forbidden(ip, class)
	}
	target := embeddedIPv4(ip)
	for _, pfx := range p.AllowCIDRs {
		if pfx.Contains(ip) || pfx.Contains(target) {
			return nil
		}
	}
	switch {
	case class == classLoopback && p.AllowLoopback:
		return nil
	case (class == classPrivate || class == classShared) && p.AllowPrivate:
		return nil
	}
	return forbidden(ip, class)
}

func forbidden(ip netip.Addr, class string) error {
	return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, class)
}

// control is the dialer's Control hook: it runs after name resolution, on
// the very address about to be connected, before the connection is made.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a dialer that refuses, before connecting, every address
// the policy does not allow.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: p.control}
}

func (p Policy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

func (p Policy) maxBody() int64 {
	if p.MaxBodyBytes > 0 {
		return p.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// New returns the client for p. Share one: it keeps a pool of connections
// per upstream host.
func New(p Policy) *http.Client {
	p.AllowCIDRs = append([]netip.Prefix(nil), p.AllowCIDRs...)
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would connect for us, past the address check
		DialContext:            p.Dialer().DialContext,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  min(30*time.Second, p.timeout()),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport:     &limitTransport{next: tr, max: p.maxBody()},
		CheckRedirect: checkRedirect,
		Timeout:       p.timeout(),
	}
}

// checkRedirect follows a redirect only to the first request's origin,
// which also keeps https from falling back to http.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrForbiddenRedirect, MaxRedirects)
	}
	if !sameOrigin(via[0].URL, req.URL) {
		return fmt.Errorf("%w: redirect to another origin", ErrForbiddenRedirect)
	}
	return nil
}

// sameOrigin compares scheme, host and port (RFC 6454 §4), default ports filled in.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// limitTransport bounds every response body it returns.
type limitTransport struct {
	next *http.Transport
	max  int64
}

// RoundTrip implements http.RoundTripper.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: content-length %d exceeds %d bytes", ErrBodyTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// CloseIdleConnections closes the pool's idle connections (http.Client
// calls it through this wrapper).
func (t *limitTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// limitedBody reads at most max bytes and fails, rather than stops, when
// the body has more.
type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
}

// Read implements io.Reader.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: one more byte means the body is too large.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close implements io.Closer.
func (b *limitedBody) Close() error { return b.rc.Close() }
