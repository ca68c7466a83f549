// Package status defines the lifecycle states of deploydb's rows as Go
// string types. It is a leaf package: the sqlc-generated package gen maps the
// status columns to these types, and the root package deploydb re-exports
// them, so neither has to import the other.
//
// The legal transitions between states are enforced by the guarded UPDATE
// statements in queries/ (see the root package documentation for the
// lifecycles); this package only names the states.
package status

// Status is any of the three state types: a Build, a Deployment or an
// Operation value. Errors that report a state (deploydb's TransitionError)
// carry one, so a caller compares it with the constants directly
// (err.From == status.BuildSucceeded) or switches on its type. Only the
// types of this package implement it.
type Status interface {
	// String returns the state as stored in the database.
	String() string
	// Valid reports whether the value is one of its type's states.
	Valid() bool
	// Entity returns what the state belongs to: "build", "deployment" or
	// "operation".
	Entity() string
	isStatus()
}

// Build is the status of a build.
type Build string

// Build statuses. A build starts pending; succeeded, failed and canceled are
// terminal.
const (
	BuildPending    Build = "pending"
	BuildInProgress Build = "in_progress"
	BuildSucceeded  Build = "succeeded"
	BuildFailed     Build = "failed"
	BuildCanceled   Build = "canceled"
)

// Builds lists every build status in lifecycle order.
var Builds = []Build{BuildPending, BuildInProgress, BuildSucceeded, BuildFailed, BuildCanceled}

// Valid reports whether s is one of the build statuses.
func (s Build) Valid() bool {
	switch s {
	case BuildPending, BuildInProgress, BuildSucceeded, BuildFailed, BuildCanceled:
		return true
	}
	return false
}

// Terminal reports whether s is a final status (succeeded, failed or
// canceled).
func (s Build) Terminal() bool {
	return s == BuildSucceeded || s == BuildFailed || s == BuildCanceled
}

// String returns the status as stored in the database.
func (s Build) String() string { return string(s) }

// Entity returns "build".
func (Build) Entity() string { return "build" }

func (Build) isStatus() {}

// Deployment is the status of a deployment.
type Deployment string

// Deployment statuses. A deployment starts pending; deployed, failed and
// canceled are terminal.
const (
	DeploymentPending    Deployment = "pending"
	DeploymentInProgress Deployment = "in_progress"
	DeploymentDeployed   Deployment = "deployed"
	DeploymentFailed     Deployment = "failed"
	DeploymentCanceled   Deployment = "canceled"
)

// Deployments lists every deployment status in lifecycle order.
var Deployments = []Deployment{DeploymentPending, DeploymentInProgress, DeploymentDeployed, DeploymentFailed, DeploymentCanceled}

// Valid reports whether s is one of the deployment statuses.
func (s Deployment) Valid() bool {
	switch s {
	case DeploymentPending, DeploymentInProgress, DeploymentDeployed, DeploymentFailed, DeploymentCanceled:
		return true
	}
	return false
}

// Terminal reports whether s is a final status (deployed, failed or
// canceled).
func (s Deployment) Terminal() bool {
	return s == DeploymentDeployed || s == DeploymentFailed || s == DeploymentCanceled
}

// String returns the status as stored in the database.
func (s Deployment) String() string { return string(s) }

// Entity returns "deployment".
func (Deployment) Entity() string { return "deployment" }

func (Deployment) isStatus() {}

// Operation is the state of a deployment operation: the rollout of one
// deployment to one target.
type Operation string

// Operation states. The transitions are
//
//	pending             -> running | stopped
//	running             -> waiting_for_cutover | completed | failed | stopped
//	waiting_for_cutover -> cutting_over | failed | stopped
//	cutting_over        -> completed | failed
//	completed           -> reverted
//	failed              -> pending (retry)
//	stopped             -> pending (resume)
const (
	OperationPending           Operation = "pending"
	OperationRunning           Operation = "running"
	OperationWaitingForCutover Operation = "waiting_for_cutover"
	OperationCuttingOver       Operation = "cutting_over"
	OperationCompleted         Operation = "completed"
	OperationFailed            Operation = "failed"
	OperationStopped           Operation = "stopped"
	OperationReverted          Operation = "reverted"
)

// Operations lists every operation state.
var Operations = []Operation{
	OperationPending, OperationRunning, OperationWaitingForCutover, OperationCuttingOver,
	OperationCompleted, OperationFailed, OperationStopped, OperationReverted,
}

// Valid reports whether s is one of the operation states.
func (s Operation) Valid() bool {
	switch s {
	case OperationPending, OperationRunning, OperationWaitingForCutover, OperationCuttingOver,
		OperationCompleted, OperationFailed, OperationStopped, OperationReverted:
		return true
	}
	return false
}

// Active reports whether work is under way on the target: running,
// waiting_for_cutover or cutting_over.
func (s Operation) Active() bool {
	return s == OperationRunning || s == OperationWaitingForCutover || s == OperationCuttingOver
}

// Finished reports whether the operation has stopped moving for now
// (completed, failed, stopped or reverted); finished_at is set exactly then.
// failed and stopped can still be moved back to pending.
func (s Operation) Finished() bool {
	return s == OperationCompleted || s == OperationFailed || s == OperationStopped || s == OperationReverted
}

// String returns the state as stored in the database.
func (s Operation) String() string { return string(s) }

// Entity returns "operation".
func (Operation) Entity() string { return "operation" }

func (Operation) isStatus() {}
