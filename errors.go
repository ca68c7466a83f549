package deploydb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Every error a Service method returns for one of these
// reasons matches the sentinel with errors.Is, and still wraps the driver
// error (for example *pgconn.PgError or pgx.ErrNoRows) for errors.As.
var (
	// ErrNotFound reports that a row (app, build, deployment) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a request that conflicts with the current state: a
	// duplicate app name, a second deployment in progress for the same app
	// and environment, or a manual status change to a deployment whose status
	// is derived from its operations.
	ErrConflict = errors.New("conflict")
	// ErrInvalidTransition reports a status change the lifecycle does not
	// allow. The error is a *TransitionError carrying From and To.
	ErrInvalidTransition = errors.New("invalid status transition")
	// ErrInvalidArgument reports bad input: a malformed name, an out-of-range
	// page size, a tampered or foreign cursor, a filter combination no index
	// serves, or a build that cannot be deployed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInUse reports a delete refused because other rows still reference the
	// row (a build that a deployment deploys). Nothing was deleted.
	ErrInUse = errors.New("in use")
	// ErrRetryable reports a transaction rolled back by a serialization
	// failure (40001) or a deadlock (40P01). InTx already retries these;
	// seeing it means the retries ran out. Running the work again may
	// succeed.
	ErrRetryable = errors.New("transaction conflict, retry")
	// ErrTimeout reports a statement stopped by a timeout: lock_timeout
	// (55P03), statement_timeout or a cancel (57014). Context deadlines keep
	// wrapping context.DeadlineExceeded instead.
	ErrTimeout = errors.New("timed out")
	// ErrUnavailable reports that the server could not be reached or went
	// away: the connection failed or was lost, or the server is shutting down
	// or starting (57P01, 57P02, 57P03, 08xxx, 53300). The outcome of a write
	// that was in flight is unknown; status transitions are safe to repeat.
	ErrUnavailable = errors.New("database unavailable")
	// ErrSchemaMismatch reports that Open (or CheckSchema) refused a
	// database whose applied migrations do not match the ones this binary
	// embeds: never migrated, behind, or carrying versions the binary does
	// not know; the error is then a *SchemaError naming the versions. It
	// also reports a role that may not read the revisions table, so that
	// the schema cannot be checked.
	ErrSchemaMismatch = errors.New("schema mismatch")
)

// Error is the error type behind the sentinels: Kind is the sentinel,
// Op says what was being done, and Err is the underlying driver error, if
// any.
type Error struct {
	Kind error  // one of the sentinel errors above
	Op   string // what was being done, e.g. "create app"
	Msg  string // human-readable detail
	Err  error  // underlying error, may be nil
}

// Error implements error.
func (e *Error) Error() string {
	s := "deploydb: " + e.Op + ": " + e.Kind.Error()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, Kind) true.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying driver error.
func (e *Error) Unwrap() error { return e.Err }

// TransitionError reports an illegal status change. It matches
// ErrInvalidTransition with errors.Is.
type TransitionError struct {
	Entity string // "build", "deployment" or "operation"
	ID     int64  // the row's id
	From   string // the status the row is in
	To     string // the status that was asked for
}

// Error implements error.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("deploydb: %s %d: %s: %s -> %s is not allowed", e.Entity, e.ID, ErrInvalidTransition, e.From, e.To)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

func invalidArg(op, format string, args ...any) error {
	return &Error{Kind: ErrInvalidArgument, Op: op, Msg: fmt.Sprintf(format, args...)}
}

func notFound(op, format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Op: op, Msg: fmt.Sprintf(format, args...), Err: pgx.ErrNoRows}
}

// opKind tells mapError what kind of statement failed, which decides how a
// foreign-key violation reads: a missing parent on insert/update, a
// still-referenced row on delete.
type opKind int

const (
	opRead opKind = iota
	opWrite
	opDelete
)

// constraintMessages explains the constraints a caller can violate.
var constraintMessages = map[string]string{
	"apps_name_key":                                  "an app with this name already exists",
	"apps_name_format":                               "app name must be a lowercase DNS label (a-z, 0-9, '-', 1-63 characters)",
	"builds_app_id_fkey":                             "the app does not exist",
	"builds_source_version_length":                   "source version must be 1-255 characters",
	"deployments_app_id_fkey":                        "the app does not exist",
	"deployments_build_id_app_id_fkey":               "the build is deployed by at least one deployment",
	"deployments_one_in_progress_key":                "another deployment of this app to this environment is in progress",
	"deployments_environment_format":                 "environment must be a lowercase DNS label (a-z, 0-9, '-', 1-63 characters)",
	"deployment_operations_deployment_id_target_key": "the deployment already has an operation on this target",
	"deployment_operations_deployment_id_fkey":       "the deployment does not exist",
	"deployment_operations_target_format":            "target must be 1-63 characters of a-z, 0-9, '-' and '.'",
}

// mapError is the one place that turns driver errors into deploydb's typed
// errors. It returns nil for nil and leaves errors it does not recognise
// wrapped with op.
func mapError(kind opKind, op string, err error) error {
	if err == nil {
		return nil
	}
	var de *Error
	var te *TransitionError
	if errors.As(err, &de) || errors.As(err, &te) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Kind: ErrNotFound, Op: op, Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := constraintMessages[pgErr.ConstraintName]
		switch pgErr.Code {
		case "23505": // unique_violation
			return &Error{Kind: ErrConflict, Op: op, Msg: msg, Err: err}
		case "23503": // foreign_key_violation
			if kind == opDelete {
				return &Error{Kind: ErrInUse, Op: op, Msg: msg, Err: err}
			}
			return &Error{Kind: ErrNotFound, Op: op, Msg: msg, Err: err}
		case "23514", "22001", "22021", "22P02", "22007", "22008", "22003", "22P05": // check, too long, bad encoding, bad text repr, bad datetime, out of range, untranslatable
			return &Error{Kind: ErrInvalidArgument, Op: op, Msg: msg, Err: err}
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return &Error{Kind: ErrRetryable, Op: op, Err: err}
		case "55P03": // lock_not_available (lock_timeout)
			return &Error{Kind: ErrTimeout, Op: op, Msg: "waiting for a lock", Err: err}
		case "57014": // query_canceled (statement_timeout, cancel request)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				break
			}
			return &Error{Kind: ErrTimeout, Op: op, Msg: "statement canceled", Err: err}
		case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, cannot connect now, too many connections
			return &Error{Kind: ErrUnavailable, Op: op, Err: err}
		}
		if strings.HasPrefix(pgErr.Code, "08") { // connection exception
			return &Error{Kind: ErrUnavailable, Op: op, Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("deploydb: %s: %w", op, err)
	}
	if connectionLost(err) {
		return &Error{Kind: ErrUnavailable, Op: op, Err: err}
	}
	// Anything else, including context deadlines and cancellations (the
	// driver error wraps the context error, so errors.Is(err,
	// context.DeadlineExceeded) holds), is wrapped with what was being done.
	return fmt.Errorf("deploydb: %s: %w", op, err)
}

// connectionLost reports errors that mean the server could not be reached
// or the connection broke.
func connectionLost(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
