package redisstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/internal/testcert"
	"github.com/realmgate/realmgate/store"
)

// TestTLS: a Store reaches a Redis that requires TLS and a client
// certificate, logging in as an ACL user; a Store that does not trust the
// server's CA, or presents no certificate, or logs in with a wrong
// password, gets store.ErrUnavailable-wrapped or authentication errors and
// never a value.
func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t, redistest.TLSOptions{RequireClientCert: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()}) // the plain port, for setup
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "realmgate", "on", ">acl-password-0123456789", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	good, err := srv.TLS().ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := good.Clone()
	wrongCA.RootCAs = other.Pool()
	noCert := good.Clone()
	noCert.Certificates = nil

	open := func(t *testing.T, tc *tls.Config, password string) *redisstore.Store {
		s, err := redisstore.New(redisstore.Options{Addrs: []string{srv.TLS().Addr}, Username: "realmgate", Password: password,
			TLSConfig: tc, Prefix: randomPrefix()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("works over TLS", func(t *testing.T) {
		s := open(t, good, "acl-password-0123456789")
		if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatalf("Put over TLS = %v", err)
		}
		if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("Get over TLS = %q, %v; want v", v, err)
		}
	})
	for _, tc := range []struct {
		name     string
		tls      *tls.Config
		password string
	}{
		{"wrong CA", wrongCA, "acl-password-0123456789"},
		{"no client certificate", noCert, "acl-password-0123456789"},
		{"plain TCP to the TLS port", nil, "acl-password-0123456789"},
		{"wrong ACL password", good, "not-the-password-0123456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, tc.tls, tc.password)
			err := s.Put(ctx, "k2", []byte("v"), time.Minute)
			if err == nil {
				t.Fatalf("Put = nil, want an error")
			}
			if v, err := s.Get(ctx, "k"); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get = %q, %v; want a connection or authentication error", v, err)
			}
		})
	}
}
