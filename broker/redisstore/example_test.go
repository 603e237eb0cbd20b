package redisstore_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/store"
)

// One address is a standalone server; several are a Cluster; MasterName
// selects Sentinel. This example needs a Redis on localhost:6379, so it has
// no checked output.
func Example() {
	s, err := redisstore.New(redisstore.Options{Addrs: []string{"localhost:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	if err := s.Put(ctx, "code:hmac1", []byte("grant"), time.Minute); errors.Is(err, store.ErrUnavailable) {
		log.Print("redis is down: answer 503")
		return
	}
	if v, err := s.Take(ctx, "code:hmac1"); err == nil {
		log.Printf("redeemed %s", v)
	}
}
