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

	"github.com/deploydb/deploydb/status"
)

// Sentinel errors. Every error that an exported function or method of this
// package returns matches exactly one of them with errors.Is, or else
// exactly one of context.Canceled and context.DeadlineExceeded (the
// caller's context ended). The only other errors are those an InTx callback
// returns itself, which InTx hands back unchanged unless they carry a
// database error (see InTxWith). Driver errors stay in the chain for
// errors.As (*pgconn.PgError, pgx.ErrNoRows, *pgconn.ConnectError).
var (
	// ErrNotFound reports that a row (app, build, deployment, operation)
	// does not exist, or that a statement that needed a row found none.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a request that conflicts with the current state:
	// a duplicate app name, a second deployment in progress for the same
	// app and environment, a manual status change to a deployment whose
	// status is derived from its operations, or an idempotency key reused
	// with different arguments.
	ErrConflict = errors.New("conflict")
	// ErrInvalidTransition reports a status change the lifecycle does not
	// allow. The error is a *TransitionError carrying From and To.
	ErrInvalidTransition = errors.New("invalid status transition")
	// ErrInvalidArgument reports bad input, refused before anything is
	// written: a malformed name, environment, target or URL, an option or
	// TxOptions value out of range, an out-of-range page size or timestamp,
	// a tampered or foreign cursor, a filter combination no index serves (a
	// *FilterError), a build that cannot be deployed, or a write in a
	// read-only transaction (25006).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInUse reports a delete refused because other rows still reference
	// the row (a build that a deployment deploys). Nothing was deleted.
	ErrInUse = errors.New("in use")
	// ErrRetryable reports a transaction rolled back by a serialization
	// failure (40001) or a deadlock (40P01), whether deploydb's statements
	// or the caller's own SQL (through Conn) caused it. InTx already retries
	// these; seeing it means the retries ran out (or the Service runs in a
	// transaction of the caller's, which must then be retried whole).
	// Running the work again may succeed.
	ErrRetryable = errors.New("transaction conflict, retry")
	// ErrTimeout reports a statement stopped by a timeout: lock_timeout
	// (55P03), statement_timeout or a cancel request (57014). When the
	// caller's context ends, the error matches its context error instead.
	ErrTimeout = errors.New("timed out")
	// ErrUnavailable reports that the server could not be reached or went
	// away: the connection failed (refused, timed out), was lost, or the
	// server is shutting down or starting (57P01, 57P02, 57P03, 08xxx,
	// 53300). The outcome of a write that was in flight is unknown; status
	// transitions and creates with an idempotency key are safe to repeat.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTxAborted reports a transaction that can no longer run statements
	// or commit: a statement in it failed and the caller went on (25P02),
	// its COMMIT turned into a rollback because of such a failure, or it had
	// already ended (a Service from InTx used after the callback returned).
	// Nothing of it was committed.
	ErrTxAborted = errors.New("transaction aborted")
	// ErrSchemaMismatch reports that Open (or CheckSchema) refused a
	// database whose applied migrations do not match the ones this binary
	// embeds: never migrated, behind, or carrying versions the binary does
	// not know (the error is then a *SchemaError naming the versions); a
	// role that may not read the revisions table, so that the schema cannot
	// be checked; or a WithAutoMigrate migration that failed.
	ErrSchemaMismatch = errors.New("schema mismatch")
	// ErrInternal reports a database failure no other sentinel describes:
	// typically a syntax error or a missing privilege in the caller's own
	// SQL run through Conn, or a bug. The driver error is in the chain.
	ErrInternal = errors.New("internal database error")
	// ErrLeaseLost reports a worker's move or heartbeat (MoveOperation,
	// Heartbeat) whose lease no longer holds: the operation was rescued
	// after the lease expired, stopped, or claimed again, so its fencing
	// token changed. Nothing was changed; the worker should abandon the
	// operation.
	ErrLeaseLost = errors.New("lease lost")
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

// Unwrap returns the underlying driver error, through which errors.As still
// finds *pgconn.PgError and the like. It hides context errors that the
// driver error may carry (a connect timeout wraps
// context.DeadlineExceeded), so that an *Error matches its Kind and no
// context sentinel.
func (e *Error) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return hideContext{e.Err}
}

// hideContext is the chain below an *Error: it answers errors.Is and
// errors.As for everything in err except the context sentinels.
type hideContext struct{ err error }

func (h hideContext) Error() string { return h.err.Error() }

func (h hideContext) Is(target error) bool {
	if target == context.Canceled || target == context.DeadlineExceeded {
		return false
	}
	return errors.Is(h.err, target)
}

func (h hideContext) As(target any) bool { return errors.As(h.err, target) }

// Entity names the kind of row an error is about.
type Entity string

// Entities.
const (
	EntityApp        Entity = "app"
	EntityBuild      Entity = "build"
	EntityDeployment Entity = "deployment"
	EntityOperation  Entity = "operation"
)

// Status is the state of a build, a deployment or an operation: a
// BuildStatus, DeploymentStatus or OperationState value (see package
// status). Compare it with the constants directly: te.From ==
// deploydb.BuildSucceeded.
type Status = status.Status

// TransitionError reports an illegal status change. It matches
// ErrInvalidTransition with errors.Is.
type TransitionError struct {
	// Entity is EntityBuild, EntityDeployment or EntityOperation.
	Entity Entity
	// ID is the row's id: a BuildID, DeploymentID or OperationID as int64.
	ID int64
	// From is the status the row is in, of Entity's status type.
	From Status
	// To is the status that was asked for, of the same type.
	To Status
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
// still-referenced row on delete. opCaller is SQL of the caller's own,
// whose kind is read from the server's message.
type opKind int

const (
	opRead opKind = iota
	opWrite
	opDelete
	opCaller
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
	"deployments_status_derived":                     "the deployment's status is derived from its operations; move the operations instead",
	"deployments_operation_counts_derived":           "the deployment's operation counts are kept by the database from its operations",
}

// ctxError reports that a context ended while deploydb worked; it matches
// that context's error (context.Canceled or context.DeadlineExceeded) and no
// sentinel of this package.
type ctxError struct {
	op  string
	err error
}

func (e *ctxError) Error() string { return "deploydb: " + e.op + ": " + e.err.Error() }
func (e *ctxError) Unwrap() error { return e.err }

// typed reports whether err already is (or wraps) one of this package's
// errors.
func typed(err error) bool {
	var ce *ctxError
	if errors.As(err, &ce) {
		return true
	}
	var de *Error
	var te *TransitionError
	var fe *FilterError
	return errors.As(err, &de) || errors.As(err, &te) || errors.As(err, &fe)
}

// mapError is the one place that turns driver errors into deploydb's typed
// errors. It returns nil for nil and err itself when err is already typed.
// Every other error comes back matching exactly one sentinel, or, when
// ctx has ended and err is its consequence, ctx's error.
func mapError(ctx context.Context, kind opKind, op string, err error) error {
	if err == nil {
		return nil
	}
	if typed(err) {
		return err
	}
	fromCtx := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	var connErr *pgconn.ConnectError
	cerr := ctx.Err()
	if cerr != nil && (fromCtx || connectionLost(err)) || fromCtx && !errors.As(err, &connErr) {
		// A context ended (the caller's, or one the caller used for a
		// statement of its own): say so, whatever the driver made of it (a
		// cancel request, a closed connection). A connect timeout also
		// wraps context.DeadlineExceeded, but means an unreachable server.
		if cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return &ctxError{op: op, err: err}
	}
	e := &Error{Kind: ErrInternal, Op: op, Err: err}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		e.Kind = ErrNotFound
	case errors.Is(err, pgx.ErrTxClosed):
		e.Kind, e.Msg = ErrTxAborted, "the transaction has already ended"
	case errors.Is(err, pgx.ErrTxCommitRollback):
		e.Kind, e.Msg = ErrTxAborted, "an earlier statement failed, so COMMIT rolled the transaction back"
	case errors.As(err, &pgErr):
		e.Kind, e.Msg = pgKind(kind, pgErr), constraintMessages[pgErr.ConstraintName]
	case connectionLost(err):
		e.Kind = ErrUnavailable
	}
	return e
}

// pgKind classifies a server error.
func pgKind(kind opKind, pgErr *pgconn.PgError) error {
	switch pgErr.Code {
	case "23505": // unique_violation
		return ErrConflict
	case "23503": // foreign_key_violation
		if kind == opDelete || kind == opCaller && strings.HasPrefix(pgErr.Message, "update or delete on table") {
			return ErrInUse
		}
		return ErrNotFound
	case "23514", "23502", "22001", "22021", "22P02", "22007", "22008", "22003", "22P05", "22023", "25006":
		// check, not null, too long, bad encoding, bad text repr, bad
		// datetime, out of range, untranslatable, invalid parameter value,
		// write in a read-only transaction
		return ErrInvalidArgument
	case "28000", "28P01", "3D000": // login refused, wrong password, no such database
		return ErrInvalidArgument
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return ErrRetryable
	case "55P03", "57014": // lock_not_available (lock_timeout); query_canceled (statement_timeout, cancel request)
		return ErrTimeout
	case "25P02": // in_failed_sql_transaction
		return ErrTxAborted
	case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, cannot connect now, too many connections
		return ErrUnavailable
	}
	if strings.HasPrefix(pgErr.Code, "08") { // connection exception
		return ErrUnavailable
	}
	return ErrInternal
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

// driverError reports whether err carries an error of the driver or the
// server, which InTx maps when a callback returns it unmapped.
func driverError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || connectionLost(err) || errors.Is(err, pgx.ErrNoRows) ||
		errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, pgx.ErrTxCommitRollback)
}
