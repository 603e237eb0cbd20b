package dnstest_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/dnstest"
)

func TestServer_AnswersTXT(t *testing.T) {
	s := dnstest.Start(t)
	s.Set("_realmgate.Acme.test", "realmgate-verification=abc", "other")
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := r.LookupTXT(ctx, "_realmgate.acme.test.")
	if err != nil || !slices.Equal(got, []string{"realmgate-verification=abc", "other"}) {
		t.Fatalf("LookupTXT(published) = %q, %v", got, err)
	}
	if got, err := r.LookupTXT(ctx, "_realmgate.nowhere.test."); err == nil {
		t.Errorf("LookupTXT(unpublished) = %q, want an error", got)
	}
}
