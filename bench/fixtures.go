package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/seed"
)

// fixtures are the inputs of the workloads, prepared once after seeding.
type fixtures struct {
	maxDeployment int64 // W1 reads ids 1..maxDeployment (the seeded ones)
	hotApp        int64
	typicalApp    int64 // the app with the median number of deployments
	hotCount      int64 // deployments of the hot app
	typicalCount  int64

	pages map[string]*pageArgs // W2 pages by name

	w3Pairs []w3Pair // (app, succeeded build) of apps made for W3
	w3Apps  []int64

	w4App  int64
	w4Pool []int64 // pending deployments without operations

	w5Apps map[string]int64 // impl -> app its bulk inserts go to
	w5Rows []deploydb.BuildRow
}

type w3Pair struct{ app, build int64 }

// firstPage is the position the service starts a first page at: every row
// sorts after it.
var firstPage = pageArgs{at: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), id: math.MinInt64}

func prepareFixtures(ctx context.Context, pool *pgxpool.Pool, sizes seed.Config, depths []int, w4PoolSize, w5Rows int, implNames []string) (*fixtures, error) {
	f := &fixtures{maxDeployment: int64(sizes.Deployments), hotApp: seed.HotAppID, pages: map[string]*pageArgs{}}
	err := pool.QueryRow(ctx, `SELECT app_id, n FROM (
			SELECT app_id, count(*) AS n FROM deployments WHERE app_id <> $1 GROUP BY app_id) c
		ORDER BY n, app_id OFFSET (SELECT count(DISTINCT app_id) / 2 FROM deployments WHERE app_id <> $1) LIMIT 1`,
		f.hotApp).Scan(&f.typicalApp, &f.typicalCount)
	if err != nil {
		return nil, fmt.Errorf("find a typical app: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE app_id = $1`, f.hotApp).Scan(&f.hotCount); err != nil {
		return nil, err
	}

	// W2 pages: first pages of the hot and the typical app, and pages of
	// the hot app at each depth, by keyset (with the service's cursor,
	// found by walking) and by OFFSET.
	f.pages["hot/first"] = &pageArgs{app: f.hotApp, at: firstPage.at, id: firstPage.id}
	f.pages["typical/first"] = &pageArgs{app: f.typicalApp, at: firstPage.at, id: firstPage.id}
	svc := deploydb.New(pool)
	cursor, walked := "", 0
	for _, d := range depths {
		if int64(d)+pageSize > f.hotCount {
			return nil, fmt.Errorf("depth %d: the hot app has only %d deployments", d, f.hotCount)
		}
		p := &pageArgs{app: f.hotApp, offset: d}
		err := pool.QueryRow(ctx, `SELECT created_at, id FROM deployments WHERE app_id = $1
			ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1`, f.hotApp, d-1).Scan(&p.at, &p.id)
		if err != nil {
			return nil, fmt.Errorf("depth %d: %w", d, err)
		}
		for ; walked < d; walked += pageSize {
			page, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: deploydb.AppID(f.hotApp)}, deploydb.PageRequest{Size: pageSize, Cursor: cursor})
			if err != nil {
				return nil, fmt.Errorf("walk to depth %d: %w", d, err)
			}
			cursor = page.NextCursor
		}
		p.cursor = cursor
		f.pages[depthName(d)] = p
		off := *p
		f.pages["offset/"+depthName(d)] = &off
	}

	// W3: apps with succeeded builds of their own, so that created
	// deployments can be deleted after each cell without touching the
	// seeded rows.
	rows, err := pool.Query(ctx, `WITH a AS (
			INSERT INTO apps (name) SELECT 'bench-w3-' || g FROM generate_series(1, 20) g RETURNING id)
		INSERT INTO builds (app_id, source_version, status, started_at, finished_at)
		SELECT a.id, md5(a.id::text || '-' || g), 'succeeded', now() - interval '1 hour', now() - interval '50 minutes'
		FROM a, generate_series(1, 5) g
		RETURNING app_id, id`)
	if err != nil {
		return nil, fmt.Errorf("W3 fixtures: %w", err)
	}
	f.w3Pairs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (w3Pair, error) {
		var p w3Pair
		return p, r.Scan(&p.app, &p.build)
	})
	if err != nil {
		return nil, fmt.Errorf("W3 fixtures: %w", err)
	}
	seen := map[int64]bool{}
	for _, p := range f.w3Pairs {
		if !seen[p.app] {
			seen[p.app] = true
			f.w3Apps = append(f.w3Apps, p.app)
		}
	}

	// W4: a pool of pending deployments of an app made for it; each
	// operation cancels one, and the pool is reset after each cell.
	var w4Build int64
	err = pool.QueryRow(ctx, `WITH a AS (INSERT INTO apps (name) VALUES ('bench-w4') RETURNING id)
		INSERT INTO builds (app_id, source_version, status, started_at, finished_at)
		SELECT id, 'w4', 'succeeded', now() - interval '1 hour', now() - interval '50 minutes' FROM a
		RETURNING app_id, id`).Scan(&f.w4App, &w4Build)
	if err != nil {
		return nil, fmt.Errorf("W4 fixtures: %w", err)
	}
	rows, err = pool.Query(ctx, `INSERT INTO deployments (app_id, build_id, environment)
		SELECT $1, $2, 'production' FROM generate_series(1, $3) RETURNING id`, f.w4App, w4Build, w4PoolSize)
	if err != nil {
		return nil, fmt.Errorf("W4 pool: %w", err)
	}
	if f.w4Pool, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return nil, fmt.Errorf("W4 pool: %w", err)
	}

	// W5: one app per implementation, so that each one's rows can be
	// compared and deleted.
	f.w5Apps = map[string]int64{}
	for _, name := range implNames {
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO apps (name) VALUES ($1) RETURNING id`, "bench-w5-"+name).Scan(&id); err != nil {
			return nil, fmt.Errorf("W5 fixtures: %w", err)
		}
		f.w5Apps[name] = id
	}
	base := seed.Epoch.Add(seed.Span)
	for i := 0; i < w5Rows; i++ {
		sv := fmt.Sprintf("%040x", uint64(i)*0x9E3779B97F4A7C15)
		at := base.Add(time.Duration(i) * time.Second)
		started, finished := at.Add(10*time.Second), at.Add(5*time.Minute)
		f.w5Rows = append(f.w5Rows, deploydb.BuildRow{SourceVersion: sv, Status: deploydb.BuildSucceeded,
			CreatedAt: at, UpdatedAt: finished, StartedAt: started, FinishedAt: finished})
	}
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) apps, builds, deployments"); err != nil {
		return nil, err
	}
	return f, nil
}

func depthName(d int) string {
	switch {
	case d%1000 == 0:
		return fmt.Sprintf("hot/%dk", d/1000)
	}
	return fmt.Sprintf("hot/%d", d)
}

// w5RowsFor returns the W5 rows with the app of impl.
func (f *fixtures) w5RowsFor(impl string) []deploydb.BuildRow {
	rows := append([]deploydb.BuildRow(nil), f.w5Rows...)
	for i := range rows {
		rows[i].AppID = deploydb.AppID(f.w5Apps[impl])
	}
	return rows
}

// resetW4 checks that exactly `changed` deployments of the W4 pool were
// canceled (one per operation) and puts them back to pending.
func (f *fixtures) resetW4(ctx context.Context, pool *pgxpool.Pool, changed int64) error {
	tag, err := pool.Exec(ctx, `UPDATE deployments SET status = 'pending', started_at = NULL, finished_at = NULL, updated_at = created_at
		WHERE app_id = $1 AND status <> 'pending'`, f.w4App)
	if err != nil {
		return fmt.Errorf("reset the W4 pool: %w", err)
	}
	if tag.RowsAffected() != changed {
		return fmt.Errorf("W4: %d operations succeeded but %d deployments changed", changed, tag.RowsAffected())
	}
	return nil
}

// cleanW3 deletes the deployments W3 created.
func (f *fixtures) cleanW3(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM deployments WHERE app_id = ANY($1)`, f.w3Apps)
	return tag.RowsAffected(), err
}

// cleanW5 deletes the builds W5 inserted for impl and returns how many
// there were.
func (f *fixtures) cleanW5(ctx context.Context, pool *pgxpool.Pool, impl string) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM builds WHERE app_id = $1`, f.w5Apps[impl])
	return tag.RowsAffected(), err
}
