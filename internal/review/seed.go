package review

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	seedpkg "github.com/deploydb/deploydb/internal/seed"
)

// Seed sizes at scale 1: large enough that a sequential scan or a sort of
// a whole app's rows is visibly worse than an index range scan (hot-app
// alone has 60,000 builds), small enough to load in about 15 seconds on
// two cores. About 80% of the builds succeed and each succeeded build is
// deployed once; half the deployments have one to three operations.
const (
	seedApps   = 40_000
	seedBuilds = 300_000
)

// seedEpoch anchors every seeded timestamp, so the data set is the same on
// every run.
var seedEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seedSQL fills every table with set-based statements. Randomness comes
// from hashint8 of the row number, so the rows do not depend on the plan,
// the server or the day. One app, hot-app, holds about 20% of the builds
// and deployments; the others share the rest, a handful each. Builds and
// deployments follow a realistic status mix over the year before the
// epoch, environments are production, staging and review-1..20, and about
// half of the deployments were rolled out to one to three of 40 targets,
// with operation states that match the deployment's status. Every row
// satisfies the CHECK constraints, the foreign keys and the one
// in-progress-deployment-per-environment index. Rows are inserted in
// creation order, as production inserts them. %[1]d is the number of apps,
// %[2]d of builds, %[3]s the epoch.
const seedSQL = `
CREATE FUNCTION pg_temp.r(g bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (hashint8(g * 1000003 + k)::bigint & 2147483647)::float8 / 2147483648.0 $$;

INSERT INTO apps (name, created_at, updated_at)
SELECT CASE WHEN g = 1 THEN 'hot-app' ELSE 'app-' || g END, t, t
FROM (SELECT g, timestamptz '%[3]s' - interval '400 days' * CASE WHEN g = 1 THEN 1 ELSE pg_temp.r(g, 1) END AS t
      FROM generate_series(1, %[1]d) AS g) s
ORDER BY g;

INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at)
SELECT app_id, md5(g::text), status, created_at, coalesce(finished_at, started_at, created_at), started_at, finished_at
FROM (
  SELECT g, app_id, status, created_at, started_at,
         CASE WHEN status IN ('succeeded', 'failed', 'canceled')
              THEN coalesce(started_at, created_at) + interval '1 second' * (60 + 1140 * pg_temp.r(g, 7)) END AS finished_at
  FROM (
    SELECT g, app_id, status, created_at,
           CASE WHEN status IN ('in_progress', 'succeeded', 'failed') OR (status = 'canceled' AND pg_temp.r(g, 6) < 0.5)
                THEN created_at + interval '1 second' * (5 + 60 * pg_temp.r(g, 6)) END AS started_at
    FROM (
      SELECT g,
             CASE WHEN pg_temp.r(g, 2) < 0.2 THEN 1 ELSE 2 + floor(pg_temp.r(g, 3) * (%[1]d - 1))::bigint END AS app_id,
             CASE WHEN pg_temp.r(g, 5) < 0.80 THEN 'succeeded' WHEN pg_temp.r(g, 5) < 0.90 THEN 'failed'
                  WHEN pg_temp.r(g, 5) < 0.95 THEN 'canceled' WHEN pg_temp.r(g, 5) < 0.975 THEN 'pending'
                  ELSE 'in_progress' END AS status,
             timestamptz '%[3]s' - interval '365 days' * pg_temp.r(g, 4) AS created_at
      FROM generate_series(1, %[2]d) AS g) a) b) c
ORDER BY created_at, g;

INSERT INTO deployments (app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at)
SELECT app_id, build_id, environment, status, created_at, coalesce(finished_at, started_at, created_at), started_at, finished_at
FROM (
  SELECT *, CASE WHEN status IN ('deployed', 'failed', 'canceled')
                 THEN coalesce(started_at, created_at) + interval '1 second' * (30 + 570 * pg_temp.r(build_id, 13)) END AS finished_at
  FROM (
    SELECT *, CASE WHEN status IN ('in_progress', 'deployed', 'failed') OR (status = 'canceled' AND pg_temp.r(build_id, 12) < 0.3)
                   THEN created_at + interval '1 second' * (10 + 60 * pg_temp.r(build_id, 12)) END AS started_at
    FROM (
      SELECT app_id, build_id, environment, created_at,
             CASE WHEN rn = 1 AND pg_temp.r(build_id, 11) < 0.05 THEN 'in_progress'
                  WHEN pg_temp.r(build_id, 10) < 0.82 THEN 'deployed' WHEN pg_temp.r(build_id, 10) < 0.92 THEN 'failed'
                  WHEN pg_temp.r(build_id, 10) < 0.97 THEN 'canceled' ELSE 'pending' END AS status
      FROM (
        SELECT *, row_number() OVER (PARTITION BY app_id, environment ORDER BY created_at DESC, build_id DESC) AS rn
        FROM (
          SELECT b.app_id, b.id AS build_id,
                 b.finished_at + interval '1 second' * (60 + 3540 * pg_temp.r(b.id, 8)) AS created_at,
                 CASE WHEN pg_temp.r(b.id, 9) < 0.55 THEN 'production' WHEN pg_temp.r(b.id, 9) < 0.85 THEN 'staging'
                      ELSE 'review-' || (1 + floor(pg_temp.r(b.id, 14) * 20))::int END AS environment
          FROM builds b WHERE b.status = 'succeeded') s) w) st) t) u
ORDER BY created_at, build_id;

INSERT INTO deployment_operations (deployment_id, target, state, attempt, last_error, claimed_by, claimed_at,
                                   started_at, finished_at, created_at, updated_at)
SELECT id, target, state, attempt, last_error,
       CASE WHEN started_at IS NOT NULL THEN 'worker-' || (id %% 8) END,
       started_at, started_at, finished_at, created_at, coalesce(finished_at, started_at, created_at)
FROM (
  SELECT d.id, 'cluster-' || ((d.id * 7 + j * 13) %% 40) AS target, d.created_at, x.state,
         CASE WHEN x.state = 'failed' THEN 1 + (d.id %% 2)::int ELSE 1 END AS attempt,
         CASE WHEN x.state = 'failed' THEN 'health check failed on target ' || j END AS last_error,
         CASE WHEN x.state = 'pending' OR (x.state = 'stopped' AND d.started_at IS NULL) THEN NULL
              ELSE coalesce(d.started_at, d.created_at) + interval '1 second' * j END AS started_at,
         CASE WHEN x.state IN ('completed', 'failed', 'stopped')
              THEN greatest(d.finished_at, coalesce(d.started_at, d.created_at) + interval '1 second' * j) END AS finished_at
  FROM deployments d
  CROSS JOIN LATERAL generate_series(0, floor(pg_temp.r(d.id, 21) * 3)::int) AS j
  CROSS JOIN LATERAL (SELECT CASE d.status
      WHEN 'deployed' THEN 'completed'
      WHEN 'failed' THEN CASE WHEN j = 0 THEN 'failed' ELSE 'completed' END
      WHEN 'canceled' THEN 'stopped'
      WHEN 'pending' THEN 'pending'
      ELSE (ARRAY['running', 'waiting_for_cutover', 'cutting_over'])[1 + j] END AS state) x
  WHERE pg_temp.r(d.id, 20) < 0.5) o
ORDER BY created_at, id, target
`

// seedStats are the figures of the seeded data set.
type seedStats struct {
	// Filled are the NOT NULL columns without a default that the seed does
	// not know; they were filled with a constant of their type.
	Filled       []filledColumn
	Scale        float64
	Rows         map[string]int64 // per table
	HotAppShare  float64          // of the builds
	TriggersOff  bool             // foreign-key triggers skipped while loading
	Duration     time.Duration
	StatsTarget  int
	ExactSamples bool // every row was sampled by ANALYZE
}

// seedTables lists the tables the seed fills, in load order.
var seedTables = []string{"apps", "builds", "deployments", "deployment_operations"}

// seed loads the data set at the given scale into the migrated database
// conn is connected to, then vacuums and analyzes it.
func seed(ctx context.Context, conn *pgx.Conn, scale float64) (seedStats, error) {
	start := time.Now()
	st := seedStats{Scale: scale, Rows: map[string]int64{}}
	apps := int(math.Max(50, math.Round(seedApps*scale)))
	builds := int(math.Max(500, math.Round(seedBuilds*scale)))
	simple := pgx.QueryExecModeSimpleProtocol

	// Per-row foreign-key triggers would double the load time; a superuser
	// may skip them (CHECK constraints still apply), and the references
	// are verified with one query afterwards.
	_, err := conn.Exec(ctx, "SET session_replication_role = replica", simple)
	st.TriggersOff = err == nil
	for _, set := range []string{"SET jit = off", "SET work_mem = '64MB'", "SET maintenance_work_mem = '128MB'"} {
		if _, err := conn.Exec(ctx, set, simple); err != nil {
			return st, fmt.Errorf("seed: %s: %w", set, err)
		}
	}
	filled, err := fillUnknownColumns(ctx, conn)
	st.Filled = filled
	if err != nil {
		return st, err
	}
	script := fmt.Sprintf(seedSQL, apps, builds, seedEpoch.Format("2006-01-02 15:04:05Z07:00"))
	for _, stmt := range strings.Split(script, ";\n\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := conn.Exec(ctx, stmt, simple); err != nil {
			what := "seed"
			if m := insertRE.FindStringSubmatch(stmt); m != nil {
				what = "seed " + m[1]
			}
			return st, fmt.Errorf("%s: %s; internal/review/seed.go needs to learn the new schema", what, pgMessage(err))
		}
	}
	for _, f := range filled {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT",
			pgx.Identifier{f.Table}.Sanitize(), pgx.Identifier{f.Column}.Sanitize()), simple); err != nil {
			return st, err
		}
	}
	if _, err := conn.Exec(ctx, "RESET ALL", simple); err != nil {
		return st, err
	}
	if st.TriggersOff {
		var bad int64
		err := conn.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM builds b WHERE NOT EXISTS (SELECT FROM apps a WHERE a.id = b.app_id))
			     + (SELECT count(*) FROM deployments d
			        WHERE NOT EXISTS (SELECT FROM builds b WHERE b.id = d.build_id AND b.app_id = d.app_id))
			     + (SELECT count(*) FROM deployment_operations o
			        WHERE NOT EXISTS (SELECT FROM deployments d WHERE d.id = o.deployment_id))`).Scan(&bad)
		if err != nil {
			return st, fmt.Errorf("seed: verify foreign keys: %w", err)
		}
		if bad != 0 {
			return st, fmt.Errorf("seed: %d rows break a foreign key", bad)
		}
		if _, err := conn.Exec(ctx, seedpkg.RecountSQL, simple); err != nil {
			return st, fmt.Errorf("seed: recount operations: %w", err)
		}
	}
	// ANALYZE samples 300 rows per unit of statistics target. At 1000 the
	// sample holds every row of a scale-1 table, so the statistics, and
	// with them the plans, are the same on every run.
	st.StatsTarget = 1000
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET default_statistics_target = %d", st.StatsTarget), simple); err != nil {
		return st, err
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(seedTables, ", "), simple); err != nil {
		return st, fmt.Errorf("seed: vacuum analyze: %w", err)
	}
	if _, err := conn.Exec(ctx, "RESET default_statistics_target", simple); err != nil {
		return st, err
	}
	st.ExactSamples = true
	for _, t := range seedTables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return st, err
		}
		st.Rows[t] = n
		if n > int64(300*st.StatsTarget) {
			st.ExactSamples = false
		}
	}
	var hot int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM builds WHERE app_id = (SELECT id FROM apps WHERE name = 'hot-app')`).Scan(&hot); err != nil {
		return st, err
	}
	if st.Rows["builds"] > 0 {
		st.HotAppShare = float64(hot) / float64(st.Rows["builds"])
	}
	st.Duration = time.Since(start)
	return st, nil
}

// sample holds the rows whose keys serve as query parameters.
type sample struct {
	HotApp            int64  // hot-app: 20% of the builds and deployments
	SmallApp          int64  // a typical app: a handful of builds and deployments
	Build             int64  // hot-app's newest succeeded build
	PendingBuild      int64  // a pending build of hot-app
	UnusedBuild       int64  // a failed build of the small app (no deployment references it)
	Deployment        int64  // hot-app's newest deployment with operations
	PendingDeployment int64  // a pending deployment of hot-app without operations
	BareDeployment    int64  // hot-app's newest deployment without operations
	SmallDeployment   int64  // a deployment of the small app
	DeploymentTarget  string // a target of Deployment
	Target            string // the target with the most pending operations
	Operation         int64  // the oldest pending operation on Target
}

// pickSample finds the sample rows in the seeded data.
func pickSample(ctx context.Context, conn *pgx.Conn) (*sample, error) {
	s := &sample{}
	hot := func() []any { return []any{s.HotApp} }
	small := func() []any { return []any{s.SmallApp} }
	target := func() []any { return []any{s.Target} }
	deployment := func() []any { return []any{s.Deployment} }
	none := func() []any { return nil }
	steps := []struct {
		what string
		sql  string
		args func() []any
		dest any
	}{
		{"hot app", `SELECT id FROM apps WHERE name = 'hot-app'`, none, &s.HotApp},
		{"small app", `
			SELECT a.id FROM apps a
			WHERE (SELECT count(*) FROM deployments d WHERE d.app_id = a.id) BETWEEN 3 AND 8
			  AND EXISTS (SELECT 1 FROM builds b WHERE b.app_id = a.id AND b.status = 'failed')
			ORDER BY a.id LIMIT 1`, none, &s.SmallApp},
		{"succeeded build", `
			SELECT id FROM builds WHERE app_id = $1 AND status = 'succeeded'
			ORDER BY created_at DESC, id DESC LIMIT 1`, hot, &s.Build},
		{"pending build", `
			SELECT id FROM builds WHERE app_id = $1 AND status = 'pending'
			ORDER BY created_at DESC, id DESC LIMIT 1`, hot, &s.PendingBuild},
		{"unused build", `SELECT id FROM builds WHERE app_id = $1 AND status = 'failed' ORDER BY id LIMIT 1`,
			small, &s.UnusedBuild},
		{"deployment with operations", `
			SELECT d.id FROM deployments d WHERE d.app_id = $1
			  AND EXISTS (SELECT 1 FROM deployment_operations o WHERE o.deployment_id = d.id)
			ORDER BY d.created_at DESC, d.id DESC LIMIT 1`, hot, &s.Deployment},
		{"target of that deployment", `
			SELECT target FROM deployment_operations WHERE deployment_id = $1 ORDER BY target LIMIT 1`,
			deployment, &s.DeploymentTarget},
		{"pending deployment", `
			SELECT d.id FROM deployments d WHERE d.app_id = $1 AND d.status = 'pending'
			  AND NOT EXISTS (SELECT 1 FROM deployment_operations o WHERE o.deployment_id = d.id)
			ORDER BY d.created_at DESC, d.id DESC LIMIT 1`, hot, &s.PendingDeployment},
		{"deployment without operations", `
			SELECT d.id FROM deployments d WHERE d.app_id = $1
			  AND NOT EXISTS (SELECT 1 FROM deployment_operations o WHERE o.deployment_id = d.id)
			ORDER BY d.created_at DESC, d.id DESC LIMIT 1`, hot, &s.BareDeployment},
		{"small app deployment", `SELECT id FROM deployments WHERE app_id = $1 ORDER BY id LIMIT 1`,
			small, &s.SmallDeployment},
		{"busy target", `
			SELECT target FROM deployment_operations WHERE state = 'pending'
			GROUP BY target ORDER BY count(*) DESC, target LIMIT 1`, none, &s.Target},
		{"pending operation", `
			SELECT id FROM deployment_operations WHERE target = $1 AND state = 'pending'
			ORDER BY created_at, id LIMIT 1`, target, &s.Operation},
	}
	for _, st := range steps {
		if err := conn.QueryRow(ctx, st.sql, st.args()...).Scan(st.dest); err != nil {
			return nil, fmt.Errorf("pick %s from the seeded data: %w", st.what, err)
		}
	}
	return s, nil
}

// insertRE finds the target table and column list of a seed INSERT.
var insertRE = regexp.MustCompile(`INSERT INTO (\w+) \(([^)]*)\)`)

// seedColumns are the columns seedSQL writes, per table.
func seedColumns() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, m := range insertRE.FindAllStringSubmatch(seedSQL, -1) {
		cols := map[string]bool{}
		for _, c := range strings.Split(m[2], ",") {
			cols[strings.TrimSpace(c)] = true
		}
		out[m[1]] = cols
	}
	return out
}

// filledColumn is a column the seed filled with a constant.
type filledColumn struct {
	Table, Column, Type, Value string
}

// zeroValues are the constants unknown NOT NULL columns get while seeding,
// by type (format_type).
var zeroValues = map[string]string{
	"text": "''", "character varying": "''", "character": "''", "bytea": "''",
	"smallint": "0", "integer": "0", "bigint": "0", "numeric": "0", "real": "0", "double precision": "0",
	"boolean": "false", "jsonb": "'{}'", "json": "'{}'", "uuid": "gen_random_uuid()",
	"timestamp with time zone": "'2026-01-01 00:00:00+00'", "timestamp without time zone": "'2026-01-01 00:00:00'",
	"date": "'2026-01-01'",
}

// fillUnknownColumns gives every NOT NULL column without a default that a
// seeded table has and the seed does not write (a column a change adds) a
// temporary constant default, so that the seed still loads; the caller
// drops the defaults afterwards.
func fillUnknownColumns(ctx context.Context, conn *pgx.Conn) ([]filledColumn, error) {
	known := seedColumns()
	rows, err := conn.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, NULL), a.attndims > 0 OR t.typcategory = 'A'
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
		  AND d.adbin IS NULL AND a.attidentity = '' AND a.attgenerated = ''
		  AND c.relname = ANY($1)
		ORDER BY c.relname, a.attnum`, seedTables)
	if err != nil {
		return nil, err
	}
	var cols []filledColumn
	for rows.Next() {
		var f filledColumn
		var array bool
		if err := rows.Scan(&f.Table, &f.Column, &f.Type, &array); err != nil {
			return nil, err
		}
		if known[f.Table][f.Column] {
			continue
		}
		if array {
			f.Value = "'{}'"
		} else {
			f.Value = zeroValues[f.Type]
		}
		cols = append(cols, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, f := range cols {
		if f.Value == "" {
			return cols, fmt.Errorf("seed: column %s.%s (%s, NOT NULL, no default) is new to internal/review/seed.go: "+
				"add it to the seed", f.Table, f.Column, f.Type)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s",
			pgx.Identifier{f.Table}.Sanitize(), pgx.Identifier{f.Column}.Sanitize(), f.Value)); err != nil {
			return cols, fmt.Errorf("seed: default for %s.%s: %w", f.Table, f.Column, err)
		}
	}
	return cols, nil
}
