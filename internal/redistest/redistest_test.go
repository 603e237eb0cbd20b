package redistest

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestStartRestartStop(t *testing.T) {
	t.Setenv(EnvAddr, "")
	s := Start(t)
	if got, err := command(s.Addr(), "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING %s = %q, %v; want PONG", s.Addr(), got, err)
	}
	if _, err := command(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	cfg, err := command(s.Addr(), "CONFIG", "GET", "save")
	if err != nil || cfg != "save\n" {
		t.Errorf("CONFIG GET save = %q, %v; want persistence off", cfg, err)
	}

	addr := s.Addr()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr after Restart = %q, want %q", s.Addr(), addr)
	}
	if got, err := command(addr, "GET", "k"); err != nil || got != "" {
		t.Fatalf("GET k after Restart = %q, %v; want nothing (no persistence)", got, err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, err := command(addr, "PING"); err == nil {
		t.Fatalf("PING after Stop = %q, want a connection error", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop = %v, want nil", err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Setenv(EnvAddr, "")
	s := Start(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if got, err := command(s.Addr(), "PING"); err == nil {
		t.Fatalf("PING while paused = %q, want a timeout", got)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if got, err := command(s.Addr(), "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Resume = %q, %v; want PONG", got, err)
	}
	if err := s.Pause(); err != nil { // Stop in cleanup must handle a paused server
		t.Fatal(err)
	}
}

func TestStartProcess(t *testing.T) {
	t.Setenv(EnvAddr, "")
	s, err := StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := command(s.Addr(), "PING"); err != nil || got != "PONG" {
		t.Errorf("PING = %q, %v; want PONG", got, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestStartCluster(t *testing.T) {
	t.Setenv(EnvClusterAddrs, "")
	c := StartCluster(t)
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("len(Addrs()) = %d, want 3", got)
	}
	for _, addr := range c.Addrs() {
		info, err := command(addr, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_size:3") {
			t.Errorf("CLUSTER INFO on %s = %q, %v; want state ok with 3 masters", addr, info, err)
		}
	}
}

func TestExternal(t *testing.T) {
	t.Setenv(EnvAddr, "203.0.113.1:6379")
	s := Start(t)
	if !s.External() || s.Addr() != "203.0.113.1:6379" {
		t.Fatalf("Start with %s set = %q external=%v, want that address, external", EnvAddr, s.Addr(), s.External())
	}
	if err := s.Stop(); !errors.Is(err, ErrExternal) {
		t.Fatalf("Stop of an external server = %v, want ErrExternal", err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(EnvAddr, "")
	t.Setenv("PATH", t.TempDir())
	if s, err := StartProcess(); !errors.Is(err, ErrNoRedis) {
		if s != nil {
			_ = s.Stop()
		}
		t.Fatalf("StartProcess without redis-server = %v, want ErrNoRedis", err)
	}
	if !strings.Contains(ErrNoRedis.Error(), "install") {
		t.Errorf("ErrNoRedis = %q, want it to say how to install redis-server", ErrNoRedis)
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"+OK\r\n", "OK", false},
		{":42\r\n", "42", false},
		{"$3\r\nfoo\r\n", "foo", false},
		{"$-1\r\n", "", false},
		{"*2\r\n$1\r\na\r\n:1\r\n", "a\n1", false},
		{"-ERR nope\r\n", "", true},
		{"$x\r\n", "", true},
		{"?\r\n", "", true},
		{"$5\r\nab", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("readReply(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
