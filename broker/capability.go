package broker

import "github.com/realmgate/realmgate/providers"

// connectorAs finds an optional capability T on c or on any connector it
// wraps (each wrapper offering Unwrap), as errors.As does for errors.
func connectorAs[T any](c providers.Connector) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		u, ok := c.(interface{ Unwrap() providers.Connector })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	var zero T
	return zero, false
}
