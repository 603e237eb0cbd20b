package memstore

import (
	"testing"

	"github.com/realmgate/realmgate/broker/storetest"
	"github.com/realmgate/realmgate/store"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
