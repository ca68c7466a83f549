package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// lockName is the advisory-lock name the Atlas CLI takes around
// `migrate apply`. deploydb takes the same lock, so the two tools never
// apply migrations to one database at the same time.
const lockName = "atlas_migrate_execute"

// operatorVersion is written into the revisions table for every file
// deploydb applies.
const operatorVersion = "deploydb"

// ErrLocked is returned by Migrate when another migration run holds the
// migration lock for longer than the lock wait allows.
var ErrLocked = errors.New("db: another migration is running (migration lock is held)")

// MigrationError reports a migration file that failed. The file's
// transaction was rolled back, so none of its statements are applied.
type MigrationError struct {
	File      string // migration file name, e.g. 20261122000000_init.sql
	Statement string // the statement that failed
	SQLState  string // PostgreSQL error code, when the server reported one
	Err       error  // the underlying error
}

// Error implements error.
func (e *MigrationError) Error() string {
	code := ""
	if e.SQLState != "" {
		code = " (SQLSTATE " + e.SQLState + ")"
	}
	return fmt.Sprintf("db: migration %s failed%s: %v\n\tstatement: %s", e.File, code, e.Err, e.Statement)
}

// Unwrap returns the underlying error.
func (e *MigrationError) Unwrap() error { return e.Err }

// MigrateOption configures Migrate.
type MigrateOption func(*migrateConfig)

type migrateConfig struct {
	lockWait time.Duration
	log      func(format string, args ...any)
}

// WithLockWait bounds how long Migrate waits for another migration run to
// release the migration lock before it returns ErrLocked. The default is one
// minute.
func WithLockWait(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.lockWait = d }
}

// WithLog makes Migrate report each file it applies through logf.
func WithLog(logf func(format string, args ...any)) MigrateOption {
	return func(c *migrateConfig) { c.log = logf }
}

// Migrate applies the embedded migrations that the database at databaseURL
// has not applied yet, in order. It verifies atlas.sum first, holds a
// PostgreSQL advisory lock for the whole run (shared with the Atlas CLI), runs
// each file in its own transaction and records it in the revisions table.
// Calling it on an up-to-date database does nothing.
func Migrate(ctx context.Context, databaseURL string, opts ...MigrateOption) error {
	cfg := migrateConfig{lockWait: time.Minute, log: func(string, ...any) {}}
	for _, o := range opts {
		o(&cfg)
	}
	dir := Dir()
	if err := migrate.Validate(dir); err != nil {
		return fmt.Errorf("db: embedded migrations do not match atlas.sum: %w", err)
	}
	sqlDB, err := openSQL(databaseURL)
	if err != nil {
		return err
	}
	defer sqlDB.Close()

	unlock, err := lock(ctx, sqlDB, cfg.lockWait)
	if err != nil {
		return err
	}
	defer unlock()

	if _, err := sqlDB.ExecContext(ctx, createRevisionsTable); err != nil {
		return fmt.Errorf("db: create %s: %w", RevisionsTable, err)
	}
	var current string
	if err := sqlDB.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
		return fmt.Errorf("db: read current schema: %w", err)
	}
	drv, err := postgres.Open(sqlDB)
	if err != nil {
		return fmt.Errorf("db: open migration driver: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, dir, &revisions{q: sqlDB, schema: current},
		migrate.WithAllowDirty(true), migrate.WithOperatorVersion(operatorVersion))
	if err != nil {
		return err
	}
	pending, err := ex.Pending(ctx)
	if errors.Is(err, migrate.ErrNoPendingFiles) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("db: compute pending migrations: %w", err)
	}
	for _, f := range pending {
		start := time.Now()
		if err := applyFile(ctx, sqlDB, dir, current, f); err != nil {
			return err
		}
		cfg.log("applied %s in %s", f.Name(), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// applyFile runs one migration file and its revision bookkeeping in one
// transaction.
func applyFile(ctx context.Context, sqlDB *sql.DB, dir migrate.Dir, current string, f migrate.File) (err error) {
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin migration %s: %w", f.Name(), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	drv, err := postgres.Open(tx)
	if err != nil {
		return fmt.Errorf("db: open migration driver: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, dir, &revisions{q: tx, schema: current},
		migrate.WithAllowDirty(true), migrate.WithOperatorVersion(operatorVersion))
	if err != nil {
		return err
	}
	if err := ex.Execute(ctx, f); err != nil {
		return fileError(f, err)
	}
	if err := tx.Commit(); err != nil {
		return fileError(f, err)
	}
	return nil
}

func fileError(f migrate.File, err error) error {
	me := &MigrationError{File: f.Name(), Err: err}
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
	return me
}

// lock takes the migration advisory lock on a dedicated connection, polling
// with backoff until wait expires.
func lock(ctx context.Context, sqlDB *sql.DB, wait time.Duration) (func(), error) {
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: connect: %w", err)
	}
	h := fnv.New32()
	h.Write([]byte(lockName))
	key := int64(h.Sum32())
	deadline := time.Now().Add(wait)
	backoff := 25 * time.Millisecond
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			conn.Close()
			return nil, fmt.Errorf("db: take migration lock: %w", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			conn.Close()
			return nil, fmt.Errorf("%w (waited %s)", ErrLocked, wait)
		}
		select {
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("db: wait for migration lock: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	return func() {
		// A fresh context: the lock must be released even when ctx is done.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, key)
		conn.Close()
	}, nil
}

// openSQL opens a database/sql handle over pgx for the Atlas library.
func openSQL(databaseURL string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, urlError(err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(3)
	return sqlDB, nil
}
