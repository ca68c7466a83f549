package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"slices"
	"time"
)

// pairedResult is the throughput ratio of a over b, measured in
// alternating slices.
type pairedResult struct {
	workload, a, b string
	conc           int
	ratio          float64 // geometric mean of the per-pair ratios
	lo, hi         float64 // its 95% confidence interval
	pairs          int
}

// paired measures a against b on one workload and concurrency: n pairs of
// short cells, a then b in even pairs and b then a in odd ones. The
// machine's speed drifts by tens of percent from second to second (see
// the report); slices this short see the same drift on both sides, so the
// per-pair ratios are far tighter than ratios of separate cells.
func (r *runner) paired(ctx context.Context, w *workload, a, b impl, conc, n int, slice time.Duration) (pairedResult, error) {
	saved := r.duration
	r.duration = slice
	defer func() { r.duration = saved }()
	var logs []float64
	for i := range n {
		order := []impl{a, b}
		if i%2 == 1 {
			order = []impl{b, a}
		}
		var q [2]float64
		for _, im := range order {
			s, err := r.cell(ctx, w, im, conc, 100+i)
			if err != nil {
				return pairedResult{}, err
			}
			if im == a {
				q[0] = s.qps()
			} else {
				q[1] = s.qps()
			}
		}
		logs = append(logs, math.Log(q[0]/q[1]))
	}
	mean, sd := meanSD(logs)
	half := 2.0 * sd / math.Sqrt(float64(len(logs))) // ≈ t(0.975) for a dozen pairs or more
	return pairedResult{workload: w.key, a: a.name(), b: b.name(), conc: conc, pairs: n,
		ratio: math.Exp(mean), lo: math.Exp(mean - half), hi: math.Exp(mean + half)}, nil
}

func meanSD(xs []float64) (float64, float64) {
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	if len(xs) > 1 {
		v /= float64(len(xs) - 1)
	}
	return m, math.Sqrt(v)
}

// keepCPUsAwake starts one busy loop per CPU at SCHED_IDLE priority: they
// run only when nothing else wants the CPU, so they take no time from the
// benchmark, but the virtual CPUs never go idle, and waking an idle
// virtual CPU is what makes a lone round trip slow and erratic on this
// kind of machine. stop ends them.
func keepCPUsAwake() (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	for range runtime.NumCPU() {
		c := exec.Command("chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("keep CPUs awake (chrt, from util-linux): %w", err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

// awakeRounds runs w at each concurrency for every implementation (and
// pgbench), rounds times in shuffled order, with the CPUs kept awake.
func (r *runner) awakeRounds(ctx context.Context, w *workload, impls []impl, concs []int, rounds int, shuffle func([]string)) ([]sample, error) {
	stop, err := keepCPUsAwake()
	if err != nil {
		return nil, err
	}
	defer stop()
	time.Sleep(200 * time.Millisecond)
	var out []sample
	for round := 1; round <= rounds; round++ {
		for _, c := range concs {
			names := []string{"pgbench"}
			for _, im := range impls {
				names = append(names, im.name())
			}
			shuffle(names)
			for _, n := range names {
				var s sample
				if n == "pgbench" {
					s, err = r.pgbenchCell(ctx, w, c, round)
				} else {
					s, err = r.cell(ctx, w, implNamed(impls, n), c, round)
				}
				if err != nil {
					return nil, err
				}
				s.workload = w.key + "/awake"
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// pairedFor returns the paired result of a vs pgx for w at c.
func pairedFor(ps []pairedResult, w, a string, c int) (pairedResult, bool) {
	i := slices.IndexFunc(ps, func(p pairedResult) bool { return p.workload == w && p.a == a && p.conc == c })
	if i < 0 {
		return pairedResult{}, false
	}
	return ps[i], true
}
