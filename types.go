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
}

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
	}
}

func operationFromRow(r dbsqlc.DeploymentOperation) Operation {
	return Operation{
		ID: OperationID(r.ID), DeploymentID: DeploymentID(r.DeploymentID), Target: r.Target, State: OperationState(r.State), Attempt: r.Attempt,
		LastError: r.LastError.String, ClaimedBy: r.ClaimedBy.String, ClaimedAt: timeOf(r.ClaimedAt),
		StartedAt: timeOf(r.StartedAt), FinishedAt: timeOf(r.FinishedAt), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
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
