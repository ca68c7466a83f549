package deploydb_test

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// Concurrency tests of the rollout contract: claims never conflict, no
// mix of calls deadlocks, and the derived counts stay exact under every
// isolation level. They are bounded by a number of calls, not by time, and
// log their figures.

// errKind names the kind of a call's outcome for the tallies.
func errKind(err error) string {
	var te *deploydb.TransitionError
	switch code, _ := pgCode(err); {
	case err == nil:
		return "ok"
	case code == "40P01":
		return "deadlock"
	case errors.As(err, &te):
		return "transition"
	case errors.Is(err, deploydb.ErrLeaseLost):
		return "lease lost"
	case errors.Is(err, deploydb.ErrNotFound):
		return "not found"
	case errors.Is(err, deploydb.ErrConflict):
		return "conflict"
	case errors.Is(err, deploydb.ErrRetryable):
		return "retryable"
	}
	return "other"
}

// tally counts outcomes by call and kind and keeps the unexpected ones.
type tally struct {
	n          atomic.Int64
	mu         sync.Mutex
	counts     map[string]map[string]int
	unexpected []string
}

func newTally() *tally { return &tally{counts: map[string]map[string]int{}} }

// add records err for call; allowed lists the kinds besides "ok" that the
// contract allows for that call.
func (t *tally) add(call string, err error, allowed ...string) {
	k := errKind(err)
	t.n.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts[call] == nil {
		t.counts[call] = map[string]int{}
	}
	t.counts[call][k]++
	if k != "ok" && !slices.Contains(allowed, k) && len(t.unexpected) < 20 {
		t.unexpected = append(t.unexpected, fmt.Sprintf("%s: %s: %v", call, k, err))
	}
}

func (t *tally) total() (n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.counts {
		for _, c := range m {
			n += c
		}
	}
	return n
}

func (t *tally) kind(k string) (n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.counts {
		n += m[k]
	}
	return n
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	calls := make([]string, 0, len(t.counts))
	for c := range t.counts {
		calls = append(calls, c)
	}
	sort.Strings(calls)
	var b strings.Builder
	for _, c := range calls {
		kinds := make([]string, 0, len(t.counts[c]))
		for k := range t.counts[c] {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprintf(&b, "%s{", c)
		for i, k := range kinds {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s:%d", k, t.counts[c][k])
		}
		b.WriteString("} ")
	}
	return strings.TrimSpace(b.String())
}

// stressPool returns a pool of n connections on a fresh migrated database
// and a plain pool on the same database for checks.
func stressPool(t *testing.T, n int32) (*pgxpool.Pool, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.URL(t)
	ctx := ctxT(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = n
	work, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(work.Close)
	check, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	return work, check
}

// dbDeadlocks returns pg_stat_database.deadlocks of the current database.
// Backends report their statistics when they exit, so the caller closes
// the other pools that did work first; dbDeadlocks closes pool's idle
// connections and waits for every other backend of the database to be
// gone.
func dbDeadlocks(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx := ctxT(t)
	pool.Reset()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for i := 0; ; i++ {
		var others int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others == 0 || i > 500 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var n int64
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkAllCounts asserts that every deployment's stored counts equal a
// COUNT(*) of its operations, that statuses are derived, and that every
// active operation holds a lease.
func checkAllCounts(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := ctxT(t)
	var bad, deployments int
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE (d.ops_pending, d.ops_running, d.ops_waiting_for_cutover, d.ops_cutting_over,
		                               d.ops_completed, d.ops_failed, d.ops_stopped, d.ops_reverted)
		                              IS DISTINCT FROM
		                              (c.pending, c.running, c.waiting, c.cutting, c.completed, c.failed, c.stopped, c.reverted)),
		       count(*)
		FROM deployments d
		CROSS JOIN LATERAL (
		    SELECT count(*) FILTER (WHERE o.state = 'pending')::int             AS pending,
		           count(*) FILTER (WHERE o.state = 'running')::int             AS running,
		           count(*) FILTER (WHERE o.state = 'waiting_for_cutover')::int AS waiting,
		           count(*) FILTER (WHERE o.state = 'cutting_over')::int        AS cutting,
		           count(*) FILTER (WHERE o.state = 'completed')::int           AS completed,
		           count(*) FILTER (WHERE o.state = 'failed')::int              AS failed,
		           count(*) FILTER (WHERE o.state = 'stopped')::int             AS stopped,
		           count(*) FILTER (WHERE o.state = 'reverted')::int            AS reverted
		    FROM deployment_operations o WHERE o.deployment_id = d.id) c`).Scan(&bad, &deployments); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d of %d deployments have counts that differ from their operations", bad, deployments)
	}
	var leaseless int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployment_operations
		WHERE state IN ('running', 'waiting_for_cutover', 'cutting_over') AND lease_expires_at IS NULL`).Scan(&leaseless); err != nil {
		t.Fatal(err)
	}
	if leaseless != 0 {
		t.Errorf("%d active operations hold no lease", leaseless)
	}
	checkAllDerived(t, pool)
}

// TestClaimsNeverConflict has workers claim, two at a time and then eight
// at a time, where several deployments of one app and environment compete
// to start and other environments' work is queued on the same targets.
// Claims never fail with ErrConflict, a claim that cannot start a
// deployment takes the next claimable operation instead, every operation is
// claimed exactly once (or was superseded before any claim), and no two
// deployments of one app and environment ever have active operations at
// once.
func TestClaimsNeverConflict(t *testing.T) {
	t.Parallel()
	work, check := stressPool(t, 12)
	svc := deploydb.New(work)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	other := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	ob := mustBuild(t, svc, other.ID, deploydb.BuildSucceeded)
	create := func(appID deploydb.AppID, buildID deploydb.BuildID, env string, targets ...string) (deploydb.Deployment, []deploydb.Operation, error) {
		d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: appID, BuildID: buildID, Environment: env, Targets: targets})
		return d, ops, err
	}

	// Phase 1, the scenario of the old bug: two workers claim at once, on
	// two targets, the first operations of one pending deployment; another
	// environment's work is queued behind it on both targets. The worker
	// that cannot start the deployment must take that work.
	const rounds = 40
	tl := newTally()
	passedOver := 0
	for r := 0; r < rounds; r++ {
		d, _, err := create(app.ID, b.ID, "prod", "c0", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := create(app.ID, b.ID, fmt.Sprintf("stage-%d", r), "c0", "c1"); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   [2][]deploydb.Operation
		)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: fmt.Sprintf("c%d", w), Worker: fmt.Sprintf("w%d", w)})
				tl.add("claim (two workers)", err)
				got[w] = ops
			}(w)
		}
		close(start)
		wg.Wait()
		for w, ops := range got {
			if len(ops) == 1 && ops[0].DeploymentID != d.ID {
				passedOver++
			}
			for _, o := range ops {
				if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); err != nil {
					t.Fatalf("round %d worker %d: %v", r, w, err)
				}
			}
		}
		// Finish the round: whatever is left is claimable now.
		for _, target := range []string{"c0", "c1"} {
			for {
				ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: target, Worker: "sweeper", Limit: 10})
				if errors.Is(err, deploydb.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatalf("round %d sweep: %v", r, err)
				}
				for _, o := range ops {
					if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if dd := roDep(t, svc, d.ID); dd.Status != deploydb.DeploymentDeployed {
			t.Fatalf("round %d: prod deployment = %s %+v", r, dd.Status, dd.Operations)
		}
	}
	figure(t, "CLAIM-2", "%d rounds of two workers claiming the first operations of one deployment on two targets at once: %s; the claim that could not start it took the other environment's work %d times",
		rounds, tl, passedOver)
	if n := tl.total() - tl.kind("ok"); n != 0 {
		t.Fatalf("%d claims failed: %s", n, tl)
	}

	// Phase 2: eight workers, batch claims, deployments created while they
	// claim. For prod and qa of app and prod of other, a creator keeps
	// adding deployments: an older one in progress keeps running, the
	// newest waits, and the ones in between are superseded.
	const (
		workers  = 8
		perPair  = 40
		nTargets = 4
	)
	targets := make([]string, nTargets)
	for i := range targets {
		targets[i] = fmt.Sprintf("t%d", i)
	}
	type pair struct {
		app   deploydb.AppID
		build deploydb.BuildID
		env   string
	}
	pairs := []pair{{app.ID, b.ID, "prod"}, {app.ID, b.ID, "qa"}, {other.ID, ob.ID, "prod"}}
	var (
		mu         sync.Mutex
		claims     = map[deploydb.OperationID]int{}
		created    = map[deploydb.OperationID]bool{}
		creating   atomic.Bool
		tl2        = newTally()
		samples    atomic.Int64
		violations atomic.Int64
		batchSizes = map[int]int{}
		createErrs []error
		wg         sync.WaitGroup
		sampleStop = make(chan struct{})
		sampleDone = make(chan struct{})
	)
	creating.Store(true)
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-sampleStop:
				return
			default:
			}
			var n int
			if err := check.QueryRow(ctx, `SELECT count(*) FROM (
				SELECT app_id, environment FROM deployments
				WHERE ops_running + ops_waiting_for_cutover + ops_cutting_over > 0 OR status = 'in_progress'
				GROUP BY app_id, environment HAVING count(*) > 1) x`).Scan(&n); err == nil {
				samples.Add(1)
				if n > 0 {
					violations.Add(1)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer creating.Store(false)
		rng := rand.New(rand.NewSource(1))
		for i := 0; i < perPair; i++ {
			for _, p := range pairs {
				k := 1 + rng.Intn(nTargets)
				ts := slices.Clone(targets)
				rng.Shuffle(len(ts), func(a, b int) { ts[a], ts[b] = ts[b], ts[a] })
				_, ops, err := create(p.app, p.build, p.env, ts[:k]...)
				mu.Lock()
				if err != nil {
					createErrs = append(createErrs, err)
				}
				for _, o := range ops {
					created[o.ID] = true
				}
				mu.Unlock()
			}
			time.Sleep(time.Duration(rng.Intn(4)) * time.Millisecond)
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(100 + w)))
			idle := 0
			for {
				target := targets[rng.Intn(nTargets)]
				limit := 1 + rng.Intn(3)
				ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: target, Worker: fmt.Sprintf("w%d", w), Limit: limit, Lease: time.Minute})
				tl2.add("claim", err, "not found")
				if err != nil {
					if !creating.Load() {
						idle++
						if idle > 40 {
							return
						}
					}
					time.Sleep(time.Millisecond)
					continue
				}
				idle = 0
				mu.Lock()
				batchSizes[len(ops)]++
				for _, o := range ops {
					claims[o.ID]++
				}
				mu.Unlock()
				for _, o := range ops {
					_, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted})
					tl2.add("complete", err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(sampleStop)
	<-sampleDone

	dups, lost := 0, 0
	for id := range created {
		if claims[id] > 1 {
			dups++
		}
	}
	// Operations never claimed must have been superseded before any claim.
	var never []int64
	for id := range created {
		if claims[id] == 0 {
			never = append(never, int64(id))
		}
	}
	var supersededUnclaimed, neverOther int
	if err := check.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'stopped' AND lease_token = 0),
		count(*) FILTER (WHERE NOT (state = 'stopped' AND lease_token = 0))
		FROM deployment_operations WHERE id = ANY($1)`, never).Scan(&supersededUnclaimed, &neverOther); err != nil {
		t.Fatal(err)
	}
	lost = neverOther
	var statuses []string
	rows, err := check.Query(ctx, "SELECT status || ':' || count(*) FROM deployments GROUP BY status ORDER BY status")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		statuses = append(statuses, s)
	}
	rows.Close()
	figure(t, "CLAIM-8", "%d workers, %d deployments created while claiming (%d operations): %s; batch sizes %v; %d operations claimed once, %d twice or more, %d superseded before a claim, %d never claimed otherwise; %d samples, %d with two deployments of one app and environment active; deployments %v",
		workers, perPair*len(pairs), len(created), tl2, batchSizes, len(claims)-dups, dups, supersededUnclaimed, lost, samples.Load(), violations.Load(), statuses)
	if len(createErrs) != 0 {
		t.Fatalf("create errors: %v", createErrs)
	}
	if c := tl2.kind("conflict"); c != 0 {
		t.Errorf("%d claims failed with ErrConflict", c)
	}
	if len(tl2.unexpected) != 0 {
		t.Errorf("unexpected outcomes: %v", tl2.unexpected)
	}
	if dups != 0 || lost != 0 {
		t.Errorf("%d operations claimed more than once, %d neither claimed nor superseded", dups, lost)
	}
	if violations.Load() != 0 {
		t.Errorf("%d samples saw two deployments of one app and environment active at once", violations.Load())
	}
	if batchSizes[2]+batchSizes[3] == 0 {
		t.Errorf("no claim took more than one operation: batch sizes %v", batchSizes)
	}
	checkAllCounts(t, check)
}

// TestRolloutStressNoDeadlocks mixes every call that locks operations and
// deployments (claims, fenced and unfenced moves, heartbeats, rescues,
// stop, cancel, resume, retry, deletes of deployments and apps, creates
// that supersede) on a few shared apps, environments and targets from
// several goroutines, 20,000 calls in all. Each outcome is classified:
// only what the contract allows for that call is accepted, and no
// deadlock may happen (neither as an error nor in pg_stat_database, which
// also counts those the library retried).
func TestRolloutStressNoDeadlocks(t *testing.T) {
	t.Parallel()
	const (
		totalCalls = 20000
		workers    = 4
		operators  = 2
		nTargets   = 4
		nApps      = 3
	)
	work, check := stressPool(t, workers+operators+4)
	svc := deploydb.New(work)
	ctx := ctxT(t)
	baseline := dbDeadlocks(t, check)

	targets := make([]string, nTargets)
	for i := range targets {
		targets[i] = fmt.Sprintf("st%d", i)
	}
	envs := []string{"prod", "canary"}
	var (
		mu       sync.Mutex
		apps     = make([]deploydb.AppID, nApps)
		recent   []deploydb.DeploymentID
		recentOp []deploydb.OperationID
		appSeq   int
		tl       = newTally()
		wg       sync.WaitGroup
	)
	newApp := func(slot int) error {
		mu.Lock()
		appSeq++
		name := fmt.Sprintf("stress-%d-%d", slot, appSeq)
		mu.Unlock()
		a, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: name})
		tl.add("create app", err)
		if err != nil {
			return err
		}
		mu.Lock()
		apps[slot] = a.ID
		mu.Unlock()
		return nil
	}
	for i := range apps {
		if err := newApp(i); err != nil {
			t.Fatal(err)
		}
	}
	// next reports whether the budget of calls is not spent yet.
	next := func() bool { return tl.n.Load() < totalCalls }
	pickDeployment := func(rng *rand.Rand) (deploydb.DeploymentID, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(recent) == 0 {
			return 0, false
		}
		return recent[len(recent)-1-rng.Intn(min(len(recent), 30))], true
	}
	pickOp := func(rng *rand.Rand) (deploydb.OperationID, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(recentOp) == 0 {
			return 0, false
		}
		return recentOp[len(recentOp)-1-rng.Intn(min(len(recentOp), 60))], true
	}
	start := time.Now()

	// Creator: builds and deployments (which supersede older ones);
	// recreates apps that an operator deleted.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		for next() {
			slot := rng.Intn(nApps)
			mu.Lock()
			appID := apps[slot]
			mu.Unlock()
			bld, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: appID, SourceVersion: fmt.Sprintf("v%d", rng.Int())})
			tl.add("create build", err, "not found")
			if errors.Is(err, deploydb.ErrNotFound) {
				if next() {
					_ = newApp(slot)
				}
				continue
			}
			for _, st := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
				if err == nil && next() {
					_, _, err = svc.UpdateBuildStatus(ctx, bld.ID, st)
					tl.add("update build", err, "not found")
				}
			}
			if err != nil || !next() {
				continue
			}
			ts := slices.Clone(targets)
			rng.Shuffle(len(ts), func(a, b int) { ts[a], ts[b] = ts[b], ts[a] })
			d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
				AppID: appID, BuildID: bld.ID, Environment: envs[rng.Intn(len(envs))], Targets: ts[:1+rng.Intn(nTargets)]})
			tl.add("create deployment", err, "not found")
			if err == nil {
				mu.Lock()
				recent = append(recent, d.ID)
				for _, o := range ops {
					recentOp = append(recentOp, o.ID)
				}
				mu.Unlock()
			}
		}
	}()
	// Rescuer.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for next() {
			_, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{MaxAttempts: 3, Limit: 50})
			tl.add("rescue", err)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// Workers: claim, then heartbeat, move through cutover, complete,
	// fail, or abandon the claim to the rescuer.
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(10 + w)))
			for next() {
				ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{
					Target: targets[rng.Intn(nTargets)], Worker: fmt.Sprintf("sw%d", w),
					Limit: 1 + rng.Intn(2), Lease: time.Duration(20+rng.Intn(300)) * time.Millisecond})
				tl.add("claim", err, "not found")
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				for _, o := range ops {
					l := o.Lease()
					move := func(to deploydb.OperationState, reason string) bool {
						if !next() {
							return false
						}
						_, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: l, To: to, Reason: reason})
						tl.add("move", err, "lease lost", "not found", "transition")
						return err == nil
					}
					switch p := rng.Intn(100); {
					case p < 10: // abandoned: the rescuer requeues it
					case p < 20:
						move(deploydb.OperationFailed, "stress failure")
					case p < 45:
						_ = move(deploydb.OperationWaitingForCutover, "") && move(deploydb.OperationCuttingOver, "") && move(deploydb.OperationCompleted, "")
					default:
						if rng.Intn(3) == 0 && next() {
							_, err := svc.Heartbeat(ctx, l, time.Second)
							tl.add("heartbeat", err, "lease lost", "not found")
						}
						move(deploydb.OperationCompleted, "")
					}
				}
			}
		}(w)
	}
	// Operators: deployment-wide calls, unfenced moves, deletes.
	for op := 0; op < operators; op++ {
		wg.Add(1)
		go func(op int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(20 + op)))
			for next() {
				d, ok := pickDeployment(rng)
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				var err error
				switch p := rng.Intn(100); {
				case p < 15:
					_, err = svc.StopDeployment(ctx, d)
					tl.add("stop", err, "not found")
				case p < 20:
					_, err = svc.CancelDeployment(ctx, d)
					tl.add("cancel", err, "not found")
				case p < 40:
					_, err = svc.ResumeDeployment(ctx, d)
					tl.add("resume", err, "not found", "conflict")
				case p < 60:
					_, err = svc.RetryDeployment(ctx, d)
					tl.add("retry", err, "not found", "conflict")
				case p < 92:
					if id, ok := pickOp(rng); ok {
						to := statusOperations[rng.Intn(len(statusOperations))]
						_, _, err = svc.TransitionOperation(ctx, id, to, "operator")
						tl.add("transition", err, "not found", "transition", "conflict")
					}
				case p < 98:
					err = svc.DeleteDeployment(ctx, d)
					tl.add("delete deployment", err, "not found")
				default:
					mu.Lock()
					appID := apps[rng.Intn(nApps)]
					mu.Unlock()
					err = svc.DeleteApp(ctx, appID)
					tl.add("delete app", err, "not found")
				}
			}
		}(op)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stats := svc.Stats()
	work.Close()
	deadlocks := dbDeadlocks(t, check) - baseline

	var nDeps, nOps int
	if err := check.QueryRow(ctx, "SELECT (SELECT count(*) FROM deployments), (SELECT count(*) FROM deployment_operations)").Scan(&nDeps, &nOps); err != nil {
		t.Fatal(err)
	}
	figure(t, "STRESS", "%d calls (%d workers, %d operators, a creator, a rescuer) in %s: %s; deadlocks in pg_stat_database: %d; retries inside the library: %d transactions, %d statements; %d deployments and %d operations left",
		tl.total(), workers, operators, elapsed.Round(time.Millisecond), tl, deadlocks, stats.TxRetries, stats.StatementRetries, nDeps, nOps)
	if tl.total() < totalCalls {
		t.Errorf("only %d calls made", tl.total())
	}
	if n := tl.kind("deadlock"); n != 0 {
		t.Errorf("%d calls failed with a deadlock", n)
	}
	if deadlocks != 0 {
		t.Errorf("pg_stat_database counted %d deadlocks during the run", deadlocks)
	}
	if len(tl.unexpected) != 0 {
		t.Errorf("unexpected outcomes:\n%s", strings.Join(tl.unexpected, "\n"))
	}
	checkAllCounts(t, check)
}

// statusOperations lists every operation state, for random moves.
var statusOperations = []deploydb.OperationState{
	deploydb.OperationPending, deploydb.OperationRunning, deploydb.OperationWaitingForCutover, deploydb.OperationCuttingOver,
	deploydb.OperationCompleted, deploydb.OperationFailed, deploydb.OperationStopped, deploydb.OperationReverted,
}

// TestDerivedCountsUnderIsolation completes the running operations of one
// deployment from many goroutines at once, in rounds, under READ
// COMMITTED, REPEATABLE READ and SERIALIZABLE, set both as the database's
// default (for new connections) and per transaction (InTxWith). At the end
// of each round the deployment is deployed and its counts equal a COUNT(*)
// of its operations. An ErrRetryable that reaches the caller (the library
// retries a few times first) is retried by the caller, as the contract
// asks; both retry counts are figures.
func TestDerivedCountsUnderIsolation(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := ctxT(t)
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	var dbName string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	const rounds, ops = 20, 8
	levels := []struct {
		name string
		iso  deploydb.Isolation
	}{{"read committed", deploydb.ReadCommitted}, {"repeatable read", deploydb.RepeatableRead}, {"serializable", deploydb.Serializable}}
	for _, mode := range []string{"database default", "per transaction"} {
		for _, lv := range levels {
			name := mode + "/" + lv.name
			if mode == "database default" {
				if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %q SET default_transaction_isolation = '%s'", dbName, lv.name)); err != nil {
					t.Fatal(err)
				}
			} else if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %q RESET default_transaction_isolation", dbName)); err != nil {
				t.Fatal(err)
			}
			pool, err := pgxpool.NewWithConfig(ctx, func() *pgxpool.Config {
				cfg, err := pgxpool.ParseConfig(url)
				if err != nil {
					t.Fatal(err)
				}
				cfg.MaxConns = ops + 1
				return cfg
			}())
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if err := pool.QueryRow(ctx, "SHOW default_transaction_isolation").Scan(&got); err != nil {
				t.Fatal(err)
			}
			wantDefault := lv.name
			if mode == "per transaction" {
				wantDefault = "read committed"
			}
			if got != wantDefault {
				t.Fatalf("%s: the new pool's default isolation is %q", name, got)
			}
			svc := deploydb.New(pool)
			app := mustApp(t, svc)
			targets := make([]string, ops)
			for i := range targets {
				targets[i] = fmt.Sprintf("iso-%d", i)
			}
			var surfaced atomic.Int64
			var other []error
			var omu sync.Mutex
			start := time.Now()
			for r := 0; r < rounds; r++ {
				d, _ := roDeploy(t, svc, app.ID, "iso", targets...)
				var claimed []deploydb.Operation
				for _, target := range targets {
					claimed = append(claimed, roClaim(t, svc, target, "iso-worker", time.Minute))
				}
				var wg sync.WaitGroup
				gate := make(chan struct{})
				for _, o := range claimed {
					wg.Add(1)
					go func(o deploydb.Operation) {
						defer wg.Done()
						<-gate
						for attempt := 0; attempt < 100; attempt++ {
							var err error
							if mode == "database default" {
								_, _, err = svc.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted})
							} else {
								err = svc.InTxWith(ctx, deploydb.TxOptions{Isolation: lv.iso}, func(tx *deploydb.Service) error {
									_, _, err := tx.MoveOperation(ctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted})
									return err
								})
							}
							if errors.Is(err, deploydb.ErrRetryable) {
								surfaced.Add(1)
								continue
							}
							if err != nil {
								omu.Lock()
								other = append(other, err)
								omu.Unlock()
							}
							return
						}
					}(o)
				}
				close(gate)
				wg.Wait()
				if len(other) != 0 {
					t.Fatalf("%s round %d: %v", name, r, other)
				}
				dd := checkCounts(t, svc, pool, d.ID)
				if dd.Status != deploydb.DeploymentDeployed || dd.Operations != (deploydb.OperationCounts{Completed: ops}) || dd.FinishedAt.IsZero() {
					t.Fatalf("%s round %d: deployment = %s %+v", name, r, dd.Status, dd.Operations)
				}
			}
			stats := svc.Stats()
			figure(t, "ISO", "%s: %d rounds of %d concurrent completes of one deployment: all deployed with exact counts; re-runs inside the library after 40001/40P01: %d (re-sent statements %d); ErrRetryable reached the caller %d times; %s",
				name, rounds, ops, stats.TxRetries, stats.StatementRetries, surfaced.Load(), time.Since(start).Round(time.Millisecond))
			pool.Close()
		}
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %q RESET default_transaction_isolation", dbName)); err != nil {
		t.Fatal(err)
	}
	checkAllCounts(t, admin)
}
