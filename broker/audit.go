package broker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/realmgate/realmgate/store"
)

// Sign-in audit (SECURITY S61). Every request that ends a step of a sign-in
// writes exactly one event: the handlers call auditEvent with the outcome,
// and the observe middleware writes one for a sign-in request that failed
// without saying why (an expired request, a malformed form, a store outage).
// An event names the tenant, IdP, subject, client, client IP, user agent,
// reason and request id; it never holds a secret or a token (no code,
// state, cookie, assertion or credential is ever passed to auditEvent).
// Events go to the audit log stream at once and, off the request path,
// to a per-tenant stream in the store with bounded retention.

type attrs struct {
	client, tenant, idp, subject string
	// actor is "<tenant>/<sub>" of an operator acting as subject (impersonation).
	actor string
	// risk is the sign-in's conditional-access risk level, when evaluated.
	risk string
}

// AuditEvent is one sign-in audit event, as logged and as stored.
type AuditEvent struct {
	Time time.Time `json:"time"`
	// Outcome is one of: started, success, refused, failure, denied, abort,
	// throttled, logout, revoked, access (a step of a time-bound role
	// grant, access.go), test_sign_in_started, test_sign_in_finished (a
	// setup portal's test sign-in, testsignin.go: Reason is its outcome).
	Outcome string `json:"outcome"`
	// Reason says why: a refusal or failure code, the rule that denied, or
	// the limit that throttled; empty for a plain success or start.
	Reason  string `json:"reason,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	IdP     string `json:"idp,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Actor is the operator acting as Subject (impersonation), as
	// "<tenant>/<sub>", or who started a test sign-in (setup-link:<id>).
	Actor     string `json:"actor,omitempty"`
	Client    string `json:"client,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// TraceID is the OpenTelemetry trace of the request, when tracing is on.
	TraceID string `json:"trace_id,omitempty"`
	// Risk is the sign-in's risk level (low, medium, high) when
	// conditional access evaluated it (docs/conditional-access.md).
	Risk string `json:"risk,omitempty"`
}

// ErrBadAuditCursor means ReadAudit's after is not an audit event id.
var ErrBadAuditCursor = errors.New("broker: malformed audit cursor")

// MaxAuditRead bounds the events one ReadAudit returns.
const MaxAuditRead = 1000

// UnattributedTenant names the audit stream of events that belong to no
// tenant (an unknown client, a request refused before the realm is known).
// It cannot be a tenant id, which starts with a letter or digit.
const UnattributedTenant = "_none"

// DefaultAuditMaxLen is how many events each tenant's stream keeps when
// Config.AuditMaxLen is zero.
const DefaultAuditMaxLen = 10000

// Request-scoped keys.
const (
	ctxAudited    = "rg_audited"
	ctxTokenError = "rg_token_error"
	// ctxStartReason is the reason of the "started" event a request that
	// goes upstream again writes (an MFA step-up).
	ctxStartReason = "rg_start_reason"
)

func startReason(c echo.Context) string { r, _ := c.Get(ctxStartReason).(string); return r }

// Bounds on what a client controls inside an event.
const (
	maxAuditField     = 200
	maxAuditUserAgent = 512
)

// auditEvent writes one structured event to the audit stream (S61). It never
// carries a secret or a token.
func (s *Server) auditEvent(c echo.Context, outcome, reason string, a attrs) {
	n, _ := c.Get(ctxAudited).(int)
	c.Set(ctxAudited, n+1)
	req := c.Request()
	ev := AuditEvent{
		Time: s.now().UTC(), Outcome: outcome, Reason: clip(reason, maxAuditField),
		Tenant: a.tenant, IdP: clip(a.idp, maxAuditField), Subject: a.subject, Actor: clip(a.actor, maxAuditField), Client: clip(a.client, maxAuditField),
		IP: c.RealIP(), UserAgent: clip(req.UserAgent(), maxAuditUserAgent), RequestID: requestID(c), Risk: a.risk,
	}
	if sc := trace.SpanContextFromContext(req.Context()); sc.IsValid() { // the log line gets it from the log handler
		ev.TraceID = sc.TraceID().String()
	}
	logEvent(req.Context(), s.audit, slog.LevelInfo, "signin",
		slog.String("outcome", ev.Outcome), slog.String("reason", ev.Reason),
		slog.String("tenant", ev.Tenant), slog.String("idp", ev.IdP), slog.String("subject", ev.Subject),
		slog.String("actor", ev.Actor), slog.String("client", ev.Client), slog.String("ip", ev.IP), slog.String("user_agent", ev.UserAgent),
		slog.String("request_id", ev.RequestID), slog.String("risk", ev.Risk))

	// Metric labels only take configured values: a client can name any IdP.
	tenant, idp := "", ""
	if p, ok := s.dir().idps[a.idp]; ok {
		idp, tenant = p.ID, p.Tenant
	}
	if a.tenant != "" {
		if _, ok := s.dir().resolver.Tenant(a.tenant); ok {
			tenant = a.tenant
		}
	}
	s.ops.metrics.signin(tenant, idp, outcome)
	if strings.HasPrefix(reason, "upstream_") && outcome == "failure" {
		s.ops.metrics.upstreamError(idp, reason)
	}
	if perTenant, ok := failureReasons[reason]; ok && (outcome == "refused" || outcome == "failure") {
		forTenant := ""
		if perTenant {
			forTenant = tenant
		}
		s.countFailure(c, reason, forTenant)
	}
	s.ops.audit.push(s, tenant, ev)
}

// clip bounds a client-controlled value, keeping it valid UTF-8.
func clip(v string, n int) string {
	if len(v) <= n {
		return v
	}
	v = v[:n]
	for len(v) > 0 {
		r, size := utf8.DecodeLastRuneInString(v)
		if r != utf8.RuneError || size > 1 {
			break
		}
		v = v[:len(v)-1]
	}
	return v + "…"
}

// auditWriter appends events to the store's per-tenant streams off the
// request path, through a bounded queue: a slow or absent store drops audit
// writes (counted and logged; the log stream keeps every event), it never
// delays a sign-in.
type auditWriter struct {
	store   AuditStore
	maxLen  int64
	queues  []chan auditItem // one per worker; a tenant's events always go to the same one
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	dropped atomic.Int64
	lastErr atomic.Int64 // unix ns of the last logged write error
}

type auditItem struct {
	tenant string
	event  []byte
}

const (
	auditQueueSize    = 4096
	auditWorkers      = 2
	auditBatch        = 128 // events written per round trip at most
	auditWriteTimeout = 2 * time.Second
	auditDrainTimeout = 5 * time.Second
)

// auditLinger is how long a worker gathers events after the first before
// it writes them: a sign-in makes two or three events, so without it a
// moderately busy tenant (hundreds of sign-ins a second) cost a store round
// trip per event; with it, one per auditLinger. Events reach the store
// stream that much later (the log stream at once).
const auditLinger = 10 * time.Millisecond

// newAuditWriter returns nil when the store keeps no audit streams or
// retention is off (maxLen < 0).
func (s *Server) newAuditWriter() *auditWriter {
	as, ok := s.store.(AuditStore)
	if !ok || s.cfg.AuditMaxLen < 0 {
		return nil
	}
	maxLen := s.cfg.AuditMaxLen
	if maxLen == 0 {
		maxLen = DefaultAuditMaxLen
	}
	w := &auditWriter{store: as, maxLen: maxLen}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for range auditWorkers {
		q := make(chan auditItem, auditQueueSize/auditWorkers)
		w.queues = append(w.queues, q)
		w.wg.Add(1)
		go w.run(s, q)
	}
	return w
}

func (w *auditWriter) push(s *Server, tenant string, ev AuditEvent) {
	if w == nil {
		return
	}
	if tenant == "" {
		tenant = UnattributedTenant
	}
	b, err := appendAuditEvent(make([]byte, 0, 320), &ev) // auditjson.go: as json.Marshal(ev)
	if err != nil {
		return
	}
	select {
	case w.queueFor(tenant) <- auditItem{tenant: tenant, event: b}:
	default:
		s.ops.metrics.auditDropped.Inc()
		if n := w.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8, ...: no log flood
			s.log.Error("audit queue full; events dropped from the store stream (the log stream has them)", "dropped", n)
		}
	}
}

// queueFor returns the worker queue of a tenant: one worker writes all of a
// tenant's events, so its stream keeps the order they happened in.
func (w *auditWriter) queueFor(tenant string) chan auditItem {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return w.queues[h.Sum32()%uint32(len(w.queues))]
}

func (w *auditWriter) run(s *Server, queue chan auditItem) {
	defer w.wg.Done()
	batch := make([]auditItem, 0, auditBatch)
	for it := range queue {
		// Take what else is queued (up to auditBatch) and write it in as few
		// round trips as the store allows: one worker per tenant keeps its
		// stream in order, batching keeps it up with a busy tenant.
		batch = append(batch[:0], it)
		linger := time.NewTimer(auditLinger)
	gather:
		for len(batch) < auditBatch {
			select {
			case x, ok := <-queue:
				if !ok {
					break gather
				}
				batch = append(batch, x)
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
		w.write(s, batch)
	}
}

// write appends a batch, each run of one tenant's events in one call when
// the store batches.
func (w *auditWriter) write(s *Server, batch []auditItem) {
	ctx, cancel := context.WithTimeout(w.ctx, auditWriteTimeout)
	defer cancel()
	batcher, _ := w.store.(AuditBatcher)
	for len(batch) > 0 {
		n := 1
		for n < len(batch) && batch[n].tenant == batch[0].tenant {
			n++
		}
		var err error
		if batcher != nil && n > 1 {
			events := make([][]byte, n)
			for i := range n {
				events[i] = batch[i].event
			}
			err = batcher.AppendAuditBatch(ctx, batch[0].tenant, events, w.maxLen)
		} else {
			for i := 0; i < n && err == nil; i++ {
				err = w.store.AppendAudit(ctx, batch[i].tenant, batch[i].event, w.maxLen)
			}
		}
		if err != nil {
			s.ops.metrics.storeError("audit")
			now := time.Now().UnixNano()
			if last := w.lastErr.Load(); now-last > int64(10*time.Second) && w.lastErr.CompareAndSwap(last, now) {
				s.log.Warn("audit stream write failed (the log stream has the event)", "tenant", batch[0].tenant, "events", n, "err", err)
			}
		}
		batch = batch[n:]
	}
}

// close stops accepting events and writes the queued ones, for at most
// auditDrainTimeout.
func (w *auditWriter) close() {
	if w == nil {
		return
	}
	w.once.Do(func() {
		for _, q := range w.queues {
			close(q)
		}
		t := time.AfterFunc(auditDrainTimeout, w.cancel)
		w.wg.Wait()
		t.Stop()
		w.cancel()
	})
}

// ReadAudit returns up to limit events of tenant's audit stream after the
// event with id after, oldest first; ok is false when the store keeps no
// audit streams. The admin endpoint serves it.
func (s *Server) ReadAudit(ctx context.Context, tenant, after string, limit int) (recs []AuditRecord, ok bool, err error) {
	as, ok := s.store.(AuditStore)
	if !ok {
		return nil, false, nil
	}
	if _, _, ok := store.ParseAuditID(after); after != "" && !ok {
		return nil, true, fmt.Errorf("%w: %q", ErrBadAuditCursor, clip(after, 40))
	}
	limit = min(max(limit, 1), MaxAuditRead)
	recs, err = as.ReadAudit(ctx, tenant, after, limit)
	if err != nil {
		return nil, true, storeErr("read audit", err)
	}
	return recs, true, nil
}
