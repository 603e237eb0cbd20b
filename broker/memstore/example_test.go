package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/store"
)

// A code is redeemed once; a replayed refresh token revokes its family.
func Example() {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()

	_ = s.Put(ctx, "code:hmac1", []byte("grant"), time.Minute)
	v, err := s.Take(ctx, "code:hmac1")
	fmt.Printf("first Take: %s %v\n", v, err)
	_, err = s.Take(ctx, "code:hmac1")
	fmt.Println("second Take not found:", errors.Is(err, store.ErrNotFound))

	_ = s.CreateFamily(ctx, "fam1", "rt0", []byte("grant"), time.Hour)
	_, err = s.Rotate(ctx, "fam1", "rt0", "rt1")
	fmt.Println("rotate:", err)
	_, err = s.Rotate(ctx, "fam1", "rt0", "rt2")
	fmt.Println("replay reused:", errors.Is(err, store.ErrReused))
	_, err = s.FamilyGrant(ctx, "fam1")
	fmt.Println("family active:", err == nil)
	// Output:
	// first Take: grant <nil>
	// second Take not found: true
	// rotate: <nil>
	// replay reused: true
	// family active: false
}
