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

var _ providers.Connector = (*limitedConnector)(nil)

// Unwrap returns the connector the bulkhead limits, so optional capabilities
// (found by type assertion) stay reachable through the wrapper.
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

// samlConnector is a connector with every optional SAML interface the
// broker looks for (see saml.go).
type samlConnector interface {
	providers.Connector
	metadataPublisher
	postBinder
	unsolicitedHandler
	replayCacheUser
}

// limitedSAML keeps the optional SAML interfaces of the connector it limits,
// so the broker's type assertions still find them.
type limitedSAML struct {
	*limitedConnector
	saml samlConnector
}

var _ samlConnector = (*limitedSAML)(nil)

// Metadata implements metadataPublisher (local: not limited).
func (l *limitedSAML) Metadata(ctx context.Context) ([]byte, error) { return l.saml.Metadata(ctx) }

// PostForm implements postBinder (local: not limited).
func (l *limitedSAML) PostForm(ctx context.Context, data []byte, relayState string) (string, map[string]string, error) {
	return l.saml.PostForm(ctx, data, relayState)
}

// Unsolicited implements unsolicitedHandler.
func (l *limitedSAML) Unsolicited(relayState string) (string, bool) {
	return l.saml.Unsolicited(relayState)
}

// HandleUnsolicited implements unsolicitedHandler within the IdP's limits.
func (l *limitedSAML) HandleUnsolicited(ctx context.Context, r *http.Request) (providers.Identity, error) {
	ctx, release, err := l.acquire(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	defer release()
	id, err := l.saml.HandleUnsolicited(ctx, r)
	return id, bounded(ctx, l.id, err)
}

// SetReplayCache implements replayCacheUser.
func (l *limitedSAML) SetReplayCache(c assertionCache) { l.saml.SetReplayCache(c) }

// limitUpstream wraps idp's connector in its bulkhead: limit slots (0 means
// DefaultUpstreamConcurrency) and UpstreamTimeout per operation. A connector
// that implements only some of the optional SAML interfaces is returned as
// it is, because a wrapper could not keep exactly its method set.
func limitUpstream(idp IdP, limit int) providers.Connector {
	if limit <= 0 {
		limit = DefaultUpstreamConcurrency
	}
	switch c := idp.Connector.(type) {
	case *limitedConnector, *limitedSAML:
		return c
	case samlConnector:
		return &limitedSAML{limitedConnector: newLimited(idp.ID, c, limit), saml: c}
	case metadataPublisher, postBinder, unsolicitedHandler, replayCacheUser:
		return c
	}
	return newLimited(idp.ID, idp.Connector, limit)
}

func newLimited(id string, c providers.Connector, limit int) *limitedConnector {
	return &limitedConnector{inner: c, id: id, slots: make(chan struct{}, limit), timeout: UpstreamTimeout}
}
