package deploydb

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/dbsqlc"
)

// Lists are read here instead of through internal/dbsqlc's List methods. A
// generated :many loop declares its row inside the loop and hands the row's
// field addresses to Rows.Scan, so every row is a heap allocation of its
// own, and the slice grows by appending; converting that slice to the
// public type then allocates it a second time. listRows runs the same
// generated SQL text (sqlc still checks it against the schema) and scans
// every row into one reused generated row, which the type's one conversion
// function (appFromRow, buildFromRow, ...) copies into a slice made once.
//
// The scan functions name the columns in the order of the generated
// SELECT; a query whose column list changes makes every list test fail
// (pgx refuses a different number of destinations), and the round-trip
// tests compare every field of every list with the row read back by SQL.

// listRows runs sql with args and returns its rows converted by conv, in a
// slice made with room for capacity rows. It never returns nil on success,
// so an empty list is an empty slice.
func listRows[R, T any](ctx context.Context, db dbsqlc.DBTX, capacity int, scan func(pgx.Rows, *R) error, conv func(R) T, sql string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]T, 0, capacity)
	var r R // reused: every scan overwrites each field, NULLs included
	for rows.Next() {
		if err := scan(rows, &r); err != nil {
			return nil, err
		}
		out = append(out, conv(r))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func scanApp(rows pgx.Rows, a *dbsqlc.App) error {
	return rows.Scan(&a.ID, &a.Name, &a.CreatedAt, &a.UpdatedAt)
}

func scanBuild(rows pgx.Rows, b *dbsqlc.Build) error {
	return rows.Scan(&b.ID, &b.AppID, &b.SourceVersion, &b.Status, &b.CreatedAt, &b.UpdatedAt, &b.StartedAt, &b.FinishedAt, &b.IdempotencyKey)
}

func scanDeployment(rows pgx.Rows, d *dbsqlc.Deployment) error {
	return rows.Scan(&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &d.StartedAt, &d.FinishedAt, &d.IdempotencyKey,
		&d.OpsPending, &d.OpsRunning, &d.OpsWaitingForCutover, &d.OpsCuttingOver, &d.OpsCompleted, &d.OpsFailed, &d.OpsStopped, &d.OpsReverted, &d.CanceledAt)
}

func scanOperation(rows pgx.Rows, o *dbsqlc.DeploymentOperation) error {
	return rows.Scan(&o.ID, &o.DeploymentID, &o.Target, &o.State, &o.Attempt, &o.LastError, &o.ClaimedBy, &o.ClaimedAt,
		&o.StartedAt, &o.FinishedAt, &o.CreatedAt, &o.UpdatedAt, &o.LeaseToken, &o.LeaseExpiresAt)
}

// deploymentListQuery returns the generated query that serves l and its
// arguments, in the order of the query's parameters ($1, $2, ...): the
// ascending and descending forms of each query take the same ones.
func deploymentListQuery(appID AppID, l deploymentList, pos position, n int32) (string, []any) {
	f, app := l.f, int64(appID)
	switch f.OrderBy {
	case OrderByUpdatedAt:
		return pick(l.asc, dbsqlc.ListUpdatedDeploymentsPagedAsc, dbsqlc.ListUpdatedDeploymentsPaged),
			[]any{app, l.start, l.end, pos.at, pos.id, n}
	case OrderByFinishedAt:
		return pick(l.asc, dbsqlc.ListFinishedDeploymentsPagedAsc, dbsqlc.ListFinishedDeploymentsPaged),
			[]any{app, string(f.Status), l.start, l.end, pos.at, pos.id, n}
	}
	switch {
	case f.Environment != "":
		return pick(l.asc, dbsqlc.ListEnvironmentDeploymentsPagedAsc, dbsqlc.ListEnvironmentDeploymentsPaged),
			[]any{app, f.Environment, pos.at, pos.id, n}
	case f.Status != "":
		return pick(l.asc, dbsqlc.ListStatusDeploymentsPagedAsc, dbsqlc.ListStatusDeploymentsPaged),
			[]any{app, string(f.Status), pos.at, pos.id, n}
	}
	return pick(l.asc, dbsqlc.ListAppDeploymentsPagedAsc, dbsqlc.ListAppDeploymentsPaged),
		[]any{app, pos.at, pos.id, n}
}

func pick(asc bool, ascSQL, descSQL string) string {
	if asc {
		return ascSQL
	}
	return descSQL
}
