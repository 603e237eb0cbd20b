//go:build !unix

package redistest

import "os"

// Without Unix signals Stop kills the process and Pause/Resume are not supported.
var (
	sigTerm os.Signal = os.Kill
	sigStop os.Signal = nil
	sigCont os.Signal = nil
)
