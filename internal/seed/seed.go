// Package seed fills a migrated deploydb database with a large,
// deterministic and realistic data set: apps, builds, deployments and
// deployment operations, loaded with COPY and then vacuumed and analyzed.
// The benchmarks (bench/) and `deploydb seed` use it.
//
// # The data set
//
//   - One hot app (id HotAppID) owns HotShare (20%) of the builds and of the
//     deployments; the other apps share the rest uniformly. Every app has at
//     least one succeeded build when there are at least as many builds as
//     apps.
//   - Builds: about 80% succeeded, 10% failed, 5% canceled and 5% active
//     (pending or in_progress, finished_at NULL), spread over one year from
//     Epoch in id order, with 40-hex-digit source versions.
//   - Deployments: about 80% deployed, 10% failed, 5% canceled and 5% active
//     (finished_at NULL), to production, staging or canary. Each deploys a
//     succeeded build of its own app created before it (the composite
//     foreign key). Of the active deployments of one app and environment
//     only the newest is in_progress, the others pending, which the partial
//     unique index deployments_one_in_progress_key requires.
//   - Operations: three targets each for Operations/3 deployments spread
//     evenly over the id range; their states and timestamps are such that
//     the deployment's stored status, started_at and finished_at are what
//     deploydb.DeriveDeploymentStatus derives from them.
//
// Every row satisfies every CHECK constraint, unique index and foreign key.
// When the role may set session_replication_role (a superuser), the COPY
// transactions run with it set to replica, which skips the per-row
// foreign-key triggers (their row locks on the hot app make the load about
// three times slower); every foreign key of the four tables, read from the
// catalog, is then checked with one anti-join, and Run fails if any row
// lacks its parent. Otherwise the triggers check each row as usual. CHECK
// constraints and unique indexes are enforced by COPY either way.
//
// # Determinism
//
// Each row is a pure function of the seed, its table and its id (a
// counter-based generator), plus two sequential passes that are themselves
// deterministic (which build a deployment deploys; which active deployment
// of an app and environment is in progress). Ids are written explicitly
// (COPY writes identity columns as given) and the identity sequences are
// moved past them, so the same Config gives the same rows however many
// COPY streams run, on any server.
package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Default sizes and seed of `deploydb seed` and the benchmarks.
const (
	DefaultApps        = 1_000
	DefaultBuilds      = 1_000_000
	DefaultDeployments = 1_000_000
	DefaultOperations  = 300_000
	DefaultSeed        = 1
)

// HotAppID is the id of the app that owns HotShare of the builds and
// deployments.
const HotAppID = 1

// HotShare is the fraction of builds and deployments that belong to the hot
// app.
const HotShare = 0.20

// TargetsPerDeployment is how many operations a deployment with operations
// has.
const TargetsPerDeployment = 3

// Epoch is when the seeded history starts; it spans Span.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Span is the length of the seeded history.
const Span = 365 * 24 * time.Hour

// Environments are the deployment environments the data set uses, most
// frequent first.
var Environments = []string{"production", "staging", "canary"}

// Config sizes a data set.
type Config struct {
	// Apps, Builds and Deployments are row counts. Operations is the number
	// of deployment_operations rows: a multiple of TargetsPerDeployment, at
	// most TargetsPerDeployment*Deployments.
	Apps, Builds, Deployments, Operations int
	// Seed selects the data set; the same seed gives the same rows.
	Seed uint64
	// Streams is how many COPY streams load one table at once (0 means 2).
	Streams int
	// Reset truncates the four tables first. Without it the tables must be
	// empty.
	Reset bool
	// Progress, when set, is called about every ProgressEvery while Run
	// runs, and when a phase starts. Calls never overlap.
	Progress func(Progress)
	// ProgressEvery is the interval between Progress calls (0 means 250ms).
	ProgressEvery time.Duration
}

// DefaultConfig returns the default data set: 1,000 apps, 1,000,000 builds,
// 1,000,000 deployments and 300,000 operations, seed 1.
func DefaultConfig() Config {
	return Config{
		Apps: DefaultApps, Builds: DefaultBuilds, Deployments: DefaultDeployments,
		Operations: DefaultOperations, Seed: DefaultSeed,
	}
}

// Progress reports how far a Run is.
type Progress struct {
	Phase   string        // "apps", "builds", "deployments", "operations", "foreign keys", "vacuum analyze", "done"
	Done    int64         // rows written so far, all tables
	Total   int64         // rows to write, all tables
	Elapsed time.Duration // since Run started
}

// Result says what Run wrote and how long it took.
type Result struct {
	Apps, Builds, Deployments, Operations int64
	// Load is the time spent planning, copying and checking rows; Vacuum
	// the VACUUM ANALYZE; Total the whole Run.
	Load, Vacuum, Total time.Duration
	// KeysCheckedAfter reports that the foreign keys were checked after
	// the load (with anti-joins) rather than per row by their triggers.
	KeysCheckedAfter bool
}

// Rows is the number of rows written.
func (r Result) Rows() int64 { return r.Apps + r.Builds + r.Deployments + r.Operations }

// RowsPerSecond is Rows over the whole Run, vacuum included.
func (r Result) RowsPerSecond() float64 {
	if r.Total <= 0 {
		return 0
	}
	return float64(r.Rows()) / r.Total.Seconds()
}

// ErrNotEmpty is returned by Run when the tables already hold rows and
// Config.Reset is not set.
var ErrNotEmpty = errors.New("seed: the database already has apps, builds, deployments or operations (reset to truncate them first)")

func (c *Config) validate() error {
	switch {
	case c.Apps < 1:
		return fmt.Errorf("seed: apps must be at least 1, not %d", c.Apps)
	case c.Builds < 0 || c.Deployments < 0 || c.Operations < 0:
		return errors.New("seed: sizes must not be negative")
	case c.Deployments > 0 && c.Builds < 1:
		return errors.New("seed: deployments need at least one build")
	case c.Operations%TargetsPerDeployment != 0:
		return fmt.Errorf("seed: operations must be a multiple of %d (targets per deployment), not %d", TargetsPerDeployment, c.Operations)
	case c.Operations > TargetsPerDeployment*c.Deployments:
		return fmt.Errorf("seed: %d operations need at least %d deployments", c.Operations, c.Operations/TargetsPerDeployment)
	case c.Apps > 1<<31-1:
		return errors.New("seed: too many apps")
	}
	if c.Streams <= 0 {
		c.Streams = 2
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 250 * time.Millisecond
	}
	return nil
}

// Run loads the data set described by cfg into the database behind pool,
// which must be migrated, then runs VACUUM ANALYZE on the four tables. The
// pool needs cfg.Streams connections (2 by default). On error, rows that
// were already committed stay; run again with Reset.
func Run(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := prepare(ctx, pool, cfg.Reset); err != nil {
		return Result{}, err
	}
	fast, err := canSkipTriggers(ctx, pool)
	if err != nil {
		return Result{}, err
	}
	g := newGenerator(cfg)
	total := int64(cfg.Apps + cfg.Builds + cfg.Deployments + cfg.Operations)

	var done atomic.Int64
	phase := atomic.Value{}
	phase.Store("apps")
	var progressMu sync.Mutex
	report := func() {
		if cfg.Progress != nil {
			progressMu.Lock()
			defer progressMu.Unlock()
			cfg.Progress(Progress{Phase: phase.Load().(string), Done: done.Load(), Total: total, Elapsed: time.Since(start)})
		}
	}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	if cfg.Progress != nil {
		ticker.Add(1)
		go func() {
			defer ticker.Done()
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					report()
				}
			}
		}()
	}
	res := Result{KeysCheckedAfter: fast}
	err = func() error {
		defer func() { close(stop); ticker.Wait() }()
		tables := []struct {
			name    string
			columns []string
			n       int
			row     func(id int64, vals []any)
			plan    func()
		}{
			{"apps", appColumns, cfg.Apps, g.appRow, nil},
			{"builds", buildColumns, cfg.Builds, g.buildRow, nil},
			{"deployments", deploymentColumns, cfg.Deployments, g.deploymentRow, g.planDeployments},
			{"deployment_operations", operationColumns, cfg.Operations, g.operationRow, nil},
		}
		for _, t := range tables {
			phase.Store(phaseName(t.name))
			report()
			if t.plan != nil {
				t.plan()
			}
			if err := copyTable(ctx, pool, fast, t.name, t.columns, t.n, len(t.columns), cfg.Streams, t.row, &done); err != nil {
				return err
			}
		}
		if fast {
			phase.Store("foreign keys")
			report()
			if err := checkForeignKeys(ctx, pool, cfg.Streams); err != nil {
				return err
			}
			// The triggers that keep the deployments' operation counts did
			// not run either.
			if _, err := pool.Exec(ctx, RecountSQL); err != nil {
				return fmt.Errorf("seed: recount operations: %w", err)
			}
		}
		if err := resetIdentities(ctx, pool); err != nil {
			return err
		}
		res.Load = time.Since(start)
		phase.Store("vacuum analyze")
		report()
		return nil
	}()
	if err != nil {
		return Result{}, err
	}
	vstart := time.Now()
	if err := vacuum(ctx, pool, cfg.Streams); err != nil {
		return Result{}, err
	}
	res.Vacuum = time.Since(vstart)
	res.Total = time.Since(start)
	res.Apps, res.Builds, res.Deployments, res.Operations = int64(cfg.Apps), int64(cfg.Builds), int64(cfg.Deployments), int64(cfg.Operations)
	if cfg.Progress != nil {
		cfg.Progress(Progress{Phase: "done", Done: done.Load(), Total: total, Elapsed: res.Total})
	}
	return res, nil
}

// RecountSQL recomputes every deployment's operation counts (and with them
// its derived status) from its operations, through the schema's own
// deploydb_recount_operations, after a load that ran with triggers off; on
// a schema without the function it does nothing.
const RecountSQL = `DO $$
BEGIN
    IF to_regprocedure('deploydb_recount_operations()') IS NOT NULL THEN
        PERFORM deploydb_recount_operations();
    END IF;
END
$$`

func phaseName(table string) string {
	if table == "deployment_operations" {
		return "operations"
	}
	return table
}

var seededTables = []string{"apps", "builds", "deployments", "deployment_operations"}

// prepare truncates the tables (reset) or checks that they are empty.
func prepare(ctx context.Context, pool *pgxpool.Pool, reset bool) error {
	if reset {
		if _, err := pool.Exec(ctx, "TRUNCATE apps, builds, deployments, deployment_operations RESTART IDENTITY"); err != nil {
			return fmt.Errorf("seed: truncate: %w", err)
		}
		return nil
	}
	var any bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM apps) OR EXISTS (SELECT 1 FROM builds)
		OR EXISTS (SELECT 1 FROM deployments) OR EXISTS (SELECT 1 FROM deployment_operations)`).Scan(&any)
	if err != nil {
		return fmt.Errorf("seed: check that the tables are empty (is the database migrated?): %w", err)
	}
	if any {
		return ErrNotEmpty
	}
	return nil
}

// resetIdentities moves each identity sequence past the ids COPY wrote, so
// later inserts get fresh ids.
func resetIdentities(ctx context.Context, pool *pgxpool.Pool) error {
	for _, t := range seededTables {
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), COALESCE(max(id), 1), max(id) IS NOT NULL) FROM %[1]s`, t)
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("seed: reset the identity of %s: %w", t, err)
		}
	}
	return nil
}

// vacuum runs VACUUM ANALYZE on the tables, streams at a time, biggest
// first.
func vacuum(ctx context.Context, pool *pgxpool.Pool, streams int) error {
	order := []string{"deployments", "builds", "deployment_operations", "apps"}
	return parallel(streams, len(order), func(i int) error {
		if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+order[i]); err != nil {
			return fmt.Errorf("seed: vacuum analyze %s: %w", order[i], err)
		}
		return nil
	})
}

// parallel runs fn(0..n-1) on at most k goroutines and returns the first
// error.
func parallel(k, n int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	for w := 0; w < min(k, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// canSkipTriggers reports whether this role may turn the foreign-key
// triggers off for a transaction (SET LOCAL session_replication_role).
func canSkipTriggers(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "SET LOCAL session_replication_role = replica")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seed: %w", err)
	}
	return true, nil
}

// checkForeignKeys checks every foreign key of the seeded tables with one
// anti-join each, as the triggers would have row by row.
func checkForeignKeys(ctx context.Context, pool *pgxpool.Pool, streams int) error {
	rows, err := pool.Query(ctx, `
		SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
		       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
		             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
		       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
		             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)::text[]
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.conrelid = ANY($1::regclass[])
		ORDER BY c.conname`, seededTables)
	if err != nil {
		return fmt.Errorf("seed: list foreign keys: %w", err)
	}
	type fk struct {
		name, child, parent string
		cols, refs          []string
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fk, error) {
		var k fk
		return k, r.Scan(&k.name, &k.child, &k.parent, &k.cols, &k.refs)
	})
	if err != nil {
		return fmt.Errorf("seed: list foreign keys: %w", err)
	}
	return parallel(streams, len(fks), func(i int) error {
		k := fks[i]
		var on, notNull []string
		for j := range k.cols {
			c, p := pgx.Identifier{k.cols[j]}.Sanitize(), pgx.Identifier{k.refs[j]}.Sanitize()
			on = append(on, "p."+p+" = c."+c)
			notNull = append(notNull, "c."+c+" IS NOT NULL")
		}
		q := fmt.Sprintf("SELECT count(*) FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
			k.child, strings.Join(notNull, " AND "), k.parent, strings.Join(on, " AND "))
		var orphans int64
		if err := pool.QueryRow(ctx, q).Scan(&orphans); err != nil {
			return fmt.Errorf("seed: check foreign key %s: %w", k.name, err)
		}
		if orphans != 0 {
			return fmt.Errorf("seed: %d rows of %s violate foreign key %s", orphans, k.child, k.name)
		}
		return nil
	})
}

// copyTable writes rows 1..n of a table with streams concurrent COPY
// statements, each over a contiguous id range and in its own transaction;
// with skipTriggers, one that skips the foreign-key triggers.
func copyTable(ctx context.Context, pool *pgxpool.Pool, skipTriggers bool, table string, columns []string, n, width, streams int, row func(int64, []any), done *atomic.Int64) error {
	if n == 0 {
		return nil
	}
	streams = min(streams, max(1, n/10_000))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return parallel(streams, streams, func(s int) error {
		from := int64(n)*int64(s)/int64(streams) + 1
		to := int64(n) * int64(s+1) / int64(streams)
		src := &rowSource{next: from, last: to, vals: make([]any, width), row: row, done: done}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if skipTriggers {
				if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
					return err
				}
			}
			copied, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, src)
			if err == nil && copied != to-from+1 {
				err = fmt.Errorf("wrote %d rows, want %d", copied, to-from+1)
			}
			return err
		})
		if err != nil {
			cancel()
			return fmt.Errorf("seed: copy %s rows %d-%d: %w", table, from, to, err)
		}
		return nil
	})
}

// rowSource feeds ids next..last to COPY, filling vals with row(id).
type rowSource struct {
	next, last int64
	cur        int64
	vals       []any
	row        func(id int64, vals []any)
	done       *atomic.Int64
	pending    int64
}

func (s *rowSource) Next() bool {
	if s.pending == 1024 {
		s.done.Add(s.pending)
		s.pending = 0
	}
	if s.next > s.last {
		s.done.Add(s.pending)
		s.pending = 0
		return false
	}
	s.cur = s.next
	s.next++
	s.pending++
	return true
}

func (s *rowSource) Values() ([]any, error) {
	s.row(s.cur, s.vals)
	return s.vals, nil
}

func (s *rowSource) Err() error { return nil }
