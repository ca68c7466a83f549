package main

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/deploydb/deploydb/internal/seed"
)

// environment describes where and when the run happened.
type environment struct {
	cpu, kernel, memory, goVersion string
	cores                          int
	server                         string            // PostgreSQL version
	settings                       map[string]string // relevant server settings
	pgbench                        string
	loadStart, loadEnd             string
	cpuStart, cpuEnd               []uint64 // /proc/stat's cpu line
	started, finished              time.Time
	seed                           *seed.Result // nil when the database was reused
	fx                             *fixtures
}

func describeMachine() *environment {
	e := &environment{cpu: "unknown", cores: runtime.NumCPU(), goVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				e.cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		e.memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		e.kernel = strings.TrimSpace(string(out))
	}
	return e
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// readCPUStat returns the aggregate cpu line of /proc/stat (user, nice,
// system, idle, iowait, irq, softirq, steal, ...), in clock ticks.
func readCPUStat() []uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var out []uint64
	for _, x := range f[1:] {
		var n uint64
		fmt.Sscanf(x, "%d", &n)
		out = append(out, n)
	}
	return out
}

// cpuShares returns the machine's busy and steal time during the run, as
// fractions of all CPU time.
func (e *environment) cpuShares() (busy, steal float64, ok bool) {
	if len(e.cpuStart) < 8 || len(e.cpuEnd) < 8 {
		return 0, 0, false
	}
	var total, idle uint64
	for i := range e.cpuStart[:min(len(e.cpuStart), 8)] {
		total += e.cpuEnd[i] - e.cpuStart[i]
	}
	idle = (e.cpuEnd[3] - e.cpuStart[3]) + (e.cpuEnd[4] - e.cpuStart[4])
	if total == 0 {
		return 0, 0, false
	}
	return float64(total-idle) / float64(total), float64(e.cpuEnd[7]-e.cpuStart[7]) / float64(total), true
}

func (e *environment) describeServer(ctx context.Context, pool *pgxpool.Pool) {
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&e.server)
	e.settings = map[string]string{}
	for _, name := range []string{"shared_buffers", "fsync", "synchronous_commit", "full_page_writes", "max_connections", "work_mem"} {
		var v string
		if pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v) == nil {
			e.settings[name] = v
		}
	}
}

// implOrder and labels: the report's rows, in this order.
var implOrder = []string{"deploydb", "sqlc", "pgx", "pgbench", "database-sql", "sqlx-libpq", "gorm", "gorm-prepared"}

var implLabels = map[string]string{
	"deploydb":      "deploydb service",
	"sqlc":          "deploydb sqlc (internal)",
	"pgx":           "hand-written pgx",
	"pgbench":       "pgbench -M prepared",
	"database-sql":  "database/sql + pgx stdlib",
	"sqlx-libpq":    "sqlx + lib/pq",
	"gorm":          "GORM",
	"gorm-prepared": "GORM PrepareStmt",
}

// stat is the aggregate of one (workload, impl, conc) over the rounds.
type stat struct {
	qps, p50, p99, allocs, bytes float64 // medians over rounds
	rounds                       int
	rowsPerOp                    int
}

type key struct {
	workload, impl string
	conc           int
}

type report struct {
	paired  []pairedResult
	o       *options
	env     *environment
	ws      []*workload
	samples []sample
	stats   map[key]stat
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func newReport(o *options, env *environment, ws []*workload, samples []sample) *report {
	r := &report{o: o, env: env, ws: ws, samples: samples, stats: map[key]stat{}}
	group := map[key][]sample{}
	for _, s := range samples {
		k := key{s.workload, s.impl, s.conc}
		group[k] = append(group[k], s)
	}
	for k, ss := range group {
		var q, p50, p99, al, by []float64
		for _, s := range ss {
			q = append(q, s.qps())
			p50 = append(p50, float64(s.p50))
			p99 = append(p99, float64(s.p99))
			al = append(al, s.allocsPerOp)
			by = append(by, s.bytesPerOp)
		}
		r.stats[k] = stat{qps: median(q), p50: median(p50), p99: median(p99), allocs: median(al), bytes: median(by), rounds: len(ss), rowsPerOp: ss[0].rowsPerOp}
	}
	return r
}

func (r *report) get(w, impl string, c int) (stat, bool) {
	s, ok := r.stats[key{w, impl, c}]
	return s, ok
}

// ratio is impl's qps over pgx's.
func (r *report) ratio(w, impl string, c int) (float64, bool) {
	a, ok1 := r.get(w, impl, c)
	b, ok2 := r.get(w, "pgx", c)
	if !ok1 || !ok2 || b.qps == 0 {
		return 0, false
	}
	return a.qps / b.qps, true
}

// --- benchstat text ---

func benchName(w string) string {
	return "Benchmark" + strings.NewReplacer("/", "_").Replace(w)
}

func (r *report) benchstat() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: github.com/deploydb/deploydb/bench\ncpu: %s\n", runtime.GOOS, runtime.GOARCH, r.env.cpu)
	fmt.Fprintf(&b, "postgres: %s\nload-start: %s\nload-end: %s\n", r.env.server, r.env.loadStart, r.env.loadEnd)
	for _, s := range r.samples {
		fmt.Fprintf(&b, "%s/impl=%s/conc=%d-%d\t%d\t%.0f ns/op\t%.1f qps\t%.0f p50-ns\t%.0f p99-ns",
			benchName(s.workload), s.impl, s.conc, runtime.GOMAXPROCS(0), s.ops,
			float64(s.elapsed)/float64(s.ops), s.qps(), float64(s.p50), float64(s.p99))
		if s.allocsPerOp >= 0 {
			fmt.Fprintf(&b, "\t%.0f B/op\t%.1f allocs/op", s.bytesPerOp, s.allocsPerOp)
		}
		if s.rowsPerOp > 0 {
			fmt.Fprintf(&b, "\t%.0f rows/s", s.qps()*float64(s.rowsPerOp))
		}
		b.WriteByte('\n')
	}
	for _, p := range r.paired {
		fmt.Fprintf(&b, "BenchmarkPaired_%s/impl=%s/conc=%d-%d\t%d\t%.4f ratio-vs-pgx\t%.4f ci-lo\t%.4f ci-hi\n",
			strings.NewReplacer("/", "_").Replace(p.workload), p.a, p.conc, runtime.GOMAXPROCS(0), p.pairs, p.ratio, p.lo, p.hi)
	}
	return b.String()
}

// --- targets ---

type target struct {
	name, value string
	met         bool
}

func (r *report) targets() []target {
	var out []target
	// 1. service / pgx >= 0.97 qps and allocs <= pgx + 3, every workload
	// the service runs, every concurrency.
	worstQ, worstQAt := math.Inf(1), ""
	worstA, worstAAt := math.Inf(-1), ""
	for _, w := range r.ws {
		if !w.runs("deploydb") {
			continue
		}
		for _, c := range r.o.conc {
			if q, ok := r.ratio(w.key, "deploydb", c); ok && q < worstQ {
				worstQ, worstQAt = q, fmt.Sprintf("%s c=%d", w.key, c)
			}
			s, ok1 := r.get(w.key, "deploydb", c)
			p, ok2 := r.get(w.key, "pgx", c)
			if ok1 && ok2 && s.allocs-p.allocs > worstA {
				worstA, worstAAt = s.allocs-p.allocs, fmt.Sprintf("%s c=%d", w.key, c)
			}
		}
	}
	if len(r.paired) > 0 {
		worst := pairedResult{ratio: math.Inf(1)}
		genLo, genHi := math.Inf(1), math.Inf(-1)
		for _, p := range r.paired {
			switch {
			case p.a == "deploydb" && p.ratio < worst.ratio:
				worst = p
			case p.a == "sqlc":
				genLo, genHi = math.Min(genLo, p.ratio), math.Max(genHi, p.ratio)
			}
		}
		out = append(out, target{"deploydb / pgx ≥ 0.97 qps on every workload and concurrency (paired measurement)",
			fmt.Sprintf("lowest %.3f, 95%% CI [%.3f, %.3f] (%s c=%d); sqlc / pgx, the same work as pgx, ranges %.3f–%.3f; separate cells: lowest %.3f (%s)",
				worst.ratio, worst.lo, worst.hi, worst.workload, worst.conc, genLo, genHi, worstQ, worstQAt), worst.ratio >= 0.97})
	} else if worstQAt != "" {
		out = append(out, target{"deploydb / pgx ≥ 0.97 qps on every workload and concurrency",
			fmt.Sprintf("lowest %.3f (%s)", worstQ, worstQAt), worstQ >= 0.97})
	}
	if worstAAt != "" {
		// The largest difference on each workload, over the concurrencies.
		var parts []string
		for _, w := range r.ws {
			diff, ok := math.Inf(-1), false
			for _, c := range r.o.conc {
				s, ok1 := r.get(w.key, "deploydb", c)
				p, ok2 := r.get(w.key, "pgx", c)
				if ok1 && ok2 {
					diff, ok = math.Max(diff, s.allocs-p.allocs), true
				}
			}
			if ok {
				parts = append(parts, fmt.Sprintf("%s %+.0f", w.key, diff))
			}
		}
		out = append(out, target{"deploydb allocs/op ≤ pgx + 3",
			fmt.Sprintf("largest difference per workload: %s", strings.Join(parts, ", ")), worstA <= 3})
	}
	// 2. service / pgbench >= 0.85 at c=1 on W1.
	if s, ok := r.get("W1", "deploydb", 1); ok {
		if p, ok := r.get("W1", "pgbench", 1); ok {
			v := fmt.Sprintf("%.3f (%.0f vs %.0f qps)", s.qps/p.qps, s.qps, p.qps)
			if sa, ok := r.get("W1/awake", "deploydb", 1); ok {
				if pa, ok := r.get("W1/awake", "pgbench", 1); ok {
					v += fmt.Sprintf("; with the CPUs kept awake %.3f (%.0f vs %.0f qps)", sa.qps/pa.qps, sa.qps, pa.qps)
				}
			}
			out = append(out, target{"deploydb / pgbench ≥ 0.85 on W1 at concurrency 1", v, s.qps/p.qps >= 0.85})
		}
	}
	// 3. service >= 1.5x GORM, >= 2x sqlx on W1 and W2 (the pages every
	// implementation runs), every concurrency.
	for _, peer := range []struct {
		impl string
		want float64
	}{{"gorm", 1.5}, {"gorm-prepared", 1.5}, {"sqlx-libpq", 2}} {
		worst, at := math.Inf(1), ""
		for _, w := range r.ws {
			if w.key != "W1" && !(strings.HasPrefix(w.key, "W2/") && w.impls == nil) {
				continue
			}
			for _, c := range r.o.conc {
				s, ok1 := r.get(w.key, "deploydb", c)
				p, ok2 := r.get(w.key, peer.impl, c)
				if ok1 && ok2 && s.qps/p.qps < worst {
					worst, at = s.qps/p.qps, fmt.Sprintf("%s c=%d", w.key, c)
				}
			}
		}
		if at != "" {
			out = append(out, target{fmt.Sprintf("deploydb ≥ %.1f× %s on W1 and W2", peer.want, implLabels[peer.impl]),
				fmt.Sprintf("lowest %.2f× (%s)", worst, at), worst >= peer.want})
		}
	}
	// 4. W2 keyset at the deepest depth <= 1.5x the first page (p50, c=1).
	if len(r.o.depths) > 0 {
		deep := depthName(slices.Max(r.o.depths))
		first, ok1 := r.get("W2/hot/first", "deploydb", 1)
		d, ok2 := r.get("W2/"+deep, "deploydb", 1)
		off, ok3 := r.get("W2/offset/"+deep, "pgx", 1)
		if ok1 && ok2 {
			v := fmt.Sprintf("%.2f× (p50 %s vs %s)", d.p50/first.p50, dur(d.p50), dur(first.p50))
			if ok3 {
				v += fmt.Sprintf("; OFFSET: %.1f× (p50 %s)", off.p50/first.p50, dur(off.p50))
			}
			out = append(out, target{fmt.Sprintf("W2 keyset page at %s ≤ 1.5× the first page (deploydb, c=1)", strings.TrimPrefix(deep, "hot/")), v, d.p50/first.p50 <= 1.5})
		}
	}
	// 5. W5 >= 150k rows/s, at the best concurrency (c=1 shown too).
	best, bestC := 0.0, 0
	for _, c := range r.o.conc {
		if s, ok := r.get("W5", "deploydb", c); ok && s.qps*float64(s.rowsPerOp) > best {
			best, bestC = s.qps*float64(s.rowsPerOp), c
		}
	}
	if s, ok := r.get("W5", "deploydb", 1); ok && bestC > 0 {
		out = append(out, target{"W5 bulk insert ≥ 150,000 rows/s (deploydb, best concurrency)",
			fmt.Sprintf("%s rows/s at c=%d (c=1: %s rows/s)", thousands(best), bestC, thousands(s.qps*float64(s.rowsPerOp))), best >= 150_000})
	}
	// 6. Seeding < 2 minutes.
	if r.env.seed != nil {
		out = append(out, target{"seeding the default data set < 2 minutes",
			fmt.Sprintf("%s (%s rows/s)", r.env.seed.Total.Round(100*time.Millisecond), thousands(r.env.seed.RowsPerSecond())), r.env.seed.Total < 2*time.Minute})
	}
	return out
}

func dur(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// summary is printed at the end of a run.
func (r *report) summary() string {
	var b strings.Builder
	b.WriteString("\ntargets:\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "  %-8s %s: %s\n", strings.Trim(mark(t.met), "*"), t.name, t.value)
	}
	return b.String()
}

// --- Markdown ---

func (r *report) markdown() string {
	e := r.env
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks: deploydb side by side\n\n")
	p("Generated by `make bench` (bench/, its own Go module) on %s; do not edit by hand — the analysis below the tables comes from bench/analysis.md.\n\n", e.started.UTC().Format("2006-01-02 15:04 MST"))
	p("deploydb (the service, and its sqlc package underneath it) against hand-written pgx, pgbench, database/sql, sqlx and GORM, on the same seeded data, the same SQL semantics, in the same run. Throughput ratios are against hand-written pgx, the Go ceiling. ")
	p("The chart shows them per workload and concurrency:\n\n![throughput relative to hand-written pgx](benchmarks.png)\n\n")

	p("## Targets\n\n| target | result | |\n|---|---|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s |\n", t.name, t.value, mark(t.met))
	}

	p("\n## Machine and server\n\n")
	e.machineMarkdown(p)

	p("\n## Data set\n\n")
	sz := r.o.sizes
	p("`deploydb seed` (internal/seed), seed %d: %s apps, %s builds, %s deployments, %s deployment operations; ", sz.Seed,
		thousands(float64(sz.Apps)), thousands(float64(sz.Builds)), thousands(float64(sz.Deployments)), thousands(float64(sz.Operations)))
	p("the hot app (id %d) owns %s deployments (%.0f%%), the typical app (id %d, the median) %s. ", e.fx.hotApp, thousands(float64(e.fx.hotCount)),
		100*float64(e.fx.hotCount)/float64(sz.Deployments), e.fx.typicalApp, thousands(float64(e.fx.typicalCount)))
	p("Statuses are ≈80%% successful, 10%% failed, 5%% canceled, 5%% active.\n\n")
	if e.seed != nil {
		s := e.seed
		keys := "checked by their triggers during the load"
		if s.KeysCheckedAfter {
			keys = "checked after the load with one anti-join per key (the load ran with session_replication_role = replica, which skips the per-row triggers)"
		}
		p("Seeding took **%s** (%s rows, %s rows/s): load %s, VACUUM ANALYZE %s. Foreign keys were %s.\n",
			s.Total.Round(100*time.Millisecond), thousands(float64(s.Rows())), thousands(s.RowsPerSecond()),
			s.Load.Round(100*time.Millisecond), s.Vacuum.Round(100*time.Millisecond), keys)
	} else {
		p("The data set was seeded by an earlier run; its seeding time is not part of this report.\n")
	}

	p("\n## Method\n\n")
	p("- **Workloads.** W1 `GetDeploymentWithBuild` of a uniformly random seeded id. W2 `ListDeployments` keyset pages of %d (every implementation reads %d rows, as the service does to know whether a next page exists): the first page of the hot app and of the typical app for everyone, and pages of the hot app at depth %s for deploydb, sqlc and pgx (and pgbench); the same deep pages found with `LIMIT/OFFSET` are the control. ", pageSize, pageSize+1, joinInts(r.o.depths))
	p("W3 `CreateDeployment` (the guarded `INSERT … SELECT … RETURNING`) for apps made for it, deleted after each cell. W4 `UpdateDeploymentStatus` pending → canceled on a pool of %s pending deployments: each operation must change exactly one row (checked per operation from the returned row, and after each cell by counting the changed rows before the pool is reset). ", thousands(float64(r.o.w4Pool)))
	p("W5 bulk insert of %s builds per operation: COPY for deploydb, sqlc and pgx, lib/pq's COPY for sqlx, multi-row `INSERT`s of %d rows in one transaction for database/sql, `CreateInBatches` for GORM. W6 90%% W1 reads and 10%% W4 writes.\n", thousands(float64(r.o.w5Rows)), insertBatch)
	p("- **Implementations.** deploydb's service (`deploydb.New(pool)`); its sqlc package (internal/dbsqlc) called directly; hand-written pgx with the same SQL text; pgbench `-M prepared` running the scripts in bench/pgbench (W1 and W2 only: it cannot pick from a pool or bulk-insert); database/sql over pgx's stdlib driver with the same SQL; sqlx over lib/pq (its defaults: each parameterized query is a prepare and an execute, two round trips); GORM over its PostgreSQL driver with default settings, and with `PrepareStmt`. GORM reads use its builder (`Joins(\"Build\").Take`, `Where/Order/Limit/Find`); its writes use `Raw` with deploydb's statements, which have no builder form.\n")
	p("- **Same semantics.** Before anything is timed, every implementation runs every workload on the same inputs and its result is compared with hand-written pgx's (W1: 50 ids; W2: every page; W3/W4: returned and stored rows; W5: a digest of the stored rows); pgbench's scripts are run through pgx with the same inputs. A difference fails the run.\n")
	p("- **Timing.** Each implementation has its own pool of %d connections, all opened before timing (pgbench connects before its clock starts). A warm-up round runs every cell once. Then %d rounds; in each, every workload runs at concurrency %s, with the implementations in a new random order for every workload and concurrency. A cell runs for %s (W5: three times as long; pgbench: `-T` whole seconds) with N goroutines (pgbench: N clients, N threads) looping; workers draw the same random inputs whatever the implementation. qps is operations over the cell's wall time; p50/p99 are per-operation latencies; allocs/op and B/op are the process's heap allocations during the cell over its operations (so they include the driver and, for the service, everything it does). Tables show the median over the rounds; the raw samples are in bench/results/benchstat.txt.\n", slices.Max(r.o.conc), r.o.rounds, joinInts(r.o.conc), r.o.duration)

	p("\n## Results\n\n×pgx is the throughput ratio to hand-written pgx at the same concurrency. p50 and p99 are latencies of one operation.\n")
	for _, w := range r.ws {
		p("\n### %s — %s\n\n", w.key, w.title)
		unit := "qps"
		if w.rowsPerOp > 0 {
			unit = "ops/s (rows/s)"
		}
		p("| implementation | conc | %s | ×pgx | p50 | p99 | allocs/op | B/op |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", unit)
		for _, impl := range implOrder {
			for _, c := range r.o.conc {
				s, ok := r.get(w.key, impl, c)
				if !ok {
					continue
				}
				q := thousands(s.qps)
				if w.rowsPerOp > 0 {
					q = fmt.Sprintf("%.1f (%s)", s.qps, thousands(s.qps*float64(w.rowsPerOp)))
				}
				ratio := "–"
				if x, ok := r.ratio(w.key, impl, c); ok {
					ratio = fmt.Sprintf("%.2f", x)
				}
				al, by := "–", "–"
				if s.allocs >= 0 {
					al, by = fmt.Sprintf("%.0f", s.allocs), thousands(s.bytes)
				}
				p("| %s | %d | %s | %s | %s | %s | %s | %s |\n", implLabels[impl], c, q, ratio, dur(s.p50), dur(s.p99), al, by)
			}
		}
	}
	if len(r.paired) > 0 {
		p("\n### Paired comparison: deploydb and sqlc against pgx\n\n")
		p("Separate cells of the same implementation differ by tens of percent from round to round on this machine, far more than the few percent the service could cost, so the ratio target is measured differently: for each workload and concurrency, %d pairs of %s cells alternate the implementation and pgx (ABBA order), and the table gives the geometric mean of the per-pair throughput ratios with a 95%% confidence interval. sqlc does exactly what pgx does (same statements, pgx underneath); its row shows how far from 1 a ratio of equal work strays.\n\n", r.o.pairs, r.o.pairSlice)
		p("| workload | conc | deploydb ÷ pgx | 95%% CI | sqlc ÷ pgx | 95%% CI |\n|---|--:|--:|--:|--:|--:|\n")
		for _, w := range r.ws {
			for _, c := range r.o.conc {
				d, ok1 := pairedFor(r.paired, w.key, "deploydb", c)
				g, ok2 := pairedFor(r.paired, w.key, "sqlc", c)
				if ok1 && ok2 {
					p("| %s | %d | %.3f | %.3f–%.3f | %.3f | %.3f–%.3f |\n", w.key, c, d.ratio, d.lo, d.hi, g.ratio, g.lo, g.hi)
				}
			}
		}
	}
	var awake []key
	for k := range r.stats {
		if strings.HasSuffix(k.workload, "/awake") {
			awake = append(awake, k)
		}
	}
	if len(awake) > 0 {
		p("\n### W1 with the CPUs kept awake\n\n")
		p("On this virtual machine an idle CPU is slow to wake: a lone round trip (concurrency 1) waits for the server's CPU and then the client's to wake up, and that wait depends on how each program sleeps. To show how much of W1 is that, W1 ran again at concurrency 1 and 2 with one busy loop per CPU at SCHED_IDLE priority (it runs only when nothing else wants the CPU, so the CPUs never idle), %d rounds in shuffled order.\n\n", r.o.awakeRounds)
		p("| implementation | conc | qps | ×pgx | ×pgbench | p50 | p99 |\n|---|--:|--:|--:|--:|--:|--:|\n")
		concs := map[int]bool{}
		for _, k := range awake {
			concs[k.conc] = true
		}
		for _, impl := range implOrder {
			for _, c := range []int{1, 2, 4, 8} {
				if !concs[c] {
					continue
				}
				s, ok := r.get("W1/awake", impl, c)
				if !ok {
					continue
				}
				x, y := "–", "–"
				if b, ok := r.get("W1/awake", "pgx", c); ok {
					x = fmt.Sprintf("%.2f", s.qps/b.qps)
				}
				if b, ok := r.get("W1/awake", "pgbench", c); ok {
					y = fmt.Sprintf("%.2f", s.qps/b.qps)
				}
				p("| %s | %d | %s | %s | %s | %s | %s |\n", implLabels[impl], c, thousands(s.qps), x, y, dur(s.p50), dur(s.p99))
			}
		}
	}
	if a, err := os.ReadFile("analysis.md"); err == nil {
		p("\n%s", strings.TrimSpace(string(a))+"\n")
	}
	return b.String()
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, thousands(float64(x)))
	}
	return strings.Join(s, ", ")
}

// --- chart ---

var implColors = map[string]color.Color{
	"deploydb":      color.RGBA{0x1f, 0x4e, 0x9c, 0xff},
	"sqlc":          color.RGBA{0x6b, 0x9b, 0xd8, 0xff},
	"pgbench":       color.RGBA{0x55, 0x55, 0x55, 0xff},
	"database-sql":  color.RGBA{0x3a, 0xa3, 0x5d, 0xff},
	"sqlx-libpq":    color.RGBA{0xe3, 0x9b, 0x1b, 0xff},
	"gorm":          color.RGBA{0xc4, 0x3c, 0x39, 0xff},
	"gorm-prepared": color.RGBA{0xe8, 0x8e, 0x8a, 0xff},
}

// chart draws, for each concurrency, the throughput of every
// implementation relative to hand-written pgx, per workload.
func (r *report) chart(path string) error {
	var cats []string
	for _, w := range r.ws {
		if !strings.HasPrefix(w.key, "W2/offset/") {
			cats = append(cats, w.key)
		}
	}
	var bars []string
	for _, impl := range implOrder {
		if impl == "pgx" {
			continue
		}
		for _, c := range cats {
			if _, ok := r.ratio(c, impl, r.o.conc[0]); ok {
				bars = append(bars, impl)
				break
			}
		}
	}
	cols := 2
	rows := (len(r.o.conc) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	ymax := 1.2
	for _, s := range r.samples {
		if x, ok := r.ratio(s.workload, s.impl, s.conc); ok && x > ymax {
			ymax = math.Min(x*1.05, 3)
		}
	}
	type legendEntry struct {
		label string
		thumb plot.Thumbnailer
	}
	var entries []legendEntry
	for i, c := range r.o.conc {
		pl := plot.New()
		pl.Title.Text = fmt.Sprintf("concurrency %d", c)
		pl.Title.TextStyle.Font.Size = vg.Points(14)
		pl.Y.Label.Text = "throughput ÷ hand-written pgx"
		pl.Y.Min, pl.Y.Max = 0, ymax
		pl.Y.Tick.Label.Font.Size = vg.Points(12)
		pl.X.Tick.Label.Font.Size = vg.Points(12)
		pl.Add(plotter.NewGrid())
		w := vg.Points(6)
		for j, impl := range bars {
			vals := make(plotter.Values, len(cats))
			for k, cat := range cats {
				if x, ok := r.ratio(cat, impl, c); ok {
					vals[k] = x
				}
			}
			bc, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return err
			}
			bc.Color = implColors[impl]
			bc.LineStyle.Width = 0
			bc.Offset = w * vg.Length(float64(j)-float64(len(bars)-1)/2)
			pl.Add(bc)
			if i == 0 {
				entries = append(entries, legendEntry{implLabels[impl], bc})
			}
		}
		one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(cats)) - 0.5, Y: 1}})
		if err != nil {
			return err
		}
		one.LineStyle.Width = vg.Points(1)
		one.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		pl.Add(one)
		if i == 0 {
			entries = append(entries, legendEntry{"hand-written pgx = 1", one})
		}
		pl.NominalX(cats...)
		pl.X.Tick.Label.Rotation = math.Pi / 6
		pl.X.Tick.Label.XAlign, pl.X.Tick.Label.YAlign = draw.XRight, draw.YTop
		plots[i/cols] = append(plots[i/cols], pl)
	}
	for i := range plots {
		for len(plots[i]) < cols {
			plots[i] = append(plots[i], nil)
		}
	}
	const panelH, stripH = 520.0, 105.0
	width, height := vg.Points(1400), vg.Points(panelH*float64(rows)+stripH)
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	dc := draw.New(img)
	top := draw.Crop(dc, 0, 0, 0, -vg.Points(stripH))
	strip := draw.Crop(dc, 0, 0, vg.Points(panelH*float64(rows)), 0)
	legends := [2]plot.Legend{plot.NewLegend(), plot.NewLegend()}
	half := (len(entries) + 1) / 2
	for i, e := range entries {
		l := &legends[min(i/half, 1)]
		l.TextStyle.Font.Size = vg.Points(13)
		l.Top, l.Left = true, true
		l.Add(e.label, e.thumb)
	}
	font := legends[0].TextStyle
	font.XAlign, font.YAlign = draw.XLeft, draw.YTop
	strip.FillText(font, vg.Point{X: vg.Points(20), Y: strip.Max.Y - vg.Points(10)},
		"Throughput of each implementation ÷ hand-written pgx, per workload (same data, same concurrency; median of the rounds). Higher is faster.")
	// The legend in two columns under the title.
	legends[0].Draw(draw.Crop(strip, vg.Points(20), -vg.Points(900), 0, -vg.Points(35)))
	legends[1].Draw(draw.Crop(strip, vg.Points(520), -vg.Points(400), 0, -vg.Points(35)))
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(20), PadY: vg.Points(20),
		PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, tiles, top)
	for i := range plots {
		for j := range plots[i] {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}

// redrawChart draws -png from the samples of an earlier run's benchstat
// file.
func redrawChart(o *options) error {
	b, err := os.ReadFile(o.chartFrom)
	if err != nil {
		return err
	}
	var samples []sample
	keys := map[string]bool{}
	var ws []*workload
	concs := map[int]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		// BenchmarkW2_hot_first/impl=sqlc/conc=4-2  N  x ns/op  y qps ...
		parts := strings.Split(f[0], "/")
		if strings.HasPrefix(parts[0], "BenchmarkPaired") || strings.HasSuffix(parts[0], "_awake") {
			continue
		}
		var s sample
		s.workload = strings.ReplaceAll(strings.TrimPrefix(parts[0], "Benchmark"), "_", "/")
		s.impl = strings.TrimPrefix(parts[1], "impl=")
		fmt.Sscanf(strings.TrimPrefix(parts[2], "conc="), "%d", &s.conc)
		fmt.Sscanf(f[1], "%d", &s.ops)
		var qps float64
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == "qps" {
				fmt.Sscanf(f[i], "%g", &qps)
			}
		}
		s.elapsed = time.Duration(float64(s.ops) / qps * float64(time.Second))
		samples = append(samples, s)
		concs[s.conc] = true
		if !keys[s.workload] {
			keys[s.workload] = true
			ws = append(ws, &workload{key: s.workload})
		}
	}
	o.conc = nil
	for c := range concs {
		o.conc = append(o.conc, c)
	}
	sort.Ints(o.conc)
	return newReport(o, &environment{}, ws, samples).chart(o.png)
}

// machineMarkdown writes the machine and server lines of a report.
func (e *environment) machineMarkdown(p func(string, ...any)) {
	p("- CPU: %s, %d cores; memory %s; %s\n", e.cpu, e.cores, e.memory, e.kernel)
	p("- %s, GOMAXPROCS %d; PostgreSQL %s; %s\n", e.goVersion, runtime.GOMAXPROCS(0), e.server, e.pgbench)
	var set []string
	for _, k := range []string{"shared_buffers", "work_mem", "max_connections", "fsync", "synchronous_commit", "full_page_writes"} {
		set = append(set, k+"="+e.settings[k])
	}
	p("- Server settings: %s. The server is a throwaway cluster on the same machine, started with durability off (fsync, synchronous_commit and full_page_writes off), as the test suite's local clusters are: write figures are therefore CPU-bound, not disk-bound, and higher than a durable server's would be.\n", strings.Join(set, ", "))
	p("- Client, server and pgbench share the same %d cores, so at concurrency above %d the client's CPU cost competes with the server's.\n", e.cores, e.cores)
	p("- Load average (1, 5, 15 min) at the start of the run: %s; at the end: %s. Run time %s.", e.loadStart, e.loadEnd, e.finished.Sub(e.started).Round(time.Second))
	if busy, steal, ok := e.cpuShares(); ok {
		p(" During the run the machine's CPUs were %.0f%% busy (this run included) and %.1f%% of CPU time was stolen by the hypervisor.", 100*busy, 100*steal)
	}
	p("\n")
}
