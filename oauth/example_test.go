package oauth_test

import (
	"errors"
	"fmt"

	"github.com/realmgate/realmgate/oauth"
)

func Example() {
	cause := errors.New("store get: connection refused")
	err := oauth.New(oauth.TemporarilyUnavailable, "the service is temporarily unavailable").Wrap(cause)
	if e, ok := oauth.As(fmt.Errorf("token: %w", err)); ok {
		fmt.Println(e.Code, e.HTTPStatus(), e.Description)
	}
	fmt.Println(errors.Is(err, cause))
	// Output:
	// temporarily_unavailable 503 the service is temporarily unavailable
	// true
}
