package deploydb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newService returns a Service on a fresh migrated database, and its pool for
// direct SQL checks.
func newService(t *testing.T, opts ...deploydb.Option) (*deploydb.Service, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t)
	return deploydb.New(pool, opts...), pool
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var nameSeq atomic.Int64

// mustApp creates an app with a unique name.
func mustApp(t *testing.T, svc *deploydb.Service) deploydb.App {
	t.Helper()
	app, err := svc.CreateApp(context.Background(), deploydb.CreateAppParams{Name: fmt.Sprintf("app-%d", nameSeq.Add(1))})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return app
}

// mustBuild creates a build and drives it to the given status through the
// legal transitions.
func mustBuild(t *testing.T, svc *deploydb.Service, appID deploydb.AppID, to deploydb.BuildStatus) deploydb.Build {
	t.Helper()
	ctx := context.Background()
	b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: appID, SourceVersion: fmt.Sprintf("v%d", nameSeq.Add(1))})
	if err != nil {
		t.Fatalf("CreateBuild: %v", err)
	}
	path := map[deploydb.BuildStatus][]deploydb.BuildStatus{
		deploydb.BuildPending:    nil,
		deploydb.BuildInProgress: {deploydb.BuildInProgress},
		deploydb.BuildSucceeded:  {deploydb.BuildInProgress, deploydb.BuildSucceeded},
		deploydb.BuildFailed:     {deploydb.BuildInProgress, deploydb.BuildFailed},
		deploydb.BuildCanceled:   {deploydb.BuildCanceled},
	}[to]
	for _, s := range path {
		if b, _, err = svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
			t.Fatalf("UpdateBuildStatus(%s): %v", s, err)
		}
	}
	return b
}

// mustDeployment creates a deployment of a fresh succeeded build and drives
// it to the given status.
func mustDeployment(t *testing.T, svc *deploydb.Service, appID deploydb.AppID, env string, to deploydb.DeploymentStatus) deploydb.Deployment {
	t.Helper()
	ctx := context.Background()
	b := mustBuild(t, svc, appID, deploydb.BuildSucceeded)
	d, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: appID, BuildID: b.ID, Environment: env})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	path := map[deploydb.DeploymentStatus][]deploydb.DeploymentStatus{
		deploydb.DeploymentPending:    nil,
		deploydb.DeploymentInProgress: {deploydb.DeploymentInProgress},
		deploydb.DeploymentDeployed:   {deploydb.DeploymentInProgress, deploydb.DeploymentDeployed},
		deploydb.DeploymentFailed:     {deploydb.DeploymentInProgress, deploydb.DeploymentFailed},
		deploydb.DeploymentCanceled:   {deploydb.DeploymentCanceled},
	}[to]
	for _, s := range path {
		if d, _, err = svc.UpdateDeploymentStatus(ctx, d.ID, s); err != nil {
			t.Fatalf("UpdateDeploymentStatus(%s): %v", s, err)
		}
	}
	return d
}
