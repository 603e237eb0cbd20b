package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flush timer's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLingerWriter(t *testing.T) {
	t.Run("lines in order after Flush", func(t *testing.T) {
		var out lockedBuffer
		lw := newLingerWriter(&out, new(sync.Mutex))
		var want strings.Builder
		for i := range 1000 {
			line := fmt.Sprintf(`{"msg":"request","n":%d}`+"\n", i)
			want.WriteString(line)
			if n, err := lw.Write([]byte(line)); n != len(line) || err != nil {
				t.Fatalf("Write(line %d) = %d, %v, want %d, nil", i, n, err, len(line))
			}
		}
		lw.Flush()
		if got := out.String(); got != want.String() {
			t.Fatalf("after Flush: %d bytes written, want the %d bytes of the 1000 lines in order", len(got), want.Len())
		}
	})
	t.Run("written without Flush", func(t *testing.T) {
		var out lockedBuffer
		lw := newLingerWriter(&out, new(sync.Mutex))
		lw.Write([]byte("one line\n"))
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != "one line\n" {
			if time.Now().After(deadline) {
				t.Fatalf("line not written within 10 s without Flush; got %q", out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("line longer than the buffer", func(t *testing.T) {
		var out lockedBuffer
		lw := newLingerWriter(&out, new(sync.Mutex))
		lw.Write([]byte("first\n"))
		long := strings.Repeat("x", logBufferMax+1) + "\n"
		lw.Write([]byte(long))
		if got := out.String(); got != "first\n"+long {
			t.Fatalf("after a line of %d bytes: %d bytes written, want both lines in order at once", len(long), len(got))
		}
	})
}

// stalledWriter blocks every Write until release is closed, like a full
// pipe or a slow disk.
type stalledWriter struct {
	started chan struct{} // closed when the first Write begins
	release chan struct{}
	once    sync.Once
	out     lockedBuffer
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	<-w.release
	return w.out.Write(p)
}

// TestLingerWriter_WriteNeverWaitsForOutput: a request's log line is
// gathered while the previous lines are still being written; it does not
// wait for that write (the lock is not held across it), and every line
// comes out in order once the output moves again.
func TestLingerWriter_WriteNeverWaitsForOutput(t *testing.T) {
	sw := &stalledWriter{started: make(chan struct{}), release: make(chan struct{})}
	lw := newLingerWriter(sw, new(sync.Mutex))
	lw.Write([]byte("first\n"))
	select {
	case <-sw.started: // the timer's flush is stuck in the output
	case <-time.After(10 * time.Second):
		t.Fatal("gathered line not written within 10 s")
	}
	wrote := make(chan struct{})
	go func() {
		for i := range 100 {
			lw.Write([]byte(fmt.Sprintf("line %d\n", i)))
		}
		close(wrote)
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		close(sw.release)
		t.Fatal("Write waited for a stalled output: a request's log line blocked the request")
	}
	close(sw.release)
	lw.Flush()
	var want strings.Builder
	want.WriteString("first\n")
	for i := range 100 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got := sw.out.String(); got != want.String() {
		t.Fatalf("after the output moved again: %q, want the 101 lines in order", got)
	}
}

func TestLingerLogs_OnlyFiles(t *testing.T) {
	var buf bytes.Buffer
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stderr, stdout, flush := lingerLogs(&buf, f)
	if stderr != &buf {
		t.Errorf("lingerLogs(buffer) = %T, want the buffer itself", stderr)
	}
	if _, ok := stdout.(*lingerWriter); !ok {
		t.Errorf("lingerLogs(file) = %T, want a *lingerWriter", stdout)
	}
	stdout.Write([]byte("audit line\n"))
	flush()
	if b, _ := os.ReadFile(f.Name()); string(b) != "audit line\n" {
		t.Errorf("file after flush = %q, want %q", b, "audit line\n")
	}
}
