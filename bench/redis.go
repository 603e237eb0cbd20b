package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// redisCLI runs redis-cli against the benchmark's server.
func (e *env) redisCLI(args ...string) (string, error) {
	host, port, _ := strings.Cut(e.redis.Addr(), ":")
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// redisInfo returns one field of INFO.
func (e *env) redisInfo(section, field string) string {
	out, err := e.redisCLI("INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// redisReads returns INFO stats total_reads_processed.
func (e *env) redisReads() int64 {
	n, _ := strconv.ParseInt(e.redisInfo("stats", "total_reads_processed"), 10, 64)
	return n
}

// quiesce waits (at most 10 s) until Redis is idle: work queued by a
// setup phase, such as realmgate's audit events written off the request
// path, must not be counted in the next measurement.
func (e *env) quiesce(ctx context.Context) {
	deadline := time.Now().Add(10 * time.Second)
	last := e.redisReads()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		now := e.redisReads()
		if now-last <= 3 { // our own INFO calls
			return
		}
		last = now
	}
}

// redisPID is the redis-server process id (INFO server process_id).
func (e *env) redisPID() int {
	if e.redisPid == 0 {
		e.redisPid, _ = strconv.Atoi(e.redisInfo("server", "process_id"))
	}
	return e.redisPid
}

// redisKeys lists the keys matching pattern.
func (e *env) redisKeys(pattern string) (map[string]bool, error) {
	out, err := e.redisCLI("--scan", "--pattern", pattern)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, k := range strings.Fields(out) {
		keys[k] = true
	}
	return keys, nil
}

// startProfile captures a CPU and an allocation profile of t (realmgate or
// the baseline) over the run when -profile is set (closed-loop runs only).
// The returned func waits for the profiles to be written.
func (e *env) startProfile(ctx context.Context, o options, flow string, ph phase, t *target) func() {
	if e.pprofURL == "" {
		return func() {}
	}
	base, name := e.pprofURL, flow
	if t.name == "baseline" {
		// The baseline serves pprof on its own mux with -profile (pprofEnv),
		// so what it spends can be compared function by function.
		base, name = e.baseURL, flow+".baseline"
	}
	secs := int((ph.warmup + ph.duration).Seconds())
	var wg sync.WaitGroup
	for kind, path := range map[string]string{"cpu": "profile", "allocs": "allocs"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", base, path, secs)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: profile:", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(o.profileDir, fmt.Sprintf("%s.%s.pprof", name, kind)))
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: profile:", err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		}()
	}
	return wg.Wait
}
