package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
)

// idpInitiatedIdP accepts IdP-initiated responses (providers.UnsolicitedHandler).
// The first HandleUnsolicited holds until release; any later one that
// reaches the connector is refused as invalid, so a response the bulkhead
// should have refused shows as a 400 instead of a 502.
type idpInitiatedIdP struct {
	*fakeIdP
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

var _ providers.UnsolicitedHandler = (*idpInitiatedIdP)(nil)

func (f *idpInitiatedIdP) Unsolicited(string) (string, bool) { return "https://app-a.example/", true }

func (f *idpInitiatedIdP) HandleUnsolicited(ctx context.Context, _ *http.Request) (providers.Identity, error) {
	if f.calls.Add(1) > 1 {
		return providers.Identity{}, providers.ErrInvalidResponse
	}
	close(f.entered)
	select {
	case <-f.release:
		return f.ident, nil
	case <-ctx.Done():
		return providers.Identity{}, ctx.Err()
	}
}

// TestUpstreamLimit_S63_UnsolicitedACS: an IdP-initiated SAML response
// posted to the ACS is validated inside the IdP's bulkhead, although the
// broker finds the capability on the connector behind it: with the IdP's
// one slot held by a response in validation, the next one posted is
// answered at once with the "not responding" page and never reaches the
// connector, and a login start at that IdP is refused too.
func TestUpstreamLimit_S63_UnsolicitedACS(t *testing.T) {
	var idp *idpInitiatedIdP
	e := newEnv(t, func(c *broker.Config) {
		c.UpstreamConcurrency = 1
		for i := range c.IdPs {
			if c.IdPs[i].ID == "acme-idp" {
				idp = &idpInitiatedIdP{fakeIdP: c.IdPs[i].Connector.(*fakeIdP),
					entered: make(chan struct{}), release: make(chan struct{})}
				c.IdPs[i].Connector = idp
			}
		}
	})
	acs := e.issuer + "/saml/acme-idp/acs"
	form := url.Values{"SAMLResponse": {"PHJlc3BvbnNlLz4="}}
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := e.browser().c.PostForm(acs, form)
		if err != nil {
			t.Errorf("POST %s: %v", acs, err)
			first <- nil
			return
		}
		resp.Body.Close()
		first <- resp
	}()
	<-idp.entered

	resp, body := e.browser().postForm(acs, form)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not responding") {
		t.Errorf("POST %s while the IdP's slot is held = %d, want %d with the \"not responding\" page (bulkhead full)", acs, resp.StatusCode, http.StatusBadGateway)
	}
	if n := idp.calls.Load(); n != 1 {
		t.Errorf("HandleUnsolicited ran %d times, want 1: the second response passed the bulkhead", n)
	}
	b := e.browser()
	_, challenge := pkce()
	v := authParams(challenge)
	if resp := b.get(e.authorizeURL(v)); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET /authorize at acme while its slot is held = %d, want %d", resp.StatusCode, http.StatusBadGateway)
	}

	close(idp.release)
	if resp := <-first; resp != nil && resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST %s within the limit = %d, want %d", acs, resp.StatusCode, http.StatusSeeOther)
	}
}
