package deploydb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// The list benchmarks compare deploydb's list calls with a hand-written pgx
// loop that runs the same SQL and scans the same rows into the same public
// types, the cheapest a Go caller can do: one slice grown once, nullable
// columns through pgtype values. Both read size+1 rows, as the service does
// to know whether a next page exists. allocs/op is the figure to compare
// (go test -run x -bench List -benchmem .).

// benchListRows is how many builds and deployments the benchmark app has:
// more than the largest page, so every page is full and has a next cursor.
const benchListRows = 150

// benchListFixture seeds one app with benchListRows builds (every other one
// without a source version, a few unstarted) and as many deployments.
func benchListFixture(b *testing.B) (*deploydb.Service, *pgxpool.Pool, deploydb.AppID) {
	b.Helper()
	pool := pgtest.Pool(b)
	svc := deploydb.New(pool)
	ctx := context.Background()
	var app int64
	err := pool.QueryRow(ctx, `INSERT INTO apps (name) VALUES ('bench-list') RETURNING id`).Scan(&app)
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at)
SELECT $1, CASE WHEN i % 2 = 0 THEN 'v' || i END,
       CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'succeeded' END,
       t, t, CASE WHEN i % 10 <> 0 THEN t END, CASE WHEN i % 10 <> 0 THEN t END
FROM generate_series(1, $2::int) i, LATERAL (SELECT now() - i * interval '1 minute' AS t) ts`, app, benchListRows)
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
INSERT INTO deployments (app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at)
SELECT $1, (SELECT min(id) FROM builds WHERE app_id = $1 AND status = 'succeeded'), 'production',
       CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'deployed' END,
       t, t, CASE WHEN i % 10 <> 0 THEN t END, CASE WHEN i % 10 <> 0 THEN t END
FROM generate_series(1, $2::int) i, LATERAL (SELECT now() - i * interval '1 minute' AS t) ts`, app, benchListRows)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE builds, deployments`); err != nil {
		b.Fatal(err)
	}
	return svc, pool, deploydb.AppID(app)
}

// The SQL a careful hand-written loop runs: the service's list queries.
const (
	benchSQLBuilds = `SELECT id, app_id, source_version, status, created_at, updated_at, started_at, finished_at FROM builds
WHERE app_id = $1 AND (created_at, id) < ($2::timestamptz, $3::bigint)
ORDER BY created_at DESC, id DESC LIMIT $4`
	benchSQLDeployments = `SELECT id, app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at FROM deployments
WHERE app_id = $1 AND (created_at, id) < ($2::timestamptz, $3::bigint)
ORDER BY created_at DESC, id DESC LIMIT $4`
)

// benchFirstPage is the keyset position before the first row.
var benchFirstPage = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func pgxListBuilds(ctx context.Context, pool *pgxpool.Pool, app deploydb.AppID, size int) ([]deploydb.Build, error) {
	rows, err := pool.Query(ctx, benchSQLBuilds, int64(app), benchFirstPage, int64(0), int32(size+1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]deploydb.Build, 0, size+1)
	var sv pgtype.Text
	var started, finished pgtype.Timestamptz
	for rows.Next() {
		items = append(items, deploydb.Build{})
		b := &items[len(items)-1]
		if err := rows.Scan(&b.ID, &b.AppID, &sv, &b.Status, &b.CreatedAt, &b.UpdatedAt, &started, &finished); err != nil {
			return nil, err
		}
		b.SourceVersion, b.StartedAt, b.FinishedAt = sv.String, started.Time, finished.Time
	}
	return items, rows.Err()
}

func pgxListDeployments(ctx context.Context, pool *pgxpool.Pool, app deploydb.AppID, size int) ([]deploydb.Deployment, error) {
	rows, err := pool.Query(ctx, benchSQLDeployments, int64(app), benchFirstPage, int64(0), int32(size+1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]deploydb.Deployment, 0, size+1)
	var started, finished pgtype.Timestamptz
	for rows.Next() {
		items = append(items, deploydb.Deployment{})
		d := &items[len(items)-1]
		if err := rows.Scan(&d.ID, &d.AppID, &d.BuildID, &d.Environment, &d.Status, &d.CreatedAt, &d.UpdatedAt, &started, &finished); err != nil {
			return nil, err
		}
		d.StartedAt, d.FinishedAt = started.Time, finished.Time
	}
	return items, rows.Err()
}

// benchList runs list and checks that it returned want rows.
func benchList(b *testing.B, want int, list func() (int, error)) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		n, err := list()
		if err != nil {
			b.Fatal(err)
		}
		if n != want {
			b.Fatalf("listed %d rows, want %d", n, want)
		}
	}
}

func BenchmarkListAppBuilds(b *testing.B) {
	svc, pool, app := benchListFixture(b)
	ctx := context.Background()
	for _, size := range []int{20, 100} {
		b.Run(fmt.Sprintf("deploydb/%d", size), func(b *testing.B) {
			benchList(b, size, func() (int, error) {
				p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: app}, deploydb.PageRequest{Size: size})
				if err == nil && p.NextCursor == "" {
					err = fmt.Errorf("a full page without a next cursor")
				}
				return len(p.Items), err
			})
		})
		b.Run(fmt.Sprintf("pgx/%d", size), func(b *testing.B) {
			benchList(b, size+1, func() (int, error) {
				items, err := pgxListBuilds(ctx, pool, app, size)
				return len(items), err
			})
		})
	}
}

func BenchmarkListDeployments(b *testing.B) {
	svc, pool, app := benchListFixture(b)
	ctx := context.Background()
	for _, size := range []int{20, 50, 100} {
		b.Run(fmt.Sprintf("deploydb/%d", size), func(b *testing.B) {
			benchList(b, size, func() (int, error) {
				p, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app}, deploydb.PageRequest{Size: size})
				if err == nil && p.NextCursor == "" {
					err = fmt.Errorf("a full page without a next cursor")
				}
				return len(p.Items), err
			})
		})
		b.Run(fmt.Sprintf("pgx/%d", size), func(b *testing.B) {
			benchList(b, size+1, func() (int, error) {
				items, err := pgxListDeployments(ctx, pool, app, size)
				return len(items), err
			})
		})
	}
}
