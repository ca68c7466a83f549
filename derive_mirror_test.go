package deploydb_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/status"
)

// multisets returns every multiset of at most k operation states (sorted
// slices, the empty one first).
func multisets(k int) [][]deploydb.OperationState {
	out := [][]deploydb.OperationState{{}}
	var grow func(prefix []deploydb.OperationState, from int)
	grow = func(prefix []deploydb.OperationState, from int) {
		if len(prefix) == k {
			return
		}
		for i := from; i < len(status.Operations); i++ {
			m := append(slices.Clone(prefix), status.Operations[i])
			out = append(out, m)
			grow(m, i)
		}
	}
	grow(nil, 0)
	return out
}

func countsOf(states []deploydb.OperationState) deploydb.OperationCounts {
	var c deploydb.OperationCounts
	for _, s := range states {
		switch s {
		case deploydb.OperationPending:
			c.Pending++
		case deploydb.OperationRunning:
			c.Running++
		case deploydb.OperationWaitingForCutover:
			c.WaitingForCutover++
		case deploydb.OperationCuttingOver:
			c.CuttingOver++
		case deploydb.OperationCompleted:
			c.Completed++
		case deploydb.OperationFailed:
			c.Failed++
		case deploydb.OperationStopped:
			c.Stopped++
		case deploydb.OperationReverted:
			c.Reverted++
		}
	}
	return c
}

// TestDeriveMirrorsSQL checks that the Go mirror DeriveDeploymentStatus and
// the SQL rule (the deployments trigger) agree on every multiset of up to
// four operation states: 494 non-empty multisets of the 8 states, and the
// empty one (a deployment without operations stays pending). Each multiset
// is a deployment of its own environment, whose operations one INSERT
// writes by hand; the trigger derives the status. A second pass moves each
// deployment's operations, in one UPDATE, to another multiset of the same
// size, so that the counts are also checked as deltas.
func TestDeriveMirrorsSQL(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)

	sets := multisets(4)
	bySize := map[int]int{}
	for _, m := range sets {
		bySize[len(m)]++
	}
	if len(sets) != 495 || bySize[0] != 1 || bySize[1] != 8 || bySize[2] != 36 || bySize[3] != 120 || bySize[4] != 330 {
		t.Fatalf("%d multisets by size %v, want 1 + 8 + 36 + 120 + 330", len(sets), bySize)
	}

	// One deployment per multiset.
	rows, err := pool.Query(ctx, `INSERT INTO deployments (app_id, build_id, environment)
		SELECT $1, $2, 'mirror-' || i FROM generate_series(0, $3 - 1) AS i
		RETURNING id, environment`, int64(app.ID), int64(b.ID), len(sets))
	if err != nil {
		t.Fatal(err)
	}
	depOf := make([]int64, len(sets))
	for rows.Next() {
		var (
			id  int64
			env string
			i   int
		)
		if err := rows.Scan(&id, &env); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscanf(env, "mirror-%d", &i); err != nil {
			t.Fatal(err)
		}
		depOf[i] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	// Every operation of every multiset in one INSERT.
	var deps []int64
	var targets, states []string
	for i, m := range sets {
		for j, s := range m {
			deps = append(deps, depOf[i])
			targets = append(targets, fmt.Sprintf("t%d", j))
			states = append(states, string(s))
		}
	}
	opID := map[[2]int64]int64{} // (deployment, target index) -> operation
	rows, err = pool.Query(ctx, `INSERT INTO deployment_operations (deployment_id, target, state, started_at, finished_at)
		SELECT d, t, s,
		       CASE WHEN s IN ('running', 'waiting_for_cutover', 'cutting_over', 'completed', 'failed', 'reverted') THEN now() END,
		       CASE WHEN s IN ('completed', 'failed', 'stopped', 'reverted') THEN now() END
		FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(d, t, s)
		RETURNING id, deployment_id, target`, deps, targets, states)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			id, dep int64
			target  string
			j       int64
		)
		if err := rows.Scan(&id, &dep, &target); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscanf(target, "t%d", &j); err != nil {
			t.Fatal(err)
		}
		opID[[2]int64{dep, j}] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(opID) != len(deps) {
		t.Fatalf("%d operations inserted, want %d", len(opID), len(deps))
	}

	compare := func(pass string, want [][]deploydb.OperationState) {
		t.Helper()
		got := map[int64]deploydb.Deployment{}
		for p := ""; ; {
			page, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, deploydb.PageRequest{Size: deploydb.MaxPageSize, Cursor: p})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Items {
				got[int64(d.ID)] = d
			}
			if page.NextCursor == "" {
				break
			}
			p = page.NextCursor
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d deployments listed, want %d", pass, len(got), len(want))
		}
		mismatches := 0
		perStatus := map[deploydb.DeploymentStatus]int{}
		for i, m := range want {
			d := got[depOf[i]]
			perStatus[d.Status]++
			// Whether the deployment has started is the rule's other input
			// (it decides for all pending); DeriveDeploymentStatus answers
			// for one that has not.
			mirror := countsOf(m).DeploymentStatus(!d.StartedAt.IsZero())
			if d.StartedAt.IsZero() && deploydb.DeriveDeploymentStatus(m...) != mirror {
				t.Errorf("%s: operations %v: DeriveDeploymentStatus %s, OperationCounts.DeploymentStatus(false) %s",
					pass, m, deploydb.DeriveDeploymentStatus(m...), mirror)
			}
			if d.Status != mirror || d.Operations != countsOf(m) {
				mismatches++
				t.Errorf("%s: operations %v: SQL derived %s with counts %+v, DeriveDeploymentStatus says %s, counts %+v",
					pass, m, d.Status, d.Operations, mirror, countsOf(m))
			}
		}
		t.Logf("%s: %d multisets compared, %d mismatches; statuses %v", pass, len(want), mismatches, perStatus)
	}
	compare("insert", sets)

	// Move each deployment to the next multiset of the same size, in one
	// UPDATE of every operation.
	next := make([][]deploydb.OperationState, len(sets))
	bySizeIdx := map[int][]int{}
	for i, m := range sets {
		bySizeIdx[len(m)] = append(bySizeIdx[len(m)], i)
	}
	for _, idx := range bySizeIdx {
		for k, i := range idx {
			next[i] = sets[idx[(k+7)%len(idx)]]
		}
	}
	var ids []int64
	var newStates []string
	for i, m := range next {
		for j, s := range m {
			ids = append(ids, opID[[2]int64{depOf[i], int64(j)}])
			newStates = append(newStates, string(s))
		}
	}
	tag, err := pool.Exec(ctx, `UPDATE deployment_operations o
		SET state = u.s,
		    started_at = CASE WHEN u.s IN ('running', 'waiting_for_cutover', 'cutting_over', 'completed', 'failed', 'reverted') THEN now() END,
		    finished_at = CASE WHEN u.s IN ('completed', 'failed', 'stopped', 'reverted') THEN now() END
		FROM unnest($1::bigint[], $2::text[]) AS u(id, s)
		WHERE o.id = u.id`, ids, newStates)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != int64(len(ids)) {
		t.Fatalf("%d operations updated, want %d", tag.RowsAffected(), len(ids))
	}
	compare("update", next)
	checkAllDerived(t, pool)
}
