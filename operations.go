package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// Limits on operation input.
const (
	// MaxTargets is the most targets one deployment may have. They are
	// created in one statement, whatever their number.
	MaxTargets = 50000
	// MaxLastErrorLen is the longest failure reason kept, in characters.
	MaxLastErrorLen = 4096
	// MaxWorkerLen is the longest worker name ClaimNextOperation accepts.
	MaxWorkerLen = 255
	// MaxClaimBatch is the most operations one ClaimOperations call takes.
	MaxClaimBatch = 1000
)

// Leases and rescues.
const (
	// DefaultLease is the lease a claim takes when ClaimParams.Lease is 0,
	// and the extension Heartbeat gives when asked for 0. A worker should
	// heartbeat well within it (every third of the lease, say).
	DefaultLease = time.Minute
	// MaxLease is the longest lease a claim or heartbeat may ask for.
	MaxLease = 24 * time.Hour
	// DefaultMaxAttempts is RescueParams.MaxAttempts when 0: an operation
	// whose lease expired on its third attempt is failed rather than
	// returned to pending.
	DefaultMaxAttempts = 3
	// DefaultRescueBatch is RescueParams.Limit when 0.
	DefaultRescueBatch = 1000
)

// validTarget reports whether s is a target name: 1-63 characters of a-z,
// 0-9, '-' and '.', starting and ending with a letter or digit.
func validTarget(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func checkTarget(op, t string) error {
	if !validTarget(t) {
		return invalidArg(op, "target %q must be 1-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit", truncate(t))
	}
	return nil
}

// CreateDeploymentWithTargets creates a deployment of a build to an
// environment together with one pending operation per target, in one
// transaction. The targets must be distinct valid names (at most
// MaxTargets); otherwise, or when the build cannot be deployed, nothing is
// written. The deployment's status is then derived from its operations.
// created reports whether this call inserted the rows.
func (s *Service) CreateDeploymentWithTargets(ctx context.Context, p CreateDeploymentWithTargetsParams) (d Deployment, ops []Operation, created bool, err error) {
	op := "create deployment of build " + strconv.FormatInt(int64(p.BuildID), 10) + " with targets"
	targets := p.Targets
	if len(targets) == 0 {
		return Deployment{}, nil, false, invalidArg(op, "at least one target is required")
	}
	if len(targets) > MaxTargets {
		return Deployment{}, nil, false, invalidArg(op, "%d targets; at most %d are allowed", len(targets), MaxTargets)
	}
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		if err := checkTarget(op, t); err != nil {
			return Deployment{}, nil, false, err
		}
		if seen[t] {
			return Deployment{}, nil, false, invalidArg(op, "target %q is listed twice", t)
		}
		seen[t] = true
	}
	err = s.InTx(ctx, func(tx *Service) error {
		var err error
		if !validLabel(p.Environment) {
			return checkName(createDeploymentOp(p.BuildID), "environment", p.Environment)
		}
		if err := checkIdempotencyKey(createDeploymentOp(p.BuildID), p.IdempotencyKey); err != nil {
			return err
		}
		d, created, err = tx.createDeployment(ctx, CreateDeploymentParams{
			AppID: p.AppID, BuildID: p.BuildID, Environment: p.Environment, IdempotencyKey: p.IdempotencyKey})
		if err != nil {
			return err
		}
		if !created {
			// A repeat with the same key: the same targets, or a conflict.
			rows, err := tx.q.ListDeploymentOperations(ctx, int64(d.ID))
			if err != nil {
				return mapError(ctx, opRead, op, err)
			}
			ops = rowsTo(rows, operationFromRow)
			if !sameTargets(ops, targets) {
				return &Error{Kind: ErrConflict, Op: op, Msg: fmt.Sprintf(
					"idempotency key %q was used for deployment %d with other targets", truncate(p.IdempotencyKey), d.ID)}
			}
			return nil
		}
		// One statement inserts every operation; the deployment's counts
		// and status follow in it.
		rows, err := tx.q.CreateDeploymentOperations(ctx, dbsqlc.CreateDeploymentOperationsParams{DeploymentID: int64(d.ID), Targets: targets})
		if err != nil {
			return mapError(ctx, opWrite, op, err)
		}
		ops = rowsTo(rows, operationFromRow)
		// The counts and status the insert's trigger gave the deployment.
		row, err := tx.q.GetDeployment(ctx, int64(d.ID))
		if err != nil {
			return mapError(ctx, opRead, op, err)
		}
		d = deploymentFromRow(row)
		return nil
	})
	if err != nil {
		return Deployment{}, nil, false, err
	}
	return d, ops, created, nil
}

// sameTargets reports whether ops are on exactly the targets given.
func sameTargets(ops []Operation, targets []string) bool {
	if len(ops) != len(targets) {
		return false
	}
	want := make(map[string]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	for _, o := range ops {
		if !want[o.Target] {
			return false
		}
	}
	return true
}

// GetOperation returns the operation with the given id, or ErrNotFound.
func (s *Service) GetOperation(ctx context.Context, id OperationID) (Operation, error) {
	o, err := s.q.GetOperation(ctx, int64(id))
	if err != nil {
		return Operation{}, mapError(ctx, opRead, "get operation "+strconv.FormatInt(int64(id), 10), err)
	}
	return operationFromRow(o), nil
}

// GetOperationByDeploymentAndTarget returns a deployment's operation on a
// target, or ErrNotFound.
func (s *Service) GetOperationByDeploymentAndTarget(ctx context.Context, deploymentID DeploymentID, target string) (Operation, error) {
	const op = "get operation by deployment and target"
	if err := checkTarget(op, target); err != nil {
		return Operation{}, err
	}
	o, err := s.q.GetOperationByDeploymentAndTarget(ctx, dbsqlc.GetOperationByDeploymentAndTargetParams{DeploymentID: int64(deploymentID), Target: target})
	if err != nil {
		return Operation{}, mapError(ctx, opRead, op, err)
	}
	return operationFromRow(o), nil
}

// ListDeploymentOperations returns a deployment's operations ordered by
// target (empty for a deployment without operations).
func (s *Service) ListDeploymentOperations(ctx context.Context, deploymentID DeploymentID) ([]Operation, error) {
	ops, err := listRows(ctx, s.conn, 0, scanOperation, operationFromRow, dbsqlc.ListDeploymentOperations, int64(deploymentID))
	if err != nil {
		return nil, mapError(ctx, opRead, "list deployment operations", err)
	}
	return ops, nil
}

// ListActiveOperationsByTarget returns the operations under way on a target
// (running, waiting_for_cutover or cutting_over), oldest first: limit rows at
// most (0 means DefaultPageSize, at most MaxPageSize).
func (s *Service) ListActiveOperationsByTarget(ctx context.Context, target string, limit int) ([]Operation, error) {
	const op = "list active operations by target"
	if err := checkTarget(op, target); err != nil {
		return nil, err
	}
	n, err := limitRows(op, limit)
	if err != nil {
		return nil, err
	}
	ops, err := listRows(ctx, s.conn, int(n), scanOperation, operationFromRow, dbsqlc.ListActiveOperationsByTarget, target, n)
	if err != nil {
		return nil, mapError(ctx, opRead, op, err)
	}
	return ops, nil
}

// TransitionOperation moves an operation to state to; in the same
// statement the database updates its deployment's operation counts and
// derived status (see DeriveDeploymentStatus). lastError is recorded when to
// is failed and ignored otherwise. The state machine is
//
//	pending             -> running | stopped
//	running             -> waiting_for_cutover | completed | failed | stopped
//	waiting_for_cutover -> cutting_over | failed | stopped
//	cutting_over        -> completed | failed
//	completed           -> reverted
//	failed              -> pending (retry: attempt + 1, last_error kept)
//	stopped             -> pending (resume)
//
// TransitionOperation is the operator's move: it carries no lease, so it
// moves the operation whoever holds it (a worker holding the operation then
// gets ErrLeaseLost or a *TransitionError on its next move). Workers move
// what they claimed with MoveOperation.
//
// changed reports whether this call moved the operation. Asking for the
// state the operation is already in returns it unchanged with changed false
// (safe to retry). An illegal move returns a *TransitionError; a missing
// operation ErrNotFound. ErrConflict is returned for a move back to pending
// of an operation whose deployment was canceled or superseded by a newer
// deployment of the same app and environment, and for a move that would
// put a second deployment of the same app and environment in progress.
func (s *Service) TransitionOperation(ctx context.Context, id OperationID, to OperationState, lastError string) (o Operation, changed bool, err error) {
	return s.move(ctx, "transition operation "+strconv.FormatInt(int64(id), 10), id, nil, to, lastError)
}

// MoveParams is a worker's move of an operation it claimed.
type MoveParams struct {
	// Lease is the claim's lease (Operation.Lease of the claimed row).
	Lease Lease
	// To is the state to move to (see TransitionOperation).
	To OperationState
	// Reason is recorded as the failure reason when To is failed (at most
	// MaxLastErrorLen characters) and ignored otherwise.
	Reason string
}

// MoveOperation moves an operation the caller claimed, fenced by its lease:
// the move happens only while the operation's fencing token still equals
// p.Lease.Token, in the same statement that checks it. When the lease was
// lost (the operation was rescued after the lease expired, stopped, or
// claimed again) nothing changes and the error matches ErrLeaseLost.
// Otherwise it behaves as TransitionOperation. An expired lease that was not
// rescued yet still moves: the token, not the clock, decides.
func (s *Service) MoveOperation(ctx context.Context, p MoveParams) (o Operation, changed bool, err error) {
	token := p.Lease.Token
	return s.move(ctx, "move operation "+strconv.FormatInt(int64(p.Lease.OperationID), 10), p.Lease.OperationID, &token, p.To, p.Reason)
}

func (s *Service) move(ctx context.Context, op string, id OperationID, token *int64, to OperationState, lastError string) (o Operation, changed bool, err error) {
	if !to.Valid() {
		return Operation{}, false, invalidArg(op, "unknown operation state %q", truncate(string(to)))
	}
	var reason pgtype.Text
	if to == OperationFailed && lastError != "" {
		if err := checkText(op, "failure reason", lastError, MaxLastErrorLen); err != nil {
			return Operation{}, false, err
		}
		reason = nullText(lastError)
	}
	arg := dbsqlc.TransitionOperationParams{ID: int64(id), NewState: string(to), LastError: reason, Lease: interval(DefaultLease)}
	if token != nil {
		arg.Token = pgtype.Int8{Int64: *token, Valid: true}
	}
	var row dbsqlc.DeploymentOperation
	err = s.statement(ctx, func() error {
		var err error
		row, err = s.q.TransitionOperation(ctx, arg)
		return err
	})
	if err == nil {
		return operationFromRow(row), true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Operation{}, false, mapError(ctx, opWrite, op, err)
	}
	// Nothing moved: say why.
	cur, err := s.q.GetOperation(ctx, int64(id))
	switch {
	case err != nil:
		return Operation{}, false, mapError(ctx, opRead, op, err)
	case token != nil && cur.LeaseToken != *token:
		return Operation{}, false, &Error{Kind: ErrLeaseLost, Op: op, Msg: fmt.Sprintf(
			"the lease with token %d was lost: the operation is %s with token %d", *token, cur.State, cur.LeaseToken)}
	case OperationState(cur.State) == to:
		return operationFromRow(cur), false, nil
	case to == OperationPending && (cur.State == string(OperationFailed) || cur.State == string(OperationStopped)):
		if err := s.resumeBlock(ctx, op, DeploymentID(cur.DeploymentID)); err != nil {
			return Operation{}, false, err
		}
	}
	return Operation{}, false, &TransitionError{Entity: EntityOperation, ID: int64(id), From: OperationState(cur.State), To: to}
}

// resumeBlock returns the ErrConflict that keeps a deployment's operations
// from going back to pending, or nil.
func (s *Service) resumeBlock(ctx context.Context, op string, id DeploymentID) error {
	b, err := s.q.GetDeploymentResumeBlock(ctx, int64(id))
	switch {
	case err != nil:
		return mapError(ctx, opRead, op, err)
	case b.Canceled:
		return &Error{Kind: ErrConflict, Op: op, Msg: fmt.Sprintf("deployment %d was canceled; it cannot be resumed or retried", id)}
	case b.NewerID != 0:
		return &Error{Kind: ErrConflict, Op: op, Msg: fmt.Sprintf(
			"deployment %d is outdated: deployment %d of the same app and environment is newer; deploy again instead", id, b.NewerID)}
	}
	return nil
}

// statement runs one statement (fn) that is a transaction of its own when
// the Service is not in a transaction, and then runs it again after a
// serialization failure or deadlock, as InTx does a transaction: under
// REPEATABLE READ or SERIALIZABLE two moves of one deployment's operations
// conflict that way. In a transaction fn runs once; the caller's
// transaction is what must be retried.
func (s *Service) statement(ctx context.Context, fn func() error) error {
	if s.tx != nil {
		return fn()
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryableTx(err) || attempt >= DefaultTxAttempts || ctx.Err() != nil {
			return err
		}
		if !backoff(ctx, attempt, time.Millisecond, 100*time.Millisecond) {
			return err
		}
		s.stats.tx.Add(1)
	}
}

// interval converts a duration to a PostgreSQL interval.
func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
}

// MarkStarted moves a pending operation to running (with a DefaultLease
// lease and a new fencing token, as a claim would, but no claimant).
// It returns what TransitionOperation returns.
func (s *Service) MarkStarted(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationRunning, "")
}

// MarkWaitingForCutover moves a running operation to waiting_for_cutover.
// It returns what TransitionOperation returns.
func (s *Service) MarkWaitingForCutover(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationWaitingForCutover, "")
}

// MarkCuttingOver moves an operation waiting for cutover to cutting_over.
// It returns what TransitionOperation returns.
func (s *Service) MarkCuttingOver(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationCuttingOver, "")
}

// MarkCompleted moves a running or cutting_over operation to completed.
// It returns what TransitionOperation returns.
func (s *Service) MarkCompleted(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationCompleted, "")
}

// MarkFailed moves an active operation to failed and records reason (at most
// MaxLastErrorLen characters; "" records none). The deployment is halted.
// It returns what TransitionOperation returns.
func (s *Service) MarkFailed(ctx context.Context, id OperationID, reason string) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationFailed, reason)
}

// Stop moves a pending, running or waiting_for_cutover operation to stopped.
// The deployment is halted. It returns what TransitionOperation returns.
func (s *Service) Stop(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationStopped, "")
}

// Retry moves a failed operation (attempt + 1, last_error kept) or a stopped
// one back to pending, where it can be claimed again once its deployment has
// no other failed or stopped operation. It returns what TransitionOperation
// returns (ErrConflict for a canceled or superseded deployment).
func (s *Service) Retry(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationPending, "")
}

// Revert moves a completed operation to reverted.
// It returns what TransitionOperation returns.
func (s *Service) Revert(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationReverted, "")
}

// ClaimParams says what ClaimOperations takes.
type ClaimParams struct {
	// Target is the target whose pending operations are claimed; required.
	Target string
	// Worker names the claimant (recorded as ClaimedBy); required, at most
	// MaxWorkerLen characters.
	Worker string
	// Lease is how long the claim holds without a Heartbeat: 0 means
	// DefaultLease; otherwise between a millisecond and MaxLease.
	Lease time.Duration
	// Limit is the most operations to take: 0 means 1; at most
	// MaxClaimBatch.
	Limit int
}

// ClaimOperations takes up to p.Limit of the oldest pending operations on a
// target in one statement and moves them to running: each gets p.Worker as
// its claimant, a lease of p.Lease and a new fencing token (Operation.Lease),
// which the worker's Heartbeat and MoveOperation calls carry. Many workers
// may claim at once; each operation is claimed by exactly one.
//
// A claim passes over what cannot start, and never fails because of
// another worker: operations locked by another claim or move, operations of
// a halted deployment (one with a failed or stopped operation), and
// operations of a deployment that cannot start because another deployment
// of the same app and environment is in progress, or is being started by a
// claim that has not committed yet (claims that start a deployment hold
// AppEnvironmentLock for it until they commit). It returns ErrNotFound only
// when nothing on the target is claimable at that moment.
func (s *Service) ClaimOperations(ctx context.Context, p ClaimParams) ([]Operation, error) {
	op := "claim operations on " + truncate(p.Target)
	if err := checkTarget(op, p.Target); err != nil {
		return nil, err
	}
	if p.Worker == "" {
		return nil, invalidArg(op, "worker name is required")
	}
	if err := checkText(op, "worker name", p.Worker, MaxWorkerLen); err != nil {
		return nil, err
	}
	lease, err := checkLease(op, "lease", p.Lease)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Limit < 0 || p.Limit > MaxClaimBatch:
		return nil, invalidArg(op, "limit %d: it must be between 1 and %d (0 means 1)", p.Limit, MaxClaimBatch)
	case p.Limit == 0:
		p.Limit = 1
	}
	arg := dbsqlc.ClaimOperationsParams{Target: p.Target, Worker: p.Worker, Lease: interval(lease), MaxRows: int32(p.Limit)}
	var rows []dbsqlc.DeploymentOperation
	for attempt := 1; ; attempt++ {
		err = s.claimOnce(ctx, arg, &rows)
		if !startRace(err) || attempt >= DefaultTxAttempts {
			break
		}
		// Two deployments of one app and environment could not both start:
		// a claim that started the other one committed between this
		// statement's snapshot and its write. The next statement sees it
		// and passes the loser over; one operation at a time until then.
		arg.MaxRows = 1
		if !backoff(ctx, attempt, time.Millisecond, 20*time.Millisecond) {
			break
		}
	}
	if err != nil {
		if startRace(err) && s.tx != nil {
			return nil, &Error{Kind: ErrRetryable, Op: op, Msg: "a deployment of the same app and environment started after this transaction's snapshot; retry the transaction", Err: err}
		}
		return nil, mapError(ctx, opWrite, op, err)
	}
	if len(rows) == 0 {
		return nil, &Error{Kind: ErrNotFound, Op: op, Msg: "no claimable operation", Err: pgx.ErrNoRows}
	}
	return rowsTo(rows, operationFromRow), nil
}

// claimOnce runs the claim statement once: on its own, or in a savepoint
// of the Service's transaction, so that a lost start race leaves the
// transaction usable.
func (s *Service) claimOnce(ctx context.Context, arg dbsqlc.ClaimOperationsParams, rows *[]dbsqlc.DeploymentOperation) error {
	if s.tx == nil {
		return s.statement(ctx, func() error {
			var err error
			*rows, err = s.q.ClaimOperations(ctx, arg)
			return err
		})
	}
	sp, err := s.tx.Begin(ctx)
	if err != nil {
		return err
	}
	*rows, err = dbsqlc.New(sp).ClaimOperations(ctx, arg)
	if err != nil {
		_ = sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}

// startRace reports the unique violation of a second deployment of one app
// and environment going in progress.
func startRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "deployments_one_in_progress_key"
}

// checkLease validates a lease duration; 0 means DefaultLease.
func checkLease(op, what string, d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultLease, nil
	case d < time.Millisecond || d > MaxLease:
		return 0, invalidArg(op, "%s %v: it must be between 1ms and %v (0 means %v)", what, d, MaxLease, DefaultLease)
	}
	return d, nil
}

// ClaimNextOperation claims the oldest claimable pending operation on a
// target for worker, with a DefaultLease lease: ClaimOperations with Limit
// 1. It returns ErrNotFound when nothing on the target is claimable.
func (s *Service) ClaimNextOperation(ctx context.Context, target, worker string) (Operation, error) {
	ops, err := s.ClaimOperations(ctx, ClaimParams{Target: target, Worker: worker})
	if err != nil {
		return Operation{}, err
	}
	return ops[0], nil
}

// Heartbeat extends the lease l to extend from now (0 means DefaultLease)
// and returns the operation. It fails with ErrLeaseLost, changing nothing,
// when the operation's fencing token no longer matches or it is no longer
// active; with ErrNotFound when the operation is gone. A heartbeat after the
// lease expired still extends it if no rescue took the operation yet.
func (s *Service) Heartbeat(ctx context.Context, l Lease, extend time.Duration) (Operation, error) {
	op := "heartbeat operation " + strconv.FormatInt(int64(l.OperationID), 10)
	d, err := checkLease(op, "extension", extend)
	if err != nil {
		return Operation{}, err
	}
	row, err := s.q.HeartbeatOperation(ctx, dbsqlc.HeartbeatOperationParams{ID: int64(l.OperationID), Token: l.Token, Lease: interval(d)})
	if err == nil {
		return operationFromRow(row), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Operation{}, mapError(ctx, opWrite, op, err)
	}
	cur, err := s.q.GetOperation(ctx, int64(l.OperationID))
	if err != nil {
		return Operation{}, mapError(ctx, opRead, op, err)
	}
	return Operation{}, &Error{Kind: ErrLeaseLost, Op: op, Msg: fmt.Sprintf(
		"the lease with token %d was lost: the operation is %s with token %d", l.Token, cur.State, cur.LeaseToken)}
}

// RescueParams configures RescueExpiredOperations.
type RescueParams struct {
	// MaxAttempts is how many attempts an operation may have: one whose
	// lease expired on its MaxAttempts-th attempt is failed instead of
	// returned to pending. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Limit is the most operations one call rescues: 0 means
	// DefaultRescueBatch; at most MaxClaimBatch. A maintenance loop calls
	// again while a call rescues Limit operations.
	Limit int
}

// RescueResult says what RescueExpiredOperations did.
type RescueResult struct {
	// Requeued are the operations returned to pending (attempt + 1).
	Requeued []Operation
	// Failed are the operations failed after their last attempt (their
	// deployments are halted).
	Failed []Operation
}

// RescueExpiredOperations returns the active operations whose lease has
// expired (their worker died or stopped heartbeating) to pending, with
// attempt + 1 and last_error saying whose lease expired, or fails them once
// they have had p.MaxAttempts attempts. Their fencing token is raised, so
// the lost worker's later moves and heartbeats get ErrLeaseLost. The
// deployments' counts and statuses follow in the same statement.
//
// It is one statement, meant for a maintenance loop (every few seconds, or
// at least once per lease); running it on every replica at once is safe:
// concurrent calls skip each other's rows, and each expired operation is
// rescued once.
func (s *Service) RescueExpiredOperations(ctx context.Context, p RescueParams) (RescueResult, error) {
	const op = "rescue expired operations"
	switch {
	case p.MaxAttempts < 0:
		return RescueResult{}, invalidArg(op, "MaxAttempts %d cannot be negative", p.MaxAttempts)
	case p.MaxAttempts == 0:
		p.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case p.Limit < 0 || p.Limit > MaxClaimBatch:
		return RescueResult{}, invalidArg(op, "limit %d: it must be between 1 and %d (0 means %d)", p.Limit, MaxClaimBatch, DefaultRescueBatch)
	case p.Limit == 0:
		p.Limit = DefaultRescueBatch
	}
	var rows []dbsqlc.DeploymentOperation
	err := s.statement(ctx, func() error {
		var err error
		rows, err = s.q.RescueExpiredOperations(ctx, dbsqlc.RescueExpiredOperationsParams{MaxAttempts: int32(p.MaxAttempts), MaxRows: int32(p.Limit)})
		return err
	})
	if err != nil {
		return RescueResult{}, mapError(ctx, opWrite, op, err)
	}
	res := RescueResult{Requeued: []Operation{}, Failed: []Operation{}}
	for _, r := range rows {
		if r.State == string(OperationFailed) {
			res.Failed = append(res.Failed, operationFromRow(r))
		} else {
			res.Requeued = append(res.Requeued, operationFromRow(r))
		}
	}
	return res, nil
}

// StopDeployment halts a rollout: in one statement it stops every pending,
// running and waiting_for_cutover operation of the deployment (their
// workers' leases are lost); cutting_over operations finish on their own.
// The deployment then reads in_progress while operations still cut over,
// and canceled after (failed if one failed). ResumeDeployment continues it.
// It returns the deployment; ErrNotFound when it does not exist, ErrConflict
// when it has no operations (see UpdateDeploymentStatus).
func (s *Service) StopDeployment(ctx context.Context, id DeploymentID) (Deployment, error) {
	return s.stopDeployment(ctx, "stop deployment "+strconv.FormatInt(int64(id), 10), id, false)
}

// CancelDeployment stops a rollout for good: it stops every operation as
// StopDeployment does (in one statement) and marks the deployment canceled
// (Deployment.CanceledAt), after which no resume or retry is accepted. A
// deployment without operations follows its manual lifecycle: it is moved
// to canceled (UpdateDeploymentStatus). Repeating the call is harmless.
func (s *Service) CancelDeployment(ctx context.Context, id DeploymentID) (Deployment, error) {
	return s.stopDeployment(ctx, "cancel deployment "+strconv.FormatInt(int64(id), 10), id, true)
}

func (s *Service) stopDeployment(ctx context.Context, op string, id DeploymentID, final bool) (Deployment, error) {
	var d Deployment
	err := s.InTx(ctx, func(tx *Service) error {
		if final {
			if _, err := tx.q.LockDeploymentApp(ctx, int64(id)); err != nil {
				return mapError(ctx, opWrite, op, err)
			}
		}
		if _, err := tx.q.StopDeploymentOperations(ctx, int64(id)); err != nil {
			return mapError(ctx, opWrite, op, err)
		}
		var row dbsqlc.Deployment
		var err error
		if final {
			row, err = tx.q.SetDeploymentCanceled(ctx, int64(id))
		} else {
			row, err = tx.q.GetDeployment(ctx, int64(id))
		}
		if err != nil {
			return mapError(ctx, opWrite, op, err)
		}
		d = deploymentFromRow(row)
		return nil
	})
	if err != nil {
		return Deployment{}, err
	}
	if d.Operations.Total() == 0 {
		if !final {
			return Deployment{}, &Error{Kind: ErrConflict, Op: op, Msg: "the deployment has no operations; its status follows UpdateDeploymentStatus"}
		}
		if d.Status.Terminal() {
			return d, nil
		}
		d, _, err = s.UpdateDeploymentStatus(ctx, id, DeploymentCanceled)
		return d, err
	}
	return d, nil
}

// ResumeDeployment moves every stopped operation of a deployment back to
// pending in one statement, which clears a halt that stopping caused. It
// returns ErrConflict, changing nothing, for a canceled deployment and for
// one superseded by a newer deployment of the same app and environment.
func (s *Service) ResumeDeployment(ctx context.Context, id DeploymentID) (Deployment, error) {
	return s.requeue(ctx, "resume deployment "+strconv.FormatInt(int64(id), 10), id, OperationStopped)
}

// RetryDeployment moves every failed operation of a deployment back to
// pending (attempt + 1, last_error kept) in one statement, which clears a
// halt that failures caused. It returns ErrConflict, changing nothing, for a
// canceled deployment and for one superseded by a newer deployment of the
// same app and environment.
func (s *Service) RetryDeployment(ctx context.Context, id DeploymentID) (Deployment, error) {
	return s.requeue(ctx, "retry deployment "+strconv.FormatInt(int64(id), 10), id, OperationFailed)
}

func (s *Service) requeue(ctx context.Context, op string, id DeploymentID, from OperationState) (Deployment, error) {
	var moved []int64
	err := s.statement(ctx, func() error {
		var err error
		moved, err = s.q.RequeueDeploymentOperations(ctx, dbsqlc.RequeueDeploymentOperationsParams{DeploymentID: int64(id), FromState: string(from)})
		return err
	})
	if err != nil {
		return Deployment{}, mapError(ctx, opWrite, op, err)
	}
	row, err := s.q.GetDeployment(ctx, int64(id))
	if err != nil {
		return Deployment{}, mapError(ctx, opRead, op, err)
	}
	d := deploymentFromRow(row)
	if len(moved) == 0 && ((from == OperationStopped && d.Operations.Stopped > 0) || (from == OperationFailed && d.Operations.Failed > 0)) {
		if err := s.resumeBlock(ctx, op, id); err != nil {
			return Deployment{}, err
		}
	}
	return d, nil
}

// DeleteDeploymentOperations deletes every operation of a deployment and
// returns how many there were. The deployment keeps its current status and
// from then on follows the manual lifecycle.
func (s *Service) DeleteDeploymentOperations(ctx context.Context, deploymentID DeploymentID) (int64, error) {
	var n int64
	err := s.statement(ctx, func() error {
		var err error
		n, err = s.q.DeleteDeploymentOperations(ctx, int64(deploymentID))
		return err
	})
	return n, mapError(ctx, opDelete, "delete operations of deployment "+strconv.FormatInt(int64(deploymentID), 10), err)
}
