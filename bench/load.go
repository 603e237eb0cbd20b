package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phase describes one measured run of a flow against a target.
type phase struct {
	workers  int
	warmup   time.Duration
	duration time.Duration
	// rate paces the run at this many operations per second in total (open
	// loop: latency counts from the scheduled start, so queueing shows); 0
	// runs closed loop, each worker starting its next operation at once.
	rate float64
	// cpu lists the processes whose CPU time is read around the window.
	cpu []int
	// redisReads, if set, returns Redis's total_reads_processed: read
	// events, one per command of a client that does not pipeline, so its
	// growth per operation counts the Redis round trips of one request.
	redisReads func() int64
	// profile asks for pprof profiles of realmgate over this run.
	profile bool
	// sequential, when > 0, runs op that many times on one worker, one
	// after another, and counts the Redis round trips exactly instead
	// (runSequential): no load, no window edges.
	sequential int
}

// result is what one run measured.
type result struct {
	flow, target string
	rate         float64 // pacing rate, 0 for a closed-loop run
	n            int
	elapsed      time.Duration
	errs         int64
	firstErr     string
	lat          []time.Duration // sorted
	cpu          []float64       // CPU seconds in the window, per phase.cpu entry
	redisReads   int64           // Redis read events in the window
	exhausted    bool
	// exactRT is the Redis round trips per operation counted by a
	// sequential run (runSequential), or -1 when none was made.
	exactRT float64
	// run numbers a paced run of a series (-paced-runs above 1), from 1; 0
	// for every other run.
	run int
}

// redisRTPerOp is the Redis round trips per operation: the exact count of
// a sequential run when there is one, else the read events of the timed
// window per operation, which requests in flight at the window's edges
// and background work blur, the more so the fewer requests a busy machine
// completes in the window.
func (r *result) redisRTPerOp() float64 {
	if r.exactRT >= 0 {
		return r.exactRT
	}
	if r.n == 0 {
		return 0
	}
	return float64(r.redisReads) / float64(r.n)
}

// sequentialGap is the pause after each request of runSequential: three
// times the broker's audit linger.
const sequentialGap = 30 * time.Millisecond

// runSequential runs op ph.sequential times on worker 0, one after another
// with nothing else in flight, and counts Redis read events around them:
// each of the store's commands is one read event (it never pipelines
// across requests), so the count per operation is exact whatever the
// machine's load. It subtracts the read event of its own INFO call.
func runSequential(ctx context.Context, ph phase, op func(w int) error) *result {
	r := &result{exactRT: -1}
	a := ph.redisReads()
	b := ph.redisReads()
	own := b - a // the INFO call's own read event
	for range ph.sequential {
		if ctx.Err() != nil {
			break
		}
		if err := op(0); err != nil {
			r.errs++
			if r.firstErr == "" {
				r.firstErr = err.Error()
			}
			continue
		}
		r.n++
		// realmgate writes a request's audit events off the request path,
		// gathering them for up to 10 ms (broker/audit.go auditLinger):
		// a pause longer than that keeps each request's events in a write
		// of their own, as the baseline writes them, however fast the
		// requests follow one another.
		time.Sleep(sequentialGap)
	}
	r.redisReads = ph.redisReads() - b - own
	if r.n > 0 && r.errs == 0 {
		r.exactRT = float64(r.redisReads) / float64(r.n)
	}
	return r
}

func (r *result) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// pct returns the p-th percentile latency (nearest rank).
func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[max(0, min(i, len(r.lat)-1))]
}

// cpuPerOp returns CPU seconds per operation of the i-th measured process.
func (r *result) cpuPerOp(i int) float64 {
	if r.n == 0 || i >= len(r.cpu) {
		return 0
	}
	return r.cpu[i] / float64(r.n)
}

// runLoad drives op from ph.workers goroutines: a warm-up, then the measured
// window. op(w) runs one operation as worker w; it returns errExhausted when
// its pre-made work (codes) is used up, which ends the window early. Work in
// flight when the window closes completes but is not counted.
func runLoad(ctx context.Context, ph phase, op func(w int) error) *result {
	var state atomic.Int32 // 0 warm-up, 1 measuring, 2 stopping
	stop := make(chan struct{})
	exhausted := make(chan struct{})
	var exOnce sync.Once
	type perWorker struct {
		lat   []time.Duration
		errs  int64
		first string
	}
	res := make([]perWorker, ph.workers)
	var interval time.Duration
	if ph.rate > 0 {
		interval = time.Duration(float64(ph.workers) / ph.rate * float64(time.Second))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range ph.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := &res[w]
			pw.lat = make([]time.Duration, 0, 4096)
			next := start.Add(interval * time.Duration(w) / time.Duration(ph.workers))
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-stop:
							return
						case <-time.After(d):
						}
					}
					t0 = next // open loop: a late start is the server's delay
					next = next.Add(interval)
				}
				err := op(w)
				if errors.Is(err, errExhausted) {
					exOnce.Do(func() { close(exhausted) })
					return
				}
				st := state.Load()
				if st == 2 {
					continue
				}
				if err != nil {
					pw.errs++
					if pw.first == "" {
						pw.first = err.Error()
					}
					continue
				}
				if st == 1 {
					pw.lat = append(pw.lat, time.Since(t0))
				}
			}
		}()
	}
	r := &result{rate: ph.rate, exactRT: -1}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-exhausted:
			r.exhausted = true
			return false
		case <-time.After(d):
			return true
		}
	}
	ok := sleep(ph.warmup)
	reads := func() int64 {
		if ph.redisReads == nil {
			return 0
		}
		return ph.redisReads()
	}
	reads0 := reads()
	cpu0 := cpuTimes(ph.cpu)
	t0 := time.Now()
	state.Store(1)
	if ok {
		sleep(ph.duration)
	}
	state.Store(2)
	r.elapsed = time.Since(t0)
	cpu1 := cpuTimes(ph.cpu)
	r.redisReads = reads() - reads0
	close(stop)
	wg.Wait()
	for i := range ph.cpu {
		r.cpu = append(r.cpu, cpu1[i]-cpu0[i])
	}
	for _, pw := range res {
		r.lat = append(r.lat, pw.lat...)
		r.errs += pw.errs
		if r.firstErr == "" {
			r.firstErr = pw.first
		}
	}
	slices.Sort(r.lat)
	r.n = len(r.lat)
	return r
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// cpuTimes returns utime+stime in seconds of each pid (0 if unreadable).
func cpuTimes(pids []int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		out[i] = procCPU(pid)
	}
	return out
}

// procCPU reads utime and stime (fields 14 and 15 of proc(5) stat).
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}
