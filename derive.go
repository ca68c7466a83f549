package deploydb

// DeriveDeploymentStatus returns the status of a deployment that has
// operations, from its operations' states: the Go mirror of the rule the
// database applies (deploydb_derive_deployment in schema_triggers.sql) in
// the statement that moves an operation; a test keeps the two equal. The order of states does not
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
