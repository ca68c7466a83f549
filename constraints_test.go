package deploydb_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
)

// TestCheckConstraints writes rows that break the schema's rules directly
// with SQL, bypassing the service: PostgreSQL itself must refuse each one.
func TestCheckConstraints(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	pending := mustBuild(t, svc, app.ID, deploydb.BuildPending)
	done := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	foreign := mustBuild(t, svc, other.ID, deploydb.BuildSucceeded)
	d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	running := mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentInProgress)

	cases := []struct {
		name       string
		sql        string
		args       []any
		code       string
		constraint string
	}{
		{"app name uppercase", `UPDATE apps SET name = 'Checkout' WHERE id = $1`, []any{app.ID}, "23514", "apps_name_format"},
		{"app name too long", `UPDATE apps SET name = repeat('a', 64) WHERE id = $1`, []any{app.ID}, "23514", "apps_name_format"},
		{"unknown build status", `UPDATE builds SET status = 'done' WHERE id = $1`, []any{pending.ID}, "23514", "builds_status_valid"},
		{"in_progress build without started_at", `UPDATE builds SET status = 'in_progress' WHERE id = $1`, []any{pending.ID}, "23514", "builds_started_at_set"},
		{"terminal build without finished_at", `UPDATE builds SET status = 'canceled' WHERE id = $1`, []any{pending.ID}, "23514", "builds_finished_at_iff_terminal"},
		{"pending build with finished_at", `UPDATE builds SET finished_at = now() WHERE id = $1`, []any{pending.ID}, "23514", "builds_finished_at_iff_terminal"},
		{"build finished before it started", `UPDATE builds SET finished_at = started_at - interval '1 second' WHERE id = $1`, []any{done.ID}, "23514", "builds_finished_after_started"},
		{"empty source version", `UPDATE builds SET source_version = '' WHERE id = $1`, []any{pending.ID}, "23514", "builds_source_version_length"},
		{"source version too long", `UPDATE builds SET source_version = repeat('a', 256) WHERE id = $1`, []any{pending.ID}, "23514", "builds_source_version_length"},
		{"unknown deployment status", `UPDATE deployments SET status = 'success' WHERE id = $1`, []any{d.ID}, "23514", "deployments_status_valid"},
		{"deployed without started_at", `UPDATE deployments SET status = 'deployed', finished_at = now() WHERE id = $1`, []any{d.ID}, "23514", "deployments_started_at_set"},
		{"failed without finished_at", `UPDATE deployments SET status = 'failed' WHERE id = $1`, []any{running.ID}, "23514", "deployments_finished_at_iff_terminal"},
		{"bad environment", `UPDATE deployments SET environment = 'Prod' WHERE id = $1`, []any{d.ID}, "23514", "deployments_environment_format"},
		{"deployment of another app's build", `UPDATE deployments SET build_id = $2 WHERE id = $1`, []any{d.ID, foreign.ID}, "23503", "deployments_build_id_app_id_fkey"},
		{"second in_progress in one environment", `UPDATE deployments SET status = 'in_progress', started_at = now() WHERE id = $1`, []any{mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentPending).ID}, "23505", "deployments_one_in_progress_key"},
		{"id written by hand", `INSERT INTO apps (id, name) VALUES (424242, 'manual')`, nil, "428C9", ""},
	}
	for _, tc := range cases {
		_, err := pool.Exec(ctx, tc.sql, tc.args...)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != tc.code || pgErr.ConstraintName != tc.constraint {
			t.Errorf("%s: got %v, want SQLSTATE %s on %q", tc.name, err, tc.code, tc.constraint)
		}
	}
}
