package main

import (
	"io"
	"os"
	"sync"
	"time"
)

// logLinger is how long a log line may wait in memory before it is
// written: the lines of that window (a busy server writes thousands a
// second: one per request, one per audit event) share one write system
// call instead of one each.
const logLinger = 10 * time.Millisecond

// logBufferMax is the buffered size at which the lines are written at once.
const logBufferMax = 64 << 10

// lingerWriter gathers log lines for up to logLinger and writes them with
// one call. Flush writes what is gathered; serve flushes on its way out,
// so only a process killed outright (SIGKILL, a crash outside the request
// handlers' recovery) can lose the lines of its last logLinger. Each Write
// is one whole line from a slog handler, and lines keep their order.
type lingerWriter struct {
	mu sync.Mutex
	// out serializes the writes of the writers of one process: stdout
	// and stderr may be one pipe, where a write longer than PIPE_BUF is
	// not atomic, so two flushes at once could mix their lines.
	out   *sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // armed while buf holds lines
	armed bool
}

var _ io.Writer = (*lingerWriter)(nil)

func newLingerWriter(w io.Writer, out *sync.Mutex) *lingerWriter {
	lw := &lingerWriter{w: w, out: out}
	lw.timer = time.AfterFunc(time.Hour, lw.Flush)
	lw.timer.Stop()
	return lw
}

// Write gathers p; it never fails (a failed write of the gathered lines is
// what a direct write would have hit too, and a logger ignores it).
func (lw *lingerWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf)+len(p) > logBufferMax {
		lw.flushLocked()
	}
	if len(p) > logBufferMax {
		lw.out.Lock()
		defer lw.out.Unlock()
		_, err := lw.w.Write(p)
		return len(p), err
	}
	lw.buf = append(lw.buf, p...)
	if !lw.armed {
		lw.armed = true
		lw.timer.Reset(logLinger)
	}
	return len(p), nil
}

// Flush writes the gathered lines now.
func (lw *lingerWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
}

func (lw *lingerWriter) flushLocked() {
	if lw.armed {
		lw.timer.Stop()
		lw.armed = false
	}
	if len(lw.buf) == 0 {
		return
	}
	lw.out.Lock()
	_, _ = lw.w.Write(lw.buf)
	lw.out.Unlock()
	if cap(lw.buf) > logBufferMax {
		lw.buf = nil
	} else {
		lw.buf = lw.buf[:0]
	}
}

// lingerLogs wraps serve's log outputs that are files (a terminal, a pipe,
// a log file) in lingerWriters; other writers (a test's buffer) are left
// as they are, so what was logged is there when a call returns. flush
// writes what is gathered.
func lingerLogs(stderr, stdout io.Writer) (io.Writer, io.Writer, func()) {
	var flushers []func()
	out := new(sync.Mutex)
	wrap := func(w io.Writer) io.Writer {
		if _, isFile := w.(*os.File); !isFile {
			return w
		}
		lw := newLingerWriter(w, out)
		flushers = append(flushers, lw.Flush)
		return lw
	}
	stderr, stdout = wrap(stderr), wrap(stdout)
	return stderr, stdout, func() {
		for _, f := range flushers {
			f()
		}
	}
}
