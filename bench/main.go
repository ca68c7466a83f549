// Command bench measures deploydb side by side with its peers on a seeded
// data set: the deploydb service, its sqlc package (internal/dbsqlc) directly, hand-written
// pgx, pgbench -M prepared, database/sql over pgx's stdlib driver, sqlx
// over lib/pq, and GORM (default and PrepareStmt). It lives in its own
// module so that none of them enters deploydb's go.mod.
//
// It starts a throwaway PostgreSQL from the local server binaries (or uses
// -url), seeds it with internal/seed, cross-checks that every
// implementation returns the same rows for every workload, then times
// every workload, implementation and concurrency in shuffled order, round
// after round. It writes benchstat-compatible text, the Markdown report
// and a PNG chart of each implementation's throughput relative to
// hand-written pgx:
//
//	go run . -md ../docs/benchmarks.md -png ../docs/benchmarks.png -txt results/benchstat.txt
//	go run . -smoke     # tiny data set, cross-check and one short round, no report
//	go run . -rollouts -md ../docs/rollouts-benchmarks.md   # the rollout benchmark (rollouts.go)
//
// `make bench` and `make bench-smoke` in the repository root run these.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/internal/seed"
)

type options struct {
	url            string
	smoke          bool
	sizes          seed.Config
	depths         []int
	conc           []int
	rounds         int
	duration       time.Duration
	warmup         time.Duration
	w4Pool, w5Rows int
	only           *regexp.Regexp
	impls          map[string]bool
	md, png, txt   string
	cpuprofile     string
	verbose        bool
	pairs          int
	pairSlice      time.Duration
	awakeRounds    int
	memprofile     string
	chartFrom      string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q in %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{sizes: seed.DefaultConfig()}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "database URL to use instead of a throwaway local PostgreSQL; seeded first when empty, reused when seeded with the same sizes")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny data set, cross-check and one short round; no timing claims, no report")
	fs.IntVar(&o.sizes.Apps, "apps", o.sizes.Apps, "apps to seed")
	fs.IntVar(&o.sizes.Builds, "builds", o.sizes.Builds, "builds to seed")
	fs.IntVar(&o.sizes.Deployments, "deployments", o.sizes.Deployments, "deployments to seed")
	fs.IntVar(&o.sizes.Operations, "operations", o.sizes.Operations, "deployment operations to seed")
	fs.Uint64Var(&o.sizes.Seed, "seed", o.sizes.Seed, "random seed of the data set")
	depths := fs.String("depths", "10000,100000", "W2 depths (rows before the page) in the hot app")
	conc := fs.String("conc", "1,2,4,8", "concurrency levels")
	fs.IntVar(&o.rounds, "rounds", 5, "timed rounds (each in a new shuffled order)")
	fs.DurationVar(&o.duration, "duration", 400*time.Millisecond, "time per cell (pgbench: rounded to whole seconds, at least one)")
	fs.DurationVar(&o.warmup, "warmup", 300*time.Millisecond, "time per cell of the warm-up round")
	fs.IntVar(&o.w4Pool, "w4-pool", 100_000, "pending deployments W4 and W6 cancel (reset after each cell)")
	fs.IntVar(&o.w5Rows, "w5-rows", 10_000, "builds per W5 bulk insert")
	only := fs.String("only", "", "regexp: run only the workloads whose key matches (W1, W2/hot/first, ...)")
	implList := fs.String("impls", "", "comma-separated implementations to run (default all): deploydb,sqlc,pgx,pgbench,database-sql,sqlx-libpq,gorm,gorm-prepared")
	fs.StringVar(&o.md, "md", "", "write the Markdown report here")
	fs.StringVar(&o.png, "png", "", "write the chart here")
	fs.StringVar(&o.txt, "txt", "", "write benchstat-compatible results here")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the timed rounds here")
	fs.BoolVar(&o.verbose, "v", false, "print every cell")
	fs.IntVar(&o.pairs, "pairs", 12, "paired comparison (deploydb and sqlc against pgx in alternating slices): pairs per workload and concurrency; 0 skips it")
	fs.DurationVar(&o.pairSlice, "pair-slice", 150*time.Millisecond, "length of one slice of the paired comparison")
	fs.IntVar(&o.awakeRounds, "awake-rounds", 3, "rounds of W1 with the CPUs kept awake (SCHED_IDLE busy loops); 0 skips them")
	fs.StringVar(&o.chartFrom, "chart-from", "", "only redraw -png from this benchstat file of an earlier run")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap allocation profile of the timed rounds here")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.smoke {
		o.sizes = seed.Config{Apps: 20, Builds: 6000, Deployments: 6000, Operations: 300, Seed: o.sizes.Seed}
		*depths, *conc = "100,500", "1,2"
		o.rounds, o.duration, o.warmup, o.w4Pool, o.w5Rows = 1, 50*time.Millisecond, 20*time.Millisecond, 5000, 1000
		o.pairs, o.pairSlice, o.awakeRounds = 2, 20*time.Millisecond, 1
	}
	var err error
	if o.depths, err = intList(*depths); err != nil {
		return nil, err
	}
	for _, d := range o.depths {
		if d%pageSize != 0 {
			return nil, fmt.Errorf("depth %d is not a multiple of the page size %d", d, pageSize)
		}
	}
	if o.conc, err = intList(*conc); err != nil {
		return nil, err
	}
	if *only != "" {
		if o.only, err = regexp.Compile(*only); err != nil {
			return nil, err
		}
	}
	if *implList != "" {
		o.impls = map[string]bool{}
		for _, n := range strings.Split(*implList, ",") {
			o.impls[strings.TrimSpace(n)] = true
		}
	}
	return o, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, args []string) error {
	if slices.Contains(args, "-rollouts") || slices.Contains(args, "--rollouts") {
		return runRollouts(ctx, args)
	}
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.chartFrom != "" {
		return redrawChart(o)
	}
	env := describeMachine()
	env.loadStart = loadAverage()
	env.cpuStart = readCPUStat()
	env.started = time.Now()
	logf("load average at start: %s", env.loadStart)

	url, closeServer, err := benchDatabase(ctx, o.url, "deploydb_bench")
	if err != nil {
		return err
	}
	defer closeServer()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	env.describeServer(ctx, pool)

	// Seed, unless -url names a database seeded before.
	if err := dropBenchRows(ctx, pool); err != nil {
		return err
	}
	var seeded int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployments`).Scan(&seeded); err != nil {
		return err
	}
	if seeded == 0 {
		logf("seeding %d apps, %d builds, %d deployments, %d operations", o.sizes.Apps, o.sizes.Builds, o.sizes.Deployments, o.sizes.Operations)
		cfg := o.sizes
		res, err := seed.Run(ctx, pool, cfg)
		if err != nil {
			return err
		}
		env.seed = &res
		logf("seeded %d rows in %s (%.0f rows/s)", res.Rows(), res.Total.Round(time.Millisecond), res.RowsPerSecond())
	} else if seeded != int64(o.sizes.Deployments) {
		return fmt.Errorf("the database has %d deployments, not %d: seed it with the same sizes, or use an empty one", seeded, o.sizes.Deployments)
	} else {
		logf("reusing the seeded database (%d deployments)", seeded)
	}

	maxConc := slices.Max(o.conc)
	impls, err := openImpls(ctx, url, maxConc)
	if err != nil {
		return err
	}
	defer func() {
		for _, im := range impls {
			im.close()
		}
	}()
	var names []string
	for _, im := range impls {
		names = append(names, im.name())
	}
	fx, err := prepareFixtures(ctx, pool, o.sizes, o.depths, o.w4Pool, o.w5Rows, names)
	if err != nil {
		return err
	}
	env.fx = fx
	scripts, err := loadPgbenchScripts()
	if err != nil {
		return err
	}
	if err := crossCheck(ctx, pool, fx, impls, scripts, logf); err != nil {
		return err
	}
	env.pgbench = pgbenchVersion()

	ws := workloads(fx, pool, o.depths)
	if o.only != nil {
		ws = slices.DeleteFunc(ws, func(w *workload) bool { return !o.only.MatchString(w.key) })
	}
	selected := func(name string) bool { return o.impls == nil || o.impls[name] }
	r := newRunner(pool, fx, url, scripts, o.warmup, maxConc)
	if o.smoke {
		r.pgbenchT = 20
	}

	// Warm-up: every cell once at the highest concurrency, not recorded.
	logf("warm-up round (%s per cell)", o.warmup)
	for _, w := range ws {
		for _, im := range impls {
			if w.runs(im.name()) && selected(im.name()) {
				if _, err := r.cell(ctx, w, im, maxConc, 0); err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
			}
		}
		if w.pgbench != "" && selected("pgbench") {
			if _, err := r.pgbenchCell(ctx, w, 1, 0); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
		if err := afterWorkload(ctx, pool, w); err != nil {
			return err
		}
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r.duration = o.duration
	var samples []sample
	shuffle := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 1; round <= o.rounds; round++ {
		logf("round %d of %d", round, o.rounds)
		for _, w := range ws {
			for _, c := range o.conc {
				var order []string
				for _, im := range impls {
					if w.runs(im.name()) && selected(im.name()) {
						order = append(order, im.name())
					}
				}
				if w.pgbench != "" && selected("pgbench") {
					order = append(order, "pgbench")
				}
				shuffle.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				for _, name := range order {
					var s sample
					var err error
					if name == "pgbench" {
						s, err = r.pgbenchCell(ctx, w, c, round)
					} else {
						s, err = r.cell(ctx, w, implNamed(impls, name), c, round)
					}
					if err != nil {
						return err
					}
					samples = append(samples, s)
					if o.verbose {
						logf("    %-20s %-14s c=%d %9.0f qps  p50 %-9s p99 %-9s %7.1f allocs/op %9.0f B/op",
							w.key, name, c, s.qps(), dur(float64(s.p50)), dur(float64(s.p99)), s.allocsPerOp, s.bytesPerOp)
					}
				}
			}
			if err := afterWorkload(ctx, pool, w); err != nil {
				return err
			}
			logf("  %-18s done", w.key)
		}
	}
	// Paired comparison: deploydb and sqlc against pgx, alternating.
	var paired []pairedResult
	if o.pairs > 0 && selected("deploydb") && selected("pgx") {
		logf("paired comparison: %d pairs of %s slices per workload and concurrency", o.pairs, o.pairSlice)
		raw := implNamed(impls, "pgx")
		for _, w := range ws {
			if !w.runs("deploydb") {
				continue
			}
			for _, c := range o.conc {
				for _, a := range []string{"deploydb", "sqlc"} {
					p, err := r.paired(ctx, w, implNamed(impls, a), raw, c, o.pairs, o.pairSlice)
					if err != nil {
						return err
					}
					paired = append(paired, p)
					if o.verbose {
						logf("    %-20s %-9s c=%d ÷pgx %.3f [%.3f, %.3f]", w.key, a, c, p.ratio, p.lo, p.hi)
					}
				}
			}
			if err := afterWorkload(ctx, pool, w); err != nil {
				return err
			}
		}
	}
	// W1 again with the CPUs kept awake.
	var awake []sample
	if o.awakeRounds > 0 && o.impls == nil {
		if i := slices.IndexFunc(ws, func(w *workload) bool { return w.key == "W1" }); i >= 0 {
			logf("W1 with the CPUs kept awake: %d rounds", o.awakeRounds)
			awakeConc := []int{1, 2}
			if o.smoke {
				awakeConc = []int{1}
			}
			awake, err = r.awakeRounds(ctx, ws[i], impls, awakeConc, o.awakeRounds,
				func(s []string) { shuffle.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) })
			if err != nil {
				return err
			}
		}
	}
	pprof.StopCPUProfile()
	if o.memprofile != "" {
		f, err := os.Create(o.memprofile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	env.loadEnd = loadAverage()
	env.cpuEnd = readCPUStat()
	env.finished = time.Now()
	logf("load average at end: %s", env.loadEnd)

	rep := newReport(o, env, ws, append(samples, awake...))
	rep.paired = paired
	if o.smoke {
		logf("smoke: %d cells ran; every implementation agreed on every workload", len(samples))
		return nil
	}
	if o.txt != "" {
		if err := os.WriteFile(o.txt, []byte(rep.benchstat()), 0o644); err != nil {
			return err
		}
	}
	if o.png != "" {
		if err := rep.chart(o.png); err != nil {
			return err
		}
	}
	if o.md != "" {
		if err := os.WriteFile(o.md, []byte(rep.markdown()), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(rep.summary())
	return nil
}

// benchDatabase returns the URL of a migrated database: url itself, or a
// new database on a throwaway local cluster, which close stops.
func benchDatabase(ctx context.Context, url, name string) (_ string, close func(), err error) {
	close = func() {}
	if url == "" {
		srv, err := pgtest.StartLocal(ctx)
		if err != nil {
			return "", close, err
		}
		close = func() { _ = srv.Close() }
		if url, err = srv.CreateDatabase(ctx, name, ""); err != nil {
			return "", close, err
		}
	}
	return url, close, db.Migrate(ctx, url)
}

func implNamed(impls []impl, name string) impl {
	for _, im := range impls {
		if im.name() == name {
			return im
		}
	}
	panic("no implementation " + name)
}

// afterWorkload vacuums what a writing workload churned, so that the next
// one starts from a similar table.
func afterWorkload(ctx context.Context, pool *pgxpool.Pool, w *workload) error {
	var table string
	switch w.key {
	case "W3", "W4", "W6":
		table = "deployments"
	case "W5":
		table = "builds"
	default:
		return nil
	}
	_, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+table)
	return err
}

// dropBenchRows deletes what an earlier run added to a reused database.
func dropBenchRows(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `DELETE FROM apps WHERE name LIKE 'bench-%'`)
	return err
}
