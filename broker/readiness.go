package broker

import (
	"errors"
	"sync"
)

// ErrNotReady is wrapped by Ready's error when a readiness check fails
// (the store answers, but the instance cannot serve yet).
var ErrNotReady = errors.New("broker: not ready")

// readiness holds the conditions, besides the store answering, that an
// instance needs before it is ready.
type readiness struct {
	mu     sync.Mutex
	checks []func() error
}

// AddReadinessCheck adds a condition to readiness (/readyz and Ready): the
// instance is not ready while check returns an error, such as the admin
// API's tenants not being loaded yet. Its message is shown by /readyz, so
// it must hold no secret.
func (s *Server) AddReadinessCheck(check func() error) {
	s.readiness.mu.Lock()
	defer s.readiness.mu.Unlock()
	s.readiness.checks = append(s.readiness.checks, check)
}

// check runs every check; the first failure, wrapped in ErrNotReady.
func (r *readiness) check() error {
	r.mu.Lock()
	checks := r.checks
	r.mu.Unlock()
	for _, c := range checks {
		if err := c(); err != nil {
			return errors.Join(ErrNotReady, err)
		}
	}
	return nil
}
