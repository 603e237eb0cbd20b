package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// forbiddenAddrs is one address of each class the default policy refuses,
// in every form that reaches it.
var forbiddenAddrs = []struct{ name, addr string }{
	{"loopback v4", "127.0.0.1"},
	{"loopback v4 elsewhere in 127/8", "127.1.2.3"},
	{"loopback v6", "::1"},
	{"rfc1918 10/8", "10.1.2.3"},
	{"rfc1918 172.16/12", "172.31.255.1"},
	{"rfc1918 192.168/16", "192.168.0.1"},
	{"unique local fc00::/7", "fd12:3456::1"},
	{"link-local v4", "169.254.10.20"},
	{"link-local v6", "fe80::1"},
	{"multicast v4", "224.0.0.1"},
	{"multicast v6", "ff02::1"},
	{"unspecified v4", "0.0.0.0"},
	{"unspecified v6", "::"},
	{"this network", "0.1.2.3"},
	{"broadcast", "255.255.255.255"},
	{"cgnat 100.64/10", "100.64.0.1"},
	{"metadata aws gcp azure", "169.254.169.254"},
	{"metadata aws ecs", "169.254.170.2"},
	{"metadata aws v6", "fd00:ec2::254"},
	{"metadata alibaba", "100.100.100.200"},
	{"mapped loopback", "::ffff:127.0.0.1"},
	{"mapped rfc1918", "::ffff:10.0.0.1"},
	{"mapped metadata", "::ffff:169.254.169.254"},
	{"mapped cgnat", "::ffff:100.64.1.1"},
	{"nat64 metadata", "64:ff9b::a9fe:a9fe"},
	{"nat64 loopback", "64:ff9b::7f00:1"},
	{"6to4 loopback", "2002:7f00:1::1"},
	{"6to4 rfc1918", "2002:a00:1::1"},
	{"v4-compatible loopback", "::127.0.0.1"},
}

func TestOutbound_S70_CheckRefusesEveryForbiddenClass(t *testing.T) {
	var p Policy
	for _, tc := range forbiddenAddrs {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(netip.MustParseAddr(tc.addr))
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("Policy{}.Check(%s) = %v, want ErrForbiddenAddress", tc.addr, err)
			}
		})
	}
}

// errWouldConnect stops a test dial the policy let through: tests connect
// to nothing but loopback.
var errWouldConnect = errors.New("test: the policy allowed this address; not connecting")

// guarded returns p's dialer with a Control hook that never lets a
// connection proceed, so a dial to a non-loopback address cannot leave the
// host even if the policy is wrong.
func guarded(t *testing.T, p Policy) *net.Dialer {
	d := p.Dialer()
	inner := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := inner(network, address, c); err != nil {
			return err
		}
		return errWouldConnect
	}
	d.Timeout = 5 * time.Second
	return d
}

func TestOutbound_S70_DialerRefusesBeforeConnecting(t *testing.T) {
	d := guarded(t, Policy{})
	for _, tc := range forbiddenAddrs {
		t.Run(tc.name, func(t *testing.T) {
			addr := net.JoinHostPort(tc.addr, "80")
			_, err := d.DialContext(context.Background(), "tcp", addr)
			if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Skipf("no socket for %s on this host: %v", addr, err)
			}
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("Dial(%s) = %v, want ErrForbiddenAddress", addr, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("Dial(%s) error %q", addr, err)
			}
		})
	}
}

func TestOutbound_S70_CheckAllowsWhatThePolicyAllows(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		p    Policy
		addr string
		ok   bool
	}{
		{"public v4", Policy{}, "8.8.8.8", true},
		{"public v6", Policy{}, "2606:4700::1111", true},
		{"6to4 of a public v4", Policy{}, "2002:808:808::1", true},
		{"loopback allowed", Policy{AllowLoopback: true}, "127.0.0.1", true},
		{"mapped loopback allowed", Policy{AllowLoopback: true}, "::ffff:127.0.0.1", true},
		{"loopback v6 allowed", Policy{AllowLoopback: true}, "::1", true},
		{"loopback does not allow private", Policy{AllowLoopback: true}, "10.0.0.1", false},
		{"private allowed", Policy{AllowPrivate: true}, "10.0.0.1", true},
		{"ula allowed", Policy{AllowPrivate: true}, "fd12::1", true},
		{"cgnat allowed as private", Policy{AllowPrivate: true}, "100.64.0.1", true},
		{"private does not allow loopback", Policy{AllowPrivate: true}, "127.0.0.1", false},
		{"private does not allow link-local", Policy{AllowPrivate: true}, "169.254.1.1", false},
		{"private does not allow metadata", Policy{AllowPrivate: true}, "169.254.169.254", false},
		{"private does not allow aws v6 metadata", Policy{AllowPrivate: true}, "fd00:ec2::254", false},
		{"private does not allow alibaba metadata", Policy{AllowPrivate: true}, "100.100.100.200", false},
		{"cidr allows its range", Policy{AllowCIDRs: pfx("10.20.0.0/16")}, "10.20.3.4", true},
		{"cidr allows no other range", Policy{AllowCIDRs: pfx("10.20.0.0/16")}, "10.21.3.4", false},
		{"cidr allows mapped form", Policy{AllowCIDRs: pfx("10.20.0.0/16")}, "::ffff:10.20.3.4", true},
		{"cidr allows link-local", Policy{AllowCIDRs: pfx("169.254.0.0/16")}, "169.254.1.1", true},
		{"wide cidr does not allow metadata", Policy{AllowCIDRs: pfx("169.254.0.0/16")}, "169.254.169.254", false},
		{"everything does not allow metadata", Policy{AllowCIDRs: pfx("0.0.0.0/0", "::/0"), AllowLoopback: true, AllowPrivate: true}, "169.254.169.254", false},
		{"single-address cidr allows metadata", Policy{AllowCIDRs: pfx("169.254.169.254/32")}, "169.254.169.254", true},
		{"nothing allows unspecified", Policy{AllowCIDRs: pfx("0.0.0.0/0"), AllowLoopback: true, AllowPrivate: true}, "0.0.0.0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(netip.MustParseAddr(tc.addr))
			if tc.ok && err != nil {
				t.Fatalf("Check(%s) = %v, want nil", tc.addr, err)
			}
			if !tc.ok && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("Check(%s) = %v, want ErrForbiddenAddress", tc.addr, err)
			}
		})
	}
}

// counted is a loopback server that counts the requests reaching it.
func counted(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestOutbound_S70_LoopbackOnlyWhenConfigured(t *testing.T) {
	srv, hits := counted(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal secret") })
	u, _ := url.Parse(srv.URL)
	byName := "http://localhost:" + u.Port() + "/" // resolves to loopback: refused after resolution
	for _, tc := range []struct {
		name string
		p    Policy
		url  string
		ok   bool
	}{
		{"default refuses loopback literal", Policy{}, srv.URL, false},
		{"default refuses a name resolving to loopback", Policy{}, byName, false},
		{"private does not open loopback", Policy{AllowPrivate: true}, srv.URL, false},
		{"allow_loopback", Policy{AllowLoopback: true}, srv.URL, true},
		{"allow_cidrs 127.0.0.0/8", Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, srv.URL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			resp, err := New(tc.p).Get(tc.url)
			if !tc.ok {
				if !errors.Is(err, ErrForbiddenAddress) {
					t.Fatalf("Get(%s) = %v, want ErrForbiddenAddress", tc.url, err)
				}
				if strings.Contains(err.Error(), "internal secret") {
					t.Fatalf("Get(%s) error %q carries the body", tc.url, err)
				}
				if got := hits.Load() - before; got != 0 {
					t.Fatalf("Get(%s) refused but the server saw %d requests, want 0", tc.url, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%s) = %v, want success", tc.url, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "internal secret" {
				t.Fatalf("Get(%s) body = %q, %v", tc.url, body, err)
			}
		})
	}
}

func TestOutbound_S70_RedirectsStayOnOneOrigin(t *testing.T) {
	other, otherHits := counted(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "other host") })
	u, _ := url.Parse(other.URL)
	var self *httptest.Server
	self, _ = counted(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-other": // a different port of the same address is another origin
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/to-other-name":
			http.Redirect(w, r, "http://localhost:"+u.Port()+"/x", http.StatusFound)
		case "/to-self":
			http.Redirect(w, r, self.URL+"/ok", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, self.URL+"/loop", http.StatusFound)
		case "/ok":
			io.WriteString(w, "ok")
		}
	})
	c := New(Policy{AllowLoopback: true})
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/to-other", false},
		{"/to-other-name", false},
		{"/loop", false},
		{"/to-self", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := c.Get(self.URL + tc.path)
			if !tc.ok {
				if !errors.Is(err, ErrForbiddenRedirect) {
					t.Fatalf("Get(%s) = %v, want ErrForbiddenRedirect", tc.path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%s) = %v, want the same-origin redirect followed", tc.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ok" {
				t.Fatalf("Get(%s) body = %q, want ok", tc.path, b)
			}
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other origin saw %d requests, want 0", n)
	}
}

func TestOutbound_S70_RedirectOrigin(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"https://idp.example/a", "https://idp.example/b", true},
		{"https://idp.example/a", "https://IDP.example:443/b", true},
		{"https://idp.example/a", "http://idp.example/b", false}, // never https -> http
		{"https://idp.example/a", "https://idp.example:8443/b", false},
		{"https://idp.example/a", "https://evil.example/b", false},
		{"http://idp.example/a", "https://idp.example/b", false},
	} {
		t.Run(tc.from+" -> "+tc.to, func(t *testing.T) {
			via, _ := http.NewRequest(http.MethodGet, tc.from, nil)
			req, _ := http.NewRequest(http.MethodGet, tc.to, nil)
			err := checkRedirect(req, []*http.Request{via})
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrForbiddenRedirect)) {
				t.Fatalf("checkRedirect(%s -> %s) = %v, want ok=%v", tc.from, tc.to, err, tc.ok)
			}
		})
	}
}

func TestOutbound_S70_BodyLimit(t *testing.T) {
	const limit = 1000
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		n := limit
		if r.URL.Path != "/exact" {
			n++
		}
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		io.WriteString(w, strings.Repeat("x", n))
	})
	c := New(Policy{AllowLoopback: true, MaxBodyBytes: limit})
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/exact", true},
		{"/declared", false},
		{"/chunked", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := c.Get(srv.URL + tc.path)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if tc.ok {
				if err != nil || len(body) != limit {
					t.Fatalf("Get(%s) = %d bytes, %v; want %d bytes", tc.path, len(body), err, limit)
				}
				return
			}
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("Get(%s) = %d bytes, %v; want ErrBodyTooLarge", tc.path, len(body), err)
			}
		})
	}
}
