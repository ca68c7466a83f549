package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

// Tests of the Rollouts v2 contract: leases and rescues, halting, stop,
// cancel, resume and retry, superseding, batch claims, raw SQL against the
// triggers, and fleet-sized deployments.

// roDeploy creates a deployment of a fresh succeeded build of app to env
// with one pending operation per target, returned in target order.
func roDeploy(t *testing.T, svc *deploydb.Service, appID deploydb.AppID, env string, targets ...string) (deploydb.Deployment, []deploydb.Operation) {
	t.Helper()
	b := mustBuild(t, svc, appID, deploydb.BuildSucceeded)
	d, ops, _, err := svc.CreateDeploymentWithTargets(context.Background(), deploydb.CreateDeploymentWithTargetsParams{
		AppID: appID, BuildID: b.ID, Environment: env, Targets: targets})
	if err != nil {
		t.Fatalf("CreateDeploymentWithTargets(%s, %v): %v", env, targets, err)
	}
	slices.SortFunc(ops, func(a, b deploydb.Operation) int { return strings.Compare(a.Target, b.Target) })
	return d, ops
}

// roClaim claims one operation on target, failing the test otherwise.
func roClaim(t *testing.T, svc *deploydb.Service, target, worker string, lease time.Duration) deploydb.Operation {
	t.Helper()
	ops, err := svc.ClaimOperations(context.Background(), deploydb.ClaimParams{Target: target, Worker: worker, Lease: lease})
	if err != nil {
		t.Fatalf("claim on %s by %s: %v", target, worker, err)
	}
	if len(ops) != 1 {
		t.Fatalf("claim on %s by %s took %d operations, want 1", target, worker, len(ops))
	}
	return ops[0]
}

func roOp(t *testing.T, svc *deploydb.Service, id deploydb.OperationID) deploydb.Operation {
	t.Helper()
	o, err := svc.GetOperation(context.Background(), id)
	if err != nil {
		t.Fatalf("GetOperation(%d): %v", id, err)
	}
	return o
}

func roDep(t *testing.T, svc *deploydb.Service, id deploydb.DeploymentID) deploydb.Deployment {
	t.Helper()
	d, err := svc.GetDeployment(context.Background(), id)
	if err != nil {
		t.Fatalf("GetDeployment(%d): %v", id, err)
	}
	return d
}

// roRow returns the whole stored row of an operation as JSON, to check that
// a refused call changed nothing at all.
func roRow(t *testing.T, pool *pgxpool.Pool, id deploydb.OperationID) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), "SELECT row_to_json(o)::text FROM deployment_operations o WHERE id = $1", int64(id)).Scan(&s); err != nil {
		t.Fatalf("read operation %d: %v", id, err)
	}
	return s
}

// countedOps counts a deployment's operations by state with COUNT(*)
// GROUP BY, independently of the counts the triggers keep.
func countedOps(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, id deploydb.DeploymentID) deploydb.OperationCounts {
	t.Helper()
	rows, err := q.Query(context.Background(), "SELECT state, count(*) FROM deployment_operations WHERE deployment_id = $1 GROUP BY state", int64(id))
	if err != nil {
		t.Fatalf("count operations of deployment %d: %v", id, err)
	}
	defer rows.Close()
	var c deploydb.OperationCounts
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		switch deploydb.OperationState(state) {
		case deploydb.OperationPending:
			c.Pending = n
		case deploydb.OperationRunning:
			c.Running = n
		case deploydb.OperationWaitingForCutover:
			c.WaitingForCutover = n
		case deploydb.OperationCuttingOver:
			c.CuttingOver = n
		case deploydb.OperationCompleted:
			c.Completed = n
		case deploydb.OperationFailed:
			c.Failed = n
		case deploydb.OperationStopped:
			c.Stopped = n
		case deploydb.OperationReverted:
			c.Reverted = n
		default:
			t.Fatalf("unknown state %q", state)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkCounts asserts that a deployment's stored counts equal a COUNT(*)
// of its operations and that its status is the one derived from them, and
// returns it.
func checkCounts(t *testing.T, svc *deploydb.Service, pool *pgxpool.Pool, id deploydb.DeploymentID) deploydb.Deployment {
	t.Helper()
	d := roDep(t, svc, id)
	if want := countedOps(t, pool, id); d.Operations != want {
		t.Fatalf("deployment %d: stored counts %+v, its operations count %+v", id, d.Operations, want)
	}
	checkDerived(t, svc, id)
	return d
}

// waitLeaseExpired waits until the server's clock is past the operation's
// lease.
func waitLeaseExpired(t *testing.T, pool *pgxpool.Pool, id deploydb.OperationID) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var expired bool
		if err := pool.QueryRow(context.Background(), "SELECT coalesce(lease_expires_at < clock_timestamp(), false) FROM deployment_operations WHERE id = $1", int64(id)).Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if expired {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease of operation %d did not expire", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func opIDs(ops []deploydb.Operation) []deploydb.OperationID {
	out := make([]deploydb.OperationID, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	slices.Sort(out)
	return out
}

// A lease that expires is rescued once: the operation is pending again with
// attempt + 1, a last_error naming the lease and a new token; the worker
// that lost it can neither move nor heartbeat it, and its calls change
// nothing. A heartbeated lease is not rescued, and an expired lease that no
// rescue took yet still moves (the token decides, not the clock).
func TestLeaseExpiryRescueAndFencing(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "lease-a", "lease-b", "lease-c")

	const lease = 300 * time.Millisecond
	a := roClaim(t, svc, "lease-a", "worker-1", lease)
	if a.ID != ops[0].ID || a.State != deploydb.OperationRunning || a.ClaimedBy != "worker-1" || a.Attempt != 1 || a.LeaseToken < 1 {
		t.Fatalf("claim = %+v", a)
	}
	if got := a.LeaseExpiresAt.Sub(a.ClaimedAt); got != lease {
		t.Fatalf("lease runs %s from the claim, want %s", got, lease)
	}
	b := roClaim(t, svc, "lease-b", "worker-2", lease)
	c := roClaim(t, svc, "lease-c", "worker-3", lease)

	// Nothing has expired yet.
	if res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{}); err != nil || len(res.Requeued)+len(res.Failed) != 0 {
		t.Fatalf("rescue before expiry = %+v, %v", res, err)
	}
	// worker-2 heartbeats: its lease is extended from now.
	hb, err := svc.Heartbeat(ctx, b.Lease(), time.Minute)
	if err != nil || !hb.LeaseExpiresAt.After(b.LeaseExpiresAt) || hb.LeaseToken != b.LeaseToken || hb.State != deploydb.OperationRunning {
		t.Fatalf("heartbeat = %+v, %v", hb, err)
	}
	waitLeaseExpired(t, pool, a.ID)
	waitLeaseExpired(t, pool, c.ID)

	// worker-3's lease expired but no rescue ran: its move still counts.
	if moved, changed, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: c.Lease(), To: deploydb.OperationCompleted}); err != nil || !changed || moved.State != deploydb.OperationCompleted {
		t.Fatalf("move after expiry, before any rescue: %+v, %v, %v", moved, changed, err)
	}

	res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 0 || len(res.Requeued) != 1 || res.Requeued[0].ID != a.ID {
		t.Fatalf("rescue = %d requeued %v, %d failed; want operation %d requeued", len(res.Requeued), opIDs(res.Requeued), len(res.Failed), a.ID)
	}
	r := res.Requeued[0]
	if r.State != deploydb.OperationPending || r.Attempt != 2 || r.LeaseToken != a.LeaseToken+1 || r.ClaimedBy != "" || !r.ClaimedAt.IsZero() || !r.LeaseExpiresAt.IsZero() {
		t.Fatalf("rescued operation = %+v", r)
	}
	if !strings.Contains(r.LastError, "lease") || !strings.Contains(r.LastError, "worker-1") {
		t.Fatalf("rescued operation's last_error %q does not mention the lease of worker-1", r.LastError)
	}
	// A second rescue finds nothing: each expired lease is rescued once.
	if res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{}); err != nil || len(res.Requeued)+len(res.Failed) != 0 {
		t.Fatalf("second rescue = %+v, %v", res, err)
	}

	// worker-1 lost its lease: every call of its gets ErrLeaseLost and
	// changes nothing.
	before := roRow(t, pool, a.ID)
	beforeDep := roDep(t, svc, d.ID)
	for _, to := range []deploydb.OperationState{deploydb.OperationCompleted, deploydb.OperationFailed, deploydb.OperationRunning, deploydb.OperationWaitingForCutover, deploydb.OperationStopped} {
		if o, changed, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: a.Lease(), To: to, Reason: "late"}); !errors.Is(err, deploydb.ErrLeaseLost) || changed || o != (deploydb.Operation{}) {
			t.Errorf("lost worker's move to %s: %+v, %v, %v; want ErrLeaseLost", to, o, changed, err)
		}
	}
	if o, err := svc.Heartbeat(ctx, a.Lease(), time.Minute); !errors.Is(err, deploydb.ErrLeaseLost) || o != (deploydb.Operation{}) {
		t.Errorf("lost worker's heartbeat: %+v, %v; want ErrLeaseLost", o, err)
	}
	if after := roRow(t, pool, a.ID); after != before {
		t.Errorf("the lost worker's calls changed the row:\nbefore %s\nafter  %s", before, after)
	}
	if afterDep := roDep(t, svc, d.ID); afterDep != beforeDep {
		t.Errorf("the lost worker's calls changed the deployment:\nbefore %+v\nafter  %+v", beforeDep, afterDep)
	}
	// worker-2 heartbeated: its operation was not rescued.
	if got := roOp(t, svc, b.ID); got.State != deploydb.OperationRunning || got.LeaseToken != b.LeaseToken || got.Attempt != 1 {
		t.Errorf("heartbeated operation = %+v", got)
	}
	dd := checkCounts(t, svc, pool, d.ID)
	if want := (deploydb.OperationCounts{Pending: 1, Running: 1, Completed: 1}); dd.Operations != want || dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("deployment after the rescue: %s %+v", dd.Status, dd.Operations)
	}

	// The requeued operation is claimed again with a new token; the old
	// lease stays lost, the new one works.
	a2 := roClaim(t, svc, "lease-a", "worker-4", time.Minute)
	if a2.ID != a.ID || a2.LeaseToken != a.LeaseToken+2 || a2.Attempt != 2 || a2.ClaimedBy != "worker-4" {
		t.Fatalf("re-claim = %+v", a2)
	}
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: a.Lease(), To: deploydb.OperationCompleted}); !errors.Is(err, deploydb.ErrLeaseLost) {
		t.Fatalf("old lease after the re-claim: %v", err)
	}
	for _, l := range []deploydb.Lease{a2.Lease(), b.Lease()} {
		if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: l, To: deploydb.OperationCompleted}); err != nil {
			t.Fatalf("move with lease %+v: %v", l, err)
		}
	}
	if dd := checkCounts(t, svc, pool, d.ID); dd.Status != deploydb.DeploymentDeployed || dd.Operations.Completed != 3 {
		t.Fatalf("deployment at the end: %s %+v", dd.Status, dd.Operations)
	}
}

// Heartbeats keep a short lease alive while a rescuer runs: the operation
// is never rescued, although its first lease alone would have run out
// several times over.
func TestHeartbeatPreventsRescue(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, _ := roDeploy(t, svc, app.ID, uniqueEnv(), "hb")
	o := roClaim(t, svc, "hb", "worker", 300*time.Millisecond)

	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		rescued []deploydb.Operation
		rescues int
		rerr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{})
			if err != nil {
				rerr = err
				return
			}
			rescues++
			rescued = append(rescued, res.Requeued...)
			rescued = append(rescued, res.Failed...)
		}
	}()
	heartbeats := 0
	for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); heartbeats++ {
		if _, err := svc.Heartbeat(ctx, o.Lease(), 2*time.Second); err != nil {
			t.Errorf("heartbeat %d: %v", heartbeats, err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if rerr != nil {
		t.Fatal(rerr)
	}
	t.Logf("%d heartbeats, %d rescue passes", heartbeats, rescues)
	if len(rescued) != 0 || rescues == 0 {
		t.Fatalf("%d rescue passes rescued %v", rescues, opIDs(rescued))
	}
	if got := roOp(t, svc, o.ID); got.State != deploydb.OperationRunning || got.LeaseToken != o.LeaseToken || got.Attempt != 1 {
		t.Fatalf("operation after heartbeats = %+v", got)
	}
	if dd := checkCounts(t, svc, pool, d.ID); dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("deployment = %s", dd.Status)
	}
}

// An operation whose lease expires on its last attempt is failed, not
// requeued, and its deployment is halted: nothing of it is claimable.
func TestRescueFailsAtMaxAttempts(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "max-x", "max-y")
	const maxAttempts = 2
	for attempt := int32(1); attempt <= maxAttempts; attempt++ {
		o := roClaim(t, svc, "max-x", fmt.Sprintf("worker-%d", attempt), 50*time.Millisecond)
		if o.ID != ops[0].ID || o.Attempt != attempt {
			t.Fatalf("claim %d = %+v", attempt, o)
		}
		waitLeaseExpired(t, pool, o.ID)
		res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{MaxAttempts: maxAttempts})
		if err != nil {
			t.Fatal(err)
		}
		if attempt < maxAttempts {
			if len(res.Requeued) != 1 || len(res.Failed) != 0 || res.Requeued[0].Attempt != attempt+1 {
				t.Fatalf("rescue of attempt %d = %+v", attempt, res)
			}
			continue
		}
		if len(res.Requeued) != 0 || len(res.Failed) != 1 {
			t.Fatalf("rescue of the last attempt = %+v", res)
		}
		f := res.Failed[0]
		if f.ID != o.ID || f.State != deploydb.OperationFailed || f.Attempt != maxAttempts || f.FinishedAt.IsZero() || !f.LeaseExpiresAt.IsZero() ||
			f.LeaseToken != o.LeaseToken+1 || !strings.Contains(f.LastError, "lease") || !strings.Contains(f.LastError, fmt.Sprintf("attempt %d of %d", maxAttempts, maxAttempts)) {
			t.Fatalf("failed operation = %+v", f)
		}
		if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); !errors.Is(err, deploydb.ErrLeaseLost) {
			t.Fatalf("the last worker's move after the failure: %v", err)
		}
	}
	dd := checkCounts(t, svc, pool, d.ID)
	if !dd.Halted() || dd.Status != deploydb.DeploymentFailed || dd.Operations != (deploydb.OperationCounts{Pending: 1, Failed: 1}) {
		t.Fatalf("deployment = %s %+v, halted %v", dd.Status, dd.Operations, dd.Halted())
	}
	if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "max-y", Worker: "w"}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim of a halted deployment's operation: %v, want ErrNotFound", err)
	}
}

// Rescuers running at once rescue every expired operation exactly once.
func TestConcurrentRescuersRescueOnce(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	const n, rescuers = 60, 2
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	for i := 0; i < n; i++ {
		if _, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
			AppID: app.ID, BuildID: b.ID, Environment: fmt.Sprintf("resc-%d", i), Targets: []string{"rescue-target"}}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "rescue-target", Worker: "doomed", Lease: 50 * time.Millisecond, Limit: n})
	if err != nil || len(claimed) != n {
		t.Fatalf("batch claim took %d, %v", len(claimed), err)
	}
	for _, o := range claimed {
		waitLeaseExpired(t, pool, o.ID)
	}
	var (
		mu     sync.Mutex
		counts = map[deploydb.OperationID]int{}
		per    = make([]int, rescuers)
		calls  = make([]int, rescuers)
		errs   []error
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for r := 0; r < rescuers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			<-start
			for {
				res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{Limit: 7})
				mu.Lock()
				calls[r]++
				if err != nil {
					errs = append(errs, err)
				}
				for _, o := range append(res.Requeued, res.Failed...) {
					counts[o.ID]++
					per[r]++
				}
				mu.Unlock()
				if err != nil || len(res.Requeued)+len(res.Failed) == 0 {
					return
				}
			}
		}(r)
	}
	close(start)
	wg.Wait()
	t.Logf("%d rescuers: %v operations rescued in %v calls", rescuers, per, calls)
	if len(errs) != 0 {
		t.Fatalf("rescue errors: %v", errs)
	}
	for _, o := range claimed {
		if counts[o.ID] != 1 {
			t.Errorf("operation %d rescued %d times", o.ID, counts[o.ID])
		}
	}
	if len(counts) != n {
		t.Errorf("%d operations rescued, want %d", len(counts), n)
	}
	var requeued int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployment_operations WHERE state = 'pending' AND attempt = 2 AND claimed_by IS NULL AND lease_expires_at IS NULL`).Scan(&requeued); err != nil || requeued != n {
		t.Fatalf("%d operations pending on attempt 2 (%v), want %d", requeued, err, n)
	}
	checkAllDerived(t, pool)
}

// A failed operation halts its deployment: its pending operations are not
// claimed (ErrNotFound) and it reads failed until RetryDeployment requeues
// the failure.
func TestHaltedDeploymentIsNotClaimed(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "halt-1", "halt-2")
	o := roClaim(t, svc, "halt-1", "w", time.Minute)
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationFailed, Reason: "image pull failed"}); err != nil {
		t.Fatal(err)
	}
	dd := checkCounts(t, svc, pool, d.ID)
	if dd.Status != deploydb.DeploymentFailed || !dd.Halted() || dd.Operations != (deploydb.OperationCounts{Pending: 1, Failed: 1}) {
		t.Fatalf("[failed, pending] deployment = %s %+v", dd.Status, dd.Operations)
	}
	for i := 0; i < 3; i++ {
		if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "halt-2", Worker: "w", Limit: 5}); !errors.Is(err, deploydb.ErrNotFound) {
			t.Fatalf("claim of the pending operation of a halted deployment: %v, want ErrNotFound", err)
		}
	}
	if got := roOp(t, svc, ops[1].ID); got.State != deploydb.OperationPending {
		t.Fatalf("halted deployment's pending operation = %s", got.State)
	}

	dd, err := svc.RetryDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	// It had started, so with every operation pending again it is in
	// progress (it keeps its turn), not pending.
	if dd.Halted() || dd.Operations != (deploydb.OperationCounts{Pending: 2}) || dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("after RetryDeployment: %s %+v", dd.Status, dd.Operations)
	}
	if got := roOp(t, svc, o.ID); got.Attempt != 2 || got.LastError != "image pull failed" || got.ClaimedBy != "" {
		t.Fatalf("retried operation = %+v", got)
	}
	if c := roClaim(t, svc, "halt-2", "w", time.Minute); c.ID != ops[1].ID {
		t.Fatalf("claim after the retry took %d, want %d", c.ID, ops[1].ID)
	}
	if c := roClaim(t, svc, "halt-1", "w", time.Minute); c.ID != o.ID || c.Attempt != 2 {
		t.Fatalf("claim of the retried operation = %+v", c)
	}
	checkCounts(t, svc, pool, d.ID)
}

// StopDeployment stops the pending, running and waiting_for_cutover
// operations in one call (their workers' leases are lost; cutting_over
// finishes), ResumeDeployment requeues them, and CancelDeployment is final.
func TestStopResumeCancel(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "s1", "s2", "s3", "s4")
	running := roClaim(t, svc, "s1", "w1", time.Minute)
	waiting := roClaim(t, svc, "s2", "w2", time.Minute)
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: waiting.Lease(), To: deploydb.OperationWaitingForCutover}); err != nil {
		t.Fatal(err)
	}
	cutting := roClaim(t, svc, "s4", "w4", time.Minute)
	for _, to := range []deploydb.OperationState{deploydb.OperationWaitingForCutover, deploydb.OperationCuttingOver} {
		if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: cutting.Lease(), To: to}); err != nil {
			t.Fatal(err)
		}
	}

	dd, err := svc.StopDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dd.Operations != (deploydb.OperationCounts{Stopped: 3, CuttingOver: 1}) || dd.Status != deploydb.DeploymentInProgress || !dd.Halted() {
		t.Fatalf("after one StopDeployment: %s %+v", dd.Status, dd.Operations)
	}
	checkCounts(t, svc, pool, d.ID)
	for _, o := range ops[:3] {
		if got := roOp(t, svc, o.ID); got.State != deploydb.OperationStopped || !got.LeaseExpiresAt.IsZero() || got.FinishedAt.IsZero() {
			t.Errorf("operation on %s after the stop = %+v", o.Target, got)
		}
	}
	// The workers of the stopped operations lost their leases.
	for _, l := range []struct {
		lease deploydb.Lease
		to    deploydb.OperationState
	}{{running.Lease(), deploydb.OperationCompleted}, {waiting.Lease(), deploydb.OperationCuttingOver}} {
		before := roRow(t, pool, l.lease.OperationID)
		if _, changed, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: l.lease, To: l.to}); !errors.Is(err, deploydb.ErrLeaseLost) || changed {
			t.Errorf("move of a stopped operation: %v, %v; want ErrLeaseLost", changed, err)
		}
		if _, err := svc.Heartbeat(ctx, l.lease, 0); !errors.Is(err, deploydb.ErrLeaseLost) {
			t.Errorf("heartbeat of a stopped operation: %v; want ErrLeaseLost", err)
		}
		if after := roRow(t, pool, l.lease.OperationID); after != before {
			t.Errorf("lost worker changed the row:\nbefore %s\nafter  %s", before, after)
		}
	}
	// The cutover finishes on its own lease.
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: cutting.Lease(), To: deploydb.OperationCompleted}); err != nil {
		t.Fatalf("finishing the cutover: %v", err)
	}
	dd = checkCounts(t, svc, pool, d.ID)
	if dd.Status != deploydb.DeploymentCanceled || !dd.Halted() || !dd.CanceledAt.IsZero() {
		t.Fatalf("stopped deployment = %s %+v, canceled at %v", dd.Status, dd.Operations, dd.CanceledAt)
	}
	if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "s3", Worker: "w"}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim of a stopped deployment: %v", err)
	}

	dd, err = svc.ResumeDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dd.Halted() || dd.Operations != (deploydb.OperationCounts{Pending: 3, Completed: 1}) || dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("after ResumeDeployment: %s %+v", dd.Status, dd.Operations)
	}
	again := roClaim(t, svc, "s1", "w5", time.Minute)
	if again.ID != running.ID || again.LeaseToken <= running.LeaseToken {
		t.Fatalf("claim after the resume = %+v (old token %d)", again, running.LeaseToken)
	}
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: again.Lease(), To: deploydb.OperationFailed, Reason: "crashed"}); err != nil {
		t.Fatal(err)
	}

	// Cancel: final. The failed operation stays failed; the pending ones
	// stop; neither resume nor retry is accepted afterwards.
	dd, err = svc.CancelDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dd.CanceledAt.IsZero() || dd.Operations != (deploydb.OperationCounts{Stopped: 2, Completed: 1, Failed: 1}) || dd.Status != deploydb.DeploymentFailed {
		t.Fatalf("after CancelDeployment: %s %+v, canceled at %v", dd.Status, dd.Operations, dd.CanceledAt)
	}
	before := roDep(t, svc, d.ID)
	for name, call := range map[string]func() (deploydb.Deployment, error){
		"ResumeDeployment": func() (deploydb.Deployment, error) { return svc.ResumeDeployment(ctx, d.ID) },
		"RetryDeployment":  func() (deploydb.Deployment, error) { return svc.RetryDeployment(ctx, d.ID) },
	} {
		if _, err := call(); !errors.Is(err, deploydb.ErrConflict) {
			t.Errorf("%s of a canceled deployment: %v, want ErrConflict", name, err)
		}
	}
	for _, id := range []deploydb.OperationID{ops[1].ID, running.ID} {
		if _, _, err := svc.Retry(ctx, id); !errors.Is(err, deploydb.ErrConflict) {
			t.Errorf("Retry of operation %d of a canceled deployment: %v, want ErrConflict", id, err)
		}
	}
	if after := roDep(t, svc, d.ID); after != before {
		t.Errorf("refused calls changed the canceled deployment:\nbefore %+v\nafter  %+v", before, after)
	}
	// Repeating the cancel is harmless.
	if again, err := svc.CancelDeployment(ctx, d.ID); err != nil || !again.CanceledAt.Equal(dd.CanceledAt) || again.Operations != dd.Operations {
		t.Fatalf("repeated cancel = %+v, %v", again, err)
	}
	checkCounts(t, svc, pool, d.ID)
}

// A new deployment supersedes the older pending deployment of its app and
// environment (its operations stop, it reads canceled, and it cannot be
// resumed or retried), while an older deployment in progress runs to its
// end before the newer one can be claimed.
func TestSupersedingDeployments(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)

	old, oldOps := roDeploy(t, svc, app.ID, "prod", "p1", "p2")
	newer, newerOps := roDeploy(t, svc, app.ID, "prod", "p1", "p2")
	od := checkCounts(t, svc, pool, old.ID)
	if od.Status != deploydb.DeploymentCanceled || od.Operations != (deploydb.OperationCounts{Stopped: 2}) {
		t.Fatalf("superseded deployment = %s %+v", od.Status, od.Operations)
	}
	if _, err := svc.ResumeDeployment(ctx, old.ID); !errors.Is(err, deploydb.ErrConflict) {
		t.Fatalf("resume of a superseded deployment: %v, want ErrConflict", err)
	}
	if _, _, err := svc.Retry(ctx, oldOps[0].ID); !errors.Is(err, deploydb.ErrConflict) {
		t.Fatalf("retry of a superseded deployment's operation: %v, want ErrConflict", err)
	}
	if got := checkCounts(t, svc, pool, old.ID); got != od {
		t.Fatalf("refused resume changed the superseded deployment: %+v", got)
	}
	if c := roClaim(t, svc, "p2", "w", time.Minute); c.ID != newerOps[1].ID {
		t.Fatalf("claim on p2 took %d, want the newer deployment's %d", c.ID, newerOps[1].ID)
	}
	if dd := checkCounts(t, svc, pool, newer.ID); dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("newer deployment = %s", dd.Status)
	}

	// Superseded with a failure: RetryDeployment is refused.
	failing, failingOps := roDeploy(t, svc, app.ID, "qa", "f1", "f2")
	f := roClaim(t, svc, "f1", "w", time.Minute)
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: f.Lease(), To: deploydb.OperationFailed}); err != nil {
		t.Fatal(err)
	}
	roDeploy(t, svc, app.ID, "qa", "f1")
	if fd := checkCounts(t, svc, pool, failing.ID); fd.Operations != (deploydb.OperationCounts{Failed: 1, Stopped: 1}) || fd.Status != deploydb.DeploymentFailed {
		t.Fatalf("superseded failed deployment = %s %+v", fd.Status, fd.Operations)
	}
	if _, err := svc.RetryDeployment(ctx, failing.ID); !errors.Is(err, deploydb.ErrConflict) {
		t.Fatalf("retry of a superseded deployment: %v, want ErrConflict", err)
	}
	if _, err := svc.ResumeDeployment(ctx, failing.ID); !errors.Is(err, deploydb.ErrConflict) {
		t.Fatalf("resume of a superseded deployment: %v, want ErrConflict", err)
	}
	if got := roOp(t, svc, failingOps[0].ID); got.State != deploydb.OperationFailed {
		t.Fatalf("refused retry moved the operation to %s", got.State)
	}

	// An older deployment in progress is not superseded: it keeps its
	// pending operation and runs to its end; the newer one waits.
	running, runOps := roDeploy(t, svc, app.ID, "stage", "q1", "q2")
	q1 := roClaim(t, svc, "q1", "w1", time.Minute)
	waitingDep, waitOps := roDeploy(t, svc, app.ID, "stage", "q1", "q2")
	if rd := checkCounts(t, svc, pool, running.ID); rd.Status != deploydb.DeploymentInProgress || rd.Operations != (deploydb.OperationCounts{Running: 1, Pending: 1}) {
		t.Fatalf("older in-progress deployment after the newer was created = %s %+v", rd.Status, rd.Operations)
	}
	if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "q1", Worker: "w"}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim of the newer deployment while the older is in progress: %v, want ErrNotFound", err)
	}
	q2 := roClaim(t, svc, "q2", "w2", time.Minute)
	if q2.ID != runOps[1].ID {
		t.Fatalf("claim on q2 took %d, want the older deployment's %d", q2.ID, runOps[1].ID)
	}
	if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "q2", Worker: "w"}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim of the newer deployment while the older is in progress: %v, want ErrNotFound", err)
	}
	for _, o := range []deploydb.Operation{q1, q2} {
		if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); err != nil {
			t.Fatal(err)
		}
	}
	if rd := checkCounts(t, svc, pool, running.ID); rd.Status != deploydb.DeploymentDeployed {
		t.Fatalf("older deployment = %s", rd.Status)
	}
	if c := roClaim(t, svc, "q1", "w3", time.Minute); c.ID != waitOps[0].ID {
		t.Fatalf("claim after the older deployment finished took %d, want %d", c.ID, waitOps[0].ID)
	}
	if wd := checkCounts(t, svc, pool, waitingDep.ID); wd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("newer deployment = %s", wd.Status)
	}
}

// ClaimOperations with a limit takes up to that many operations of one
// target in one call, oldest first, each with its own lease and token.
func TestBatchClaim(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	var want []deploydb.OperationID
	for i := 0; i < 7; i++ {
		_, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
			AppID: app.ID, BuildID: b.ID, Environment: fmt.Sprintf("batch-%d", i), Targets: []string{"batch", fmt.Sprintf("other-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ops {
			if o.Target == "batch" {
				want = append(want, o.ID)
			}
		}
	}
	first, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "batch", Worker: "bw", Limit: 3, Lease: time.Minute})
	if err != nil || len(first) != 3 {
		t.Fatalf("claim of 3 = %d, %v", len(first), err)
	}
	rest, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "batch", Worker: "bw", Limit: 10, Lease: time.Minute})
	if err != nil || len(rest) != 4 {
		t.Fatalf("claim of up to 10 with 4 left = %d, %v", len(rest), err)
	}
	got := append(opIDs(first), opIDs(rest)...)
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want the oldest first %v", got, want)
	}
	for _, o := range append(first, rest...) {
		if o.State != deploydb.OperationRunning || o.ClaimedBy != "bw" || o.LeaseExpiresAt.IsZero() || o.Target != "batch" {
			t.Fatalf("claimed operation = %+v", o)
		}
	}
	if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "batch", Worker: "bw", Limit: 10}); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim with nothing left: %v", err)
	}
	for _, bad := range []int{-1, deploydb.MaxClaimBatch + 1} {
		if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "batch", Worker: "bw", Limit: bad}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("limit %d: %v", bad, err)
		}
	}
	for _, bad := range []time.Duration{-time.Second, time.Microsecond, deploydb.MaxLease + time.Second} {
		if _, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "batch", Worker: "bw", Lease: bad}); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("lease %v: %v", bad, err)
		}
	}
	checkAllDerived(t, pool)
}

// pgCode returns err's SQLSTATE and constraint name.
func pgCode(err error) (code, constraint string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.ConstraintName
	}
	return "", ""
}

// Raw SQL of the app role (DML only, not the tables' owner) cannot break
// the derived counts and status: moving, inserting and deleting operations
// keeps them in step, and writing the counts or a status that disagrees
// with the operations is refused with a check violation.
func TestRawSQLKeepsCountsAndStatus(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "r1", "r2", "r3", "r4")
	d2, ops2 := roDeploy(t, svc, app.ID, uniqueEnv(), "r1", "r2")

	role := fmt.Sprintf("dd_rawapp_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := pool.Exec(ctx, "CREATE ROLE "+role+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = pool.Exec(cctx, "DROP OWNED BY "+role)
		_, _ = pool.Exec(cctx, "DROP ROLE IF EXISTS "+role)
	})
	if _, err := pool.Exec(ctx, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET ROLE "+role); err != nil {
		t.Fatal(err)
	}
	var owner bool
	if err := conn.QueryRow(ctx, "SELECT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE relname = 'deployments'), 'MEMBER')").Scan(&owner); err != nil || owner {
		t.Fatalf("the app role is a member of the tables' owner (%v, %v)", owner, err)
	}
	exec := func(sql string, args ...any) error {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		return err
	}
	check := func(id deploydb.DeploymentID, want deploydb.OperationCounts, status deploydb.DeploymentStatus) {
		t.Helper()
		dd := checkCounts(t, svc, pool, id)
		if dd.Operations != want || dd.Status != status {
			t.Fatalf("deployment %d = %s %+v, want %s %+v", id, dd.Status, dd.Operations, status, want)
		}
	}

	// State changes by hand move the counts and the status.
	if err := exec(`UPDATE deployment_operations SET state = 'running', started_at = now(), claimed_by = 'raw', claimed_at = now(),
		lease_expires_at = now() + interval '1 minute' WHERE id = $1`, int64(ops[0].ID)); err != nil {
		t.Fatal(err)
	}
	check(d.ID, deploydb.OperationCounts{Pending: 3, Running: 1}, deploydb.DeploymentInProgress)
	// One statement over two deployments.
	if err := exec(`UPDATE deployment_operations SET state = 'stopped', finished_at = now() WHERE id = ANY($1)`, []int64{int64(ops[1].ID), int64(ops2[0].ID)}); err != nil {
		t.Fatal(err)
	}
	check(d.ID, deploydb.OperationCounts{Pending: 2, Running: 1, Stopped: 1}, deploydb.DeploymentInProgress)
	check(d2.ID, deploydb.OperationCounts{Pending: 1, Stopped: 1}, deploydb.DeploymentCanceled)
	if err := exec(`UPDATE deployment_operations SET state = 'completed', started_at = coalesce(started_at, now()), finished_at = now(), lease_expires_at = NULL
		WHERE deployment_id = $1`, int64(d.ID)); err != nil {
		t.Fatal(err)
	}
	check(d.ID, deploydb.OperationCounts{Completed: 4}, deploydb.DeploymentDeployed)

	// Counts and a disagreeing status cannot be written.
	for _, c := range []struct {
		sql, constraint string
	}{
		{"UPDATE deployments SET ops_pending = 5 WHERE id = $1", "deployments_operation_counts_derived"},
		{"UPDATE deployments SET ops_completed = ops_completed - 1, ops_failed = ops_failed + 1 WHERE id = $1", "deployments_operation_counts_derived"},
		{"UPDATE deployments SET status = 'failed', finished_at = now() WHERE id = $1", "deployments_status_derived"},
		{"UPDATE deployments SET status = 'in_progress', finished_at = NULL WHERE id = $1", "deployments_status_derived"},
	} {
		code, constraint := pgCode(exec(c.sql, int64(d.ID)))
		if code != "23514" || constraint != c.constraint {
			t.Errorf("%s: SQLSTATE %q constraint %q, want 23514 %s", c.sql, code, constraint, c.constraint)
		}
	}
	if code, constraint := pgCode(exec("UPDATE deployments SET status = 'deployed' WHERE id = $1", int64(d2.ID))); code != "23514" || constraint != "deployments_status_derived" {
		t.Errorf("status deployed on a canceled rollout: SQLSTATE %q constraint %q", code, constraint)
	}
	if code, constraint := pgCode(exec(`INSERT INTO deployments (app_id, build_id, environment, ops_pending)
		SELECT app_id, build_id, 'forged', 3 FROM deployments WHERE id = $1`, int64(d.ID))); code != "23514" || constraint != "deployments_operation_counts_derived" {
		t.Errorf("insert with forged counts: SQLSTATE %q constraint %q", code, constraint)
	}
	check(d.ID, deploydb.OperationCounts{Completed: 4}, deploydb.DeploymentDeployed)
	// Through the Service's caller connection (the owner) a disagreeing
	// status is refused too, as ErrInvalidArgument.
	if _, err := svc.Conn().Exec(ctx, "UPDATE deployments SET status = 'pending' WHERE id = $1", int64(d.ID)); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("status write through Conn: %v, want ErrInvalidArgument", err)
	}
	// A write that agrees with the operations, or touches other columns,
	// is fine.
	if err := exec("UPDATE deployments SET status = 'deployed', updated_at = now() WHERE id = $1", int64(d.ID)); err != nil {
		t.Errorf("an agreeing status write: %v", err)
	}

	// Deleting and inserting operations by hand moves the counts.
	if err := exec("DELETE FROM deployment_operations WHERE id = $1", int64(ops2[1].ID)); err != nil {
		t.Fatal(err)
	}
	check(d2.ID, deploydb.OperationCounts{Stopped: 1}, deploydb.DeploymentCanceled)
	if err := exec("INSERT INTO deployment_operations (deployment_id, target) VALUES ($1, 'r5'), ($1, 'r6')", int64(d2.ID)); err != nil {
		t.Fatal(err)
	}
	check(d2.ID, deploydb.OperationCounts{Pending: 2, Stopped: 1}, deploydb.DeploymentCanceled)
	// Moving an operation to another deployment moves its count.
	if err := exec("UPDATE deployment_operations SET deployment_id = $1 WHERE deployment_id = $2 AND target = 'r5'", int64(d.ID), int64(d2.ID)); err != nil {
		t.Fatal(err)
	}
	check(d.ID, deploydb.OperationCounts{Pending: 1, Completed: 4}, deploydb.DeploymentInProgress)
	check(d2.ID, deploydb.OperationCounts{Pending: 1, Stopped: 1}, deploydb.DeploymentCanceled)
	if err := exec("DELETE FROM deployment_operations WHERE deployment_id = $1", int64(d2.ID)); err != nil {
		t.Fatal(err)
	}
	if dd := roDep(t, svc, d2.ID); dd.Operations != (deploydb.OperationCounts{}) || dd.Status != deploydb.DeploymentCanceled {
		t.Fatalf("deployment without operations = %s %+v", dd.Status, dd.Operations)
	}
	checkAllDerived(t, pool)
}

// A deployment to 10,000 targets is created with one statement carrying
// every target, and its counts say 10,000 pending.
func TestFleetOf10000Targets(t *testing.T) {
	t.Parallel()
	pool := pgPoolTraced(t)
	rec := pool.rec
	svc := deploydb.New(pool.traced)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	const n = 10000
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("node-%05d.fleet", i)
	}
	rec.take()
	start := time.Now()
	d, ops, created, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
		AppID: app.ID, BuildID: b.ID, Environment: "fleet", Targets: targets})
	elapsed := time.Since(start)
	if err != nil || !created || len(ops) != n {
		t.Fatalf("CreateDeploymentWithTargets(%d targets) = %d operations, created %v, %v", n, len(ops), created, err)
	}
	stmts := rec.take()
	inserts, carried := 0, 0
	var names []string
	for _, q := range stmts {
		name := q.name()
		if name == "" {
			name = strings.Fields(q.sql + " ?")[0]
		}
		names = append(names, name)
		if strings.Contains(q.sql, "INSERT INTO deployment_operations") {
			inserts++
			for _, a := range q.args {
				if s, ok := a.([]string); ok {
					carried = max(carried, len(s))
				}
			}
		}
	}
	figure(t, "FLEET", "CreateDeploymentWithTargets with %d targets: %d statements (%s), %d INSERT of operations carrying %d targets, %s",
		n, len(stmts), strings.Join(names, ", "), inserts, carried, elapsed.Round(time.Millisecond))
	if inserts != 1 || carried != n {
		t.Fatalf("%d statements inserted operations, the largest carried %d targets; want 1 statement with all %d", inserts, carried, n)
	}
	dd := roDep(t, svc, d.ID)
	if dd.Operations != (deploydb.OperationCounts{Pending: n}) || dd.Operations.Total() != n || dd.Status != deploydb.DeploymentPending {
		t.Fatalf("fleet deployment = %s %+v", dd.Status, dd.Operations)
	}
	if got := countedOps(t, pool.traced, d.ID); got != dd.Operations {
		t.Fatalf("stored counts %+v, counted %+v", dd.Operations, got)
	}
	// A claim in the fleet moves the counts.
	claimed, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: targets[n-1], Worker: "w"})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim in the fleet: %v", err)
	}
	if dd := roDep(t, svc, d.ID); dd.Operations != (deploydb.OperationCounts{Pending: n - 1, Running: 1}) || dd.Status != deploydb.DeploymentInProgress {
		t.Fatalf("fleet deployment after a claim = %s %+v", dd.Status, dd.Operations)
	}
}

// tracedPool is a pool whose statements are recorded.
type tracedPool struct {
	traced *pgxpool.Pool
	rec    *queryRecorder
}

func pgPoolTraced(t *testing.T) tracedPool {
	t.Helper()
	_, plain := newService(t)
	cfg, err := pgxpool.ParseConfig(plain.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	rec := new(queryRecorder)
	cfg.ConnConfig.Tracer = rec
	traced, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(traced.Close)
	return tracedPool{traced: traced, rec: rec}
}
