package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

// replyErr is an error reply from Redis, as go-redis reports one.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestWrap(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		in   error
		want []error // errors.Is must hold for each
		not  []error // and must not hold for these
	}{
		{"nil reply", redis.Nil, []error{store.ErrNotFound}, []error{store.ErrUnavailable}},
		{"refused", refused, []error{store.ErrUnavailable, syscall.ECONNREFUSED}, nil},
		{"eof", io.EOF, []error{store.ErrUnavailable}, nil},
		{"closed client", redis.ErrClosed, []error{store.ErrUnavailable}, nil},
		{"pool timeout", redis.ErrPoolTimeout, []error{store.ErrUnavailable}, nil},
		{"deadline", context.DeadlineExceeded, []error{store.ErrUnavailable}, nil},
		{"canceled", context.Canceled, []error{context.Canceled}, []error{store.ErrUnavailable}},
		{"cluster down", replyErr("CLUSTERDOWN The cluster is down"), []error{store.ErrUnavailable}, nil},
		{"loading", replyErr("LOADING Redis is loading the dataset in memory"), []error{store.ErrUnavailable}, nil},
		{"readonly replica", replyErr("READONLY You can't write against a read only replica."), []error{store.ErrUnavailable}, nil},
		{"script bug", replyErr("ERR Error running script"), nil, []error{store.ErrUnavailable, store.ErrNotFound}},
		{"wrong type", replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), nil, []error{store.ErrUnavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wrap("op", tc.in)
			if got == nil {
				t.Fatalf("wrap(%v) = nil, want an error", tc.in)
			}
			for _, w := range tc.want {
				if !errors.Is(got, w) {
					t.Errorf("wrap(%v) = %v, want errors.Is %v", tc.in, got, w)
				}
			}
			for _, n := range tc.not {
				if errors.Is(got, n) {
					t.Errorf("wrap(%v) = %v, want not errors.Is %v", tc.in, got, n)
				}
			}
		})
	}
	if got := wrap("op", nil); got != nil {
		t.Errorf("wrap(nil) = %v, want nil", got)
	}
}

func TestTTLArg(t *testing.T) {
	for _, tc := range []struct {
		in, want int64 // nanoseconds
		wantErr  bool
	}{
		{1_000_000, 1_000_000, false},
		{1, 1_000_000, false},
		{1_500_000, 2_000_000, false},
		{0, 0, true},
		{-1, 0, true},
	} {
		got, err := ttlArg(time.Duration(tc.in))
		if (err != nil) != tc.wantErr || int64(got) != tc.want {
			t.Errorf("ttlArg(%dns) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
