package deploydb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
)

func TestCreateGetDeleteApp(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)

	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if app.ID <= 0 || app.Name != "checkout" || app.CreatedAt.IsZero() || !app.UpdatedAt.Equal(app.CreatedAt) {
		t.Fatalf("unexpected app %+v", app)
	}
	got, err := svc.GetApp(ctx, app.ID)
	if err != nil || got != app {
		t.Fatalf("GetApp = %+v, %v; want %+v", got, err, app)
	}
	got, err = svc.GetAppByName(ctx, "checkout")
	if err != nil || got != app {
		t.Fatalf("GetAppByName = %+v, %v; want %+v", got, err, app)
	}

	_, err = svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout"})
	var pgErr *pgconn.PgError
	if !errors.Is(err, deploydb.ErrConflict) || !errors.As(err, &pgErr) || pgErr.ConstraintName != "apps_name_key" {
		t.Fatalf("duplicate CreateApp: got %v, want ErrConflict wrapping the apps_name_key violation", err)
	}

	if err := svc.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetApp(ctx, app.ID); !errors.Is(err, deploydb.ErrNotFound) || !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("GetApp after delete: %v, want ErrNotFound wrapping pgx.ErrNoRows", err)
	}
	if err := svc.DeleteApp(ctx, app.ID); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("second DeleteApp: %v, want ErrNotFound", err)
	}
	if _, err := svc.GetAppByName(ctx, "nope"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("GetAppByName(nope): %v, want ErrNotFound", err)
	}
}

func TestAppNameValidation(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	valid := []string{"a", "0", "api", "a-b", "a1-b2-c3", strings.Repeat("x", 63)}
	for _, name := range valid {
		if _, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: name}); err != nil {
			t.Errorf("CreateApp(%q): %v, want success", name, err)
		}
	}
	invalid := []string{"", "-a", "a-", "A", "api_v2", "a.b", "a b", strings.Repeat("x", 64), "café", "a\x00b", "\xff"}
	for _, name := range invalid {
		_, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: name})
		if !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("CreateApp(%q): %v, want ErrInvalidArgument", name, err)
		}
		if _, err := svc.GetAppByName(ctx, name); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("GetAppByName(%q): %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestDeleteAppCascades(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentDeployed)
	mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentInProgress)
	keep := mustDeployment(t, svc, other.ID, "production", deploydb.DeploymentDeployed)

	// Deleting the app removes its builds and deployments in one statement,
	// even though a deployed build cannot be deleted on its own.
	if err := svc.DeleteApp(ctx, app.ID); err != nil {
		t.Fatalf("DeleteApp with deployments: %v", err)
	}
	var builds, deployments int
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM builds WHERE app_id = $1), (SELECT count(*) FROM deployments WHERE app_id = $1)`, app.ID).Scan(&builds, &deployments)
	if err != nil {
		t.Fatal(err)
	}
	if builds != 0 || deployments != 0 {
		t.Fatalf("after DeleteApp: %d builds and %d deployments remain", builds, deployments)
	}
	if _, err := svc.GetDeployment(ctx, keep.ID); err != nil {
		t.Fatalf("other app's deployment: %v", err)
	}
}

func TestListAppsPaged(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	var want []deploydb.AppID
	for i := 0; i < 7; i++ {
		want = append([]deploydb.AppID{mustApp(t, svc).ID}, want...) // newest first
	}
	var got []deploydb.AppID
	page := deploydb.PageRequest{Size: 3}
	pages := 0
	for {
		p, err := svc.ListAppsPaged(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Items) > 3 {
			t.Fatalf("page of %d items, want at most 3", len(p.Items))
		}
		for _, a := range p.Items {
			got = append(got, a.ID)
		}
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	if pages != 3 || !equalIDs(got, want) {
		t.Fatalf("walked %d pages: %v, want 3 pages: %v", pages, got, want)
	}
}

func equalIDs[T ~int64](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
