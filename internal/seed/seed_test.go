package seed_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/internal/seed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func small(s uint64) seed.Config {
	return seed.Config{Apps: 40, Builds: 20_000, Deployments: 20_000, Operations: 3_000, Seed: s, Streams: 3}
}

func run(t *testing.T, pool *pgxpool.Pool, cfg seed.Config) seed.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := seed.Run(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// digest hashes every row of the four tables, in id order.
func digest(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var d string
	err := pool.QueryRow(context.Background(), `SELECT md5(
		(SELECT string_agg(a::text, '|' ORDER BY id) FROM apps a) ||
		(SELECT string_agg(b::text, '|' ORDER BY id) FROM builds b) ||
		(SELECT string_agg(d::text, '|' ORDER BY id) FROM deployments d) ||
		(SELECT string_agg(o::text, '|' ORDER BY id) FROM deployment_operations o))`).Scan(&d)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSameSeedSameRows(t *testing.T) {
	t.Parallel()
	a, b := pgtest.Pool(t), pgtest.Pool(t)
	cfgA := small(7)
	cfgB := small(7)
	cfgB.Streams = 1 // the rows do not depend on how the load is split
	run(t, a, cfgA)
	run(t, b, cfgB)
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Fatalf("same seed, different rows: %s vs %s", da, db)
	}
	// Reset reloads the same rows; another seed gives other rows.
	cfgA.Reset = true
	run(t, a, cfgA)
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Fatalf("reset and reseed changed the rows")
	}
	cfgB.Seed, cfgB.Reset = 8, true
	run(t, b, cfgB)
	if da, db := digest(t, a), digest(t, b); da == db {
		t.Fatalf("seeds 7 and 8 gave the same rows")
	}
}

func TestRefusesNonEmptyDatabase(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	cfg := seed.Config{Apps: 2, Builds: 10, Deployments: 10, Seed: 1}
	run(t, pool, cfg)
	if _, err := seed.Run(context.Background(), pool, cfg); !errors.Is(err, seed.ErrNotEmpty) {
		t.Fatalf("second run without reset: %v, want ErrNotEmpty", err)
	}
	for _, bad := range []seed.Config{
		{Apps: 0},
		{Apps: 1, Builds: 0, Deployments: 1},
		{Apps: 1, Builds: 1, Deployments: 1, Operations: 2},
		{Apps: 1, Builds: 1, Deployments: 1, Operations: 6},
	} {
		if _, err := seed.Run(context.Background(), pool, bad); err == nil || errors.Is(err, seed.ErrNotEmpty) {
			t.Errorf("%+v: %v, want a validation error", bad, err)
		}
	}
}

func TestDataSetShape(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	cfg := small(1)
	var progress []seed.Progress
	cfg.Progress = func(p seed.Progress) { progress = append(progress, p) }
	res := run(t, pool, cfg)
	if res.Rows() != int64(cfg.Apps+cfg.Builds+cfg.Deployments+cfg.Operations) || res.RowsPerSecond() <= 0 {
		t.Fatalf("result %+v", res)
	}
	if last := progress[len(progress)-1]; last.Phase != "done" || last.Done != res.Rows() || last.Total != res.Rows() {
		t.Fatalf("last progress %+v", last)
	}
	ctx := context.Background()
	q := func(sql string, args ...any) float64 {
		t.Helper()
		var f float64
		if err := pool.QueryRow(ctx, sql, args...).Scan(&f); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return f
	}
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tol)
		}
	}
	near("hot app share of builds", q(`SELECT avg((app_id = 1)::int) FROM builds`), 0.2, 0.02)
	near("hot app share of deployments", q(`SELECT avg((app_id = 1)::int) FROM deployments`), 0.2, 0.02)
	for _, c := range []struct {
		sql  string
		want float64
	}{
		{`SELECT avg((status = 'succeeded')::int) FROM builds`, 0.80},
		{`SELECT avg((status = 'failed')::int) FROM builds`, 0.10},
		{`SELECT avg((status = 'canceled')::int) FROM builds`, 0.05},
		{`SELECT avg((finished_at IS NULL)::int) FROM builds`, 0.05},
		{`SELECT avg((status = 'deployed')::int) FROM deployments`, 0.80},
		{`SELECT avg((status = 'failed')::int) FROM deployments`, 0.10},
		{`SELECT avg((status = 'canceled')::int) FROM deployments`, 0.05},
		{`SELECT avg((finished_at IS NULL)::int) FROM deployments`, 0.05},
	} {
		near(c.sql, q(c.sql), c.want, 0.015)
	}
	if n := q(`SELECT count(*) FROM deployments WHERE status = 'in_progress'`); n < float64(cfg.Apps) {
		t.Errorf("only %v deployments in progress", n)
	}
	// Every deployment deploys a succeeded build of its app made before it.
	if n := q(`SELECT count(*) FROM deployments d JOIN builds b ON b.id = d.build_id
		WHERE b.app_id <> d.app_id OR b.status <> 'succeeded' OR b.created_at >= d.created_at`); n != 0 {
		t.Errorf("%v deployments deploy an unsuitable build", n)
	}
	if n := q(`SELECT count(*) FROM apps a WHERE NOT EXISTS (SELECT 1 FROM builds b WHERE b.app_id = a.id AND b.status = 'succeeded')`); n != 0 {
		t.Errorf("%v apps without a succeeded build", n)
	}
	// Identity sequences continue after the seeded ids.
	svc := deploydb.New(pool)
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "after-seed"})
	if err != nil || app.ID != deploydb.AppID(cfg.Apps+1) {
		t.Fatalf("CreateApp after seeding: id %d, %v", app.ID, err)
	}
	// A deployment with operations stores what its operations derive to.
	rows, err := pool.Query(ctx, `SELECT d.status, d.started_at, d.finished_at, array_agg(o.state ORDER BY o.id),
			min(o.started_at), max(o.finished_at), count(*)
		FROM deployments d JOIN deployment_operations o ON o.deployment_id = d.id
		GROUP BY d.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	groups := 0
	seen := map[deploydb.DeploymentStatus]bool{}
	for rows.Next() {
		var (
			st                            deploydb.DeploymentStatus
			started, finished, minS, maxF *time.Time
			states                        []string
			n                             int
		)
		if err := rows.Scan(&st, &started, &finished, &states, &minS, &maxF, &n); err != nil {
			t.Fatal(err)
		}
		groups++
		seen[st] = true
		ops := make([]deploydb.OperationState, len(states))
		for i, s := range states {
			ops[i] = deploydb.OperationState(s)
		}
		if got := deploydb.DeriveDeploymentStatus(ops...); got != st || n != seed.TargetsPerDeployment {
			t.Fatalf("deployment %s with operations %v (%d) derives to %s", st, states, n, got)
		}
		if !sameTime(started, minS) {
			t.Fatalf("%s: started_at %v, operations started %v", st, started, minS)
		}
		if st.Terminal() && !sameTime(finished, maxF) {
			t.Fatalf("%s: finished_at %v, operations finished %v", st, finished, maxF)
		}
	}
	if groups != cfg.Operations/seed.TargetsPerDeployment || len(seen) < 4 {
		t.Fatalf("%d deployments with operations, statuses %v", groups, seen)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// Without the privilege to skip triggers, the foreign keys are checked row
// by row, and the rows are the same.
func TestLoadsWithoutSuperuser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	role := fmt.Sprintf("seeder_%d", time.Now().UnixNano()%1e9)
	for _, stmt := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'seeder-pw'", // servers with password auth (Docker) need one
		"GRANT SELECT, INSERT, TRUNCATE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT SELECT, UPDATE, USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = admin.Exec(context.Background(), "DROP ROLE "+role)
	})
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User = role
	cfg.ConnConfig.Password = "seeder-pw"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := seed.Config{Apps: 5, Builds: 2_000, Deployments: 2_000, Operations: 300, Seed: 3}
	if res := run(t, pool, c); res.KeysCheckedAfter {
		t.Fatalf("a plain role skipped the triggers")
	}
	ref := pgtest.Pool(t)
	if res := run(t, ref, c); !res.KeysCheckedAfter {
		t.Fatalf("the superuser kept the triggers on")
	}
	if a, b := digest(t, admin), digest(t, ref); a != b {
		t.Fatalf("checked and unchecked loads differ")
	}
}
