package deploydb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

// Seed of deployment_operations for the plan checks: one operation for each
// of the first planSeedOperations deployments, on 40 targets, in the state
// that derives the deployment's seeded status (mostly completed), with
// pending and running ones on every target: each in-progress deployment has
// a running operation, and each pending one a pending operation, on all 40
// targets.
const (
	planSeedOperations = 60_000
	planClaimTarget    = "cluster-7"
	idxOpsTarget       = "deployment_operations_target_state_created_at_id_idx"
	idxOpsDeployment   = "deployment_operations_deployment_id_target_key"
)

const planSeedOperationsSQL = `
INSERT INTO deployment_operations (deployment_id, target, state, attempt, started_at, finished_at, created_at, updated_at)
SELECT d.id, 'cluster-' || ((d.id + g) % 40),
       s.state, 1,
       CASE WHEN s.state = 'pending' THEN NULL ELSE d.created_at + interval '1 minute' END,
       CASE WHEN s.state IN ('completed', 'failed', 'stopped') THEN d.created_at + interval '5 minutes' END,
       d.created_at, d.created_at
FROM (SELECT id, created_at, status, row_number() OVER (ORDER BY id) AS n FROM deployments ORDER BY id LIMIT $1) d
CROSS JOIN LATERAL (SELECT CASE d.status WHEN 'in_progress' THEN 'running' WHEN 'pending' THEN 'pending' WHEN 'failed' THEN 'failed'
                                         WHEN 'canceled' THEN 'stopped' ELSE 'completed' END AS state) s
CROSS JOIN LATERAL generate_series(0, CASE WHEN d.status IN ('in_progress', 'pending') THEN 39 ELSE 0 END) g`

// seedPlanOperations loads deployment_operations and analyzes it.
func seedPlanOperations(t *testing.T, ctx context.Context, pool *pgxpool.Pool) (deploymentID deploydb.DeploymentID) {
	t.Helper()
	// Each deployment gets one operation in the state that derives its
	// seeded status, so the status stays; the counting trigger moves
	// updated_at, which is put back so the list cases see the seeded times.
	if _, err := pool.Exec(ctx, `CREATE UNLOGGED TABLE seeded_updated_at AS SELECT id, updated_at FROM deployments`); err != nil {
		t.Fatalf("save updated_at: %v", err)
	}
	tag, err := pool.Exec(ctx, planSeedOperationsSQL, planSeedOperations)
	if err != nil {
		t.Fatalf("seed operations: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE deployments d SET updated_at = s.updated_at FROM seeded_updated_at s WHERE d.id = s.id AND d.updated_at <> s.updated_at`); err != nil {
		t.Fatalf("restore updated_at: %v", err)
	}
	if _, err := pool.Exec(ctx, `DROP TABLE seeded_updated_at`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE deployments"); err != nil {
		t.Fatalf("analyze: %v", err)
	}
	if tag.RowsAffected() < 50_000 {
		t.Fatalf("seeded %d operations, want at least 50,000", tag.RowsAffected())
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE deployment_operations"); err != nil {
		t.Fatalf("analyze: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT deployment_id FROM deployment_operations WHERE target = $1 ORDER BY id LIMIT 1`, planClaimTarget).Scan(&deploymentID); err != nil {
		t.Fatal(err)
	}
	return deploymentID
}

// operationPlanCases are the rollouts list queries.
func operationPlanCases(svc *deploydb.Service, deploymentID deploydb.DeploymentID) []planCase {
	return []planCase{
		{name: "ops/ListDeploymentOperations", query: "ListDeploymentOperations",
			want: planWant{index: idxOpsDeployment},
			call: func(ctx context.Context, _ string) (int, string, error) {
				ops, err := svc.ListDeploymentOperations(ctx, deploymentID)
				return len(ops), "", err
			}},
		{name: "ops/GetOperationByDeploymentAndTarget", query: "GetOperationByDeploymentAndTarget",
			want: planWant{index: idxOpsDeployment},
			call: func(ctx context.Context, _ string) (int, string, error) {
				_, err := svc.GetOperationByDeploymentAndTarget(ctx, deploymentID, planClaimTarget)
				return 1, "", err
			}},
		// Three ordered ranges of the index, merged in order, at the default
		// limit. (When the limit exceeds the active rows of a state, the
		// planner may instead fetch that state's rows by bitmap and sort
		// them: at most limit rows, and cheaper.)
		{name: "ops/ListActiveOperationsByTarget", query: "ListActiveOperationsByTarget",
			want: planWant{index: idxOpsTarget},
			call: func(ctx context.Context, _ string) (int, string, error) {
				ops, err := svc.ListActiveOperationsByTarget(ctx, planClaimTarget, deploydb.DefaultPageSize)
				return len(ops), "", err
			}},
	}
}

// checkClaimPlans runs ClaimNextOperation and explains the one statement it
// sends: the claim must find its row through the (target, state) index and
// reach the deployments by primary key; it may not scan or sort a big table.
// (The counting trigger's statements run inside the server: one primary-key
// update per deployment concerned.)
func checkClaimPlans(t *testing.T, ctx context.Context, rec *queryRecorder, pool *pgxpool.Pool, svc *deploydb.Service) {
	rec.take()
	o, err := svc.ClaimNextOperation(ctx, planClaimTarget, "plan-check")
	if err != nil {
		t.Fatalf("ClaimNextOperation: %v", err)
	}
	wantIndex := map[string]string{"ClaimOperations": idxOpsTarget}
	seen := map[string]bool{}
	for _, q := range rec.take() {
		name := q.name()
		index, ok := wantIndex[name]
		if !ok {
			continue
		}
		seen[name] = true
		e, err := explainCustom(ctx, pool, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var problems []string
		var indexes []string
		walkPlan(e.Plan, func(n planNode) {
			switch n.NodeType {
			case "Sort", "Incremental Sort":
				problems = append(problems, n.NodeType+" node")
			case "Seq Scan", "Bitmap Heap Scan":
				if bigTables[n.Relation] {
					problems = append(problems, n.NodeType+" on "+n.Relation)
				}
			case "Index Scan", "Index Only Scan":
				indexes = append(indexes, n.IndexName)
			}
		})
		found := false
		for _, i := range indexes {
			found = found || i == index
		}
		if !found {
			problems = append(problems, "no scan of "+index)
		}
		t.Logf("%-30s indexes %s, %.3f ms", name, strings.Join(indexes, ", "), e.ExecutionTime)
		if len(problems) > 0 {
			t.Errorf("%s: %s\nplan: %s", name, strings.Join(problems, "; "), e.raw)
		}
	}
	for name := range wantIndex {
		if !seen[name] {
			t.Errorf("ClaimNextOperation did not send %s", name)
		}
	}
	if o.Target != planClaimTarget || o.State != deploydb.OperationRunning {
		t.Errorf("claimed %+v", o)
	}
}

// checkCreateDeploymentPlans runs CreateDeployment for the small app while
// many operations of other apps are pending (the seeded ones), and explains
// the statement it sends, for its values and as the generic plan a cached
// prepared statement switches to: superseding the app's older pending
// operations must reach them through the app's deployments, never by
// scanning every pending operation (which made each create cost more as
// the fleet's pending work grew).
func checkCreateDeploymentPlans(t *testing.T, ctx context.Context, rec *queryRecorder, pool *pgxpool.Pool, svc *deploydb.Service, appID deploydb.AppID) {
	var buildID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM builds WHERE app_id = $1 AND status = 'succeeded' ORDER BY id DESC LIMIT 1`, appID).Scan(&buildID); err != nil {
		t.Fatalf("a succeeded build of app %d: %v", appID, err)
	}
	var pending int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployment_operations WHERE state = 'pending'`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending < 1000 {
		t.Fatalf("only %d pending operations: the check proves little", pending)
	}
	rec.take()
	if _, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: appID, BuildID: deploydb.BuildID(buildID), Environment: "production"}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	seen := false
	for _, q := range rec.take() {
		if q.name() != "CreateDeployment" {
			continue
		}
		seen = true
		for _, mode := range []string{"custom", "generic"} {
			explain := explainCustom
			if mode == "generic" {
				explain = explainGeneric
			}
			e, err := explain(ctx, pool, q)
			if err != nil {
				t.Fatalf("%s plan: %v", mode, err)
			}
			var problems []string
			walkPlan(e.Plan, func(n planNode) {
				if (n.NodeType == "Seq Scan" || n.NodeType == "Bitmap Heap Scan") && bigTables[n.Relation] {
					problems = append(problems, n.NodeType+" on "+n.Relation)
				}
			})
			t.Logf("CreateDeployment, %s plan: %.3f ms with %d pending operations elsewhere", mode, e.ExecutionTime, pending)
			if len(problems) > 0 {
				t.Errorf("CreateDeployment, %s plan: %s\nplan: %s", mode, strings.Join(problems, "; "), e.raw)
			}
		}
	}
	if !seen {
		t.Errorf("CreateDeployment did not send the CreateDeployment statement")
	}
}
