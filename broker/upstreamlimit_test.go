package broker

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/providers"
)

// blockingConnector holds every call until release is closed or the
// context ends, counting the calls in flight.
type blockingConnector struct {
	release  chan struct{}
	mu       sync.Mutex
	inFlight int
	entered  chan struct{}
}

func newBlocking() *blockingConnector {
	return &blockingConnector{release: make(chan struct{}), entered: make(chan struct{}, 100)}
}

func (b *blockingConnector) wait(ctx context.Context) error {
	b.mu.Lock()
	b.inFlight++
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.inFlight--; b.mu.Unlock() }()
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err() // as a connector that does not classify deadlines would
	}
}

func (b *blockingConnector) LoginURL(ctx context.Context, _ providers.LoginRequest) (string, []byte, error) {
	return "https://idp.example/authorize", nil, b.wait(ctx)
}

func (b *blockingConnector) HandleCallback(ctx context.Context, _ providers.LoginRequest, _ []byte, _ *http.Request) (providers.Identity, error) {
	return providers.Identity{Subject: "u"}, b.wait(ctx)
}

// TestUpstreamLimit_S63_FailsFastWhenFull: with the IdP's slots taken, the next
// call fails at once with ErrUpstreamBusy (a providers.ErrUnavailable, which
// the pages show as "not responding"); another IdP is not affected; a freed
// slot serves again.
func TestUpstreamLimit_S63_FailsFastWhenFull(t *testing.T) {
	slow, other := newBlocking(), newBlocking()
	close(other.release)
	ls := limitUpstream(IdP{ID: "slow", Connector: slow}, 2)
	lo := limitUpstream(IdP{ID: "other", Connector: other}, 2)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ls.HandleCallback(ctx, providers.LoginRequest{}, nil, nil); err != nil {
				t.Errorf("call within the limit: %v", err)
			}
		}()
		<-slow.entered
	}
	start := time.Now()
	_, _, err := ls.LoginURL(ctx, providers.LoginRequest{})
	if !errors.Is(err, ErrUpstreamBusy) || !errors.Is(err, providers.ErrUnavailable) {
		t.Errorf("LoginURL on a full IdP = %v, want ErrUpstreamBusy wrapping providers.ErrUnavailable", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("LoginURL on a full IdP took %s, want an immediate answer", el)
	}
	for i := range 5 {
		if _, err := lo.HandleCallback(ctx, providers.LoginRequest{}, nil, nil); err != nil {
			t.Errorf("call %d at another IdP while the first is full: %v", i, err)
		}
	}
	close(slow.release)
	wg.Wait()
	if _, err := ls.HandleCallback(ctx, providers.LoginRequest{}, nil, nil); err != nil {
		t.Errorf("call after the slots were freed: %v", err)
	}
}

// TestUpstreamLimit_S63_Deadline: an upstream that never answers is given up
// after the operation timeout, reported as providers.ErrUnavailable, and its
// slot comes back.
func TestUpstreamLimit_S63_Deadline(t *testing.T) {
	b := newBlocking()
	l := limitUpstream(IdP{ID: "hang", Connector: b}, 1).(*limitedConnector)
	l.timeout = 50 * time.Millisecond
	for i := range 2 { // the second call proves the slot was released
		start := time.Now()
		_, err := l.HandleCallback(context.Background(), providers.LoginRequest{}, nil, nil)
		if !errors.Is(err, providers.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d to a hanging upstream = %v, want providers.ErrUnavailable for the deadline", i, err)
		}
		if el := time.Since(start); el < l.timeout || el > 2*time.Second {
			t.Errorf("call %d took %s, want about %s", i, el, l.timeout)
		}
	}
}

// fakeSAML has every optional SAML capability; halfSAML only one.
type fakeSAML struct {
	*blockingConnector
	cache assertionCache
}

func (f *fakeSAML) Metadata(context.Context) ([]byte, error) { return []byte("<md/>"), nil }
func (f *fakeSAML) PostForm(context.Context, []byte, string) (string, map[string]string, error) {
	return "https://idp.example/sso", nil, nil
}
func (f *fakeSAML) Unsolicited(string) (string, bool) { return "", false }
func (f *fakeSAML) HandleUnsolicited(ctx context.Context, _ *http.Request) (providers.Identity, error) {
	return providers.Identity{}, f.wait(ctx)
}
func (f *fakeSAML) SetReplayCache(c assertionCache) { f.cache = c }

type halfSAML struct{ *blockingConnector }

func (h *halfSAML) Metadata(context.Context) ([]byte, error) { return nil, nil }

// TestUpstreamLimit_KeepsCapabilities: the wrapper keeps the optional SAML
// interfaces the broker finds by type assertion, is not applied twice, and
// leaves a connector with only some of them as it is.
func TestUpstreamLimit_KeepsCapabilities(t *testing.T) {
	full := &fakeSAML{blockingConnector: newBlocking()}
	close(full.release)
	w := limitUpstream(IdP{ID: "saml", Connector: full}, 1)
	sc, ok := w.(samlConnector)
	if !ok {
		t.Fatalf("limitUpstream(SAML connector) = %T, which lost the SAML interfaces", w)
	}
	sc.SetReplayCache(replayCache{})
	if full.cache == nil {
		t.Errorf("SetReplayCache did not reach the wrapped connector")
	}
	if md, err := sc.Metadata(context.Background()); err != nil || string(md) != "<md/>" {
		t.Errorf("Metadata through the wrapper = %q, %v", md, err)
	}
	if again := limitUpstream(IdP{ID: "saml", Connector: w}, 1); again != w {
		t.Errorf("limitUpstream of a limited connector wrapped it again")
	}
	half := &halfSAML{newBlocking()}
	if got := limitUpstream(IdP{ID: "half", Connector: half}, 1); got != providers.Connector(half) {
		t.Errorf("limitUpstream(connector with some SAML interfaces) = %T, want it unchanged", got)
	}
	if _, ok := limitUpstream(IdP{ID: "plain", Connector: newBlocking()}, 0).(*limitedConnector); !ok {
		t.Errorf("limitUpstream(plain connector) is not limited")
	}
	if l := limitUpstream(IdP{ID: "plain", Connector: newBlocking()}, 0).(*limitedConnector); cap(l.slots) != DefaultUpstreamConcurrency {
		t.Errorf("limit 0 gives %d slots, want DefaultUpstreamConcurrency (%d)", cap(l.slots), DefaultUpstreamConcurrency)
	}
}
