package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"github.com/jackc/pgx/v5/pgconn"
)

// operatorVersion is written into the revisions table for every file
// deploydb applies.
const operatorVersion = "deploydb"

// sqlstateLockNotAvailable is lock_not_available: lock_timeout expired.
const sqlstateLockNotAvailable = "55P03"

// UpReport describes what Up did, or with WithDryRun would do.
type UpReport struct {
	// From is the last version the database had applied before the run
	// ("" for a database without revisions); To is the last one after it.
	From string `json:"from_version"`
	To   string `json:"to_version"`
	// DryRun is true when nothing was executed; Planned then lists the
	// files a real run would apply.
	DryRun  bool      `json:"dry_run"`
	Applied []FileRun `json:"applied"`
	Planned []FileRun `json:"planned,omitempty"`
	// LockWait is how long the run waited for the migration lock.
	LockWait time.Duration `json:"lock_wait_ns"`
	// Refused lists the statements of pending files that the migrator
	// refuses to run (CheckFile); when there are any, nothing ran.
	Refused []Refusal `json:"refused,omitempty"`
}

// FileRun describes one migration file that a run applied or plans to.
type FileRun struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// TxMode is "file" (the file runs in one transaction) or "none" (its
	// statements run one by one, for CREATE INDEX CONCURRENTLY and the
	// like; `-- atlas:txmode none` at the top of the file).
	TxMode string `json:"txmode"`
	// Total is the file's statement count; Skipped of them were already
	// applied by an earlier, failed run of a txmode none file and are not
	// run again.
	Total   int `json:"total_statements"`
	Skipped int `json:"skipped_statements,omitempty"`
	// Statements lists what a dry run would execute.
	Statements []string      `json:"statements,omitempty"`
	Duration   time.Duration `json:"duration_ns,omitempty"`
	// Retries counts the attempts that failed on a lock timeout (SQLSTATE
	// 55P03) before the file went through.
	Retries int `json:"retries"`
	// DroppedIndexes names invalid indexes, left by an earlier failed
	// CREATE INDEX CONCURRENTLY of this file, that were dropped so the file
	// could build them again. A dry run lists the ones it would drop.
	DroppedIndexes []string `json:"dropped_invalid_indexes,omitempty"`
}

// Migrate applies the migrations that the database at databaseURL has not
// applied yet, in order (the embedded ones unless WithDir says otherwise).
// It is Up without the report.
func Migrate(ctx context.Context, databaseURL string, opts ...MigrateOption) error {
	_, err := Up(ctx, databaseURL, opts...)
	return err
}

// Migrator returns Migrate with opts bound, in the shape that
// deploydb.WithAutoMigrate takes:
//
//	svc, err := deploydb.Open(ctx, url, deploydb.WithAutoMigrate(db.Migrator()))
func Migrator(opts ...MigrateOption) func(ctx context.Context, databaseURL string) error {
	opts = append([]MigrateOption(nil), opts...)
	return func(ctx context.Context, databaseURL string) error {
		return Migrate(ctx, databaseURL, opts...)
	}
}

// Up applies pending migrations, in order, and reports what it did:
//
//   - It verifies atlas.sum and refuses (ErrChecksum, nothing executed) a
//     file the database applied whose content has changed since.
//   - It refuses (ErrInvalidMigrations, nothing executed, not even the
//     creation of the revisions table) to run any pending file when one of
//     them holds transaction control or switches a timeout off (CheckFile);
//     the report lists the statements in Refused.
//   - It holds a PostgreSQL advisory lock for the whole run, the one the
//     Atlas CLI takes, waiting at most WithLockWait for another run
//     (ErrLocked).
//   - Each file runs in its own transaction, or statement by statement when
//     it starts with `-- atlas:txmode none`, on a session with lock_timeout
//     and statement_timeout set (WithDDLLockTimeout, WithStatementTimeout).
//     A file that fails on a lock timeout (SQLSTATE 55P03) is retried with
//     backoff (WithLockRetries, WithRetryBackoff); before a txmode none file
//     runs again, the invalid indexes its failed concurrent index builds
//     left are dropped.
//   - Each file is recorded in atlas_schema_revisions in the Atlas CLI v0.12
//     format. A failing file is reported as a *MigrationError with its name,
//     statement and SQLSTATE.
//   - After each statement the session is checked on the server's word: a
//     transactional file must still be in the migrator's own transaction,
//     a txmode none file outside any, and the timeouts the migrator set must
//     still be on. A statement that changed that fails the file, so a file
//     is never reported as applied unless it committed as one.
//
// An up-to-date database is left alone. On error the report still lists
// the files applied before the failure.
func Up(ctx context.Context, databaseURL string, opts ...MigrateOption) (*UpReport, error) {
	cfg := newConfig(opts)
	rep := &UpReport{DryRun: cfg.dryRun, Applied: []FileRun{}}
	s, err := openSession(ctx, databaseURL, cfg)
	if err != nil {
		return rep, err
	}
	defer s.close()
	if cfg.target != "" {
		if err := s.checkVersion(cfg.target); err != nil {
			return rep, err
		}
	}
	unlock, waited, err := s.lock(ctx)
	rep.LockWait = waited
	if err != nil {
		return rep, err
	}
	defer unlock()

	haveTable, err := s.revisionsExist(ctx, s.db)
	if err != nil {
		return rep, err
	}
	revs, err := s.readRevisions(ctx)
	if err != nil {
		return rep, err
	}
	if len(revs) > 0 {
		rep.From = revs[len(revs)-1].Version
	}
	rep.To = rep.From
	if err := s.checkApplied(revs); err != nil {
		return rep, err
	}
	pending, err := s.pending(ctx, haveTable)
	if err != nil {
		return rep, err
	}
	refused, err := checkFiles(pending)
	if err != nil {
		return rep, err
	}
	if len(refused) > 0 && !cfg.skipRefusalCheck {
		rep.Refused = refused
		return rep, refusedError(refused)
	}
	if !haveTable && !cfg.dryRun {
		if _, err := s.db.ExecContext(ctx, createRevisionsTable); err != nil {
			return rep, fmt.Errorf("db: create %s: %w", RevisionsTable, err)
		}
	}
	if cfg.dryRun {
		for _, f := range pending {
			run, err := s.plan(ctx, f)
			if err != nil {
				return rep, err
			}
			rep.Planned = append(rep.Planned, run)
		}
		return rep, nil
	}
	for _, f := range pending {
		run, err := s.applyFile(ctx, f)
		if err != nil {
			var me *MigrationError
			if errors.As(err, &me) && len(revs) == 0 && (me.SQLState == "42P07" || me.SQLState == "42710") {
				me.Hint = "the schema exists already but the database has no migration revisions: " +
					"adopt it with `deploydb migrate baseline VERSION` (db.Baseline) instead of migrating it"
			}
			return rep, err
		}
		rep.Applied = append(rep.Applied, run)
		rep.To = f.Version()
		cfg.log("applied %s in %s", f.Name(), run.Duration.Round(time.Millisecond))
	}
	return rep, nil
}

// plan describes what applying f would do, for a dry run.
func (s *session) plan(ctx context.Context, f migrate.File) (FileRun, error) {
	run, stmts, err := s.describe(ctx, s.db, f)
	if err != nil {
		return run, s.fileError(ctx, f, err, run)
	}
	run.Statements = stmts[run.Skipped:]
	if run.TxMode == txModeNone {
		idx, err := invalidIndexesFor(ctx, s.db, run.Statements)
		if err != nil {
			return run, err
		}
		for _, ix := range idx {
			run.DroppedIndexes = append(run.DroppedIndexes, ix.Name)
		}
	}
	return run, nil
}

// describe returns the file's run description and statements, with Skipped
// set from a partially applied revision.
func (s *session) describe(ctx context.Context, q revisionQuerier, f migrate.File) (FileRun, []string, error) {
	run := FileRun{Name: f.Name(), Version: f.Version(), Description: f.Desc()}
	mode, err := txMode(f)
	if err != nil {
		return run, nil, err
	}
	run.TxMode = mode
	stmts, err := statements(f)
	if err != nil {
		return run, nil, err
	}
	run.Total = len(stmts)
	ok, err := s.revisionsExist(ctx, q)
	if err != nil {
		return run, nil, err
	}
	if ok {
		r, err := (&revisions{q: q, schema: s.schema}).ReadRevision(ctx, f.Version())
		switch {
		case errors.Is(err, migrate.ErrRevisionNotExist):
		case err != nil:
			return run, nil, fmt.Errorf("db: %w", err)
		case r.Applied < r.Total:
			if err := checkHistory(f, stmts, r); err != nil {
				return run, nil, err
			}
			run.Skipped = min(r.Applied, len(stmts))
		}
	}
	return run, stmts, nil
}

// revisionQuerier is what the revisions table is read and written through:
// the pool, one connection or a transaction.
type revisionQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// applyFile applies one file, retrying it with backoff while it fails on a
// lock timeout.
func (s *session) applyFile(ctx context.Context, f migrate.File) (FileRun, error) {
	start := time.Now()
	var run FileRun
	for attempt := 0; ; attempt++ {
		var err error
		retries, dropped := run.Retries, run.DroppedIndexes
		run, err = s.applyOnce(ctx, f)
		run.Retries, run.DroppedIndexes = retries, append(dropped, run.DroppedIndexes...)
		if err == nil {
			run.Duration = time.Since(start)
			return run, nil
		}
		if isSQLState(err, sqlstateLockNotAvailable) && attempt < s.cfg.retries && ctx.Err() == nil {
			run.Retries++
			wait := s.backoff(attempt)
			s.cfg.progress("%s: a statement waited longer than lock_timeout (%s) for its lock; retry %d of %d in %s",
				f.Name(), s.cfg.ddlLockTimeout, attempt+1, s.cfg.retries, wait.Round(time.Millisecond))
			if err := sleepCtx(ctx, wait); err != nil {
				return run, s.fileError(ctx, f, err, run)
			}
			continue
		}
		return run, s.fileError(ctx, f, err, run)
	}
}

// backoff returns the pause before retry number attempt+1: the first
// backoff doubled attempt times, capped, plus up to 25% jitter.
func (s *session) backoff(attempt int) time.Duration {
	d := s.cfg.backoff
	for i := 0; i < attempt && d < s.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.maxBackoff)
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// applyOnce makes one attempt at a file.
func (s *session) applyOnce(ctx context.Context, f migrate.File) (FileRun, error) {
	mode, err := txMode(f)
	if err != nil {
		return FileRun{Name: f.Name(), Version: f.Version(), Description: f.Desc()}, err
	}
	if mode == txModeNone {
		return s.applyNoTx(ctx, f)
	}
	return s.applyTx(ctx, f)
}

// applyTx runs the file and its revision bookkeeping in one transaction,
// and commits it only if it is still the migrator's transaction.
func (s *session) applyTx(ctx context.Context, f migrate.File) (run FileRun, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return FileRun{Name: f.Name()}, fmt.Errorf("db: connect: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return FileRun{Name: f.Name()}, fmt.Errorf("db: begin migration %s: %w", f.Name(), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := s.setTimeouts(ctx, tx, true); err != nil {
		return FileRun{Name: f.Name()}, err
	}
	if run, _, err = s.describe(ctx, tx, f); err != nil {
		return run, err
	}
	g, err := s.newSessionGuard(ctx, tx, conn, true)
	if err != nil {
		return run, err
	}
	if err := s.execute(ctx, tx, g, f, run); err != nil {
		return run, err
	}
	// The revision rows were written after the last statement's check:
	// check once more that what commits is the migrator's transaction.
	if err := g.check(ctx); err != nil {
		return run, err
	}
	if err := tx.Commit(); err != nil {
		return run, err
	}
	return run, nil
}

// applyNoTx runs the file statement by statement on one session, recording
// progress after each statement (txmode none).
func (s *session) applyNoTx(ctx context.Context, f migrate.File) (FileRun, error) {
	run := FileRun{Name: f.Name(), Version: f.Version(), Description: f.Desc()}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return run, fmt.Errorf("db: connect: %w", err)
	}
	defer conn.Close()
	if err := s.setTimeouts(ctx, conn, false); err != nil {
		return run, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, `RESET lock_timeout`)
		_, _ = conn.ExecContext(rctx, `RESET statement_timeout`)
	}()
	run, stmts, err := s.describe(ctx, conn, f)
	if err != nil {
		return run, err
	}
	invalid, err := invalidIndexesFor(ctx, conn, stmts[run.Skipped:])
	if err != nil {
		return run, err
	}
	for _, ix := range invalid {
		if ix.BuildingPID != 0 {
			return run, fmt.Errorf("db: %s: index %s is being built by PostgreSQL backend pid %d; wait for it or cancel it",
				f.Name(), ix.Name, ix.BuildingPID)
		}
		s.cfg.progress("%s: dropping invalid index %s left by a failed concurrent build", f.Name(), ix.Name)
		if _, err := conn.ExecContext(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+quoteIdent(ix.Schema)+`.`+quoteIdent(ix.Name)); err != nil {
			return run, fmt.Errorf("db: drop invalid index %s: %w", ix.Name, err)
		}
		run.DroppedIndexes = append(run.DroppedIndexes, ix.Name)
	}
	g, err := s.newSessionGuard(ctx, conn, conn, false)
	if err != nil {
		return run, err
	}
	return run, s.execute(ctx, conn, g, f, run)
}

// execute hands the file to the Atlas executor, which runs its statements
// through g and writes the revision rows on q in the Atlas CLI's format,
// resuming a partially applied txmode none file after its last applied
// statement.
func (s *session) execute(ctx context.Context, q revisionQuerier, g *sessionGuard, f migrate.File, run FileRun) error {
	rrw := &revisions{q: q, schema: s.schema}
	if run.Skipped == 0 {
		// A revision without applied statements (an attempt that failed on
		// its first statement) carries the hash of the file as it was then;
		// start over so the file's current hash is recorded.
		if err := rrw.DeleteRevision(ctx, f.Version()); err != nil {
			return err
		}
	}
	drv, err := postgres.Open(g)
	if err != nil {
		return fmt.Errorf("db: open migration driver: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, s.cfg.dir, rrw,
		migrate.WithAllowDirty(true), migrate.WithOperatorVersion(operatorVersion))
	if err != nil {
		return err
	}
	if err := ex.Execute(ctx, f); err != nil {
		return err
	}
	// A resumed file may have been fixed (and re-hashed) after it failed:
	// record the hash of what is now applied.
	if h, err := s.sums.SumByName(f.Name()); err == nil {
		if _, err := q.ExecContext(ctx, `UPDATE atlas_schema_revisions SET hash = $1 WHERE version = $2 AND hash <> $1`,
			h, f.Version()); err != nil {
			return fmt.Errorf("db: record hash of %s: %w", f.Name(), err)
		}
	}
	return nil
}

// setTimeouts sets lock_timeout and statement_timeout on q, for the
// transaction (local) or the session.
func (s *session) setTimeouts(ctx context.Context, q revisionQuerier, local bool) error {
	_, err := q.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, $3), set_config('statement_timeout', $2, $3)`,
		pgDuration(s.cfg.ddlLockTimeout), pgDuration(s.cfg.statementTimeout), local)
	if err != nil {
		return fmt.Errorf("db: set migration session timeouts: %w", err)
	}
	return nil
}

func pgDuration(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}

// fileError turns an attempt's error into a *MigrationError (or a
// *ChecksumError when a partially applied file's applied statements
// changed).
func (s *session) fileError(ctx context.Context, f migrate.File, err error, run FileRun) error {
	var hc migrate.HistoryChangedError
	if errors.As(err, &hc) {
		return &ChecksumError{Files: []string{fmt.Sprintf("%s (statement %d changed after it was applied)", f.Name(), hc.Stmt)}}
	}
	var (
		ce *ChecksumError
		le *LockedError
	)
	if errors.As(err, &ce) || errors.As(err, &le) {
		return err
	}
	me := &MigrationError{File: f.Name(), Err: err, Total: run.Total, Retries: run.Retries}
	var se *migrate.StmtExecError
	if errors.As(err, &se) {
		me.Err = se.Err
		if se.Stmt != nil {
			me.Statement = se.Stmt.Text
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		me.SQLState = pgErr.Code
	}
	var sse *sessionError
	if errors.As(err, &sse) && sse.committed {
		me.Hint = "remove transaction control from the file (`deploydb migrate validate` names it): the statements " +
			"before this one were committed; `deploydb migrate status` shows them"
	}
	if run.TxMode == txModeNone || sse != nil && sse.committed {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if r, rerr := (&revisions{q: s.db, schema: s.schema}).ReadRevision(rctx, f.Version()); rerr == nil {
			me.Applied = r.Applied
		}
	}
	return me
}
