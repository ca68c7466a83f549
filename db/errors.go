package db

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors of the migrator. Each error Up, Down, Baseline and
// Validate return matches at most one of them with errors.Is; the deploydb
// binary maps them to its exit codes.
var (
	// ErrLocked is returned when another migration run (deploydb's or the
	// Atlas CLI's) holds the migration lock for longer than the lock wait
	// allows. The error is a *LockedError naming the holder.
	ErrLocked = errors.New("db: another migration is running (migration lock is held)")

	// ErrChecksum is returned when the migration files do not match
	// atlas.sum, or when a file the database has already applied was edited
	// since. Nothing is executed. The error is a *ChecksumError.
	ErrChecksum = errors.New("db: migration checksum mismatch")

	// ErrDataLoss is returned by Down when its plan would drop data and
	// WithAllowDataLoss was not given. Nothing is executed. The error is a
	// *DataLossError.
	ErrDataLoss = errors.New("db: the rollback plan drops data")

	// ErrBadTarget is returned when a target version or a number of files
	// to roll back does not fit the directory or the database: a version no
	// file has, a rollback target that is not applied, more files than are
	// applied.
	ErrBadTarget = errors.New("db: bad migration target")
)

// MigrationError reports a migration file that failed. A file run in a
// transaction (the default) was rolled back as a whole, so none of its
// statements are in effect; a file marked `-- atlas:txmode none` keeps the
// statements before Statement, and the revisions table records how many.
type MigrationError struct {
	File      string // migration file name, e.g. 20261122000000_init.sql
	Statement string // the statement that failed
	SQLState  string // PostgreSQL error code, when the server reported one
	Err       error  // the underlying error
	// Applied is how many statements of the file are in effect after the
	// failure: 0 for a transactional file, unless the file's own statement
	// ended the migrator's transaction (the session check after each
	// statement stops the file there; Up refuses the statements it can see
	// before anything runs).
	Applied int
	// Total is the number of statements in the file.
	Total int
	// Retries is how many times the file was retried after a lock timeout
	// (SQLSTATE 55P03) before it failed for good.
	Retries int
	// Hint suggests a way out, when there is a likely one.
	Hint string
}

// Error implements error.
func (e *MigrationError) Error() string {
	code := ""
	if e.SQLState != "" {
		code = " (SQLSTATE " + e.SQLState + ")"
	}
	msg := fmt.Sprintf("db: migration %s failed%s: %v", e.File, code, e.Err)
	if e.Retries > 0 {
		msg += fmt.Sprintf(" (after %d lock-timeout retries)", e.Retries)
	}
	if e.Statement != "" {
		msg += "\n\tstatement: " + e.Statement
	}
	if e.Total > 0 && e.Applied > 0 {
		msg += fmt.Sprintf("\n\tpartially applied: %d of %d statements are in effect", e.Applied, e.Total)
	}
	if e.Hint != "" {
		msg += "\n\thint: " + e.Hint
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *MigrationError) Unwrap() error { return e.Err }

// ChecksumError reports migration files whose content does not match what
// was recorded: in atlas.sum (the directory was edited without re-hashing),
// or in the revisions table (a file was edited after the database applied
// it). It matches ErrChecksum.
type ChecksumError struct {
	// Files names each offending file with the reason, e.g.
	// "20261122003720_init.sql (edited after it was applied)".
	Files []string
	// Dir is true when the mismatch is between the files and atlas.sum,
	// false when it is between atlas.sum and the database's revisions.
	Dir bool
}

// Error implements error.
func (e *ChecksumError) Error() string {
	if e.Dir {
		return "db: migration files do not match atlas.sum: " + strings.Join(e.Files, ", ") +
			" (re-hash the directory with `atlas migrate hash` if the change is intended)"
	}
	return "db: refusing to migrate: applied migration changed: " + strings.Join(e.Files, ", ") +
		" (applied files are never edited; add a new migration instead)"
}

// Is reports whether target is ErrChecksum.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// LockHolder describes the PostgreSQL session that holds the migration
// lock, as far as pg_stat_activity shows it.
type LockHolder struct {
	PID             int       `json:"pid"`
	ApplicationName string    `json:"application_name,omitempty"`
	ClientAddr      string    `json:"client_addr,omitempty"`
	BackendStart    time.Time `json:"backend_start,omitzero"`
	State           string    `json:"state,omitempty"`
}

func (h *LockHolder) String() string {
	if h == nil {
		return "an unknown session"
	}
	s := fmt.Sprintf("PostgreSQL backend pid %d", h.PID)
	var extra []string
	if h.ApplicationName != "" {
		extra = append(extra, "application_name "+h.ApplicationName)
	}
	if h.ClientAddr != "" {
		extra = append(extra, "client "+h.ClientAddr)
	}
	if !h.BackendStart.IsZero() {
		extra = append(extra, "connected since "+h.BackendStart.UTC().Format(time.RFC3339))
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// LockedError is returned when the migration lock could not be taken within
// the lock wait. It matches ErrLocked.
type LockedError struct {
	Waited time.Duration
	Holder *LockHolder // nil when the holder could not be read
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: held by %s; gave up after waiting %s",
		ErrLocked, e.Holder, e.Waited.Round(time.Millisecond))
}

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// DataLossError is returned by Down when the plan drops data and
// WithAllowDataLoss was not given. It matches ErrDataLoss.
type DataLossError struct {
	// Losses describes each step that drops data, e.g.
	// "drop table deployment_operations (3 rows)".
	Losses []string
}

// Error implements error.
func (e *DataLossError) Error() string {
	return "db: refusing to roll back: the plan drops data: " + strings.Join(e.Losses, "; ") +
		" (pass --allow-data-loss / WithAllowDataLoss to apply it anyway)"
}

// Is reports whether target is ErrDataLoss.
func (e *DataLossError) Is(target error) bool { return target == ErrDataLoss }
