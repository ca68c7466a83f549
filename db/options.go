package db

import (
	"time"

	"ariga.io/atlas/sql/migrate"
)

// Defaults of the migration session settings; each has an option.
const (
	// DefaultLockWait is how long a run waits for another run's migration
	// lock (WithLockWait).
	DefaultLockWait = time.Minute
	// DefaultDDLLockTimeout is the lock_timeout every migration session sets
	// (WithDDLLockTimeout): a statement that cannot get its table lock within
	// it fails with SQLSTATE 55P03 instead of queueing the application's
	// queries behind it, and the file is retried.
	DefaultDDLLockTimeout = 2 * time.Second
	// DefaultStatementTimeout is the statement_timeout every migration
	// session sets (WithStatementTimeout).
	DefaultStatementTimeout = 30 * time.Minute
	// DefaultLockRetries is how many times a file that failed on a lock
	// timeout is retried (WithLockRetries).
	DefaultLockRetries = 10
	// DefaultRetryBackoff and DefaultMaxRetryBackoff bound the pause
	// between those retries; it doubles from the first to the second, with
	// up to 25% random jitter (WithRetryBackoff).
	DefaultRetryBackoff    = 500 * time.Millisecond
	DefaultMaxRetryBackoff = 10 * time.Second
)

// MigrateOption configures Migrate, Up, Down, Baseline, Validate and
// Inspect. Options that do not apply to a call are ignored by it.
type MigrateOption func(*migrateConfig)

type migrateConfig struct {
	lockWait         time.Duration
	log              func(format string, args ...any)
	progress         func(format string, args ...any)
	dir              migrate.Dir
	target           string
	steps            int
	dryRun           bool
	ddlLockTimeout   time.Duration
	statementTimeout time.Duration
	retries          int
	backoff          time.Duration
	maxBackoff       time.Duration
	allowDataLoss    bool
	force            bool
	connectTimeout   time.Duration // WithConnectTimeout; 0: the URL's, else DefaultConnectTimeout
	// skipRefusalCheck lets tests prove the session check on files that
	// the check before the run would refuse (export_test.go).
	skipRefusalCheck bool
}

func newConfig(opts []MigrateOption) migrateConfig {
	cfg := migrateConfig{
		lockWait:         DefaultLockWait,
		log:              func(string, ...any) {},
		progress:         func(string, ...any) {},
		ddlLockTimeout:   DefaultDDLLockTimeout,
		statementTimeout: DefaultStatementTimeout,
		retries:          DefaultLockRetries,
		backoff:          DefaultRetryBackoff,
		maxBackoff:       DefaultMaxRetryBackoff,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dir == nil {
		cfg.dir = Dir()
	}
	return cfg
}

// WithLockWait bounds how long a run waits for another run to release the
// migration lock before it returns a *LockedError (ErrLocked). The default
// is DefaultLockWait, one minute.
func WithLockWait(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.lockWait = d }
}

// WithLog makes Migrate and Up report each file they apply through logf,
// one call per file ("applied <file> in <duration>").
func WithLog(logf func(format string, args ...any)) MigrateOption {
	return func(c *migrateConfig) {
		if logf != nil {
			c.log = logf
		}
	}
}

// WithProgress reports what a run is doing besides applying files: waiting
// for the migration lock, retrying after a lock timeout, dropping an
// invalid index left by a failed concurrent index build.
func WithProgress(logf func(format string, args ...any)) MigrateOption {
	return func(c *migrateConfig) {
		if logf != nil {
			c.progress = logf
		}
	}
}

// WithDir migrates from dir instead of the embedded migrations (Dir). The
// directory must hold an atlas.sum that matches its files, as the Atlas CLI
// writes it.
func WithDir(dir migrate.Dir) MigrateOption {
	return func(c *migrateConfig) { c.dir = dir }
}

// WithTarget stops Up after the file with this version (it is applied; later
// files are not), and makes Down roll back to this version (it stays
// applied; every later file is rolled back). The version must name a file
// of the directory.
func WithTarget(version string) MigrateOption {
	return func(c *migrateConfig) { c.target = version }
}

// WithSteps makes Down roll back the last n applied files (default 1).
func WithSteps(n int) MigrateOption {
	return func(c *migrateConfig) { c.steps = n }
}

// WithDryRun makes Up and Down report what they would do without changing
// the database. They still take the migration lock, so the report is
// consistent.
func WithDryRun() MigrateOption {
	return func(c *migrateConfig) { c.dryRun = true }
}

// WithDDLLockTimeout sets the PostgreSQL lock_timeout of every migration
// session (default DefaultDDLLockTimeout; 0 waits forever). A statement that
// waits longer than this for a table lock fails with SQLSTATE 55P03, which
// releases the application queries queued behind it; the file is then
// retried (WithLockRetries).
func WithDDLLockTimeout(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.ddlLockTimeout = d }
}

// WithStatementTimeout sets the PostgreSQL statement_timeout of every
// migration session (default DefaultStatementTimeout; 0 means none). A
// statement that runs longer fails the run; it is not retried.
func WithStatementTimeout(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.statementTimeout = d }
}

// WithLockRetries sets how many times a file that failed with SQLSTATE 55P03
// (lock_not_available, from lock_timeout) is retried before the run fails
// (default DefaultLockRetries; 0 disables retries).
func WithLockRetries(n int) MigrateOption {
	return func(c *migrateConfig) { c.retries = n }
}

// WithRetryBackoff sets the pause before the first lock-timeout retry and
// its upper bound; the pause doubles after each retry and gets up to 25%
// random jitter.
func WithRetryBackoff(first, max time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.backoff, c.maxBackoff = first, max }
}

// WithAllowDataLoss lets Down apply a plan that drops tables or columns
// holding data.
func WithAllowDataLoss() MigrateOption {
	return func(c *migrateConfig) { c.allowDataLoss = true }
}

// WithForce makes Baseline mark a version as applied even when the
// database's schema differs from what the migrations up to that version
// create.
func WithForce() MigrateOption {
	return func(c *migrateConfig) { c.force = true }
}
