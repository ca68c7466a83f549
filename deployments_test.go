package deploydb_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/status"
)

var deploymentTransitions = map[deploydb.DeploymentStatus][]deploydb.DeploymentStatus{
	deploydb.DeploymentPending:    {deploydb.DeploymentInProgress, deploydb.DeploymentCanceled},
	deploydb.DeploymentInProgress: {deploydb.DeploymentDeployed, deploydb.DeploymentFailed, deploydb.DeploymentCanceled},
}

func deploymentAllowed(from, to deploydb.DeploymentStatus) bool {
	for _, s := range deploymentTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func TestCreateDeployment(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	ok := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)

	d, created, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: ok.ID, Environment: "production"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if d.AppID != app.ID || d.BuildID != ok.ID || d.Environment != "production" ||
		d.Status != deploydb.DeploymentPending || !d.StartedAt.IsZero() || !d.FinishedAt.IsZero() {
		t.Fatalf("unexpected deployment %+v", d)
	}
	if got, err := svc.GetDeployment(ctx, d.ID); err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("GetDeployment = %+v, %v", got, err)
	}
	dwb, err := svc.GetDeploymentWithBuild(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(dwb.Deployment, d) || !reflect.DeepEqual(dwb.Build, ok) {
		t.Fatalf("GetDeploymentWithBuild = %+v, %v", dwb, err)
	}
	if _, err := svc.GetDeploymentWithBuild(ctx, 1<<40); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("GetDeploymentWithBuild(missing): %v", err)
	}

	for _, s := range []deploydb.BuildStatus{deploydb.BuildPending, deploydb.BuildInProgress, deploydb.BuildFailed, deploydb.BuildCanceled} {
		b := mustBuild(t, svc, app.ID, s)
		if _, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "staging"}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("deploying a %s build: %v, want ErrInvalidArgument", s, err)
		}
	}
	foreign := mustBuild(t, svc, other.ID, deploydb.BuildSucceeded)
	if _, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: foreign.ID, Environment: "staging"}); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("deploying another app's build: %v, want ErrInvalidArgument", err)
	}
	if _, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: 1 << 40, Environment: "staging"}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Errorf("deploying a missing build: %v, want ErrNotFound", err)
	}
	// A missing app is reported as missing, even with a build of another
	// app.
	for _, b := range []deploydb.BuildID{ok.ID, 1 << 40} {
		_, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: 1 << 40, BuildID: b, Environment: "staging"})
		if !errors.Is(err, deploydb.ErrNotFound) || errors.Is(err, deploydb.ErrInvalidArgument) || !strings.Contains(err.Error(), "no such app") {
			t.Errorf("deploying build %d to a missing app: %v, want ErrNotFound naming the app", b, err)
		}
	}
	for _, env := range []string{"Prod", "prod_eu", "-x", "a.b"} {
		if _, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: ok.ID, Environment: env}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("environment %q: %v, want ErrInvalidArgument", env, err)
		}
	}
	var n int
	if list, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, 100); err != nil {
		t.Fatal(err)
	} else {
		n = len(list)
	}
	if n != 1 {
		t.Fatalf("%d deployments written, want only the valid one", n)
	}
}

func TestDeploymentTransitions(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	for _, from := range status.Deployments {
		for _, to := range status.Deployments {
			// A fresh environment per pair keeps the one-in-progress rule
			// out of the way here; it has its own test.
			env := "env-" + string(from[:2]) + "-" + string(to[:2])
			d := mustDeployment(t, svc, app.ID, env, from)
			got, changed, err := svc.UpdateDeploymentStatus(ctx, d.ID, to)
			switch {
			case from == to:
				if err != nil || changed || !reflect.DeepEqual(got, d) {
					t.Errorf("%s -> %s (repeat): %+v, changed %v, %v; want unchanged row and changed false", from, to, got, changed, err)
				}
			case deploymentAllowed(from, to):
				if err != nil || !changed || got.Status != to {
					t.Errorf("%s -> %s: %+v, changed %v, %v", from, to, got, changed, err)
					continue
				}
				if to == deploydb.DeploymentInProgress && got.StartedAt.IsZero() {
					t.Errorf("%s -> %s: started_at not set", from, to)
				}
				if to.Terminal() != (!got.FinishedAt.IsZero()) {
					t.Errorf("%s -> %s: finished_at = %v", from, to, got.FinishedAt)
				}
				if !got.FinishedAt.IsZero() && !got.StartedAt.IsZero() && got.FinishedAt.Before(got.StartedAt) {
					t.Errorf("%s -> %s: finished before it started", from, to)
				}
			default:
				var te *deploydb.TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to || te.Entity != deploydb.EntityDeployment {
					t.Errorf("%s -> %s: %v, want *TransitionError", from, to, err)
				}
				if after, _ := svc.GetDeployment(ctx, d.ID); !reflect.DeepEqual(after, d) {
					t.Errorf("%s -> %s: refused transition changed the row", from, to)
				}
			}
		}
	}
	if _, _, err := svc.UpdateDeploymentStatus(ctx, 1<<40, deploydb.DeploymentCanceled); !errors.Is(err, deploydb.ErrNotFound) {
		t.Errorf("missing deployment: %v, want ErrNotFound", err)
	}
	d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	if _, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, "success"); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("unknown status: %v, want ErrInvalidArgument", err)
	}
}

func TestOneDeploymentInProgressPerEnvironment(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	first := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentInProgress)
	second := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentInProgress) // other environment: fine

	_, _, err := svc.UpdateDeploymentStatus(ctx, second.ID, deploydb.DeploymentInProgress)
	var pgErr *pgconn.PgError
	if !errors.Is(err, deploydb.ErrConflict) || !errors.As(err, &pgErr) || pgErr.ConstraintName != "deployments_one_in_progress_key" {
		t.Fatalf("second in_progress: %v, want ErrConflict on deployments_one_in_progress_key", err)
	}
	if got, _ := svc.GetDeployment(ctx, second.ID); got.Status != deploydb.DeploymentPending {
		t.Fatalf("refused start changed the status to %s", got.Status)
	}
	if _, _, err := svc.UpdateDeploymentStatus(ctx, first.ID, deploydb.DeploymentDeployed); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.UpdateDeploymentStatus(ctx, second.ID, deploydb.DeploymentInProgress); err != nil {
		t.Fatalf("start after the first finished: %v", err)
	}
}

func TestLatestAndSuccessfulDeployments(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	if _, err := svc.GetLatestDeployment(ctx, app.ID, "production"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("no deployments: %v, want ErrNotFound", err)
	}
	d1 := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentFailed)
	d3 := mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentDeployed)
	d4 := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	latestProd := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)

	got, err := svc.GetLatestDeployment(ctx, app.ID, "production")
	if err != nil || got.ID != latestProd.ID {
		t.Fatalf("GetLatestDeployment(production) = %d, %v; want %d", got.ID, err, latestProd.ID)
	}
	got, err = svc.GetLatestDeployment(ctx, app.ID, "staging")
	if err != nil || got.ID != d3.ID {
		t.Fatalf("GetLatestDeployment(staging) = %d, %v; want %d", got.ID, err, d3.ID)
	}
	ok, err := svc.ListSuccessfulDeployments(ctx, app.ID, 2)
	if err != nil || len(ok) != 2 || ok[0].ID != d4.ID || ok[1].ID != d3.ID {
		t.Fatalf("ListSuccessfulDeployments(2) = %v, %v; want [%d %d]", ids(ok), err, d4.ID, d3.ID)
	}
	all, err := svc.ListSuccessfulDeployments(ctx, app.ID, 0)
	if err != nil || len(all) != 3 || all[2].ID != d1.ID {
		t.Fatalf("ListSuccessfulDeployments(default) = %v, %v", ids(all), err)
	}
	if _, err := svc.ListSuccessfulDeployments(ctx, app.ID, 101); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Fatalf("limit 101: %v", err)
	}
}

func TestDeleteDeployment(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	if err := svc.DeleteDeployment(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteDeployment(ctx, d.ID); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// With its deployment gone, the build can be deleted.
	if err := svc.DeleteBuild(ctx, d.BuildID); err != nil {
		t.Fatalf("DeleteBuild after its deployment was deleted: %v", err)
	}
}

func ids(ds []deploydb.Deployment) []deploydb.DeploymentID {
	out := make([]deploydb.DeploymentID, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
