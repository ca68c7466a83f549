package deploydb

import (
	"time"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// DeriveDeploymentStatus returns the status of a deployment that has
// operations, from its operations' states. The order of states does not
// matter. The first rule that applies wins:
//
//	any running, waiting_for_cutover or cutting_over  -> in_progress
//	any failed                                        -> failed
//	all completed                                     -> deployed
//	all pending                                       -> pending
//	any stopped or reverted                           -> canceled
//	otherwise (pending and completed, nothing else)   -> in_progress
//
// So a stopped rollout (all stopped, or stopped and pending with nothing
// active) and a reverted one are canceled; a rollout that has completed some
// targets and not started others is still in progress. Retrying a failed
// operation or resuming a stopped one moves the deployment back.
//
// With no states it returns pending; deploydb does not apply it to
// deployments without operations, which keep the manual lifecycle of
// UpdateDeploymentStatus.
func DeriveDeploymentStatus(states ...OperationState) DeploymentStatus {
	var n, active, failed, completed, pending, stoppedOrReverted int
	for _, s := range states {
		n++
		switch {
		case s.Active():
			active++
		case s == OperationFailed:
			failed++
		case s == OperationCompleted:
			completed++
		case s == OperationPending:
			pending++
		case s == OperationStopped || s == OperationReverted:
			stoppedOrReverted++
		}
	}
	switch {
	case active > 0:
		return DeploymentInProgress
	case failed > 0:
		return DeploymentFailed
	case completed == n && n > 0:
		return DeploymentDeployed
	case pending == n:
		return DeploymentPending
	case stoppedOrReverted > 0:
		return DeploymentCanceled
	}
	return DeploymentInProgress
}

// deriveTimestamps returns a derived deployment's started_at (when its first
// operation started) and, for a terminal status, finished_at (when its last
// operation finished, never before started_at); the zero time stands for
// NULL. Both follow from the operations alone, so recomputing them is
// idempotent.
func deriveTimestamps(st DeploymentStatus, ops []dbsqlc.ListDeploymentOperationStatesRow) (started, finished time.Time) {
	for _, o := range ops {
		if o.StartedAt.Valid && (started.IsZero() || o.StartedAt.Time.Before(started)) {
			started = o.StartedAt.Time
		}
		if o.FinishedAt.Valid && (finished.IsZero() || o.FinishedAt.Time.After(finished)) {
			finished = o.FinishedAt.Time
		}
	}
	if !st.Terminal() {
		return started, time.Time{}
	}
	if finished.IsZero() || !started.IsZero() && finished.Before(started) {
		finished = started
	}
	if finished.IsZero() {
		finished = time.Now()
	}
	return started, finished
}
