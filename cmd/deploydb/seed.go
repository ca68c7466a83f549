package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/seed"
)

const seedHelp = `Usage: deploydb seed [flags]

Fills a database with a deterministic, realistic data set for benchmarks and
query-plan checks: apps, builds, deployments and deployment operations,
loaded with COPY (foreign keys and CHECK constraints enforced), then VACUUM
ANALYZE. One hot app owns 20% of the builds and deployments; statuses are
about 80% successful, 10% failed, 5% canceled and 5% active. The same
--seed and sizes always give the same rows.

The database is migrated to the latest version first. Its tables must be
empty unless --reset is given, which truncates them.

Progress goes to stderr (a bar on a terminal, plain lines otherwise); the
summary, with rows per second, to stdout, or with --json a JSON report
(command, exit_code, result with the row counts and timings, error).
Negative sizes and durations are usage errors. Exit codes: 0 ok, 1 failed,
2 usage (bad flags or arguments, no database URL).

Flags:
`

// seedResult is the result of `deploydb seed --json`.
type seedResult struct {
	Apps          int64   `json:"apps"`
	Builds        int64   `json:"builds"`
	Deployments   int64   `json:"deployments"`
	Operations    int64   `json:"operations"`
	Seed          uint64  `json:"seed"`
	Rows          int64   `json:"rows"`
	LoadSeconds   float64 `json:"load_seconds"`
	VacuumSeconds float64 `json:"vacuum_seconds"`
	TotalSeconds  float64 `json:"total_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// runSeed implements `deploydb seed` and returns its exit code.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	asJSON := wantsJSON(args)
	var result any
	res, err := seedCommand(ctx, args, asJSON, stdout, stderr)
	if res != nil {
		result = res
	}
	return finish(stdout, stderr, asJSON, "seed", exitOK, result, err, "usage: deploydb seed [flags] (see --help)")
}

func seedCommand(ctx context.Context, args []string, asJSON bool, stdout, stderr io.Writer) (*seedResult, error) {
	def := seed.DefaultConfig()
	cfg := def
	var c connFlags
	fs := newFlagSet("deploydb seed", stderr)
	c.register(fs, "database `URL` (default: $DATABASE_URL)")
	fs.IntVar(&cfg.Apps, "apps", def.Apps, "number of apps (at least 1)")
	fs.IntVar(&cfg.Builds, "builds", def.Builds, "number of builds")
	fs.IntVar(&cfg.Deployments, "deployments", def.Deployments, "number of deployments")
	fs.IntVar(&cfg.Operations, "operations", def.Operations, fmt.Sprintf("number of deployment operations (a multiple of %d: targets per deployment)", seed.TargetsPerDeployment))
	fs.Uint64Var(&cfg.Seed, "seed", def.Seed, "random seed; the same seed gives the same rows")
	fs.IntVar(&cfg.Streams, "streams", 2, "concurrent COPY streams per table (at least 1)")
	fs.BoolVar(&cfg.Reset, "reset", false, "truncate apps, builds, deployments and operations first")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), seedHelp)
		fs.PrintDefaults()
	}
	if helpRequested(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil, flag.ErrHelp
	}
	if err := parseFlags(fs, args, asJSON); err != nil {
		return nil, err
	}
	if err := c.check(fs); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, usageError{fmt.Sprintf("seed takes no arguments, got %q", fs.Arg(0))}
	case cfg.Apps < 1:
		return nil, usageError{fmt.Sprintf("--apps must be at least 1, not %d", cfg.Apps)}
	case cfg.Streams < 1:
		return nil, usageError{fmt.Sprintf("--streams must be at least 1, not %d", cfg.Streams)}
	}
	url := c.url
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if url == "" {
		return nil, usageError{"no database: pass --url or set DATABASE_URL"}
	}

	if err := db.Migrate(ctx, url, c.migrateOptions()...); err != nil {
		return nil, err
	}
	pool, err := openSeedPool(ctx, url, cfg.Streams+1, &c)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	p := newSeedProgress(stderr)
	cfg.Progress = p.update
	cfg.ProgressEvery = p.every
	res, err := seed.Run(ctx, pool, cfg)
	p.finish()
	if err != nil {
		if errors.Is(err, seed.ErrNotEmpty) {
			return nil, errors.New("deploydb: seed: the database already has rows; rerun with --reset to truncate them first")
		}
		return nil, err
	}
	if !asJSON {
		fmt.Fprintf(stdout, "seeded %s apps, %s builds, %s deployments, %s operations (seed %d)\n",
			thousands(res.Apps), thousands(res.Builds), thousands(res.Deployments), thousands(res.Operations), cfg.Seed)
		fmt.Fprintf(stdout, "%s rows in %s (load %s, vacuum analyze %s): %s rows/s\n",
			thousands(res.Rows()), res.Total.Round(10*time.Millisecond), res.Load.Round(10*time.Millisecond),
			res.Vacuum.Round(10*time.Millisecond), thousands(int64(res.RowsPerSecond())))
	}
	return &seedResult{
		Apps: res.Apps, Builds: res.Builds, Deployments: res.Deployments, Operations: res.Operations,
		Seed: cfg.Seed, Rows: res.Rows(), LoadSeconds: res.Load.Seconds(), VacuumSeconds: res.Vacuum.Seconds(),
		TotalSeconds: res.Total.Seconds(), RowsPerSecond: res.RowsPerSecond(),
	}, nil
}

// openSeedPool connects the pool the load runs on, with maxConns
// connections and the connect timeout of the flags.
func openSeedPool(ctx context.Context, url string, maxConns int, c *connFlags) (*pgxpool.Pool, error) {
	pcfg, err := db.PoolConfig(url)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = int32(maxConns)
	if c.connectTimeoutSet {
		pcfg.ConnConfig.ConnectTimeout = c.connectTimeout
	}
	pool, err := db.NewPool(ctx, pcfg)
	if err != nil {
		if ctx.Err() == nil && pgconn.Timeout(err) {
			return nil, fmt.Errorf("seed: %w (%s): %w", db.ErrConnectTimeout, pcfg.ConnConfig.ConnectTimeout, err)
		}
		return nil, err
	}
	return pool, nil
}

// seedProgress draws seed progress: a bar redrawn in place on a terminal,
// a plain line every few seconds and at each phase otherwise.
type seedProgress struct {
	w        io.Writer
	terminal bool
	every    time.Duration

	last     time.Time
	lastDone int64
	rate     float64
	drawn    bool
}

func newSeedProgress(w io.Writer) *seedProgress {
	p := &seedProgress{w: w, terminal: isTerminal(w), every: 5 * time.Second}
	if p.terminal {
		p.every = 200 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *seedProgress) update(pr seed.Progress) {
	now := time.Now()
	if !p.last.IsZero() {
		if dt := now.Sub(p.last).Seconds(); dt > 0 {
			p.rate = float64(pr.Done-p.lastDone) / dt
		}
	} else if s := pr.Elapsed.Seconds(); s > 0 {
		p.rate = float64(pr.Done) / s
	}
	p.last, p.lastDone = now, pr.Done
	switch pr.Phase {
	case "foreign keys", "vacuum analyze", "done":
		// No rows are written any more: show the average.
		if s := pr.Elapsed.Seconds(); s > 0 {
			p.rate = float64(pr.Done) / s
		}
	}
	pct := 0.0
	if pr.Total > 0 {
		pct = float64(pr.Done) / float64(pr.Total)
	}
	if p.terminal {
		const width = 30
		fill := int(pct * width)
		fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%% %-14s %s/%s rows %s rows/s %s",
			strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*pct, pr.Phase,
			thousands(pr.Done), thousands(pr.Total), thousands(int64(p.rate)), pr.Elapsed.Round(100*time.Millisecond))
		p.drawn = true
		if pr.Phase == "done" {
			fmt.Fprintln(p.w)
			p.drawn = false
		}
		return
	}
	fmt.Fprintf(p.w, "deploydb: seed: %-14s %s/%s rows (%.0f%%), %s rows/s, %s\n",
		pr.Phase, thousands(pr.Done), thousands(pr.Total), 100*pct, thousands(int64(p.rate)), pr.Elapsed.Round(100*time.Millisecond))
}

// finish ends a bar left on the line by an error.
func (p *seedProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
