package admin

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

var _ TXTResolver = (*net.Resolver)(nil)

// dnsTimeout bounds one verification lookup.
const dnsTimeout = 5 * time.Second

// NewDNSResolver returns a resolver that asks the DNS server at addr
// (host:port) over UDP, falling back to TCP for truncated answers, instead of
// the system's; an empty addr means the system resolver.
func NewDNSResolver(addr string) TXTResolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// checkTXT reports whether _realmgate.<domain> (without a leading "*.")
// has a TXT record "realmgate-verification=<token>": proof that whoever
// added the domain controls its DNS.
func (s *Service) checkTXT(ctx context.Context, domain, token string) (bool, error) {
	r := s.opts.DNS
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	name := txtLabel + strings.TrimPrefix(domain, "*.") + "."
	records, err := r.LookupTXT(ctx, name)
	if err != nil {
		return false, fmt.Errorf("dns lookup %s: %w", name, err)
	}
	want := txtPrefix + token
	for _, rec := range records {
		if strings.TrimSpace(rec) == want {
			return true, nil
		}
	}
	return false, nil
}
