package deploydb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// Seed sizes for TestQueryPlansUseIndexes: large enough that a sequential
// scan or a sort is a real alternative for the planner.
const (
	planSeedApps   = 50_000
	planSeedBuilds = 260_000 // ~80% succeeded; each succeeded build is deployed once

	planMinBuilds      = 200_000
	planMinDeployments = 200_000
)

// planSeedSQL fills the three tables with set-based statements. One app,
// hot-app, holds about 20% of the builds (and so of the deployments); the
// others share the rest, about five builds each. Statuses follow a
// realistic mix, environments are production, staging and review-1..20,
// and timestamps spread over the last year. Every row satisfies the CHECK
// constraints and the partial unique index (only the newest deployment of
// an (app, environment) may be in progress), and each deployment references
// a succeeded build of its own app. The %[1]d and %[2]d verbs are the
// numbers of apps and builds. Rows are inserted in (app_id, created_at)
// order, which keeps index maintenance sequential.
const planSeedSQL = `
SET jit = off;
SET work_mem = '64MB';
SELECT setseed(0.2024);

INSERT INTO apps (name, created_at, updated_at)
SELECT name, t, t
FROM (SELECT CASE WHEN g = 1 THEN 'hot-app' ELSE 'app-' || g END AS name,
             CASE WHEN g = 1 THEN now() - interval '365 days'
                  ELSE now() - interval '365 days' * random() END AS t
      FROM generate_series(1, %[1]d) AS g) s;

WITH a AS (
  SELECT id, created_at, row_number() OVER (ORDER BY name <> 'hot-app', id) - 1 AS k FROM apps
), s AS (
  SELECT g, CASE WHEN random() < 0.20 THEN 0 ELSE 1 + floor(random() * (%[1]d - 1))::int END AS k,
         random() AS r, random() AS r2, random() AS r3
  FROM generate_series(1, %[2]d) AS g
), b AS (
  SELECT a.id AS app_id, s.g, s.r2,
         CASE WHEN s.r < 0.80 THEN 'succeeded' WHEN s.r < 0.90 THEN 'failed'
              WHEN s.r < 0.95 THEN 'canceled' WHEN s.r < 0.975 THEN 'pending'
              ELSE 'in_progress' END AS status,
         a.created_at + (now() - a.created_at) * s.r3 AS created_at
  FROM s JOIN a USING (k)
), t AS (
  SELECT b.*, CASE WHEN status IN ('in_progress', 'succeeded', 'failed') OR (status = 'canceled' AND r2 < 0.5)
                   THEN created_at + interval '1 second' * (5 + 60 * r2) END AS started_at
  FROM b
)
INSERT INTO builds (app_id, source_version, status, created_at, updated_at, started_at, finished_at)
SELECT app_id, md5(g::text), status, created_at, COALESCE(fin, started_at, created_at), started_at, fin
FROM (SELECT t.*, CASE WHEN status IN ('succeeded', 'failed', 'canceled')
                       THEN COALESCE(started_at, created_at) + interval '1 second' * (60 + 1140 * r2) END AS fin
      FROM t) u
ORDER BY app_id, created_at;

WITH s AS (
  SELECT b.app_id, b.id AS build_id,
         b.finished_at + interval '1 second' * (60 + 3540 * random()) AS created_at,
         CASE WHEN e < 0.55 THEN 'production' WHEN e < 0.85 THEN 'staging'
              ELSE 'review-' || (1 + floor(random() * 20))::int END AS environment,
         random() AS r, random() AS r2
  FROM (SELECT b.*, random() AS e FROM builds b WHERE status = 'succeeded') b
), w AS (
  SELECT s.*, row_number() OVER (PARTITION BY app_id, environment ORDER BY created_at DESC, build_id DESC) AS rn
  FROM s
), st AS (
  SELECT w.*, CASE WHEN rn = 1 AND r2 < 0.05 THEN 'in_progress'
                   WHEN r < 0.82 THEN 'deployed' WHEN r < 0.92 THEN 'failed'
                   WHEN r < 0.97 THEN 'canceled' ELSE 'pending' END AS status
  FROM w
), t AS (
  SELECT st.*, CASE WHEN status IN ('in_progress', 'deployed', 'failed') OR (status = 'canceled' AND r2 < 0.3)
                    THEN created_at + interval '1 second' * (10 + 60 * r2) END AS started_at
  FROM st
)
INSERT INTO deployments (app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at)
SELECT app_id, build_id, environment, status, created_at, COALESCE(fin, started_at, created_at), started_at, fin
FROM (SELECT t.*, CASE WHEN status IN ('deployed', 'failed', 'canceled')
                       THEN COALESCE(started_at, created_at) + interval '1 second' * (30 + 570 * r) END AS fin
      FROM t) u
ORDER BY app_id, created_at;
`

// planSeed describes the seeded data.
type planSeed struct {
	apps, builds, deployments int64
	hotApp, smallApp          int64
	hotBuilds, hotDeployments int64
	smallBuilds, smallDeploys int64
	statusMix                 string
}

// seedPlanData loads the data set, vacuums and analyzes it, and picks the
// hot app and a typical small app.
func seedPlanData(t *testing.T, ctx context.Context, pool *pgxpool.Pool) planSeed {
	t.Helper()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	defer conn.Release()
	// Per-row foreign-key triggers would double the load time; a superuser
	// can skip them (session_replication_role = replica still applies
	// every CHECK constraint), and the references are then verified in one
	// set-based query below. Without the privilege the triggers just run.
	_, err = conn.Exec(ctx, "SET session_replication_role = replica", pgx.QueryExecModeSimpleProtocol)
	triggersOff := err == nil

	// Statement by statement, to report where the time goes.
	var phases []string
	for _, stmt := range strings.Split(fmt.Sprintf(planSeedSQL, planSeedApps, planSeedBuilds), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("seed: %v\n%s", err, stmt)
		}
		if _, table, ok := strings.Cut(stmt, "INSERT INTO "); ok {
			table, _, _ = strings.Cut(table, " ")
			phases = append(phases, fmt.Sprintf("%s %s", table, time.Since(start).Round(time.Millisecond)))
		}
	}
	t.Logf("seed phases: %s (foreign-key triggers skipped: %t)", strings.Join(phases, ", "), triggersOff)
	// The session settings of the script must not leak into later uses of
	// the connection.
	if _, err := conn.Exec(ctx, "RESET ALL"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if triggersOff {
		var bad int64
		err := conn.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM builds b WHERE NOT EXISTS (SELECT FROM apps a WHERE a.id = b.app_id))
			     + (SELECT count(*) FROM deployments d WHERE NOT EXISTS (SELECT FROM apps a WHERE a.id = d.app_id))
			     + (SELECT count(*) FROM deployments d
			        WHERE NOT EXISTS (SELECT FROM builds b WHERE b.id = d.build_id AND b.app_id = d.app_id))`).Scan(&bad)
		if err != nil {
			t.Fatalf("verify foreign keys: %v", err)
		}
		if bad != 0 {
			t.Fatalf("seed: %d rows break a foreign key", bad)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) apps, builds, deployments"); err != nil {
		t.Fatalf("vacuum analyze: %v", err)
	}

	var s planSeed
	err = conn.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM builds), (SELECT count(*) FROM deployments),
		       a.id,
		       (SELECT count(*) FROM builds WHERE app_id = a.id),
		       (SELECT count(*) FROM deployments WHERE app_id = a.id),
		       (SELECT string_agg(status || ' ' || round(100.0 * n / sum, 1) || '%', ', ' ORDER BY n DESC)
		        FROM (SELECT status, count(*) AS n, sum(count(*)) OVER () AS sum FROM deployments GROUP BY status) m)
		FROM apps a WHERE a.name = 'hot-app'`).
		Scan(&s.apps, &s.builds, &s.deployments, &s.hotApp, &s.hotBuilds, &s.hotDeployments, &s.statusMix)
	if err != nil {
		t.Fatalf("seed summary: %v", err)
	}
	// A typical app: a handful of deployments, mostly to production.
	err = conn.QueryRow(ctx, `
		SELECT d.app_id, (SELECT count(*) FROM builds b WHERE b.app_id = d.app_id), count(*)
		FROM deployments d
		WHERE d.app_id <> $1
		GROUP BY d.app_id
		HAVING count(*) BETWEEN 4 AND 8
		   AND count(*) FILTER (WHERE environment = 'production') >= 3
		   AND count(*) FILTER (WHERE status = 'deployed') >= 3
		ORDER BY d.app_id
		LIMIT 1`, s.hotApp).Scan(&s.smallApp, &s.smallBuilds, &s.smallDeploys)
	if err != nil {
		t.Fatalf("pick a small app: %v", err)
	}

	if s.apps < planSeedApps || s.builds < planMinBuilds || s.deployments < planMinDeployments {
		t.Fatalf("seed too small: %d apps, %d builds, %d deployments", s.apps, s.builds, s.deployments)
	}
	if share := float64(s.hotDeployments) / float64(s.deployments); share < 0.15 || share > 0.25 {
		t.Fatalf("hot app holds %.1f%% of the deployments, want about 20%%", 100*share)
	}
	return s
}

// capturedQuery is one statement the service sent, with its arguments.
type capturedQuery struct {
	sql  string
	args []any
}

// name returns the sqlc query name from the "-- name: X :kind" line that
// sqlc puts first in every statement.
func (q capturedQuery) name() string {
	first, _, _ := strings.Cut(q.sql, "\n")
	if f := strings.Fields(first); len(f) >= 3 && f[0] == "--" && f[1] == "name:" {
		return f[2]
	}
	return ""
}

// queryRecorder is a pgx.QueryTracer that keeps the statements it sees.
type queryRecorder struct {
	mu      sync.Mutex
	queries []capturedQuery
}

func (r *queryRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, capturedQuery{sql: data.SQL, args: slices.Clone(data.Args)})
	return ctx
}

func (r *queryRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements recorded since the last call and forgets them.
func (r *queryRecorder) take() []capturedQuery {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queries
	r.queries = nil
	return q
}

// planNode is the part of an EXPLAIN (FORMAT JSON) node the checks read.
type planNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	IndexName  string     `json:"Index Name"`
	IndexCond  string     `json:"Index Cond"`
	Filter     string     `json:"Filter"`
	ScanDir    string     `json:"Scan Direction"`
	SortKey    []string   `json:"Sort Key"`
	ActualRows float64    `json:"Actual Rows"`
	SharedHit  int64      `json:"Shared Hit Blocks"`
	SharedRead int64      `json:"Shared Read Blocks"`
	Plans      []planNode `json:"Plans"`
}

// explained is one EXPLAIN (FORMAT JSON) result.
type explained struct {
	Plan          planNode `json:"Plan"`
	ExecutionTime float64  `json:"Execution Time"`
	// IndexBlocks is the number of index blocks the execution read; set
	// by measured.
	IndexBlocks int64 `json:"-"`
	raw         string
}

// planWant is what the plan of a list query must look like.
type planWant struct {
	// index is the index the query is documented to use.
	index string
	// keyset is the sort column of the keyset row comparison
	// "(col, id) < (…)" that must be an index condition; "" for queries
	// without a cursor.
	keyset string
	// bounded, if set, is an index the planner may pick instead because
	// it holds few rows per app by construction; a plan on it may sort
	// and filter those rows. The in_progress status filter is the case:
	// deployments_one_in_progress_key holds at most one row per
	// environment of an app.
	bounded string
}

// bigTables are the tables on which a sequential or bitmap scan is a failure.
var bigTables = map[string]bool{"apps": true, "builds": true, "deployments": true, "deployment_operations": true}

// planProblems lists what is wrong with an explained statement: any Sort
// node, any sequential or bitmap heap scan of a big table, no index scan,
// an index scan of another index than want.index, predicates left to a
// Filter instead of the index condition, a keyset comparison missing from
// the index condition, and more than maxIndexBlocks index blocks read (when
// measured). It returns nil for a good plan.
func planProblems(e explained, want planWant) []string {
	var problems []string
	if e.IndexBlocks > maxIndexBlocks {
		problems = append(problems, fmt.Sprintf("read %d index blocks for %.0f rows, want at most %d: the scan does not start at its bound",
			e.IndexBlocks, e.Plan.ActualRows, maxIndexBlocks))
	}
	var scans []planNode
	walkPlan(e.Plan, func(n planNode) {
		switch n.NodeType {
		case "Sort", "Incremental Sort":
			problems = append(problems, fmt.Sprintf("%s node (key %s)", n.NodeType, strings.Join(n.SortKey, ", ")))
		case "Seq Scan", "Bitmap Heap Scan":
			if bigTables[n.Relation] {
				problems = append(problems, fmt.Sprintf("%s on %s", n.NodeType, n.Relation))
			}
		case "Index Scan", "Index Only Scan":
			scans = append(scans, n)
		}
	})
	if len(scans) == 0 {
		return append(problems, "no Index Scan or Index Only Scan node")
	}
	if want.bounded != "" && len(scans) == 1 && scans[0].IndexName == want.bounded {
		var kept []string
		for _, p := range problems {
			if !strings.HasPrefix(p, "Sort node") {
				kept = append(kept, p)
			}
		}
		return kept
	}
	found := false
	for _, s := range scans {
		if s.IndexName != want.index {
			problems = append(problems, fmt.Sprintf("%s uses %s, want %s", s.NodeType, s.IndexName, want.index))
			continue
		}
		found = true
		if s.Filter != "" {
			problems = append(problems, fmt.Sprintf("predicate left to a Filter, not the index condition: %s", s.Filter))
		}
		if want.keyset != "" && !strings.Contains(s.IndexCond, "ROW("+want.keyset+", id)") {
			problems = append(problems, fmt.Sprintf("keyset comparison ROW(%s, id) is not in the Index Cond %q",
				want.keyset, s.IndexCond))
		}
	}
	if !found {
		problems = append(problems, "no scan of "+want.index)
	}
	return problems
}

// mainScan returns the first index scan node of a plan.
// walkPlan calls fn on n and on every node under it, parents first.
func walkPlan(n planNode, fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		walkPlan(c, fn)
	}
}

func mainScan(n planNode) (planNode, bool) {
	if n.NodeType == "Index Scan" || n.NodeType == "Index Only Scan" {
		return n, true
	}
	for _, c := range n.Plans {
		if s, ok := mainScan(c); ok {
			return s, true
		}
	}
	return planNode{}, false
}

func decodePlan(raw []byte) (explained, error) {
	var out []explained
	if err := json.Unmarshal(raw, &out); err != nil {
		return explained{}, fmt.Errorf("decode plan: %w", err)
	}
	if len(out) != 1 {
		return explained{}, fmt.Errorf("decode plan: %d results, want 1", len(out))
	}
	out[0].raw = string(raw)
	return out[0], nil
}

// maxIndexBlocks bounds the index blocks one page may read: the descent
// from the root plus the two or three leaves that hold a page of entries.
// A scan that does not start at its cursor or range bound reads far more.
const maxIndexBlocks = 10

// indexBlocksSQL sums the blocks the current transaction has read from the
// indexes of the big tables (pending statistics, so exact per statement).
const indexBlocksSQL = `
SELECT coalesce(sum(pg_stat_get_xact_blocks_fetched(indexrelid)), 0)::bigint
FROM pg_index
WHERE indrelid IN ('apps'::regclass, 'builds'::regclass, 'deployments'::regclass)`

// measured runs explain, the EXPLAIN ANALYZE of a statement, in tx and sets
// IndexBlocks to the index blocks its execution read. plan, run first,
// does what explain does except executing (plan only), so its reads
// (planning probes index ends for values outside the histogram) can be
// subtracted.
func measured(ctx context.Context, tx pgx.Tx, plan, explain func() ([]byte, error)) (explained, error) {
	count := func() (n int64, err error) {
		err = tx.QueryRow(ctx, indexBlocksSQL, pgx.QueryExecModeSimpleProtocol).Scan(&n)
		return n, err
	}
	c0, err := count()
	if err != nil {
		return explained{}, fmt.Errorf("count index blocks: %w", err)
	}
	if _, err := plan(); err != nil {
		return explained{}, fmt.Errorf("explain: %w", err)
	}
	c1, err := count()
	if err != nil {
		return explained{}, fmt.Errorf("count index blocks: %w", err)
	}
	raw, err := explain()
	if err != nil {
		return explained{}, fmt.Errorf("explain analyze: %w", err)
	}
	c2, err := count()
	if err != nil {
		return explained{}, fmt.Errorf("count index blocks: %w", err)
	}
	e, err := decodePlan(raw)
	e.IndexBlocks = (c2 - c1) - (c1 - c0)
	return e, err
}

// explainCustom runs EXPLAIN ANALYZE on the statement with its arguments
// bound, which is the plan PostgreSQL makes for these parameter values.
func explainCustom(ctx context.Context, pool *pgxpool.Pool, q capturedQuery) (explained, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return explained{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	run := func(options string) func() ([]byte, error) {
		return func() (raw []byte, err error) {
			err = tx.QueryRow(ctx, "EXPLAIN ("+options+")\n"+q.sql, q.args...).Scan(&raw)
			return raw, err
		}
	}
	return measured(ctx, tx, run("FORMAT JSON"), run("ANALYZE, BUFFERS, FORMAT JSON"))
}

// explainGeneric runs EXPLAIN ANALYZE on the generic plan of the statement:
// the parameter-independent plan that a prepared statement (pgx caches
// them per connection) may switch to after its fifth execution.
func explainGeneric(ctx context.Context, pool *pgxpool.Pool, q capturedQuery) (e explained, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return explained{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan", simple); err != nil {
		return explained{}, err
	}
	if _, err := tx.Exec(ctx, "PREPARE plan_check AS\n"+q.sql, simple); err != nil {
		return explained{}, fmt.Errorf("prepare: %w", err)
	}
	defer func() {
		if _, derr := tx.Exec(ctx, "DEALLOCATE plan_check", simple); derr != nil && err == nil {
			err = derr
		}
	}()
	params := make([]string, len(q.args))
	for i := range params {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	args := append([]any{simple}, q.args...)
	// The first EXPLAIN plans and caches the generic plan; the second
	// reuses it, so all its index reads are execution.
	run := func(options string) func() ([]byte, error) {
		return func() (raw []byte, err error) {
			err = tx.QueryRow(ctx, "EXPLAIN ("+options+") EXECUTE plan_check("+strings.Join(params, ", ")+")",
				args...).Scan(&raw)
			return raw, err
		}
	}
	return measured(ctx, tx, run("FORMAT JSON"), run("ANALYZE, BUFFERS, FORMAT JSON"))
}

// planCase is one call of a list method whose plan is checked.
type planCase struct {
	name  string
	query string // the sqlc query the call must send
	want  planWant
	// call runs the method for the page after cursor ("" for the first)
	// and returns the number of rows and the next cursor.
	call func(ctx context.Context, cursor string) (rows int, next string, err error)
}

func (c planCase) paged() bool { return c.want.keyset != "" }

// pageFigures are the measurements of one page.
type pageFigures struct {
	rows       int
	execMS     float64
	hit, read  int64
	idxBlocks  int64
	genericBlk int64
	genericIdx string
	genericMS  float64
}

// planReport is one line of the summary table.
type planReport struct {
	name, query, index, dir, top string
	pages                        []pageFigures
}

// listPlanCases returns the cases for one app. size is the page size of the
// paged lists.
func listPlanCases(svc *deploydb.Service, label string, appID deploydb.AppID, env string, size int, now time.Time) []planCase {
	const (
		idxBuilds          = "builds_app_id_created_at_id_idx"
		idxBuildsStatus    = "builds_app_id_status_created_at_id_idx"
		idxDeploys         = "deployments_app_id_created_at_id_idx"
		idxDeploysEnv      = "deployments_app_id_environment_created_at_id_idx"
		idxDeploysStatus   = "deployments_app_id_status_created_at_id_idx"
		idxDeploysUpdated  = "deployments_app_id_updated_at_id_idx"
		idxDeploysFinished = "deployments_app_id_status_finished_at_id_idx"
	)
	slice := func(n int, err error) (int, string, error) { return n, "", err }
	one := func(err error) (int, string, error) {
		if err != nil {
			return 0, "", err
		}
		return 1, "", nil
	}
	cases := []planCase{
		{name: "ListAppBuilds", query: "ListAppBuildsPaged", want: planWant{index: idxBuilds},
			call: func(ctx context.Context, _ string) (int, string, error) {
				b, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: appID}, size)
				return slice(len(b), err)
			}},
		{name: "ListAppBuildsPaged", query: "ListAppBuildsPaged", want: planWant{index: idxBuilds, keyset: "created_at"},
			call: func(ctx context.Context, cursor string) (int, string, error) {
				p, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: appID}, deploydb.PageRequest{Size: size, Cursor: cursor})
				return len(p.Items), p.NextCursor, err
			}},
		{name: "GetLatestSuccessfulBuild", query: "GetLatestSuccessfulBuild", want: planWant{index: idxBuildsStatus},
			call: func(ctx context.Context, _ string) (int, string, error) {
				_, err := svc.GetLatestSuccessfulBuild(ctx, appID)
				return one(err)
			}},
		{name: "ListAppDeployments", query: "ListAppDeploymentsPaged", want: planWant{index: idxDeploys},
			call: func(ctx context.Context, _ string) (int, string, error) {
				d, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: appID}, size)
				return slice(len(d), err)
			}},
		{name: "ListAppDeploymentsPaged", query: "ListAppDeploymentsPaged", want: planWant{index: idxDeploys, keyset: "created_at"},
			call: func(ctx context.Context, cursor string) (int, string, error) {
				p, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: appID}, deploydb.PageRequest{Size: size, Cursor: cursor})
				return len(p.Items), p.NextCursor, err
			}},
		{name: "GetLatestDeployment", query: "GetLatestDeployment", want: planWant{index: idxDeploysEnv},
			call: func(ctx context.Context, _ string) (int, string, error) {
				_, err := svc.GetLatestDeployment(ctx, appID, env)
				return one(err)
			}},
		{name: "ListSuccessfulDeployments", query: "ListSuccessfulDeployments", want: planWant{index: idxDeploysFinished},
			call: func(ctx context.Context, _ string) (int, string, error) {
				d, err := svc.ListSuccessfulDeployments(ctx, appID, size)
				return slice(len(d), err)
			}},
	}

	list := func(name, query, index, keyset string, f deploydb.DeploymentFilter) {
		if f.Sort == deploydb.SortAsc {
			name += ",asc"
			query += "Asc"
		}
		cases = append(cases, planCase{name: "ListDeployments/" + name, query: query, want: planWant{index: index, keyset: keyset},
			call: func(ctx context.Context, cursor string) (int, string, error) {
				f.AppID = appID
				p, err := svc.ListDeployments(ctx, f, deploydb.PageRequest{Size: size, Cursor: cursor})
				return len(p.Items), p.NextCursor, err
			}})
	}
	after, before := now.AddDate(0, 0, -120), now.AddDate(0, 0, -30)
	for _, dir := range []deploydb.SortDirection{deploydb.SortDesc, deploydb.SortAsc} {
		list("default", "ListAppDeploymentsPaged", idxDeploys, "created_at",
			deploydb.DeploymentFilter{Sort: dir})
		list("environment="+env, "ListEnvironmentDeploymentsPaged", idxDeploysEnv, "created_at",
			deploydb.DeploymentFilter{Environment: env, Sort: dir})
		for _, st := range []deploydb.DeploymentStatus{deploydb.DeploymentPending, deploydb.DeploymentInProgress,
			deploydb.DeploymentDeployed, deploydb.DeploymentFailed, deploydb.DeploymentCanceled} {
			list("status="+string(st), "ListStatusDeploymentsPaged", idxDeploysStatus, "created_at",
				deploydb.DeploymentFilter{Status: st, Sort: dir})
			if st == deploydb.DeploymentInProgress {
				cases[len(cases)-1].want.bounded = "deployments_one_in_progress_key"
			}
		}
		list("order=updated_at", "ListUpdatedDeploymentsPaged", idxDeploysUpdated, "updated_at",
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, Sort: dir})
		list("order=updated_at,range", "ListUpdatedDeploymentsPaged", idxDeploysUpdated, "updated_at",
			deploydb.DeploymentFilter{OrderBy: deploydb.OrderByUpdatedAt, UpdatedAfter: after, UpdatedBefore: before, Sort: dir})
		for _, st := range []deploydb.DeploymentStatus{deploydb.DeploymentDeployed, deploydb.DeploymentFailed, deploydb.DeploymentCanceled} {
			list("order=finished_at,status="+string(st), "ListFinishedDeploymentsPaged", idxDeploysFinished, "finished_at",
				deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: st, Sort: dir})
			list("order=finished_at,status="+string(st)+",range", "ListFinishedDeploymentsPaged", idxDeploysFinished, "finished_at",
				deploydb.DeploymentFilter{OrderBy: deploydb.OrderByFinishedAt, Status: st,
					FinishedAfter: after, FinishedBefore: before, Sort: dir})
		}
	}
	for i := range cases {
		cases[i].name = label + "/" + cases[i].name
	}
	return cases
}

// TestQueryPlansUseIndexes proves on a realistically sized, skewed data set
// that every list query of the service, and every filter combination
// ListDeployments accepts, runs as a range scan of the index its query
// documents: no Sort node, no sequential or bitmap scan of a big table, all
// predicates in the index condition and, for keyset pages, the cursor
// comparison too, and at most maxIndexBlocks index blocks read per page
// (the scan starts at its bound instead of walking up to it). It calls the
// real service methods, captures the SQL and
// arguments they send with a pgx tracer, and explains exactly that, for the
// first and the second page, for the hot app and a typical small app, both
// as the plan for the given values and as the generic plan that a cached
// prepared statement may switch to.
func TestQueryPlansUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	url := pgtest.URL(t)

	rec := new(queryRecorder)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	cfg.ConnConfig.Tracer = rec
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(traced.Close)
	svc := deploydb.New(traced)
	// Seeding and EXPLAIN run on their own, untraced pool.
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)

	start := time.Now()
	seed := seedPlanData(t, ctx, pool)
	t.Logf("seeded in %s: %d apps, %d builds, %d deployments (%s); hot app %d: %d builds, %d deployments; small app %d: %d builds, %d deployments",
		time.Since(start).Round(time.Millisecond), seed.apps, seed.builds, seed.deployments, seed.statusMix,
		seed.hotApp, seed.hotBuilds, seed.hotDeployments, seed.smallApp, seed.smallBuilds, seed.smallDeploys)

	t.Run("checker", func(t *testing.T) { testPlanChecker(t, ctx, pool, seed.hotApp) })

	now := time.Now().UTC().Truncate(time.Microsecond)
	cases := []planCase{{
		name: "ListAppsPaged", query: "ListAppsPaged",
		want: planWant{index: "apps_created_at_id_idx", keyset: "created_at"},
		call: func(ctx context.Context, cursor string) (int, string, error) {
			p, err := svc.ListAppsPaged(ctx, deploydb.PageRequest{Size: 50, Cursor: cursor})
			return len(p.Items), p.NextCursor, err
		},
	}}
	cases = append(cases, listPlanCases(svc, "hot", deploydb.AppID(seed.hotApp), "production", 50, now)...)
	cases = append(cases, listPlanCases(svc, "small", deploydb.AppID(seed.smallApp), "production", 2, now)...)
	opsDeployment := seedPlanOperations(t, ctx, pool)
	cases = append(cases, operationPlanCases(svc, opsDeployment)...)

	checked := time.Now()
	var reports []planReport
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runPlanCase(t, ctx, rec, pool, c)
			reports = append(reports, r)
			if strings.HasPrefix(c.name, "hot/") && r.pages[0].rows == 0 {
				t.Errorf("the hot app's list is empty: the case proves little")
			}
		})
	}
	t.Run("ops/ClaimNextOperation", func(t *testing.T) { checkClaimPlans(t, ctx, rec, pool, svc) })
	t.Run("ops/CreateDeployment", func(t *testing.T) {
		checkCreateDeploymentPlans(t, ctx, rec, pool, svc, deploydb.AppID(seed.smallApp))
	})
	t.Logf("%d cases checked in %s\n%s", len(cases), time.Since(checked).Round(time.Millisecond), planTable(reports))
}

// runPlanCase calls the method for the first page and, for paged lists
// with more rows, the second, and checks both plans of each page.
func runPlanCase(t *testing.T, ctx context.Context, rec *queryRecorder, pool *pgxpool.Pool, c planCase) planReport {
	t.Helper()
	r := planReport{name: c.name, query: c.query}
	rec.take()
	cursor := ""
	for page := 1; page <= 2; page++ {
		rows, next, err := c.call(ctx, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		sent := rec.take()
		if len(sent) != 1 {
			t.Fatalf("page %d: the call sent %d statements, want 1", page, len(sent))
		}
		q := sent[0]
		if got := q.name(); got != c.query {
			t.Errorf("page %d: the call ran %s, want %s", page, got, c.query)
		}

		custom, err := explainCustom(ctx, pool, q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if problems := planProblems(custom, c.want); len(problems) > 0 {
			t.Errorf("page %d, plan for the values: %s\nplan: %s", page, strings.Join(problems, "; "), custom.raw)
		}
		generic, err := explainGeneric(ctx, pool, q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if problems := planProblems(generic, c.want); len(problems) > 0 {
			t.Errorf("page %d, generic plan: %s\nplan: %s", page, strings.Join(problems, "; "), generic.raw)
		}

		f := pageFigures{rows: rows, execMS: custom.ExecutionTime, hit: custom.Plan.SharedHit,
			read: custom.Plan.SharedRead, idxBlocks: custom.IndexBlocks,
			genericMS: generic.ExecutionTime, genericBlk: generic.IndexBlocks}
		if s, ok := mainScan(generic.Plan); ok {
			f.genericIdx = s.IndexName
		}
		if page == 1 {
			r.top = custom.Plan.NodeType
			if s, ok := mainScan(custom.Plan); ok {
				r.index, r.dir = s.IndexName, s.ScanDir
			}
		}
		r.pages = append(r.pages, f)
		if !c.paged() || next == "" {
			break
		}
		cursor = next
	}
	return r
}

// testPlanChecker shows that planProblems fails bad plans, so that a pass of
// the cases means something.
func testPlanChecker(t *testing.T, ctx context.Context, pool *pgxpool.Pool, hotApp int64) {
	// No index can serve an expression on environment ordered by created_at
	// across apps: a sequential scan and a sort.
	bad := capturedQuery{sql: `SELECT * FROM deployments WHERE lower(environment) = 'production' ORDER BY created_at DESC LIMIT 20`}
	e, err := explainCustom(ctx, pool, bad)
	if err != nil {
		t.Fatal(err)
	}
	problems := planProblems(e, planWant{index: "deployments_app_id_environment_created_at_id_idx", keyset: "created_at"})
	joined := strings.Join(problems, "; ")
	if !strings.Contains(joined, "Sort node") || !strings.Contains(joined, "Seq Scan on deployments") {
		t.Errorf("the checker missed the sort and sequential scan of a bad query; problems: %q\nplan: %s", joined, e.raw)
	}
	t.Logf("bad query flagged: %s", joined)

	// A keyset condition written as an OR cannot bound the index scan: the
	// index serves the order, but the cursor is only a Filter.
	orKeyset := capturedQuery{
		sql: `SELECT * FROM deployments WHERE app_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))
		      ORDER BY created_at DESC, id DESC LIMIT 51`,
		args: []any{hotApp, time.Now().AddDate(0, -6, 0), int64(1 << 62)},
	}
	e, err = explainCustom(ctx, pool, orKeyset)
	if err != nil {
		t.Fatal(err)
	}
	problems = planProblems(e, planWant{index: "deployments_app_id_created_at_id_idx", keyset: "created_at"})
	joined = strings.Join(problems, "; ")
	if !strings.Contains(joined, "keyset comparison") {
		t.Errorf("the checker missed a keyset condition left to a Filter; problems: %q\nplan: %s", joined, e.raw)
	}
	t.Logf("OR-form keyset flagged: %s", joined)

	if problems := planProblems(explained{}, planWant{index: "x"}); len(problems) == 0 {
		t.Error("the checker accepted a plan without an index scan")
	}
	if _, err := decodePlan([]byte(`[]`)); err == nil {
		t.Error("decodePlan accepted an empty result")
	}
}

// planTable formats the reports as an aligned table. Figures of the first
// and second page are separated by a slash; ms, buffers (hit/read) and
// index blocks come from EXPLAIN (ANALYZE, BUFFERS) of the plan for the
// values, the last column from the generic plan.
func planTable(reports []planReport) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "case\tquery\tindex (scan)\ttop\trows\tms\tbuffers\tidx blk\tgeneric plan: index, ms, idx blk")
	for _, r := range reports {
		var rows, ms, bufs, blk, gen []string
		for _, p := range r.pages {
			rows = append(rows, fmt.Sprint(p.rows))
			ms = append(ms, fmt.Sprintf("%.3f", p.execMS))
			bufs = append(bufs, fmt.Sprintf("%d/%d", p.hit, p.read))
			blk = append(blk, fmt.Sprint(p.idxBlocks))
			g := p.genericIdx
			if g == r.index {
				g = "same"
			}
			gen = append(gen, fmt.Sprintf("%s %.3f %d", g, p.genericMS, p.genericBlk))
		}
		index := r.index
		if r.dir == "Backward" {
			index += " (backward)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.query, index, r.top,
			strings.Join(rows, " / "), strings.Join(ms, " / "), strings.Join(bufs, " / "),
			strings.Join(blk, " / "), strings.Join(gen, " / "))
	}
	_ = w.Flush()
	return b.String()
}
