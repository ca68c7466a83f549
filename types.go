package deploydb

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/deploydb/deploydb/internal/dbsqlc"
	"github.com/deploydb/deploydb/status"
)

// AppID identifies an app. The four id types are distinct, so passing a
// build's id where an app's is wanted does not compile.
type AppID int64

// BuildID identifies a build.
type BuildID int64

// DeploymentID identifies a deployment.
type DeploymentID int64

// OperationID identifies an operation of a deployment.
type OperationID int64

// App is an application that is built and deployed.
type App struct {
	// ID is the app's id, assigned by the database.
	ID AppID
	// Name is the app's unique name, a lowercase DNS label (a-z, 0-9 and
	// '-', 1-63 characters).
	Name string
	// CreatedAt is when the app was created.
	CreatedAt time.Time
	// UpdatedAt is when the app last changed.
	UpdatedAt time.Time
}

// Build is a build of an app's source at one version.
type Build struct {
	// ID is the build's id, assigned by the database.
	ID BuildID
	// AppID is the app the build belongs to.
	AppID AppID
	// SourceVersion is the commit or tag the build was made from, at most
	// MaxSourceVersionLen characters; "" when none was given.
	SourceVersion string
	// Status is where the build is in its lifecycle (see UpdateBuildStatus).
	Status BuildStatus
	// IdempotencyKey is the key of the CreateBuild call that made the
	// build; "" when it had none.
	IdempotencyKey string
	// CreatedAt is when the build was created.
	CreatedAt time.Time
	// UpdatedAt is when the build last changed.
	UpdatedAt time.Time
	// StartedAt is when the build entered in_progress; the zero time until
	// then.
	StartedAt time.Time
	// FinishedAt is when the build reached a terminal status (succeeded,
	// failed or canceled); the zero time until then.
	FinishedAt time.Time
}

// Deployment is a rollout of one build of an app to one environment.
type Deployment struct {
	// ID is the deployment's id, assigned by the database.
	ID DeploymentID
	// AppID is the app being deployed.
	AppID AppID
	// BuildID is the build being deployed; it belongs to AppID and had
	// succeeded when the deployment was created.
	BuildID BuildID
	// Environment is where the build is deployed, a lowercase DNS label.
	Environment string
	// Status is where the deployment is in its lifecycle (see
	// UpdateDeploymentStatus); for a deployment with operations it is
	// derived from them (see DeriveDeploymentStatus).
	Status DeploymentStatus
	// IdempotencyKey is the key of the CreateDeployment call that made the
	// deployment; "" when it had none.
	IdempotencyKey string
	// CreatedAt is when the deployment was created.
	CreatedAt time.Time
	// UpdatedAt is when the deployment last changed.
	UpdatedAt time.Time
	// StartedAt is when the deployment entered in_progress; the zero time
	// until then.
	StartedAt time.Time
	// FinishedAt is when the deployment reached a terminal status
	// (deployed, failed or canceled); the zero time until then.
	FinishedAt time.Time
	// Operations counts the deployment's operations in each state; the
	// database keeps the counts in the statement that moves, creates or
	// deletes operations. All zero for a deployment without operations.
	Operations OperationCounts
	// CanceledAt is when CancelDeployment made the rollout final (no resume
	// or retry after it); the zero time otherwise.
	CanceledAt time.Time
}

// Halted reports whether the deployment has a failed or stopped operation:
// no claim takes its operations until RetryDeployment, ResumeDeployment (or
// Retry of each such operation) clears the halt.
func (d Deployment) Halted() bool { return d.Operations.Failed+d.Operations.Stopped > 0 }

// OperationCounts counts a deployment's operations by state.
type OperationCounts struct {
	// Pending counts the operations waiting to be claimed.
	Pending int
	// Running counts the running operations.
	Running int
	// WaitingForCutover counts the operations waiting for cutover.
	WaitingForCutover int
	// CuttingOver counts the operations cutting over.
	CuttingOver int
	// Completed counts the completed operations.
	Completed int
	// Failed counts the failed operations.
	Failed int
	// Stopped counts the stopped operations.
	Stopped int
	// Reverted counts the reverted operations.
	Reverted int
}

// Total returns the number of operations (the deployment's targets).
func (c OperationCounts) Total() int {
	return c.Pending + c.Running + c.WaitingForCutover + c.CuttingOver + c.Completed + c.Failed + c.Stopped + c.Reverted
}

// Active returns the number of running, waiting_for_cutover and
// cutting_over operations.
func (c OperationCounts) Active() int { return c.Running + c.WaitingForCutover + c.CuttingOver }

// DeploymentWithBuild is a deployment together with the build it deploys.
type DeploymentWithBuild struct {
	// Deployment is the deployment.
	Deployment Deployment
	// Build is the build it deploys.
	Build Build
}

// Operation is the rollout of one deployment to one target (a cluster, a
// region). Its state moves through the operation state machine (see
// TransitionOperation); the parent deployment's status is derived from its
// operations' states.
type Operation struct {
	// ID is the operation's id, assigned by the database.
	ID OperationID
	// DeploymentID is the deployment the operation belongs to.
	DeploymentID DeploymentID
	// Target is the cluster or region the operation rolls out to: 1-63
	// characters of a-z, 0-9, '-' and '.'.
	Target string
	// State is where the operation is in its state machine.
	State OperationState
	// Attempt is 1 for the first run; each retry after a failure adds one.
	Attempt int32
	// LastError is why the latest failed attempt failed, kept across
	// retries; "" when no reason was recorded.
	LastError string
	// ClaimedBy is the worker that claimed the operation with
	// ClaimNextOperation; "" when it is not claimed.
	ClaimedBy string
	// ClaimedAt is when ClaimedBy claimed it; the zero time when it is not
	// claimed.
	ClaimedAt time.Time
	// StartedAt is when the operation first entered running; the zero time
	// until then.
	StartedAt time.Time
	// FinishedAt is when the operation last became completed, failed,
	// stopped or reverted; the zero time while it is pending or active.
	FinishedAt time.Time
	// CreatedAt is when the operation was created.
	CreatedAt time.Time
	// UpdatedAt is when the operation last changed.
	UpdatedAt time.Time
	// LeaseToken is the fencing token of the latest claim: every claim and
	// every rescue raises it, so a worker's Lease stops matching once its
	// operation was rescued, stopped or claimed again. 0 before the first
	// claim.
	LeaseToken int64
	// LeaseExpiresAt is when the claiming worker's lease ends unless
	// Heartbeat extends it; the zero time when the operation holds no lease
	// (it is not active).
	LeaseExpiresAt time.Time
}

// Lease returns the operation's current lease: what a worker passes to
// Heartbeat and MoveOperation.
func (o Operation) Lease() Lease { return Lease{OperationID: o.ID, Token: o.LeaseToken} }

// Lease identifies one claim of an operation: the operation and the fencing
// token the claim received. A move or heartbeat that carries a lease whose
// token no longer matches changes nothing and returns ErrLeaseLost.
type Lease struct {
	// OperationID is the claimed operation.
	OperationID OperationID
	// Token is the claim's fencing token (Operation.LeaseToken).
	Token int64
}

// BuildStatus is the status of a build; see package status.
type BuildStatus = status.Build

// DeploymentStatus is the status of a deployment; see package status.
type DeploymentStatus = status.Deployment

// OperationState is the state of an operation; see package status.
type OperationState = status.Operation

// Build statuses.
const (
	BuildPending    = status.BuildPending
	BuildInProgress = status.BuildInProgress
	BuildSucceeded  = status.BuildSucceeded
	BuildFailed     = status.BuildFailed
	BuildCanceled   = status.BuildCanceled
)

// Deployment statuses.
const (
	DeploymentPending    = status.DeploymentPending
	DeploymentInProgress = status.DeploymentInProgress
	DeploymentDeployed   = status.DeploymentDeployed
	DeploymentFailed     = status.DeploymentFailed
	DeploymentCanceled   = status.DeploymentCanceled
)

// Operation states.
const (
	OperationPending           = status.OperationPending
	OperationRunning           = status.OperationRunning
	OperationWaitingForCutover = status.OperationWaitingForCutover
	OperationCuttingOver       = status.OperationCuttingOver
	OperationCompleted         = status.OperationCompleted
	OperationFailed            = status.OperationFailed
	OperationStopped           = status.OperationStopped
	OperationReverted          = status.OperationReverted
)

// AnyEnvironment is the zero value of DeploymentFilter.Environment: a
// filter that leaves it "" lists deployments to every environment.
//
// The empty environment has one meaning across the API: "not given". No
// deployment has it, so every call that needs an environment
// (CreateDeployment, CreateDeploymentWithTargets, GetLatestDeployment)
// refuses "" with ErrInvalidArgument, and the filter, which does not need
// one, does not restrict by it. There is no default environment.
const AnyEnvironment = ""

// The functions below are the only place generated rows become public
// types: one small function per type, no allocation per field.

func appFromRow(r dbsqlc.App) App {
	return App{ID: AppID(r.ID), Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func buildFromRow(r dbsqlc.Build) Build {
	return Build{
		ID: BuildID(r.ID), AppID: AppID(r.AppID), SourceVersion: r.SourceVersion.String, Status: BuildStatus(r.Status), IdempotencyKey: r.IdempotencyKey.String,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StartedAt: timeOf(r.StartedAt), FinishedAt: timeOf(r.FinishedAt),
	}
}

func deploymentFromRow(r dbsqlc.Deployment) Deployment {
	return Deployment{
		ID: DeploymentID(r.ID), AppID: AppID(r.AppID), BuildID: BuildID(r.BuildID), Environment: r.Environment, Status: DeploymentStatus(r.Status), IdempotencyKey: r.IdempotencyKey.String,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StartedAt: timeOf(r.StartedAt), FinishedAt: timeOf(r.FinishedAt),
		Operations: OperationCounts{
			Pending: int(r.OpsPending), Running: int(r.OpsRunning), WaitingForCutover: int(r.OpsWaitingForCutover), CuttingOver: int(r.OpsCuttingOver),
			Completed: int(r.OpsCompleted), Failed: int(r.OpsFailed), Stopped: int(r.OpsStopped), Reverted: int(r.OpsReverted),
		},
		CanceledAt: timeOf(r.CanceledAt),
	}
}

func operationFromRow(r dbsqlc.DeploymentOperation) Operation {
	return Operation{
		ID: OperationID(r.ID), DeploymentID: DeploymentID(r.DeploymentID), Target: r.Target, State: OperationState(r.State), Attempt: r.Attempt,
		LastError: r.LastError.String, ClaimedBy: r.ClaimedBy.String, ClaimedAt: timeOf(r.ClaimedAt),
		StartedAt: timeOf(r.StartedAt), FinishedAt: timeOf(r.FinishedAt), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		LeaseToken: r.LeaseToken, LeaseExpiresAt: timeOf(r.LeaseExpiresAt),
	}
}

// rowsTo converts a slice of generated rows with one allocation. It never
// returns nil, so an empty list is an empty slice.
func rowsTo[R, T any](rows []R, conv func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out
}

// timeOf returns a nullable timestamp's value, or the zero time for NULL.
func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time
}

// nullTime is the inverse of timeOf: the zero time is NULL.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// nullText returns "" as NULL.
func nullText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }
