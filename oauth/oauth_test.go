package oauth

import "testing"

// TestAs_NilAllocatesNothing: the token endpoint's error middleware asks
// As of every request's result; a nil error costs no allocation.
func TestAs_NilAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = As(nil) }); n != 0 {
		t.Errorf("As(nil) allocates %v times, want 0", n)
	}
	if e, ok := As(nil); ok || e != nil {
		t.Errorf("As(nil) = %v, %v, want nil, false", e, ok)
	}
}
