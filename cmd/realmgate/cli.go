package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// parseFlags parses a subcommand's flags. With -h or --help it prints the
// synopsis and the flags to stdout and reports exit status 0 (asking for
// help is not an error); a bad flag prints the problem and the same usage
// to stderr, status 2. done is false when the command should go on.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stdout, stderr io.Writer) (code int, done bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: realmgate %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return 0, true
	case err != nil:
		_, _ = stderr.Write(out.Bytes())
		return 2, true
	}
	return 0, false
}

// count is n and the noun, plural unless n is 1: "1 tenant", "2 tenants".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// readableDurations is the loggers' ReplaceAttr: every duration is written
// with its unit, rounded to the microsecond ("took":"28.039ms"), in JSON as
// in text (slog's JSON handler writes bare nanoseconds: "took":28039371).
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		d := a.Value.Duration()
		if d >= time.Microsecond || d <= -time.Microsecond {
			d = d.Round(time.Microsecond)
		}
		a.Value = slog.StringValue(d.String())
	}
	return a
}

type shutdownNoticeKey struct{}

// withShutdownNotice returns ctx carrying a "shutting down" notice that
// serveHTTP logs once when ctx ends, however many listeners it stops.
func withShutdownNotice(ctx context.Context, logger *slog.Logger) context.Context {
	once := new(sync.Once)
	return context.WithValue(ctx, shutdownNoticeKey{}, func() {
		once.Do(func() { logger.Info("shutting down") })
	})
}

// noticeShutdown logs ctx's shutdown notice, if it carries one and it was
// not logged yet; it returns after the line is written.
func noticeShutdown(ctx context.Context) {
	if f, ok := ctx.Value(shutdownNoticeKey{}).(func()); ok {
		f()
	}
}
