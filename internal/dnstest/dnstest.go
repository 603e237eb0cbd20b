// Package dnstest is a DNS server for tests: it answers TXT queries from a
// table, over UDP on loopback (RFC 1035 §4.1), built on
// golang.org/x/net/dns/dnsmessage (already a dependency), so the domain
// proofs' live DNS check runs against a real resolver in tests.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers TXT queries for the names Set publishes; every other
// query gets NXDOMAIN.
type Server struct {
	conn    net.PacketConn
	mu      sync.Mutex
	records map[string][]string // fqdn (lower case, trailing dot) -> TXT values
}

// Start runs a server on a free 127.0.0.1 UDP port until t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{conn: pc, records: map[string][]string{}}
	go s.serve()
	t.Cleanup(func() { pc.Close() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Set publishes TXT values at name (a trailing dot is added if missing).
func (s *Server) Set(name string, values ...string) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[strings.ToLower(name)] = values
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.conn.WriteTo(resp, addr)
		}
	}
}

// answer builds the response to one query (RFC 1035 §4.1).
func (s *Server) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	values, found := s.records[strings.ToLower(q.Name.String())]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !found || q.Type != dnsmessage.TypeTXT {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if found && q.Type == dnsmessage.TypeTXT {
		for _, v := range values {
			hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: 60}
			if b.TXTResource(hdr, dnsmessage.TXTResource{TXT: []string{v}}) != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
