package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// Limits on operation input.
const (
	// MaxTargets is the most targets one deployment may have.
	MaxTargets = 1000
	// MaxLastErrorLen is the longest failure reason kept, in characters.
	MaxLastErrorLen = 4096
	// MaxWorkerLen is the longest worker name ClaimNextOperation accepts.
	MaxWorkerLen = 255
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
		d, created, err = tx.CreateDeployment(ctx, CreateDeploymentParams{
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
		rows, err := tx.q.CreateDeploymentOperations(ctx, dbsqlc.CreateDeploymentOperationsParams{DeploymentID: int64(d.ID), Targets: targets})
		if err != nil {
			return mapError(ctx, opWrite, op, err)
		}
		ops = rowsTo(rows, operationFromRow)
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

// TransitionOperation moves an operation to state to and, in the same
// transaction, recomputes its deployment's status (see
// DeriveDeploymentStatus). lastError is recorded when to is failed and
// ignored otherwise. The state machine is
//
//	pending             -> running | stopped
//	running             -> waiting_for_cutover | completed | failed | stopped
//	waiting_for_cutover -> cutting_over | failed | stopped
//	cutting_over        -> completed | failed
//	completed           -> reverted
//	failed              -> pending (retry: attempt + 1, last_error kept)
//	stopped             -> pending (resume)
//
// changed reports whether this call moved the operation. Asking for the
// state the operation is already in returns it unchanged with changed false
// (safe to retry). An illegal move returns a *TransitionError; a missing
// operation ErrNotFound; a move that would start a second deployment of the
// same app and environment ErrConflict.
func (s *Service) TransitionOperation(ctx context.Context, id OperationID, to OperationState, lastError string) (o Operation, changed bool, err error) {
	op := "transition operation " + strconv.FormatInt(int64(id), 10)
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
	err = s.InTx(ctx, func(tx *Service) error {
		moved, err := tx.q.TransitionOperation(ctx, dbsqlc.TransitionOperationParams{ID: int64(id), NewState: string(to), LastError: reason})
		if err == nil {
			o, changed = operationFromRow(moved), true
			return tx.syncDeployment(ctx, op, DeploymentID(moved.DeploymentID))
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return mapError(ctx, opWrite, op, err)
		}
		cur, err := tx.q.GetOperation(ctx, int64(id))
		switch {
		case err != nil:
			return mapError(ctx, opRead, op, err)
		case OperationState(cur.State) == to:
			o = operationFromRow(cur)
			return nil
		}
		return &TransitionError{Entity: EntityOperation, ID: int64(id), From: OperationState(cur.State), To: to}
	})
	if err != nil {
		return Operation{}, false, err
	}
	return o, changed, nil
}

// MarkStarted moves a pending operation to running.
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
// MaxLastErrorLen characters; "" records none).
// It returns what TransitionOperation returns.
func (s *Service) MarkFailed(ctx context.Context, id OperationID, reason string) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationFailed, reason)
}

// Stop moves a pending, running or waiting_for_cutover operation to stopped.
// It returns what TransitionOperation returns.
func (s *Service) Stop(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationStopped, "")
}

// Retry moves a failed operation (attempt + 1, last_error kept) or a stopped
// one back to pending, where it can be claimed again.
// It returns what TransitionOperation returns.
func (s *Service) Retry(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationPending, "")
}

// Revert moves a completed operation to reverted.
// It returns what TransitionOperation returns.
func (s *Service) Revert(ctx context.Context, id OperationID) (o Operation, changed bool, err error) {
	return s.TransitionOperation(ctx, id, OperationReverted, "")
}

// ClaimNextOperation atomically takes the oldest pending operation on a
// target, moves it to running and records worker as its claimant; in the same
// transaction the deployment's status is recomputed. Many workers may call it
// at once: each operation is claimed exactly once. It returns ErrNotFound
// when nothing on the target is claimable. Operations of a deployment that
// cannot start because another deployment of the same app and environment is
// in progress are passed over.
func (s *Service) ClaimNextOperation(ctx context.Context, target, worker string) (Operation, error) {
	op := "claim next operation on " + truncate(target)
	if err := checkTarget(op, target); err != nil {
		return Operation{}, err
	}
	if worker == "" {
		return Operation{}, invalidArg(op, "worker name is required")
	}
	if err := checkText(op, "worker name", worker, MaxWorkerLen); err != nil {
		return Operation{}, err
	}
	var o Operation
	err := s.InTx(ctx, func(tx *Service) error {
		row, err := tx.q.ClaimNextOperation(ctx, dbsqlc.ClaimNextOperationParams{Target: target, Worker: worker})
		if errors.Is(err, pgx.ErrNoRows) {
			return &Error{Kind: ErrNotFound, Op: op, Msg: "no claimable operation", Err: err}
		}
		if err != nil {
			return mapError(ctx, opWrite, op, err)
		}
		o = operationFromRow(row)
		return tx.syncDeployment(ctx, op, o.DeploymentID)
	})
	if err != nil {
		return Operation{}, err
	}
	return o, nil
}

// DeleteDeploymentOperations deletes every operation of a deployment and
// returns how many there were. The deployment keeps its current status and
// from then on follows the manual lifecycle.
func (s *Service) DeleteDeploymentOperations(ctx context.Context, deploymentID DeploymentID) (int64, error) {
	n, err := s.q.DeleteDeploymentOperations(ctx, int64(deploymentID))
	return n, mapError(ctx, opDelete, "delete operations of deployment "+strconv.FormatInt(int64(deploymentID), 10), err)
}

// syncDeployment locks a deployment and stores the status derived from its
// operations. It must run in the transaction that changed an operation.
func (s *Service) syncDeployment(ctx context.Context, op string, deploymentID DeploymentID) error {
	d, err := s.q.LockDeployment(ctx, int64(deploymentID))
	if err != nil {
		return mapError(ctx, opRead, op, err)
	}
	rows, err := s.q.ListDeploymentOperationStates(ctx, int64(deploymentID))
	if err != nil {
		return mapError(ctx, opRead, op, err)
	}
	if len(rows) == 0 {
		return nil
	}
	states := make([]OperationState, len(rows))
	for i, r := range rows {
		states[i] = OperationState(r.State)
	}
	st := DeriveDeploymentStatus(states...)
	started, finished := deriveTimestamps(st, rows)
	if DeploymentStatus(d.Status) == st && timeOf(d.StartedAt).Equal(started) && timeOf(d.FinishedAt).Equal(finished) {
		return nil // nothing to write
	}
	_, err = s.q.SetDerivedDeploymentStatus(ctx, dbsqlc.SetDerivedDeploymentStatusParams{
		ID: int64(deploymentID), Status: string(st), StartedAt: nullTime(started), FinishedAt: nullTime(finished),
	})
	if err != nil {
		return mapError(ctx, opWrite, fmt.Sprintf("%s: set deployment %d status to %s", op, deploymentID, st), err)
	}
	return nil
}
