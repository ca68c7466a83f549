package deploydb_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/status"
)

// buildTransitions is the build lifecycle as the specification states it.
var buildTransitions = map[deploydb.BuildStatus][]deploydb.BuildStatus{
	deploydb.BuildPending:    {deploydb.BuildInProgress, deploydb.BuildCanceled},
	deploydb.BuildInProgress: {deploydb.BuildSucceeded, deploydb.BuildFailed, deploydb.BuildCanceled},
}

func buildAllowed(from, to deploydb.BuildStatus) bool {
	for _, s := range buildTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

func TestCreateBuild(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)

	b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "3f2a9c1"})
	if err != nil {
		t.Fatal(err)
	}
	if b.AppID != app.ID || b.Status != deploydb.BuildPending || b.SourceVersion == "" || b.SourceVersion != "3f2a9c1" ||
		!b.StartedAt.IsZero() || !b.FinishedAt.IsZero() {
		t.Fatalf("unexpected build %+v", b)
	}
	none, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: ""})
	if err != nil || none.SourceVersion != "" {
		t.Fatalf("CreateBuild without version = %+v, %v; want NULL source_version", none, err)
	}
	got, err := svc.GetBuild(ctx, b.ID)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("GetBuild = %+v, %v", got, err)
	}
	if _, err := svc.GetBuild(ctx, 1<<40); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("GetBuild(missing): %v, want ErrNotFound", err)
	}

	_, _, err = svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: 1 << 40, SourceVersion: "v1"})
	var pgErr *pgconn.PgError
	if !errors.Is(err, deploydb.ErrNotFound) || !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Fatalf("CreateBuild for a missing app: %v, want ErrNotFound wrapping 23503", err)
	}

	for _, bad := range []string{strings.Repeat("a", 256), "a\x00b", "\xff\xfe"} {
		if _, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: bad}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("CreateBuild(%q): %v, want ErrInvalidArgument", truncateForLog(bad), err)
		}
	}
	if _, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: strings.Repeat("é", 255)}); err != nil {
		t.Errorf("255-character version: %v", err)
	}
}

func truncateForLog(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// TestBuildTransitions tries every (from, to) pair: legal moves succeed and
// set the timestamps, repeats are no-ops, everything else is refused with a
// *TransitionError carrying From and To and leaves the row untouched.
func TestBuildTransitions(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	for _, from := range status.Builds {
		for _, to := range status.Builds {
			b := mustBuild(t, svc, app.ID, from)
			got, changed, err := svc.UpdateBuildStatus(ctx, b.ID, to)
			switch {
			case from == to:
				if err != nil || changed || !reflect.DeepEqual(got, b) {
					t.Errorf("%s -> %s (repeat): got %+v, changed %v, %v; want the row unchanged and changed false", from, to, got, changed, err)
				}
			case buildAllowed(from, to):
				if err != nil || !changed {
					t.Errorf("%s -> %s: changed %v, %v", from, to, changed, err)
					continue
				}
				if got.Status != to || !got.UpdatedAt.After(b.UpdatedAt) && !got.UpdatedAt.Equal(b.UpdatedAt) {
					t.Errorf("%s -> %s: got %+v", from, to, got)
				}
				if (to == deploydb.BuildInProgress) != (!got.StartedAt.IsZero() && b.StartedAt.IsZero()) {
					t.Errorf("%s -> %s: started_at %v -> %v", from, to, b.StartedAt, got.StartedAt)
				}
				if to.Terminal() != (!got.FinishedAt.IsZero()) {
					t.Errorf("%s -> %s: finished_at = %v", from, to, got.FinishedAt)
				}
				if !b.StartedAt.IsZero() && (got.StartedAt.IsZero() || !got.StartedAt.Equal(b.StartedAt)) {
					t.Errorf("%s -> %s: started_at changed from %v to %v", from, to, b.StartedAt, got.StartedAt)
				}
			default:
				var te *deploydb.TransitionError
				if !errors.As(err, &te) || !errors.Is(err, deploydb.ErrInvalidTransition) ||
					te.From != from || te.To != to || te.ID != int64(b.ID) {
					t.Errorf("%s -> %s: got %v, want *TransitionError{From: %s, To: %s}", from, to, err, from, to)
				}
				after, _ := svc.GetBuild(ctx, b.ID)
				if !reflect.DeepEqual(after, b) {
					t.Errorf("%s -> %s: refused transition changed the row: %+v", from, to, after)
				}
			}
		}
	}
	if _, _, err := svc.UpdateBuildStatus(ctx, 1<<40, deploydb.BuildInProgress); !errors.Is(err, deploydb.ErrNotFound) {
		t.Errorf("missing build: %v, want ErrNotFound", err)
	}
	b := mustBuild(t, svc, app.ID, deploydb.BuildPending)
	if _, _, err := svc.UpdateBuildStatus(ctx, b.ID, "done"); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("unknown status: %v, want ErrInvalidArgument", err)
	}
}

func TestListAppBuildsAndLatestSuccessful(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	if _, err := svc.GetLatestSuccessfulBuild(ctx, app.ID); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("no builds yet: %v, want ErrNotFound", err)
	}
	var want []deploydb.BuildID
	var lastSucceeded deploydb.Build
	for _, s := range []deploydb.BuildStatus{deploydb.BuildSucceeded, deploydb.BuildSucceeded, deploydb.BuildFailed, deploydb.BuildPending, deploydb.BuildSucceeded, deploydb.BuildCanceled} {
		b := mustBuild(t, svc, app.ID, s)
		want = append([]deploydb.BuildID{b.ID}, want...)
		if s == deploydb.BuildSucceeded {
			lastSucceeded = b
		}
	}
	mustBuild(t, svc, other.ID, deploydb.BuildSucceeded)

	got, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, 4)
	if err != nil || len(got) != 4 {
		t.Fatalf("ListAppBuilds(4) = %d rows, %v", len(got), err)
	}
	for i, b := range got {
		if b.ID != want[i] {
			t.Fatalf("ListAppBuilds order: row %d is %d, want %d", i, b.ID, want[i])
		}
	}
	all, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, 0)
	if err != nil || len(all) != len(want) {
		t.Fatalf("ListAppBuilds(0 = default) = %d rows, %v; want %d", len(all), err, len(want))
	}
	for _, n := range []int{-1, deploydb.MaxPageSize + 1} {
		if _, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: app.ID}, n); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("ListAppBuilds(limit %d): %v, want ErrInvalidArgument", n, err)
		}
	}
	latest, err := svc.GetLatestSuccessfulBuild(ctx, app.ID)
	if err != nil || latest.ID != lastSucceeded.ID {
		t.Fatalf("GetLatestSuccessfulBuild = %d, %v; want %d", latest.ID, err, lastSucceeded.ID)
	}
}

func TestDeleteBuild(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)

	err := svc.DeleteBuild(ctx, d.BuildID)
	var pgErr *pgconn.PgError
	if !errors.Is(err, deploydb.ErrInUse) || !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Fatalf("DeleteBuild of a deployed build: %v, want ErrInUse wrapping 23503", err)
	}
	if _, err := svc.GetBuild(ctx, d.BuildID); err != nil {
		t.Fatalf("build vanished after refused delete: %v", err)
	}
	free := mustBuild(t, svc, app.ID, deploydb.BuildFailed)
	if err := svc.DeleteBuild(ctx, free.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteBuild(ctx, free.ID); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("second DeleteBuild: %v, want ErrNotFound", err)
	}
}

func TestCreateBuildsCopy(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	start := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	end := start.Add(time.Minute)
	v := "v1"
	rows := []deploydb.BuildRow{
		{AppID: app.ID, SourceVersion: v},
		{AppID: app.ID, Status: deploydb.BuildSucceeded, CreatedAt: start, StartedAt: start, FinishedAt: end},
		{AppID: app.ID, Status: deploydb.BuildInProgress, StartedAt: start},
	}
	n, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: rows})
	if err != nil || n != 3 {
		t.Fatalf("CreateBuilds = %d, %v", n, err)
	}
	count := func() (c int) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM builds WHERE app_id = $1`, app.ID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// One row that breaks a CHECK (succeeded without timestamps) fails the
	// whole batch; nothing from it is written.
	bad := []deploydb.BuildRow{{AppID: app.ID}, {AppID: app.ID, Status: deploydb.BuildSucceeded}}
	if _, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: bad}); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Fatalf("CreateBuilds with a CHECK violation: %v, want ErrInvalidArgument", err)
	}
	if _, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID, Status: "done"}}}); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Fatalf("CreateBuilds with an unknown status: %v, want ErrInvalidArgument", err)
	}
	if _, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: 1 << 40}}}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("CreateBuilds for a missing app: %v, want ErrNotFound", err)
	}
	if c := count(); c != 3 {
		t.Fatalf("%d builds after failed batches, want 3", c)
	}
}

func TestCreateBuildsLeavesInputAlone(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	app := mustApp(t, svc)
	rows := []deploydb.BuildRow{{AppID: app.ID}}
	if _, err := svc.CreateBuilds(ctxT(t), deploydb.CreateBuildsParams{Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if rows[0].Status != "" || !rows[0].CreatedAt.IsZero() {
		t.Fatalf("CreateBuilds changed the caller's rows: %+v", rows[0])
	}
}
