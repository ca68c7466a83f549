package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sample is one timed cell: one workload, implementation and concurrency
// in one round.
type sample struct {
	workload, impl string
	conc, round    int
	ops            int64
	elapsed        time.Duration
	allocsPerOp    float64 // -1 when not measured (pgbench)
	bytesPerOp     float64
	p50, p99       time.Duration
	rowsPerOp      int
}

func (s sample) qps() float64 { return float64(s.ops) / s.elapsed.Seconds() }

// runner times cells.
type runner struct {
	pool     *pgxpool.Pool // for fixtures and cleanup
	fx       *fixtures
	connStr  string
	scripts  map[string]*pgbenchScript
	duration time.Duration
	pgbenchT int // pgbench transactions per client instead of a duration (smoke)
	lat      [][]time.Duration
}

func newRunner(pool *pgxpool.Pool, fx *fixtures, connStr string, scripts map[string]*pgbenchScript, duration time.Duration, maxConc int) *runner {
	r := &runner{pool: pool, fx: fx, connStr: connStr, scripts: scripts, duration: duration}
	for range maxConc {
		r.lat = append(r.lat, make([]time.Duration, 0, 1<<17))
	}
	return r
}

// cell runs w on im with conc workers for the runner's duration and
// measures it. Worker i draws from the same random sequence whatever the
// implementation, so every implementation sees the same inputs.
func (r *runner) cell(ctx context.Context, w *workload, im impl, conc, round int) (sample, error) {
	workers := make([]*worker, conc)
	for i := range workers {
		workers[i] = &worker{rng: rand.New(rand.NewPCG(uint64(round), uint64(i)))}
		if w.before != nil {
			w.before(im, workers[i])
		}
		r.lat[i] = r.lat[i][:0]
	}
	state := &cellState{}
	errs := make([]error, conc)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	var wg sync.WaitGroup
	start := make(chan struct{})
	ends := make([]time.Time, conc)
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk, lat := workers[i], r.lat[i]
			<-start
			t0 := time.Now()
			deadline := t0.Add(r.duration * time.Duration(max(w.longer, 1)))
			for {
				err := w.op(ctx, im, wk, state)
				t1 := time.Now()
				if err != nil {
					if !errors.Is(err, errDone) {
						errs[i] = err
					}
					ends[i] = t1
					break
				}
				lat = append(lat, t1.Sub(t0))
				t0 = t1
				if !t1.Before(deadline) {
					ends[i] = t1
					break
				}
			}
			r.lat[i] = lat
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	runtime.ReadMemStats(&after)
	end := slices.MaxFunc(ends, func(a, b time.Time) int { return a.Compare(b) })

	var all []time.Duration
	for i := range conc {
		all = append(all, r.lat[i]...)
	}
	ops := int64(len(all))
	s := sample{workload: w.key, impl: im.name(), conc: conc, round: round, ops: ops, elapsed: end.Sub(began), rowsPerOp: w.rowsPerOp}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("%s %s c=%d: %w", w.key, im.name(), conc, err)
	}
	if w.after != nil {
		if err := w.after(ctx, im, state, ops); err != nil {
			return s, fmt.Errorf("%s %s c=%d: %w", w.key, im.name(), conc, err)
		}
	}
	if ops == 0 {
		return s, fmt.Errorf("%s %s c=%d: no operation completed", w.key, im.name(), conc)
	}
	s.allocsPerOp = float64(after.Mallocs-before.Mallocs) / float64(ops)
	s.bytesPerOp = float64(after.TotalAlloc-before.TotalAlloc) / float64(ops)
	s.p50, s.p99 = percentiles(all)
	return s, nil
}

// pgbenchCell runs w's pgbench script with conc clients.
func (r *runner) pgbenchCell(ctx context.Context, w *workload, conc, round int) (sample, error) {
	s := sample{workload: w.key, impl: "pgbench", conc: conc, round: round, allocsPerOp: -1, bytesPerOp: -1}
	tps, lat, n, err := runPgbench(ctx, r.connStr, r.scripts[w.pgbench], pgbenchVars(w, r.fx), conc, r.duration*time.Duration(max(w.longer, 1)), r.pgbenchT)
	if err != nil {
		return s, err
	}
	s.ops = n
	s.elapsed = time.Duration(float64(n) / tps * float64(time.Second))
	s.p50, s.p99 = percentiles(lat)
	return s, nil
}

// percentiles returns the 50th and 99th percentile (nearest rank).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return rank(0.50), rank(0.99)
}
