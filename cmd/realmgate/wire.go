package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/internal/outbound"
)

// upstreamClients holds the one outbound client per policy (in practice one
// per process): boot and the admin API share its pool of kept-alive
// connections per IdP host instead of a new TLS handshake per sign-in.
var upstreamClients = struct {
	sync.Mutex
	m map[string]*http.Client
}{m: map[string]*http.Client{}}

// upstreamClient returns the client for every request whose address an
// upstream document or a tenant admin chooses (discovery, JWKS, token,
// userinfo, metadata, back-channel logout; SECURITY S70): the file's
// outbound policy decides which addresses it may reach. Connectors bound
// each call with their own timeouts.
func upstreamClient(cfg *config.Config) *http.Client {
	o := cfg.Outbound
	p := outbound.Policy{AllowLoopback: o.AllowLoopback, AllowPrivate: o.AllowPrivate, AllowCIDRs: o.Prefixes(),
		MaxBodyBytes: o.MaxBodyBytes, Timeout: o.Timeout.Duration()}
	key := fmt.Sprintf("%+v %p", p, tracing)
	upstreamClients.Lock()
	defer upstreamClients.Unlock()
	c, ok := upstreamClients.m[key]
	if !ok {
		c = outbound.New(p)
		c.Transport = tracing.Transport(c.Transport) // spans above the address checks (telemetry.go)
		upstreamClients.m[key] = c
	}
	return c
}

// closer is a store that holds resources.
type closer interface{ Close() error }

// openStore returns the store the configuration names.
func openStore(cfg *config.Config) (broker.Store, error) {
	switch cfg.Store.Type {
	case "", config.StoreMemory:
		return memstore.New(), nil
	case config.StoreRedis:
		r := cfg.Store.Redis
		opts := redisstore.Options{Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, Password: r.Password,
			SentinelUsername: r.SentinelUsername, SentinelPassword: r.SentinelPassword, DB: r.DB,
			ReplicaAck: r.ReplicaAck, ReplicaAckCount: r.ReplicaAckCount, ReplicaAckTimeout: r.ReplicaAckTimeout.Duration(),
			DialTimeout: r.DialTimeout.Duration(), ReadTimeout: r.ReadTimeout.Duration(), // config/redis.go
			WriteTimeout: r.WriteTimeout.Duration(), PoolTimeout: r.PoolTimeout.Duration(),
			Tracing: tracing.Enabled()} // no hook unless tracing is on
		if r.TLS != nil {
			tc, err := r.TLS.ClientConfig() // config/tls.go
			if err != nil {
				return nil, fmt.Errorf("open redis store: tls: %w", err)
			}
			opts.TLSConfig = tc
		}
		s, err := redisstore.New(opts)
		if err != nil {
			return nil, fmt.Errorf("open redis store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store type %q", cfg.Store.Type)
}

// buildBroker wires the configuration into a broker on store, through the
// one assembly path (internal/assemble). Providers of a type this build does
// not support are left out with a logged error.
func buildBroker(ctx context.Context, cfg *config.Config, store broker.Store, logger, audit *slog.Logger, opts ...assemble.Option) (*broker.Server, error) {
	bc, err := assemble.BrokerConfig(cfg, upstreamClient(cfg), logger, audit, opts...)
	if err != nil {
		return nil, err
	}
	return broker.New(ctx, bc, store)
}
