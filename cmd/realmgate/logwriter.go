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

// logBacklogMax is how much may gather while the output is still busy with
// the previous lines (a slow disk, a full pipe): past it a Write waits, so a
// stalled output costs bounded memory.
const logBacklogMax = 16 * logBufferMax

// lingerWriter gathers log lines for up to logLinger and writes them with
// one call. Flush writes what is gathered; serve flushes on its way out,
// so only a process killed outright (SIGKILL, a crash outside the request
// handlers' recovery) can lose the lines of its last logLinger. Each Write
// is one whole line from a slog handler, and lines keep their order.
//
// A Write (a request's log line) never waits for the output: the gathered
// lines are written outside mu, by one goroutine at a time (the timer's, or
// a Write that filled the buffer), while other Writes gather into a second
// buffer. Only a line longer than the buffer, or a backlog past
// logBacklogMax, waits for the output.
type lingerWriter struct {
	mu sync.Mutex
	// idle is signalled (with mu) when a write of gathered lines ends.
	idle *sync.Cond
	// out serializes the writes of the writers of one process: stdout
	// and stderr may be one pipe, where a write longer than PIPE_BUF is
	// not atomic, so two flushes at once could mix their lines.
	out     *sync.Mutex
	w       io.Writer
	buf     []byte
	spare   []byte      // the other buffer, while not being written
	timer   *time.Timer // armed while buf holds lines and no write runs
	armed   bool
	writing bool // a goroutine is writing gathered lines outside mu
}

var _ io.Writer = (*lingerWriter)(nil)

func newLingerWriter(w io.Writer, out *sync.Mutex) *lingerWriter {
	lw := &lingerWriter{w: w, out: out}
	lw.idle = sync.NewCond(&lw.mu)
	lw.timer = time.AfterFunc(time.Hour, lw.lingered)
	lw.timer.Stop()
	return lw
}

// Write gathers p; it never fails (a failed write of the gathered lines is
// what a direct write would have hit too, and a logger ignores it).
func (lw *lingerWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for lw.writing && (len(lw.buf) >= logBacklogMax || len(p) > logBufferMax) {
		lw.idle.Wait()
	}
	lw.buf = append(lw.buf, p...)
	switch {
	case lw.writing:
		// the running write takes these lines next
	case len(lw.buf) >= logBufferMax:
		lw.writeLocked()
	case !lw.armed:
		lw.armed = true
		lw.timer.Reset(logLinger)
	}
	return len(p), nil
}

// Flush writes the gathered lines now, after any write already under way.
func (lw *lingerWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for lw.writing {
		lw.idle.Wait()
	}
	lw.writeLocked()
}

// lingered is the timer's flush: when a write is under way, it takes the
// gathered lines with it.
func (lw *lingerWriter) lingered() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.armed = false
	if !lw.writing {
		lw.writeLocked()
	}
}

// writeLocked writes the gathered lines, and the lines gathered meanwhile,
// with mu released during each write. mu is held on entry and on return,
// and no other write is under way.
func (lw *lingerWriter) writeLocked() {
	if lw.armed {
		lw.timer.Stop()
		lw.armed = false
	}
	lw.writing = true
	for len(lw.buf) > 0 {
		b := lw.buf
		lw.buf, lw.spare = lw.spare[:0], nil
		lw.mu.Unlock()
		lw.out.Lock()
		_, _ = lw.w.Write(b)
		lw.out.Unlock()
		lw.mu.Lock()
		if cap(b) <= logBufferMax*2 {
			lw.spare = b[:0]
		}
	}
	lw.writing = false
	lw.idle.Broadcast()
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
