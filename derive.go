package deploydb

// DeriveDeploymentStatus returns the status of a deployment that has
// operations, from its operations' states: the Go mirror of the rule the
// database applies (deploydb_derive_deployment in schema_triggers.sql) in
// the statement that moves an operation; a test keeps the two equal. The
// order of states does not matter. The first rule that applies wins:
//
//	any running, waiting_for_cutover or cutting_over  -> in_progress
//	any failed                                        -> failed
//	all completed                                     -> deployed
//	all pending                                       -> pending (in_progress once
//	                                                     the deployment started)
//	any stopped or reverted                           -> canceled
//	otherwise (pending and completed, nothing else)   -> in_progress
//
// So a stopped rollout (all stopped, or stopped and pending with nothing
// active) and a reverted one are canceled; a rollout that has completed some
// targets and not started others is still in progress. Retrying a failed
// operation or resuming a stopped one moves the deployment back.
//
// States alone cannot tell whether a deployment whose operations are all
// pending has started before (a retried or rescued operation): this
// function answers for one that has not; OperationCounts.DeploymentStatus
// takes started as an argument. With no states it returns pending; deploydb
// does not apply it to deployments without operations, which keep the
// manual lifecycle of UpdateDeploymentStatus.
func DeriveDeploymentStatus(states ...OperationState) DeploymentStatus {
	var c OperationCounts
	for _, s := range states {
		switch s {
		case OperationPending:
			c.Pending++
		case OperationRunning:
			c.Running++
		case OperationWaitingForCutover:
			c.WaitingForCutover++
		case OperationCuttingOver:
			c.CuttingOver++
		case OperationCompleted:
			c.Completed++
		case OperationFailed:
			c.Failed++
		case OperationStopped:
			c.Stopped++
		case OperationReverted:
			c.Reverted++
		}
	}
	return c.DeploymentStatus(false)
}

// DeploymentStatus returns the status of a deployment with these operation
// counts, by the rule the database applies (see DeriveDeploymentStatus);
// started reports whether the deployment has started (Deployment.StartedAt
// is set), which decides between pending and in_progress when every
// operation is pending. With no operations it returns pending.
func (c OperationCounts) DeploymentStatus(started bool) DeploymentStatus {
	n := c.Total()
	switch {
	case c.Active() > 0:
		return DeploymentInProgress
	case c.Failed > 0:
		return DeploymentFailed
	case c.Completed == n && n > 0:
		return DeploymentDeployed
	case c.Pending == n && !started:
		return DeploymentPending
	case c.Pending == n:
		return DeploymentInProgress
	case c.Stopped+c.Reverted > 0:
		return DeploymentCanceled
	}
	return DeploymentInProgress
}
