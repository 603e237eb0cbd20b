package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
)

func init() {
	// The outage test makes go-redis log every refused dial; keep output readable.
	redis.SetLogger(logging.NewBlacklistLogger([]string{"failed to dial"}))
}

// TestRedis_FlowOnStandaloneAndCluster runs a whole sign-in, refresh and
// reuse detection on the Redis store: a real redis-server and a real
// three-master Cluster.
func TestRedis_FlowOnStandaloneAndCluster(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	for _, tc := range []struct {
		name  string
		addrs []string
	}{{"standalone", []string{single.Addr()}}, {"cluster", cluster.Addrs()}} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := redisstore.New(redisstore.Options{Addrs: tc.addrs})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			e := newEnvOn(t, &recordingStore{Store: rs})
			tr, _ := e.signIn()
			r2 := e.refresh(tr.str("refresh_token"), "app-a", secretA)
			if r2.status != http.StatusOK {
				t.Fatalf("refresh on %s = %d %v", tc.name, r2.status, r2.body)
			}
			if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
				t.Fatalf("replay on %s = %v, want invalid_grant", tc.name, r.body)
			}
			if r := e.refresh(r2.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
				t.Fatalf("family not revoked on %s: %v", tc.name, r.body)
			}
		})
	}
}

// TestRedis_S62_OutageAndRecovery stops the real redis-server under a
// running broker: requests fail fast with 503, the process keeps serving,
// and sign-ins work again once Redis is back, with no restart.
func TestRedis_S62_OutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	if srv.External() {
		t.Skip("outage test needs a redis-server started by the test")
	}
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	e := newEnvOn(t, &recordingStore{Store: rs})
	before, _ := e.signIn()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, challenge := pkce()
	start := time.Now()
	resp, body := e.browser().getBody(e.authorizeURL(authParams(challenge)))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily unavailable") {
		t.Errorf("authorize with Redis down = %d, want 503 page", resp.StatusCode)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("authorize with Redis down took %v, want a fast failure", took)
	}
	if r := e.refresh(before.str("refresh_token"), "app-a", secretA); r.status != http.StatusServiceUnavailable {
		t.Errorf("refresh with Redis down = %d %v, want 503", r.status, r.body)
	}
	if r, _ := e.browser().getBody(e.issuer + "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down = %d, want 503", r.StatusCode)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := e.browser().getBody(e.issuer + "/readyz")
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Redis restarted empty (no persistence): the old grant is cleanly gone,
	// and a new sign-in works on the same process.
	if r := e.refresh(before.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
		t.Errorf("refresh of a grant lost with Redis = %v, want invalid_grant", r.body)
	}
	e.signIn()
	_ = url.Values{}
}

// TestRedis_KeysSurviveStoreLoss: when Redis restarts empty, the instance
// re-publishes the keys it holds instead of minting new ones, so tokens
// issued before keep verifying.
func TestRedis_KeysSurviveStoreLoss(t *testing.T) {
	srv := redistest.Start(t)
	if srv.External() {
		t.Skip("needs a redis-server started by the test")
	}
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	e := newEnvOn(t, &recordingStore{Store: rs})
	before, _ := e.signIn()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Minute) // past the key reload interval
	verifyWithJWKS(t, e, before.str("id_token"), "ES256")
	second := newEnvOn(t, &recordingStore{Store: rs}) // a new instance after the loss
	verifyAgainst(t, second.issuer, e.issuer, before.str("id_token"), "ES256")
}

// TestRedis_AccessGrantExpiry runs a time-bound grant through a refresh
// chain on a real redis-server and a real Cluster (the grant, the user's
// record, its lock and the tenant's index are keys in different slots).
func TestRedis_AccessGrantExpiry(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	for _, tc := range []struct {
		name  string
		addrs []string
	}{{"standalone", []string{single.Addr()}}, {"cluster", cluster.Addrs()}} {
		t.Run(tc.name, func(t *testing.T) {
			grantExpiryChain(t, func(opts ...envOpt) *env {
				rs, err := redisstore.New(redisstore.Options{Addrs: tc.addrs})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { rs.Close() })
				return newEnvOn(t, &recordingStore{Store: rs}, opts...)
			})
		})
	}
}
