package deploydb_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

// The round-trip tests write rows with SQL (every nullable column both NULL
// and set, in alternating rows), read them back with SQL of their own, and
// check that every list call and every get returns each public type's every
// field as stored, in the order a brute-force query gives. They guard the
// hand-written scans of the list calls (column order, the one reused row)
// and the one conversion function per type.

// roundTripFixture holds what the SQL read back, by id.
type roundTripFixture struct {
	t0          time.Time
	apps        map[deploydb.AppID]deploydb.App
	builds      map[deploydb.BuildID]deploydb.Build
	deployments map[deploydb.DeploymentID]deploydb.Deployment
	operations  map[deploydb.OperationID]deploydb.Operation
	app         deploydb.AppID
	depIDs      []deploydb.DeploymentID // in creation order
}

func seedRoundTrip(t *testing.T, pool *pgxpool.Pool) *roundTripFixture {
	t.Helper()
	ctx := ctxT(t)
	fx := &roundTripFixture{t0: time.Now().UTC().Truncate(time.Microsecond).Add(-48 * time.Hour)}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO apps (name, created_at, updated_at)
SELECT 'rt-' || i, $1::timestamptz + i * interval '1 second', $1::timestamptz + (10 - i) * interval '1 hour'
FROM generate_series(1, 3) i`, fx.t0)
	if err := pool.QueryRow(ctx, `SELECT id FROM apps WHERE name = 'rt-1'`).Scan(&fx.app); err != nil {
		t.Fatal(err)
	}
	// Builds: i%4 is pending, in_progress, succeeded, failed; even rows
	// have no source version.
	exec(`INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at, idempotency_key)
SELECT $1, CASE WHEN i % 2 = 1 THEN 'v' || i END, (ARRAY['pending', 'in_progress', 'succeeded', 'failed'])[i % 4 + 1],
       c, c + interval '1 hour', CASE WHEN i % 4 <> 0 THEN c + interval '1 minute' END,
       CASE WHEN i % 4 >= 2 THEN c + (i + 2) * interval '1 minute' END, CASE WHEN i % 3 = 1 THEN 'key-' || i END
FROM generate_series(0, 7) i, LATERAL (SELECT $2::timestamptz + i * interval '1 minute' AS c) x`, fx.app, fx.t0)
	// Deployments (see the comments of TestListDeploymentsRoundTrip for
	// which rows each filter selects).
	exec(`INSERT INTO deployments (app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at, idempotency_key)
SELECT $1, (SELECT min(id) FROM builds WHERE app_id = $1), CASE WHEN i % 3 = 0 THEN 'staging' ELSE 'production' END, s,
       c, c + (12 - i) * interval '1 hour', st,
       CASE WHEN s IN ('deployed', 'failed', 'canceled') THEN COALESCE(st, c) + ((i * 7) % 12 + 1) * interval '1 minute' END,
       CASE WHEN i % 2 = 0 THEN 'key-' || i END
FROM generate_series(0, 11) i,
     LATERAL (SELECT $2::timestamptz + i * interval '1 minute' AS c,
                     CASE WHEN i = 1 THEN 'in_progress' WHEN i % 4 = 0 THEN 'pending' WHEN i % 4 = 2 THEN 'failed'
                          WHEN i = 3 THEN 'canceled' ELSE 'deployed' END AS s) x,
     LATERAL (SELECT CASE WHEN s = 'pending' OR i = 3 THEN NULL ELSE c + interval '1 minute' END AS st) y`, fx.app, fx.t0)
	// Operations: two targets on each of six deployments of app rt-2 (one
	// environment each, so that several can be in progress; their status
	// is derived from the operations, so they are kept apart from the
	// deployments the list tests count), the state cycling through six
	// states with and without claims, errors and timestamps.
	exec(`INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at)
SELECT id, 'ops', 'succeeded', $1, $1, $1, $1 FROM apps WHERE name = 'rt-2'`, fx.t0)
	exec(`INSERT INTO deployments (app_id, build_id, environment, created_at, updated_at)
SELECT b.app_id, b.id, 'ops-' || i, $1::timestamptz + i * interval '1 minute', $1::timestamptz + i * interval '1 minute'
FROM builds b JOIN apps a ON a.id = b.app_id AND a.name = 'rt-2', generate_series(0, 5) i`, fx.t0)
	exec(`INSERT INTO deployment_operations (deployment_id, target, state, attempt, last_error, claimed_by, claimed_at, started_at, finished_at, created_at, updated_at)
SELECT d.id, tg, s, CASE WHEN s = 'failed' THEN 2 ELSE 1 END,
       CASE WHEN s IN ('failed', 'cutting_over') THEN 'boom ' || k END,
       CASE WHEN s IN ('running', 'waiting_for_cutover') THEN 'worker-' || k END,
       CASE WHEN s IN ('running', 'waiting_for_cutover') THEN c + interval '2 seconds' END,
       CASE WHEN s <> 'pending' THEN c + interval '3 seconds' END,
       CASE WHEN s IN ('failed', 'completed') THEN c + interval '4 seconds' END,
       c, c + interval '5 seconds'
FROM (SELECT d.id, row_number() OVER (ORDER BY d.id) - 1 AS n FROM deployments d JOIN apps a ON a.id = d.app_id AND a.name = 'rt-2' ORDER BY d.id) d,
     unnest(ARRAY['eu-1', 'us-1']) WITH ORDINALITY AS t(tg, o),
     LATERAL (SELECT (d.n + t.o)::int % 6 AS k) kk,
     LATERAL (SELECT (ARRAY['pending', 'running', 'failed', 'waiting_for_cutover', 'completed', 'cutting_over'])[kk.k + 1] AS s,
                     $1::timestamptz + (d.n * 2 + t.o) * interval '1 minute' AS c) x`, fx.t0)
	fx.read(t, pool)
	return fx
}

// read loads every row back with SQL independent of the service's.
func (fx *roundTripFixture) read(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := ctxT(t)
	tm := func(v pgtype.Timestamptz) time.Time {
		if !v.Valid {
			return time.Time{}
		}
		return v.Time
	}
	fx.apps = map[deploydb.AppID]deploydb.App{}
	rows, err := pool.Query(ctx, `SELECT created_at, updated_at, name, id FROM apps`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a deploydb.App
		if err := rows.Scan(&a.CreatedAt, &a.UpdatedAt, &a.Name, &a.ID); err != nil {
			t.Fatal(err)
		}
		fx.apps[a.ID] = a
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	fx.builds = map[deploydb.BuildID]deploydb.Build{}
	rows, err = pool.Query(ctx, `SELECT idempotency_key, finished_at, started_at, updated_at, created_at, status, source_version, app_id, id FROM builds`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b deploydb.Build
		var fin, st pgtype.Timestamptz
		var sv, key pgtype.Text
		if err := rows.Scan(&key, &fin, &st, &b.UpdatedAt, &b.CreatedAt, &b.Status, &sv, &b.AppID, &b.ID); err != nil {
			t.Fatal(err)
		}
		b.FinishedAt, b.StartedAt, b.SourceVersion, b.IdempotencyKey = tm(fin), tm(st), sv.String, key.String
		fx.builds[b.ID] = b
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	fx.deployments = map[deploydb.DeploymentID]deploydb.Deployment{}
	fx.depIDs = nil
	rows, err = pool.Query(ctx, `SELECT canceled_at, ops_reverted, ops_stopped, ops_failed, ops_completed, ops_cutting_over, ops_waiting_for_cutover, ops_running, ops_pending,
		idempotency_key, finished_at, started_at, updated_at, created_at, status, environment, build_id, app_id, id FROM deployments ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d deploydb.Deployment
		var fin, st, canc pgtype.Timestamptz
		var key pgtype.Text
		c := &d.Operations
		if err := rows.Scan(&canc, &c.Reverted, &c.Stopped, &c.Failed, &c.Completed, &c.CuttingOver, &c.WaitingForCutover, &c.Running, &c.Pending,
			&key, &fin, &st, &d.UpdatedAt, &d.CreatedAt, &d.Status, &d.Environment, &d.BuildID, &d.AppID, &d.ID); err != nil {
			t.Fatal(err)
		}
		d.FinishedAt, d.StartedAt, d.IdempotencyKey, d.CanceledAt = tm(fin), tm(st), key.String, tm(canc)
		fx.deployments[d.ID] = d
		fx.depIDs = append(fx.depIDs, d.ID)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	fx.operations = map[deploydb.OperationID]deploydb.Operation{}
	rows, err = pool.Query(ctx, `SELECT lease_expires_at, lease_token, updated_at, created_at, finished_at, started_at, claimed_at, claimed_by, last_error, attempt, state, target, deployment_id, id FROM deployment_operations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o deploydb.Operation
		var fin, st, cl, lease pgtype.Timestamptz
		var by, le pgtype.Text
		if err := rows.Scan(&lease, &o.LeaseToken, &o.UpdatedAt, &o.CreatedAt, &fin, &st, &cl, &by, &le, &o.Attempt, &o.State, &o.Target, &o.DeploymentID, &o.ID); err != nil {
			t.Fatal(err)
		}
		o.FinishedAt, o.StartedAt, o.ClaimedAt, o.ClaimedBy, o.LastError, o.LeaseExpiresAt = tm(fin), tm(st), tm(cl), by.String, le.String, tm(lease)
		fx.operations[o.ID] = o
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
}

// fieldDiffs names every field where got and want (structs of one type)
// differ; times compare by instant.
func fieldDiffs(got, want any) []string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var out []string
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		same := gf == wf
		if gt, ok := gf.(time.Time); ok {
			same = gt.Equal(wf.(time.Time))
		}
		if !same {
			out = append(out, fmt.Sprintf("%s: got %v, want %v", g.Type().Field(i).Name, gf, wf))
		}
	}
	return out
}

// checkRows checks that got lists exactly the rows wantIDs, in that order,
// each with every field as stored.
func checkRows[ID comparable, T any](t *testing.T, what string, got []T, id func(T) ID, wantIDs []ID, stored map[ID]T) {
	t.Helper()
	if len(got) != len(wantIDs) {
		t.Errorf("%s: %d rows, want %d (%v)", what, len(got), len(wantIDs), wantIDs)
		return
	}
	for i, r := range got {
		if id(r) != wantIDs[i] {
			t.Errorf("%s: row %d is %v, want %v", what, i, id(r), wantIDs[i])
			continue
		}
		for _, d := range fieldDiffs(r, stored[wantIDs[i]]) {
			t.Errorf("%s: row %v: %s", what, wantIDs[i], d)
		}
	}
}

// walk collects every page of a list: one page of up to MaxPageSize rows,
// and then the same list again in pages of size.
func walk[T any](t *testing.T, what string, size int, list func(deploydb.PageRequest) (deploydb.Page[T], error)) (whole, paged []T) {
	t.Helper()
	p, err := list(deploydb.PageRequest{Size: deploydb.MaxPageSize})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if p.NextCursor != "" {
		t.Fatalf("%s: more than one page of %d", what, deploydb.MaxPageSize)
	}
	whole = p.Items
	req := deploydb.PageRequest{Size: size}
	for range 100 {
		p, err := list(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		paged = append(paged, p.Items...)
		if p.NextCursor == "" {
			return whole, paged
		}
		req.Cursor = p.NextCursor
	}
	t.Fatalf("%s: no last page", what)
	return nil, nil
}

// sqlIDs runs a query that returns ids.
func sqlIDs[ID any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []ID {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var ids []ID
	for rows.Next() {
		var id ID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return ids
}

func TestFixtureHasNullsAndValues(t *testing.T) {
	t.Parallel()
	_, pool := newService(t)
	fx := seedRoundTrip(t, pool)
	// Every nullable column is NULL in some rows and set in others, and
	// the rows alternate, so a scan that kept a value from the previous
	// row would be seen.
	count := func(name string, set, total int) {
		if set == 0 || set == total {
			t.Errorf("%s: set in %d of %d rows; the round-trip tests need both", name, set, total)
		}
	}
	var sv, bst, bfin, bkey, dst, dfin, dkey, le, by, cl, ost, ofin int
	for _, b := range fx.builds {
		sv, bst, bfin = sv+b2i(b.SourceVersion != ""), bst+b2i(!b.StartedAt.IsZero()), bfin+b2i(!b.FinishedAt.IsZero())
		bkey += b2i(b.IdempotencyKey != "")
	}
	for _, d := range fx.deployments {
		dst, dfin = dst+b2i(!d.StartedAt.IsZero()), dfin+b2i(!d.FinishedAt.IsZero())
		dkey += b2i(d.IdempotencyKey != "")
	}
	for _, o := range fx.operations {
		le, by, cl = le+b2i(o.LastError != ""), by+b2i(o.ClaimedBy != ""), cl+b2i(!o.ClaimedAt.IsZero())
		ost, ofin = ost+b2i(!o.StartedAt.IsZero()), ofin+b2i(!o.FinishedAt.IsZero())
	}
	count("builds.source_version", sv, len(fx.builds))
	count("builds.started_at", bst, len(fx.builds))
	count("builds.finished_at", bfin, len(fx.builds))
	count("builds.idempotency_key", bkey, len(fx.builds))
	count("deployments.idempotency_key", dkey, len(fx.deployments))
	count("deployments.started_at", dst, len(fx.deployments))
	count("deployments.finished_at", dfin, len(fx.deployments))
	count("deployment_operations.last_error", le, len(fx.operations))
	count("deployment_operations.claimed_by", by, len(fx.operations))
	count("deployment_operations.claimed_at", cl, len(fx.operations))
	count("deployment_operations.started_at", ost, len(fx.operations))
	count("deployment_operations.finished_at", ofin, len(fx.operations))
	if len(fx.apps) != 3 || len(fx.builds) != 9 || len(fx.deployments) != 18 || len(fx.operations) != 12 {
		t.Errorf("fixture has %d apps, %d builds, %d deployments, %d operations; want 3, 8, 12, 12",
			len(fx.apps), len(fx.builds), len(fx.deployments), len(fx.operations))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestListAndGetRoundTrip(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	fx := seedRoundTrip(t, pool)
	ctx := ctxT(t)

	appIDs := sqlIDs[deploydb.AppID](t, pool, `SELECT id FROM apps ORDER BY created_at DESC, id DESC`)
	whole, paged := walk(t, "ListAppsPaged", 2, func(p deploydb.PageRequest) (deploydb.Page[deploydb.App], error) {
		return svc.ListAppsPaged(ctx, p)
	})
	appID := func(a deploydb.App) deploydb.AppID { return a.ID }
	checkRows(t, "ListAppsPaged", whole, appID, appIDs, fx.apps)
	checkRows(t, "ListAppsPaged by 2", paged, appID, appIDs, fx.apps)

	buildIDs := sqlIDs[deploydb.BuildID](t, pool, `SELECT id FROM builds WHERE app_id = $1 ORDER BY created_at DESC, id DESC`, fx.app)
	wholeB, pagedB := walk(t, "ListAppBuildsPaged", 3, func(p deploydb.PageRequest) (deploydb.Page[deploydb.Build], error) {
		return svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: fx.app}, p)
	})
	buildID := func(b deploydb.Build) deploydb.BuildID { return b.ID }
	checkRows(t, "ListAppBuildsPaged", wholeB, buildID, buildIDs, fx.builds)
	checkRows(t, "ListAppBuildsPaged by 3", pagedB, buildID, buildIDs, fx.builds)
	first, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: fx.app}, 5)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "ListAppBuilds 5", first, buildID, buildIDs[:5], fx.builds)

	depID := func(d deploydb.Deployment) deploydb.DeploymentID { return d.ID }
	succ, err := svc.ListSuccessfulDeployments(ctx, fx.app, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "ListSuccessfulDeployments 3", succ, depID,
		sqlIDs[deploydb.DeploymentID](t, pool, `SELECT id FROM deployments WHERE app_id = $1 AND status = 'deployed' ORDER BY finished_at DESC, id DESC LIMIT 3`, fx.app),
		fx.deployments)

	opID := func(o deploydb.Operation) deploydb.OperationID { return o.ID }
	for _, d := range fx.depIDs {
		ops, err := svc.ListDeploymentOperations(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, fmt.Sprintf("ListDeploymentOperations(%d)", d), ops, opID,
			sqlIDs[deploydb.OperationID](t, pool, `SELECT id FROM deployment_operations WHERE deployment_id = $1 ORDER BY target`, d),
			fx.operations)
	}
	for _, target := range []string{"eu-1", "us-1"} {
		ops, err := svc.ListActiveOperationsByTarget(ctx, target, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := sqlIDs[deploydb.OperationID](t, pool, `SELECT id FROM deployment_operations
WHERE target = $1 AND state IN ('running', 'waiting_for_cutover', 'cutting_over') ORDER BY created_at, id`, target)
		if len(want) == 0 {
			t.Fatalf("no active operations on %s in the fixture", target)
		}
		checkRows(t, "ListActiveOperationsByTarget("+target+")", ops, opID, want, fx.operations)
	}

	// The gets go through the generated single-row queries and the same
	// conversion functions.
	for id, want := range fx.apps {
		got, err := svc.GetApp(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range fieldDiffs(got, want) {
			t.Errorf("GetApp(%d): %s", id, d)
		}
	}
	for id, want := range fx.builds {
		got, err := svc.GetBuild(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range fieldDiffs(got, want) {
			t.Errorf("GetBuild(%d): %s", id, d)
		}
	}
	for id, want := range fx.deployments {
		got, err := svc.GetDeploymentWithBuild(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range fieldDiffs(got.Deployment, want) {
			t.Errorf("GetDeploymentWithBuild(%d).Deployment: %s", id, d)
		}
		for _, d := range fieldDiffs(got.Build, fx.builds[want.BuildID]) {
			t.Errorf("GetDeploymentWithBuild(%d).Build: %s", id, d)
		}
	}
	for id, want := range fx.operations {
		got, err := svc.GetOperation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range fieldDiffs(got, want) {
			t.Errorf("GetOperation(%d): %s", id, d)
		}
	}
}

// TestListDeploymentsRoundTrip runs every query ListDeployments can choose,
// in both directions, against a brute-force query with the same meaning.
// Deployment i (0-11) was created at t0+i min to environment staging when
// i%3 == 0; i=1 is in_progress, i%4 == 0 pending, i%4 == 2 failed, i=3
// canceled, the others deployed; updated_at is created_at+(12-i) h, the
// reverse of the creation order; deployed rows 5 and 11 finished at the same
// instant, so the id breaks the tie.
func TestListDeploymentsRoundTrip(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	fx := seedRoundTrip(t, pool)
	ctx := ctxT(t)
	at := func(d time.Duration) time.Time { return fx.t0.Add(d) }
	cases := []struct {
		name   string
		filter deploydb.DeploymentFilter
		where  string // over $1 (the app) and the args
		order  string
		args   []any
		want   int // rows selected
	}{
		{"created", deploydb.DeploymentFilter{}, "true", "created_at", nil, 12},
		{"environment", deploydb.DeploymentFilter{Environment: "staging"}, "environment = 'staging'", "created_at", nil, 4},
		{"status", deploydb.DeploymentFilter{Status: deploydb.DeploymentDeployed}, "status = 'deployed'", "created_at", nil, 4},
		{"updated range", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: at(3*time.Hour + 9*time.Minute), UpdatedBefore: at(9*time.Hour + 3*time.Minute)},
			"updated_at >= $2 AND updated_at < $3", "updated_at", []any{at(3*time.Hour + 9*time.Minute), at(9*time.Hour + 3*time.Minute)}, 6},
		{"finished range", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentDeployed, FinishedAfter: at(10 * time.Minute), FinishedBefore: at(18 * time.Minute)},
			"status = 'deployed' AND finished_at >= $2 AND finished_at < $3", "finished_at", []any{at(10 * time.Minute), at(18 * time.Minute)}, 2},
		{"finished, tie", deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: deploydb.DeploymentDeployed},
			"status = 'deployed'", "finished_at", nil, 4},
	}
	depID := func(d deploydb.Deployment) deploydb.DeploymentID { return d.ID }
	for _, tc := range cases {
		for _, sort := range []deploydb.SortDirection{deploydb.SortDesc, deploydb.SortAsc} {
			f := tc.filter
			f.AppID, f.Sort = fx.app, sort
			what := fmt.Sprintf("ListDeployments %s %s", tc.name, sort)
			want := sqlIDs[deploydb.DeploymentID](t, pool, fmt.Sprintf(`SELECT id FROM deployments WHERE app_id = $1 AND %s ORDER BY %s %s, id %[3]s`,
				tc.where, tc.order, sort), append([]any{fx.app}, tc.args...)...)
			if len(want) != tc.want {
				t.Fatalf("%s: the fixture has %d rows for it, want %d", what, len(want), tc.want)
			}
			whole, paged := walk(t, what, 3, func(p deploydb.PageRequest) (deploydb.Page[deploydb.Deployment], error) {
				return svc.ListDeployments(ctx, f, p)
			})
			checkRows(t, what, whole, depID, want, fx.deployments)
			checkRows(t, what+" by 3", paged, depID, want, fx.deployments)
		}
	}
}
