package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
)

// TestRedis_DPoPReplayAndPAR_AcrossInstances: on a real redis-server with
// a replica, two instances with one issuer share the DPoP jti cache and the
// pushed requests: a proof or a request_uri one instance accepted is
// refused by the other. The jti and request_uri writes are single-use
// writes acknowledged by the replica (replica_ack always), so a failover
// cannot forget them.
func TestRedis_DPoPReplayAndPAR_AcrossInstances(t *testing.T) {
	primary, err := redistest.StartProcessArgs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	redistest.StartReplica(t, primary)
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{primary.Addr()}, ReplicaAck: redisstore.ReplicaAckAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	var cfg broker.Config
	e := newEnvOn(t, &recordingStore{Store: rs}, func(c *broker.Config) { cfg = *c })
	second, err := broker.New(context.Background(), cfg, e.store)
	if err != nil {
		t.Fatal(err)
	}
	srvB := httptest.NewServer(second.Handler())
	t.Cleanup(srvB.Close)
	b := *e
	b.issuer = srvB.URL // requests to instance B; htu still names the shared issuer

	k := newDPoPKey(t)
	proof := k.proof("POST", e.issuer+"/token")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	if r := e.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", proof); r.str("error") != "invalid_grant" {
		t.Fatalf("instance A = %d %v, want the proof accepted (invalid_grant)", r.status, r.body)
	}
	if r := b.sendDPoP(http.MethodPost, "/token", form, "app-a", secretA, "", proof); r.str("error") != "invalid_dpop_proof" {
		t.Fatalf("instance B with the proof A accepted = %d %v, want invalid_dpop_proof", r.status, r.body)
	}

	// A whole DPoP sign-in on Redis, the userinfo call on instance B.
	at := e.dpopSignIn(k).str("access_token")
	if r := b.sendDPoP(http.MethodGet, "/userinfo", nil, "", "", "DPoP "+at, k.proof("GET", e.issuer+"/userinfo", forToken(at))); r.status != http.StatusOK {
		t.Fatalf("userinfo on instance B = %d %v, want 200", r.status, r.body)
	}

	_, challenge := pkce()
	uri := e.push(authParams(challenge)).str("request_uri")
	e.pushedAuthorize(e.browser(), "app-a", uri, appCB)
	resp := b.browser().get(b.authorizeURL(url.Values{"client_id": {"app-a"}, "request_uri": {uri}}))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("request_uri used on A, again on B = %d, want 400", resp.StatusCode)
	}
}
