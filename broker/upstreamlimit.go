package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/realmgate/realmgate/providers"
)

// Upstream bulkheads: every IdP's connector is wrapped so that one hanging or
// slow upstream can hold only a bounded share of an instance (a semaphore of
// Config.UpstreamConcurrency slots per IdP) for a bounded time
// (UpstreamTimeout per operation). When an IdP's slots are all taken, further
// logins at that IdP fail at once with providers.ErrUnavailable, which the
// callback and login pages turn into a readable 502 naming the IdP; the other
// tenants' IdPs have their own slots and are not slowed.

// DefaultUpstreamConcurrency is how many upstream operations (login starts
// and callbacks) one IdP may have in flight on one instance when
// Config.UpstreamConcurrency is zero.
const DefaultUpstreamConcurrency = 64

// UpstreamTimeout bounds one whole upstream operation (LoginURL,
// HandleCallback, HandleUnsolicited), which may make several round trips
// (discovery, token, JWKS, userinfo), on top of the connector's own
// per-request timeouts.
const UpstreamTimeout = 30 * time.Second

// ErrUpstreamBusy means an IdP already has Config.UpstreamConcurrency
// operations in flight on this instance. It wraps providers.ErrUnavailable.
var ErrUpstreamBusy = fmt.Errorf("broker: too many sign-ins in progress at this identity provider: %w", providers.ErrUnavailable)

// limitedConnector is a connector behind a per-IdP semaphore and deadline.
type limitedConnector struct {
	inner   providers.Connector
	id      string
	slots   chan struct{}
	timeout time.Duration
}

var (
	_ providers.Connector = (*limitedConnector)(nil)
	_ providers.Unwrapper = (*limitedConnector)(nil)
)

// Unwrap implements providers.Unwrapper: it returns the connector the
// bulkhead limits, so providers.As finds its optional capabilities.
func (l *limitedConnector) Unwrap() providers.Connector { return l.inner }

// acquire takes a slot without waiting and returns ctx bounded by the
// operation timeout, and the function that gives both back.
func (l *limitedConnector) acquire(ctx context.Context) (context.Context, func(), error) {
	select {
	case l.slots <- struct{}{}:
	default:
		return nil, nil, fmt.Errorf("idp %q: %d operations in flight: %w", l.id, cap(l.slots), ErrUpstreamBusy)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	return ctx, func() { cancel(); <-l.slots }, nil
}

// bounded maps a deadline the connector did not classify to
// providers.ErrUnavailable, so the user sees "not responding".
func bounded(ctx context.Context, id string, err error) error {
	if err == nil || errors.Is(err, providers.ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("idp %q: no answer within the upstream timeout: %w: %w", id, providers.ErrUnavailable, err)
	}
	return err
}

// LoginURL implements providers.Connector within the IdP's limits.
func (l *limitedConnector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, []byte, error) {
	ctx, release, err := l.acquire(ctx)
	if err != nil {
		return "", nil, err
	}
	defer release()
	u, data, err := l.inner.LoginURL(ctx, req)
	return u, data, bounded(ctx, l.id, err)
}

// HandleCallback implements providers.Connector within the IdP's limits.
func (l *limitedConnector) HandleCallback(ctx context.Context, req providers.LoginRequest, data []byte, r *http.Request) (providers.Identity, error) {
	ctx, release, err := l.acquire(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	defer release()
	id, err := l.inner.HandleCallback(ctx, req, data, r)
	return id, bounded(ctx, l.id, err)
}

// handleUnsolicited runs u.HandleUnsolicited (an IdP-initiated SAML
// response, which the connector validates against the upstream's metadata
// like a callback) inside idp's bulkhead: the capability is found on the
// wrapped connector through providers.As, so the bulkhead is taken here.
func handleUnsolicited(ctx context.Context, idp IdP, u providers.UnsolicitedHandler, r *http.Request) (providers.Identity, error) {
	l, ok := providers.As[*limitedConnector](idp.Connector)
	if !ok {
		return u.HandleUnsolicited(ctx, r)
	}
	ctx, release, err := l.acquire(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	defer release()
	id, err := u.HandleUnsolicited(ctx, r)
	return id, bounded(ctx, l.id, err)
}

// limitUpstream wraps idp's connector in its bulkhead: limit slots (0 means
// DefaultUpstreamConcurrency) and UpstreamTimeout per operation. A connector
// already behind a bulkhead is returned as it is. The wrapper limits
// LoginURL and HandleCallback; optional capabilities stay reachable through
// Unwrap (providers.As), and handleUnsolicited puts the one that calls the
// upstream on behalf of a login inside the same limits.
func limitUpstream(idp IdP, limit int) providers.Connector {
	if limit <= 0 {
		limit = DefaultUpstreamConcurrency
	}
	if l, ok := idp.Connector.(*limitedConnector); ok {
		return l
	}
	return newLimited(idp.ID, idp.Connector, limit)
}

func newLimited(id string, c providers.Connector, limit int) *limitedConnector {
	return &limitedConnector{inner: c, id: id, slots: make(chan struct{}, limit), timeout: UpstreamTimeout}
}
