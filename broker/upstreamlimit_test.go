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
	// The slow calls hold both slots until released below, so a LoginURL
	// that waited for a slot would not answer at all: waiting for it with a
	// generous deadline tells an immediate refusal from a wait, however
	// busy the machine.
	answered := make(chan error, 1)
	go func() {
		_, _, err := ls.LoginURL(ctx, providers.LoginRequest{})
		answered <- err
	}()
	select {
	case err := <-answered:
		if !errors.Is(err, ErrUpstreamBusy) || !errors.Is(err, providers.ErrUnavailable) {
			t.Errorf("LoginURL on a full IdP = %v, want ErrUpstreamBusy wrapping providers.ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("LoginURL on a full IdP did not answer while the slots stayed taken: it waits for a slot, want an immediate refusal")
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
		// The upstream never answers: without the deadline the call would
		// not return, so any generous bound tells the two apart.
		if el := time.Since(start); el < l.timeout || el > 10*time.Second {
			t.Errorf("call %d took %s, want about %s", i, el, l.timeout)
		}
	}
}

// fakeSAML has every optional SAML capability; halfSAML only one.
type fakeSAML struct {
	*blockingConnector
	cache providers.ReplayCache
}

func (f *fakeSAML) Metadata(context.Context) ([]byte, error) { return []byte("<md/>"), nil }
func (f *fakeSAML) PostForm(context.Context, []byte, string) (string, map[string]string, error) {
	return "https://idp.example/sso", nil, nil
}
func (f *fakeSAML) Unsolicited(string) (string, bool) { return "", false }
func (f *fakeSAML) HandleUnsolicited(ctx context.Context, _ *http.Request) (providers.Identity, error) {
	return providers.Identity{}, f.wait(ctx)
}
func (f *fakeSAML) SetReplayCache(c providers.ReplayCache) { f.cache = c }

type halfSAML struct{ *blockingConnector }

func (h *halfSAML) Metadata(context.Context) ([]byte, error) { return []byte("<half/>"), nil }

// TestUpstreamLimit_KeepsCapabilities: every connector goes behind its
// bulkhead, once; the optional capabilities of the connector it wraps,
// all of them or only some, are found through it with providers.As, and
// none it lacks is invented.
func TestUpstreamLimit_KeepsCapabilities(t *testing.T) {
	ctx := context.Background()
	full := &fakeSAML{blockingConnector: newBlocking()}
	close(full.release)
	w := limitUpstream(IdP{ID: "saml", Connector: full}, 1)
	if _, ok := w.(*limitedConnector); !ok {
		t.Fatalf("limitUpstream(SAML connector) = %T, want it behind the bulkhead", w)
	}
	if _, ok := providers.As[providers.PostBinder](w); !ok {
		t.Errorf("As[PostBinder](limited SAML connector) found nothing")
	}
	if _, ok := providers.As[providers.UnsolicitedHandler](w); !ok {
		t.Errorf("As[UnsolicitedHandler](limited SAML connector) found nothing")
	}
	if _, ok := providers.As[providers.SingleLogout](w); ok {
		t.Errorf("As[SingleLogout](limited SAML connector without SLO) found one")
	}
	u, ok := providers.As[providers.ReplayCacheUser](w)
	if !ok {
		t.Fatalf("As[ReplayCacheUser](limited SAML connector) found nothing")
	}
	u.SetReplayCache(replayCache{})
	if full.cache == nil {
		t.Errorf("SetReplayCache did not reach the wrapped connector")
	}
	if mp, ok := providers.As[providers.MetadataPublisher](w); !ok {
		t.Errorf("As[MetadataPublisher](limited SAML connector) found nothing")
	} else if md, err := mp.Metadata(ctx); err != nil || string(md) != "<md/>" {
		t.Errorf("Metadata through the wrapper = %q, %v", md, err)
	}
	if again := limitUpstream(IdP{ID: "saml", Connector: w}, 1); again != w {
		t.Errorf("limitUpstream of a limited connector wrapped it again")
	}

	half := &halfSAML{newBlocking()}
	hw := limitUpstream(IdP{ID: "half", Connector: half}, 1)
	if _, ok := hw.(*limitedConnector); !ok {
		t.Errorf("limitUpstream(connector with some SAML capabilities) = %T, want it behind the bulkhead", hw)
	}
	if mp, ok := providers.As[providers.MetadataPublisher](hw); !ok {
		t.Errorf("As[MetadataPublisher](limited half connector) found nothing")
	} else if md, _ := mp.Metadata(ctx); string(md) != "<half/>" {
		t.Errorf("Metadata through the wrapper = %q, want %q", md, "<half/>")
	}
	if _, ok := providers.As[providers.PostBinder](hw); ok {
		t.Errorf("As[PostBinder](limited half connector) found one it lacks")
	}

	if _, ok := limitUpstream(IdP{ID: "plain", Connector: newBlocking()}, 0).(*limitedConnector); !ok {
		t.Errorf("limitUpstream(plain connector) is not limited")
	}
	if l := limitUpstream(IdP{ID: "plain", Connector: newBlocking()}, 0).(*limitedConnector); cap(l.slots) != DefaultUpstreamConcurrency {
		t.Errorf("limit 0 gives %d slots, want DefaultUpstreamConcurrency (%d)", cap(l.slots), DefaultUpstreamConcurrency)
	}
}

// TestUpstreamLimit_S63_Unsolicited: HandleUnsolicited, found on the wrapped
// connector, still runs inside the IdP's bulkhead: it takes a slot (a full
// IdP refuses it at once, and it fills the IdP for LoginURL), and a
// deadline is reported as providers.ErrUnavailable.
func TestUpstreamLimit_S63_Unsolicited(t *testing.T) {
	ctx := context.Background()
	f := &fakeSAML{blockingConnector: newBlocking()}
	idp := IdP{ID: "saml", Connector: limitUpstream(IdP{ID: "saml", Connector: f}, 1)}
	u, ok := providers.As[providers.UnsolicitedHandler](idp.Connector)
	if !ok {
		t.Fatalf("As[UnsolicitedHandler] found nothing")
	}
	done := make(chan error)
	go func() {
		_, err := handleUnsolicited(ctx, idp, u, nil)
		done <- err
	}()
	<-f.entered
	// A call that passed the bulkhead would block in the connector; the
	// cancelled context makes it return at once with context.Canceled.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := handleUnsolicited(gone, idp, u, nil); !errors.Is(err, ErrUpstreamBusy) {
		t.Errorf("handleUnsolicited on a full IdP = %v, want ErrUpstreamBusy", err)
	}
	if _, _, err := idp.Connector.LoginURL(gone, providers.LoginRequest{}); !errors.Is(err, ErrUpstreamBusy) {
		t.Errorf("LoginURL while HandleUnsolicited holds the slot = %v, want ErrUpstreamBusy", err)
	}
	close(f.release)
	if err := <-done; err != nil {
		t.Errorf("handleUnsolicited within the limit = %v", err)
	}

	h := &fakeSAML{blockingConnector: newBlocking()}
	l := limitUpstream(IdP{ID: "hang", Connector: h}, 1).(*limitedConnector)
	l.timeout = 50 * time.Millisecond
	hidp := IdP{ID: "hang", Connector: l}
	// The outer deadline only keeps a call outside the bulkhead from hanging.
	outer, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := handleUnsolicited(outer, hidp, h, nil); !errors.Is(err, providers.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("handleUnsolicited at a hanging upstream = %v, want providers.ErrUnavailable for the deadline", err)
	}
}
