package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
)

// Rollout contract checks that pin down defects: each states the
// contract's promise and the sequence that breaks it.

// waitForLockWait waits until a backend of the test database whose query
// contains fragment waits for a lock, or done is closed; it reports
// whether the backend was seen waiting.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool, fragment string, done <-chan struct{}) bool {
	t.Helper()
	for i := 0; i < 500; i++ {
		select {
		case <-done:
			return false
		default:
		}
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, fragment).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no backend running %q waited for a lock", fragment)
	return false
}

// DeleteApp must follow the lock order (app row, then operations, then
// deployments). A CreateDeployment holds the app row (FOR KEY SHARE) and
// then locks the pending operations it supersedes; a DeleteApp that locks
// those operations before it waits for the app row deadlocks with it.
func TestDeleteAppDoesNotDeadlockWithCreateDeployment(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	roDeploy(t, svc, app.ID, "prod", "x")
	before := dbDeadlocks(t, pool)

	// A transaction that creates a deployment (holding the app row) and
	// then, once DeleteApp waits, another one that supersedes prod's.
	holding, proceed := make(chan struct{}), make(chan struct{})
	txErr := make(chan error, 1)
	go func() {
		first := true
		txErr <- svc.InTx(ctx, func(tx *deploydb.Service) error {
			if _, _, err := tx.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "stage"}); err != nil {
				return err
			}
			if first {
				first = false
				close(holding)
				<-proceed
			}
			_, _, err := tx.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "prod"})
			return err
		})
	}()
	<-holding
	delErr := make(chan error, 1)
	delDone := make(chan struct{})
	go func() {
		delErr <- svc.DeleteApp(ctx, app.ID)
		close(delDone)
	}()
	waitForLockWait(t, pool, "FROM apps", delDone) // LockAppForDelete: DeleteApp's first statement
	close(proceed)
	wantAppDeletedWithoutDeadlock(t, svc, pool, app.ID, before, "a superseding CreateDeployment", <-txErr, <-delErr)
}

// wantAppDeletedWithoutDeadlock checks the end of a race between DeleteApp
// and another call (what): both succeeded, one after the other, no deadlock
// was counted since before, and the app is gone.
func wantAppDeletedWithoutDeadlock(t *testing.T, svc *deploydb.Service, pool *pgxpool.Pool, appID deploydb.AppID, before int64, what string, errOther, errDel error) {
	t.Helper()
	deadlocks := dbDeadlocks(t, pool) - before
	t.Logf("%s: %v; DeleteApp: %v; deadlocks: %d", what, errOther, errDel, deadlocks)
	if errOther != nil || errDel != nil || deadlocks != 0 {
		t.Fatalf("DeleteApp against %s: %v, DeleteApp %v, %d deadlocks; want both to succeed, one after the other, without a deadlock", what, errOther, errDel, deadlocks)
	}
	if _, err := svc.GetApp(context.Background(), appID); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("app after DeleteApp: %v", err)
	}
}

// An older deployment in progress keeps running and the newer one of the
// same app and environment is claimable only after it finishes. A rescue
// of the older one's only active operation must not hand its turn to the
// newer deployment: the requeued operation is claimed again (that is what
// a rescue is for), and the older deployment does not end up pending
// forever with nothing ever claiming it.
func TestRescueKeepsAnOlderDeploymentInProgress(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	older, olderOps := roDeploy(t, svc, app.ID, "prod", "x")
	held := roClaim(t, svc, "x", "lost-worker", 100*time.Millisecond)
	newer, _ := roDeploy(t, svc, app.ID, "prod", "x")
	waitLeaseExpired(t, pool, held.ID)
	res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{})
	if err != nil || len(res.Requeued) != 1 {
		t.Fatalf("rescue = %+v, %v", res, err)
	}
	od := roDep(t, svc, older.ID)
	got, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "x", Worker: "next-worker"})
	if err != nil {
		t.Fatalf("claim after the rescue: %v", err)
	}
	nd := roDep(t, svc, newer.ID)
	t.Logf("after the rescue the older deployment %d read %s %+v; the claim took operation %d of deployment %d; the newer deployment %d reads %s",
		older.ID, od.Status, od.Operations, got[0].ID, got[0].DeploymentID, newer.ID, nd.Status)
	if got[0].ID != olderOps[0].ID {
		t.Fatalf("the claim after the rescue took operation %d of deployment %d (the newer one), want the rescued operation %d of the older deployment %d, which was in progress; the older deployment now reads %s with %d pending operations that no claim will take",
			got[0].ID, got[0].DeploymentID, olderOps[0].ID, older.ID, roDep(t, svc, older.ID).Status, roDep(t, svc, older.ID).Operations.Pending)
	}
}

// Creating a deployment supersedes every older deployment of the same app
// and environment that is not in progress. Two creates that overlap (the
// older one's transaction commits after the newer one was created) must
// not leave the older deployment pending: no claim takes it (a newer one
// exists), so it stays pending, never canceled, until yet another
// deployment of that app and environment is created.
func TestOverlappingCreatesSupersede(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	var older deploydb.Deployment
	holding, proceed := make(chan struct{}), make(chan struct{})
	txErr := make(chan error, 1)
	go func() {
		first := true
		txErr <- svc.InTx(ctx, func(tx *deploydb.Service) error {
			var err error
			older, _, _, err = tx.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "prod", Targets: []string{"y"}})
			if first {
				first = false
				close(holding)
				<-proceed
			}
			return err
		})
	}()
	<-holding
	var newer deploydb.Deployment
	newErr := make(chan error, 1)
	newDone := make(chan struct{})
	go func() {
		var err error
		newer, _, _, err = svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "prod", Targets: []string{"y"}})
		newErr <- err
		close(newDone)
	}()
	// The newer create either finishes at once or waits for the older
	// transaction; either way the older one commits now.
	waited := waitForLockWait(t, pool, "pg_advisory_xact_lock", newDone) // creates of one app and environment take turns
	close(proceed)
	if err := <-txErr; err != nil {
		t.Fatal(err)
	}
	if err := <-newErr; err != nil {
		t.Fatal(err)
	}
	od, nd := roDep(t, svc, older.ID), roDep(t, svc, newer.ID)
	claimed, claimErr := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "y", Worker: "w", Limit: 2})
	t.Logf("newer create waited for the older transaction: %v; older %d reads %s %+v, newer %d reads %s %+v; claim on y: %d operations, %v",
		waited, older.ID, od.Status, od.Operations, newer.ID, nd.Status, nd.Operations, len(claimed), claimErr)
	if od.Status != deploydb.DeploymentCanceled || od.Operations != (deploydb.OperationCounts{Stopped: 1}) {
		t.Fatalf("the older of two overlapping deployments of one app and environment reads %s %+v, want canceled (superseded); no claim takes it (the claim on its target took %d operation(s), of the newer deployment) and it stays pending until another deployment of prod is created",
			od.Status, od.Operations, len(claimed))
	}
}

// CreateDeploymentWithTargets returns the deployment together with its
// operations: the returned Deployment's counts say how many there are, as
// GetDeployment's do.
func TestCreateDeploymentWithTargetsReturnsCounts(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "prod", Targets: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	stored := roDep(t, svc, d.ID)
	if d.Operations != (deploydb.OperationCounts{Pending: len(ops)}) || d.Operations != stored.Operations {
		t.Fatalf("CreateDeploymentWithTargets returned counts %+v (total %d) for %d operations; GetDeployment says %+v",
			d.Operations, d.Operations.Total(), len(ops), stored.Operations)
	}
}

var joinFilterRows = regexp.MustCompile(`Rows Removed by Join Filter: (\d+)`)

// The counting trigger's work must grow with the number of operations a
// statement changes, not with its square. The trigger joins the statement's
// old and new rows; PL/pgSQL keeps the plan it made the first time the
// trigger ran in a session, so once a session has moved one operation (as
// every pooled connection of a worker has) that plan is a nested loop, and
// stopping a deployment of n operations compares n x n rows: about 36
// seconds for 10,000 operations, and, at MaxTargets, far longer.
//
// The test counts the rows the trigger's joins discard (auto_explain,
// nested statements, on the test's superuser session), not the time.
func TestCountingTriggerIsLinear(t *testing.T) {
	t.Parallel()
	_, plain := newService(t)
	ctx := ctxT(t)
	cfg, err := pgxpool.ParseConfig(plain.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		notices []string
	)
	cfg.MaxConns = 1 // one session, as a pooled worker connection
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message)
		mu.Unlock()
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		for _, s := range []string{"LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
			"SET auto_explain.log_nested_statements = on", "SET auto_explain.log_level = notice"} {
			if _, err := c.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s (this check needs auto_explain and a superuser): %w", s, err)
			}
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	svc := deploydb.New(pool)
	app := mustApp(t, svc)
	const n = 2000
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("lin-%04d", i)
	}
	d, _ := roDeploy(t, svc, app.ID, "big", targets...)
	// The session moves one operation first, as a worker's would.
	_, small := roDeploy(t, svc, app.ID, "small", "one")
	if _, _, err := svc.MarkStarted(ctx, small[0].ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	notices = nil
	mu.Unlock()
	start := time.Now()
	stopped, err := svc.StopDeployment(ctx, d.ID)
	elapsed := time.Since(start)
	if err != nil || stopped.Operations.Stopped != n {
		t.Fatalf("stop = %+v, %v", stopped.Operations, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var removed int64
	for _, m := range notices {
		for _, g := range joinFilterRows.FindAllStringSubmatch(m, -1) {
			k, _ := strconv.ParseInt(g[1], 10, 64)
			removed += k
		}
	}
	figure(t, "TRIGGER", "StopDeployment of %d operations on a session that had moved one operation before: the counting trigger's joins discarded %d rows (%d per operation); %s",
		n, removed, removed/n, elapsed.Round(time.Millisecond))
	if removed > 10*n {
		var plan string
		for _, m := range notices {
			if strings.Contains(m, "old_ops") && joinFilterRows.MatchString(m) {
				plan = m
				break
			}
		}
		t.Fatalf("the counting trigger compared %d rows for a statement that changed %d operations (quadratic); its plan:\n%s", removed, n, plan)
	}
}

// A claim that starts a deployment takes its app and environment's advisory
// lock, and no other: the lock is tried only for the claim's candidates on
// its target. When the lock was a filter on the deployments alone, a plan
// that scans the deployments (small tables, or a generic plan) tried it for
// every pending deployment of every app, held dozens of other apps' locks
// until commit, and made concurrent claims of those deployments pass over
// them: ErrNotFound with claimable work on their target (seen in the
// rollout benchmark's first cells).
func TestClaimLocksOnlyTheDeploymentItStarts(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		t.Run(mode, func(t *testing.T) {
			svc, pool := newService(t)
			// A new fleet: statistics taken while the tables were almost
			// empty, then pending deployments of 100 targets, each of its
			// own app, as the rollout benchmark creates them.
			roDeploy(t, svc, mustApp(t, svc).ID, "prod", targetNames("first-", 10)...)
			if _, err := pool.Exec(ctx, `ALTER TABLE deployments SET (autovacuum_enabled = false);
				ALTER TABLE deployment_operations SET (autovacuum_enabled = false);
				ANALYZE deployments, deployment_operations`); err != nil {
				t.Fatal(err)
			}
			var targets []string
			for i := range 128 {
				names := targetNames(fmt.Sprintf("%s-%d-", strings.TrimPrefix(mode, "force_")[:3], i), 100)
				roDeploy(t, svc, mustApp(t, svc).ID, "prod", names...)
				targets = append(targets, names[0])
			}
			targets = targets[:8]
			cfg := pool.Config().Copy()
			cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = mode
			planned, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer planned.Close()
			psvc := deploydb.New(planned)
			// Warm the statement cache, so a generic plan is in use.
			for range 6 {
				if _, err := psvc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "nothing-here", Worker: "warm"}); !errors.Is(err, deploydb.ErrNotFound) {
					t.Fatalf("claim on an empty target: %v", err)
				}
			}
			err = psvc.InTx(ctx, func(tx *deploydb.Service) error {
				ops, err := tx.ClaimOperations(ctx, deploydb.ClaimParams{Target: targets[0], Worker: "first"})
				if err != nil {
					return fmt.Errorf("first claim: %w", err)
				}
				if len(ops) != 1 {
					return fmt.Errorf("first claim took %d operations", len(ops))
				}
				var held int
				if err := tx.Conn().QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&held); err != nil {
					return err
				}
				if held != 1 {
					t.Errorf("the claim that starts one deployment holds %d advisory locks, want 1", held)
				}
				// While it has not committed, the other deployments start.
				for _, target := range targets[1:] {
					if _, err := psvc.ClaimOperations(ctx, deploydb.ClaimParams{Target: target, Worker: "second"}); err != nil {
						t.Errorf("claim on %s while another app's deployment is being started: %v", target, err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// targetNames returns n target names with a prefix.
func targetNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// CreateDeployment supersedes the older pending operations of its own app
// and environment; finding them may read each table at most once, whatever
// the plan. On a new fleet (statistics taken while the tables were almost
// empty, then many deployments of other apps created with their pending
// operations) the generic plan of the cached statement joined every pending
// operation to a sequential scan of the deployments: pending operations
// times deployments rows per create, from 3 ms to 100 ms over 128 creates
// of 100 targets in the rollout benchmark.
func TestCreateDeploymentReadsEachTableAtMostOnce(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	svc, pool := newService(t)
	// The first, small rollout, completed, and the statistics of that.
	first, _ := roDeploy(t, svc, mustApp(t, svc).ID, "prod", targetNames("first-", 10)...)
	for _, target := range targetNames("first-", 10) {
		o := roClaim(t, svc, target, "w", time.Minute)
		if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE deployments SET (autovacuum_enabled = false);
		ALTER TABLE deployment_operations SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE deployments, deployment_operations`); err != nil {
		t.Fatal(err)
	}
	// Then the fleet, through one connection whose statements use their
	// generic plans.
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	generic, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(generic.Close)
	gsvc := deploydb.New(generic)
	const apps, targets = 128, 100
	for i := range apps {
		roDeploy(t, gsvc, mustApp(t, svc).ID, "prod", targetNames(fmt.Sprintf("t%d-", i), targets)...)
	}
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	read := createDeploymentReads(t, generic, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "prod"},
		"seq_tup_read", "deployments", "deployment_operations")
	// Planned on the small tables' statistics, the statement may scan them
	// (a few passes); it may not scan one once per pending operation.
	rows := int64(apps*targets + 10 + apps + 1)
	t.Logf("CreateDeployment on the generic plan read %d rows by sequential scans; the tables hold %d rows (first deployment %d)", read, rows, first.ID)
	if read > 3*rows {
		t.Errorf("CreateDeployment read %d rows by sequential scans, more than three passes over the %d rows of both tables: its cost grows with pending operations times deployments", read, rows)
	}
}

// CancelDeployment updates the deployment row twice in its transaction (the
// stop's counts, then canceled_at), and the second update re-checks the
// deployment's foreign key, which locks the app row. Taken after the
// operations, that lock deadlocked with a DeleteApp holding the app row and
// waiting for the operations (in about one run of the stress test in five).
func TestCancelDeploymentDoesNotDeadlockWithDeleteApp(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, "prod", "x", "y")
	before := dbDeadlocks(t, pool)

	// Another transaction holds operation y, so the cancel's stop, which
	// locks x and then y, waits.
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM deployment_operations WHERE id = $1 FOR UPDATE`, ops[1].ID); err != nil {
		t.Fatal(err)
	}
	cancelErr, cancelDone := make(chan error, 1), make(chan struct{})
	go func() {
		_, err := svc.CancelDeployment(ctx, d.ID)
		cancelErr <- err
		close(cancelDone)
	}()
	waitForLockWait(t, pool, "StopDeploymentOperations", cancelDone)
	delErr, delDone := make(chan error, 1), make(chan struct{})
	go func() {
		delErr <- svc.DeleteApp(ctx, app.ID)
		close(delDone)
	}()
	waitForLockWait(t, pool, "-- name: LockApp", delDone) // LockAppForDelete or LockAppOperations
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantAppDeletedWithoutDeadlock(t, svc, pool, app.ID, before, "CancelDeployment", <-cancelErr, <-delErr)
}

// A create supersedes the pending operations of the app and environment's
// older deployments that are not in progress: only pending, failed and
// canceled deployments can hold any, so the search may not read the app's
// deployed history (it read every earlier deployment of the app and
// environment, one heap fetch each, on every create).
func TestCreateDeploymentSkipsDeployedHistory(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	svc, pool := newService(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	// A long deployed history of prod, loaded as the owner.
	const history = 2000
	if _, err := pool.Exec(ctx, `INSERT INTO deployments (app_id, build_id, environment, status, created_at, updated_at, started_at, finished_at)
		SELECT $1, $2, 'prod', 'deployed', now() - make_interval(mins => g), now() - make_interval(mins => g),
		       now() - make_interval(mins => g), now() - make_interval(mins => g)
		FROM generate_series(1, $3) g`, app.ID, b.ID, history); err != nil {
		t.Fatal(err)
	}
	// Other apps' work, so the search has operations to look through.
	for i := range 20 {
		roDeploy(t, svc, mustApp(t, svc).ID, "prod", targetNames(fmt.Sprintf("o%d-", i), 50)...)
	}
	if _, err := pool.Exec(ctx, `ANALYZE deployments, deployment_operations`); err != nil {
		t.Fatal(err)
	}
	read := createDeploymentReads(t, pool, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "prod"},
		"idx_tup_fetch + seq_tup_read", "deployments")
	t.Logf("CreateDeployment read %d deployment rows with %d deployed deployments of the app and environment", read, history)
	if read >= history/10 {
		t.Errorf("CreateDeployment read %d deployment rows with %d deployed deployments of the app and environment: it walks the history", read, history)
	}
}

// createDeploymentReads runs CreateDeployment in a transaction of pool
// (rolled back) and returns how many rows the call read from tables, by the
// pg_stat_xact_user_tables counters summed in counters: the backend's
// counters before and after the call, in the same transaction (on
// PostgreSQL 15 they also hold earlier transactions not yet reported).
func createDeploymentReads(t *testing.T, pool *pgxpool.Pool, p deploydb.CreateDeploymentParams, counters string, tables ...string) int64 {
	t.Helper()
	ctx := ctxT(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	counter := func() (n int64) {
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(`+counters+`), 0)::bigint FROM pg_stat_xact_user_tables
			WHERE relname = ANY($1)`, tables).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := counter()
	if _, _, err := deploydb.New(tx).CreateDeployment(ctx, p); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	return counter() - before
}
