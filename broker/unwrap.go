package broker

import "github.com/realmgate/realmgate/providers"

// Unwrap returns the connector the bulkhead limits, so optional capabilities
// (found by type assertion) stay reachable through the wrapper.
func (l *limitedConnector) Unwrap() providers.Connector { return l.inner }

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
