package oidc

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestReadBody_StatedLengthIsAHint: whatever Content-Length says, the body
// read is the body sent, up to maxBody+1 bytes (the caller refuses more).
func TestReadBody_StatedLengthIsAHint(t *testing.T) {
	body := strings.Repeat("x", 1500)
	big := strings.Repeat("y", maxBody+10)
	tests := []struct {
		name   string
		body   string
		length int64
		want   int
	}{
		{"exact", body, 1500, 1500},
		{"unknown", body, -1, 1500},
		{"stated shorter", body, 10, 1500},
		{"stated zero", body, 0, 1500},
		{"stated longer", body, 4000, 1500},
		{"empty", "", 0, 0},
		{"over the bound, stated", big, int64(len(big)), maxBody + 1},
		{"over the bound, stated short", big, 100, maxBody + 1},
		{"over the bound, unknown", big, -1, maxBody + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// iotest-like: a reader that returns little at a time.
			got, err := readBody(&smallReads{r: strings.NewReader(tt.body)}, tt.length)
			if err != nil {
				t.Fatalf("readBody = %v", err)
			}
			if len(got) != tt.want || !bytes.Equal(got, []byte(tt.body[:tt.want])) {
				t.Errorf("readBody(%d bytes, length %d) = %d bytes, want %d", len(tt.body), tt.length, len(got), tt.want)
			}
		})
	}
}

type smallReads struct{ r io.Reader }

func (s *smallReads) Read(p []byte) (int, error) {
	if len(p) > 333 {
		p = p[:333]
	}
	return s.r.Read(p)
}

// BenchmarkReadBody: a token response of 1.5 KB with its Content-Length.
func BenchmarkReadBody(b *testing.B) {
	body := strings.Repeat("x", 1500)
	b.Run("readBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = readBody(strings.NewReader(body), int64(len(body)))
		}
	})
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = io.ReadAll(io.LimitReader(strings.NewReader(body), maxBody+1))
		}
	})
}
