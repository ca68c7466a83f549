package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// CreateDeployment creates a pending deployment of a build to an
// environment, which is required ("" is ErrInvalidArgument; see
// AnyEnvironment). created reports whether this call inserted the row. A
// missing app or build gives ErrNotFound; a build of another app, or one that
// has not succeeded, ErrInvalidArgument.
//
// A new deployment supersedes the older deployments of its app and
// environment that are not in progress, in the same statement: their
// pending operations are stopped (so they read canceled, or failed), they
// are never started, and ResumeDeployment and RetryDeployment refuse them
// (ErrConflict). An older deployment in progress runs to its end; the new
// one starts after it.
func (s *Service) CreateDeployment(ctx context.Context, p CreateDeploymentParams) (d Deployment, created bool, err error) {
	if !validLabel(p.Environment) {
		return Deployment{}, false, checkName(createDeploymentOp(p.BuildID), "environment", p.Environment)
	}
	if err := checkIdempotencyKey(createDeploymentOp(p.BuildID), p.IdempotencyKey); err != nil {
		return Deployment{}, false, err
	}
	err = s.InTx(ctx, func(tx *Service) error {
		d, created, err = tx.createDeployment(ctx, p)
		return err
	})
	if err != nil {
		return Deployment{}, false, err
	}
	return d, created, nil
}

// createDeployment is CreateDeployment inside a transaction. Creates of one
// app and environment take turns (AppEnvironmentLock, in a statement of its
// own): so the insert's snapshot, taken after the turn came, holds every
// older deployment it must supersede, even one whose transaction committed
// while this one waited.
func (s *Service) createDeployment(ctx context.Context, p CreateDeploymentParams) (Deployment, bool, error) {
	if _, err := s.conn.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", AppEnvironmentLock(p.AppID, p.Environment).ID()); err != nil {
		return Deployment{}, false, mapError(ctx, opWrite, createDeploymentOp(p.BuildID), err)
	}
	r, err := s.q.CreateDeployment(ctx, dbsqlc.CreateDeploymentParams{
		AppID: int64(p.AppID), BuildID: int64(p.BuildID), Environment: p.Environment, IdempotencyKey: nullText(p.IdempotencyKey)})
	if err == nil {
		return deploymentFromRow(dbsqlc.Deployment(r)), true, nil
	}
	op := createDeploymentOp(p.BuildID) // formatted on failure only
	if !errors.Is(err, pgx.ErrNoRows) {
		return Deployment{}, false, mapError(ctx, opWrite, op, err)
	}
	if p.IdempotencyKey != "" {
		first, err := s.q.GetDeploymentByIdempotencyKey(ctx, dbsqlc.GetDeploymentByIdempotencyKeyParams{
			AppID: int64(p.AppID), IdempotencyKey: nullText(p.IdempotencyKey)})
		switch {
		case err == nil && BuildID(first.BuildID) == p.BuildID && first.Environment == p.Environment:
			return deploymentFromRow(first), false, nil
		case err == nil:
			return Deployment{}, false, &Error{Kind: ErrConflict, Op: op, Msg: fmt.Sprintf(
				"idempotency key %q was used for deployment %d of build %d to %s", truncate(p.IdempotencyKey),
				first.ID, first.BuildID, first.Environment)}
		case !errors.Is(err, pgx.ErrNoRows):
			return Deployment{}, false, mapError(ctx, opRead, op, err)
		}
		// The key is new: the build is what stopped the insert.
	}
	return Deployment{}, false, s.whyNotDeployable(ctx, op, p.AppID, p.BuildID)
}

// whyNotDeployable explains why the guarded insert of a deployment matched
// no build: the app or the build is missing, the build belongs to another
// app, or it has not succeeded.
func (s *Service) whyNotDeployable(ctx context.Context, op string, appID AppID, buildID BuildID) error {
	if _, err := s.q.GetApp(ctx, int64(appID)); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(op, "no such app %d", appID)
		}
		return mapError(ctx, opRead, op, err)
	}
	b, err := s.q.GetBuild(ctx, int64(buildID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(op, "no such build %d", buildID)
	case err != nil:
		return mapError(ctx, opRead, op, err)
	case AppID(b.AppID) != appID:
		return invalidArg(op, "build %d belongs to app %d, not app %d", buildID, b.AppID, appID)
	}
	return invalidArg(op, "build %d is %s; only a succeeded build can be deployed", buildID, b.Status)
}

func createDeploymentOp(buildID BuildID) string {
	return "create deployment of build " + strconv.FormatInt(int64(buildID), 10)
}

// GetDeployment returns the deployment with the given id, or ErrNotFound.
func (s *Service) GetDeployment(ctx context.Context, id DeploymentID) (Deployment, error) {
	d, err := s.q.GetDeployment(ctx, int64(id))
	if err != nil {
		return Deployment{}, mapError(ctx, opRead, "get deployment "+strconv.FormatInt(int64(id), 10), err)
	}
	return deploymentFromRow(d), nil
}

// GetDeploymentWithBuild returns a deployment and the build it deploys in one
// query, or ErrNotFound.
func (s *Service) GetDeploymentWithBuild(ctx context.Context, id DeploymentID) (DeploymentWithBuild, error) {
	r, err := s.q.GetDeploymentWithBuild(ctx, int64(id))
	if err != nil {
		return DeploymentWithBuild{}, mapError(ctx, opRead, "get deployment "+strconv.FormatInt(int64(id), 10)+" with build", err)
	}
	return DeploymentWithBuild{Deployment: deploymentFromRow(r.Deployment), Build: buildFromRow(r.Build)}, nil
}

// ListAppDeployments returns the deployments filter selects, in its order:
// limit rows at most (0 means DefaultPageSize, at most MaxPageSize). It
// returns the first page of ListDeployments; use that to walk all of them.
func (s *Service) ListAppDeployments(ctx context.Context, filter DeploymentFilter, limit int) ([]Deployment, error) {
	p, err := s.ListDeployments(ctx, filter, PageRequest{Size: limit})
	return p.Items, err
}

// GetLatestDeployment returns the newest deployment of an app to an
// environment, whatever its status, or ErrNotFound. The environment is
// required: "" is ErrInvalidArgument (see AnyEnvironment).
func (s *Service) GetLatestDeployment(ctx context.Context, appID AppID, environment string) (Deployment, error) {
	const op = "get latest deployment"
	if err := checkName(op, "environment", environment); err != nil {
		return Deployment{}, err
	}
	d, err := s.q.GetLatestDeployment(ctx, dbsqlc.GetLatestDeploymentParams{AppID: int64(appID), Environment: environment})
	if err != nil {
		return Deployment{}, mapError(ctx, opRead, op, err)
	}
	return deploymentFromRow(d), nil
}

// ListSuccessfulDeployments returns an app's most recently finished deployed
// deployments: limit rows at most (0 means DefaultPageSize, at most
// MaxPageSize).
func (s *Service) ListSuccessfulDeployments(ctx context.Context, appID AppID, limit int) ([]Deployment, error) {
	const op = "list successful deployments"
	n, err := limitRows(op, limit)
	if err != nil {
		return nil, err
	}
	rows, err := listRows(ctx, s.conn, int(n), scanDeployment, deploymentFromRow, dbsqlc.ListSuccessfulDeployments, int64(appID), n)
	if err != nil {
		return nil, mapError(ctx, opRead, op, err)
	}
	return rows, nil
}

// UpdateDeploymentStatus moves a deployment to status to. The lifecycle is
//
//	pending     -> in_progress | canceled
//	in_progress -> deployed | failed | canceled
//
// started_at is set when the deployment starts, finished_at when it ends.
// Asking for the status the deployment already has returns it unchanged
// (safe to retry). Starting a deployment while another of the same app and
// environment is in progress returns ErrConflict, and so does any change to a
// deployment created with targets, whose status is derived from its
// operations; an illegal move returns a *TransitionError
// (ErrInvalidTransition); a missing deployment ErrNotFound. changed reports
// whether this call moved the deployment; it is false when the deployment
// already had status to.
func (s *Service) UpdateDeploymentStatus(ctx context.Context, id DeploymentID, to DeploymentStatus) (d Deployment, changed bool, err error) {
	if !to.Valid() {
		return Deployment{}, false, invalidArg(updateDeploymentOp(id), "unknown deployment status %q", truncate(string(to)))
	}
	row, err := s.q.UpdateDeploymentStatus(ctx, dbsqlc.UpdateDeploymentStatusParams{ID: int64(id), NewStatus: string(to)})
	if err == nil {
		return deploymentFromRow(row), true, nil
	}
	op := updateDeploymentOp(id) // formatted on failure only
	if !errors.Is(err, pgx.ErrNoRows) {
		return Deployment{}, false, mapError(ctx, opWrite, op, err)
	}
	cur, err := s.q.GetDeployment(ctx, int64(id))
	if err != nil {
		return Deployment{}, false, mapError(ctx, opRead, op, err)
	}
	if derived, err := s.q.HasDeploymentOperations(ctx, int64(id)); err != nil {
		return Deployment{}, false, mapError(ctx, opRead, op, err)
	} else if derived {
		return Deployment{}, false, &Error{Kind: ErrConflict, Op: op,
			Msg: "the deployment has operations and its status follows them; move its operations instead (TransitionOperation, MarkStarted, ...)"}
	}
	if DeploymentStatus(cur.Status) == to {
		return deploymentFromRow(cur), false, nil
	}
	return Deployment{}, false, &TransitionError{Entity: EntityDeployment, ID: int64(id), From: DeploymentStatus(cur.Status), To: to}
}

func updateDeploymentOp(id DeploymentID) string {
	return "update deployment " + strconv.FormatInt(int64(id), 10) + " status"
}

// DeleteDeployment deletes a deployment, or returns ErrNotFound.
func (s *Service) DeleteDeployment(ctx context.Context, id DeploymentID) error {
	op := "delete deployment " + strconv.FormatInt(int64(id), 10)
	n, err := s.q.DeleteDeployment(ctx, int64(id))
	if err != nil {
		return mapError(ctx, opDelete, op, err)
	}
	if n == 0 {
		return notFound(op, "no such deployment")
	}
	return nil
}
