package memstore

import (
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) broker.Store {
		s := New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
