package resilience

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/internal/e2etest"
)

const (
	appClientID    = "app"
	appRedirectURI = "http://127.0.0.1/app/cb"
	upClientID     = "realmgate"
	// Tenants: acme and globex sign in at healthy upstream realms; slow's
	// upstream hangs at its token endpoint whenever upstream.hang is set.
	slowIdPName = "Slow Corp sign-in"
)

// tenantIdPs maps each tenant to its one IdP id; the upstream realm is named
// like the tenant.
var tenantIdPs = map[string]string{"acme": "acme-idp", "globex": "globex-idp", "slow": "slow-idp"}

// storeSpec names the Redis a deployment uses.
type storeSpec struct {
	addrs      []string
	masterName string // Sentinel mode: addrs are the sentinels
	db         int
	replicaAck string // store.redis.replica_ack; empty: the default
	// limitsOff turns the per-address and per-tenant throttles off (the
	// probes of single_use_test.go replay thousands of codes).
	limitsOff bool
}

// deployment is n realmgate processes with one configuration on one store,
// and the upstream IdP every tenant signs in at.
type deployment struct {
	issuer       string // http://<address of process 0>
	addrs        []string
	procs        []*proc
	up           *upstream
	clientSecret string
	config       string
}

// upstream is the development OpenID Provider, one realm per tenant. Its
// handler can make the slow realm's token endpoint hang.
type upstream struct {
	base string
	idp  *devidp.Server
	srv  *http.Server
	// hang makes POST /slow/token wait until the request is cancelled or
	// release is closed.
	hang    atomic.Bool
	mu      sync.Mutex
	release chan struct{}
	// hanging counts token requests held right now; maxHanging is its peak.
	hanging, maxHanging atomic.Int64
}

func startUpstream(t *testing.T, callbacks []string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{base: "http://" + ln.Addr().String(), release: make(chan struct{})}
	var realms []devidp.Realm
	for tenant := range tenantIdPs {
		realms = append(realms, devidp.Realm{Name: tenant,
			Clients: []devidp.Client{{ID: upClientID, Secret: "upstream-secret-" + tenant, RedirectURIs: callbacks}},
			Users: []devidp.User{{Subject: tenant + "-u-1", Email: "alice@" + tenant + ".test", EmailVerified: true,
				Name: "Alice " + tenant, Groups: []string{"staff"}}}})
	}
	u.idp, err = devidp.New(devidp.Options{BaseURL: u.base, Realms: realms, DevMode: true, AutoApprove: "*", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	h := u.idp.Handler()
	u.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow/token" && u.hang.Load() {
			n := u.hanging.Add(1)
			defer u.hanging.Add(-1)
			for m := u.maxHanging.Load(); n > m && !u.maxHanging.CompareAndSwap(m, n); m = u.maxHanging.Load() {
			}
			u.mu.Lock()
			release := u.release
			u.mu.Unlock()
			select {
			case <-r.Context().Done():
			case <-release:
			}
			http.Error(w, "gave up", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() {
		u.unhang()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = u.srv.Shutdown(ctx)
	})
	return u
}

// unhang stops the hang and answers every held token request (with 503).
func (u *upstream) unhang() {
	u.hang.Store(false)
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.release)
	u.release = make(chan struct{})
}

var configTemplate = template.Must(template.New("realmgate.yaml").Parse(`# written by e2e/resilience
issuer: {{.Issuer}}
store:
  type: redis
  redis:
    addrs: [{{range $i, $a := .Store.Addrs}}{{if $i}}, {{end}}"{{$a}}"{{end}}]
{{- if .Store.MasterName}}
    master_name: {{.Store.MasterName}}
{{- end}}
{{- if .Store.DB}}
    db: {{.Store.DB}}
{{- end}}
{{- if .Store.ReplicaAck}}
    replica_ack: {{.Store.ReplicaAck}}
{{- end}}
keys:
  algorithm: ES256
  secret: "{{.Secret}}"
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
# The load client sends every virtual user from its own address.
trusted_proxies: ["127.0.0.1/32"]
# The soak signs in faster than the default per-tenant start limit allows.
rate_limits:
  starts_per_tenant: "off"
{{- if .Store.LimitsOff}}
  starts_per_ip: "off"
  failures_per_ip: "off"
  failures_per_tenant: "off"
{{- end}}
# Several processes share this file on one host: no operations listener.
ops:
  listen: "off"
clients:
  - id: ` + appClientID + `
    secret: "{{.ClientSecret}}"
    redirect_uris: ["` + appRedirectURI + `"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    providers:
      - id: acme-idp
        type: oidc
        name: ACME sign-in
        issuer: {{.Upstream}}/acme
        client_id: ` + upClientID + `
        client_secret: upstream-secret-acme
  - id: globex
    name: Globex Inc.
    domains: ["globex.test"]
    providers:
      - id: globex-idp
        type: oidc
        name: Globex sign-in
        issuer: {{.Upstream}}/globex
        client_id: ` + upClientID + `
        client_secret: upstream-secret-globex
  - id: slow
    name: Slow Corp
    domains: ["slow.test"]
    providers:
      - id: slow-idp
        type: oidc
        name: ` + slowIdPName + `
        issuer: {{.Upstream}}/slow
        client_id: ` + upClientID + `
        client_secret: upstream-secret-slow
`))

// deploy writes the configuration and starts n realmgate processes at the
// same moment on store, and waits until every one is ready.
func deploy(t *testing.T, n int, store storeSpec) *deployment {
	t.Helper()
	e2etest.Need(t)
	d := &deployment{clientSecret: rand.Text()}
	for range n {
		d.addrs = append(d.addrs, e2etest.FreeAddr(t))
	}
	d.issuer = "http://" + d.addrs[0]
	var callbacks []string
	for _, idp := range tenantIdPs {
		callbacks = append(callbacks, d.issuer+"/callback/"+idp)
	}
	d.up = startUpstream(t, callbacks)
	d.config = e2etest.WriteConfig(t, configTemplate, map[string]any{"Issuer": d.issuer,
		"Store": map[string]any{"Addrs": store.addrs, "MasterName": store.masterName, "DB": store.db,
			"ReplicaAck": store.replicaAck, "LimitsOff": store.limitsOff}, "Secret": rand.Text() + rand.Text(),
		"ClientSecret": d.clientSecret, "Upstream": d.up.base})
	for i, a := range d.addrs {
		d.procs = append(d.procs, startRealmgate(t, "realmgate-"+string(rune('1'+i)), d.config, a))
	}
	for _, p := range d.procs {
		waitReady(t, p)
	}
	return d
}

// checkHealthy fails the test if a process exited or panicked.
func (d *deployment) checkHealthy(t *testing.T) {
	t.Helper()
	for _, p := range d.procs {
		p.checkHealthy(t)
	}
}

// outcomes counts login results by kind ("ok", "authorize 503", ...),
// keeping one example of each failure.
type outcomes struct {
	mu       sync.Mutex
	counts   map[string]int
	examples map[string]string
}

func newOutcomes() *outcomes {
	return &outcomes{counts: map[string]int{}, examples: map[string]string{}}
}

func (o *outcomes) add(err error) {
	kind := "ok"
	if err != nil {
		kind = errKind(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[kind]++
	if err != nil && o.examples[kind] == "" {
		o.examples[kind] = err.Error()
	}
}

func (o *outcomes) get(kind string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[kind]
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for k, n := range o.counts {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(n))
		if ex := o.examples[k]; ex != "" {
			b.WriteString(" (e.g. ")
			b.WriteString(ex)
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	return b.String()
}
