package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// Reliability tests print their figures as "FIGURE <id>: …" lines, which
// `make reliability` collects into docs/reliability.md. They are bounded in
// time; DEPLOYDB_RELIABILITY_SECONDS lengthens the sustained-load test
// (default 8 s, as CI runs it).

func figure(t *testing.T, id, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: "+format, append([]any{id}, args...)...)
}

func loadSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("DEPLOYDB_RELIABILITY_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 8 * time.Second
}

// TestReliabilityR1RestartUnderLoad kills the server (immediate shutdown,
// as in a crash) under a write load, starts it again, and checks that every
// write acknowledged to a caller survived and that the pool serves again on
// its own.
func TestReliabilityR1RestartUnderLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.StartLocal(ctx)
	if err != nil {
		t.Fatalf("this test owns a local server: %v", err)
	}
	defer srv.Close()
	url, err := srv.CreateDatabase(ctx, "reliability_r1", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	// The throwaway cluster runs with synchronous_commit off for speed;
	// durability of acknowledged commits needs it on.
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE reliability_r1 SET synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	admin.Close()

	const writers = 8
	svc, err := deploydb.Open(ctx, url, deploydb.WithMaxConns(writers), deploydb.WithConnectTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	build := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)

	var (
		mu                    sync.Mutex
		acked                 []deploydb.DeploymentID
		errs                  []time.Time
		stop                  atomic.Bool
		wg                    sync.WaitGroup
		firstOKAfterAccepting time.Time
		accepting             time.Time
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				d, _, err := svc.CreateDeployment(cctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: build.ID, Environment: fmt.Sprintf("w%d-%d", w, i)})
				ccancel()
				now := time.Now()
				mu.Lock()
				if err != nil {
					errs = append(errs, now)
				} else {
					acked = append(acked, d.ID)
					if !accepting.IsZero() && firstOKAfterAccepting.IsZero() {
						firstOKAfterAccepting = now
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	down := time.Now()
	if err := srv.Restart(ctx, 500*time.Millisecond); err != nil {
		t.Fatalf("restart: %v", err)
	}
	mu.Lock()
	accepting = time.Now()
	mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var found int
	if err := svc.Pool().QueryRow(ctx, "SELECT count(*) FROM deployments WHERE id = ANY($1)", acked).Scan(&found); err != nil {
		t.Fatal(err)
	}
	outside := 0
	for _, e := range errs {
		if e.Before(down) {
			outside++
		}
	}
	recovery := firstOKAfterAccepting.Sub(accepting)
	figure(t, "R1", "restart under load (local provider, %d writers): %d writes acknowledged, %d found after restart, %d lost; %d errors seen by callers (in flight at the kill; %d before it); pool served again %s after the server accepted connections (down %s)",
		writers, len(acked), found, len(acked)-found, len(errs), outside, recovery.Round(time.Microsecond), accepting.Sub(down).Round(time.Millisecond))
	if found != len(acked) {
		t.Errorf("%d acknowledged writes lost", len(acked)-found)
	}
	if outside != 0 {
		t.Errorf("%d errors before the server went down", outside)
	}
	// Only calls in flight at the kill may fail: later ones wait for the
	// server (their statements provably never reached it) and succeed.
	if len(errs) > writers {
		t.Errorf("%d errors, want at most one per writer in flight (%d)", len(errs), writers)
	}
	if firstOKAfterAccepting.IsZero() || recovery > time.Second {
		t.Errorf("pool served again after %s, want < 1s", recovery)
	}
}

// TestReliabilityR2BackendTermination terminates every backend of the pool
// and checks that callers see at most one error per pooled connection and
// that the pool refills.
func TestReliabilityR2BackendTermination(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	url := pgtest.URL(t)
	const size = 6
	cfg, err := db.PoolConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = size, size
	cfg.ConnConfig.RuntimeParams["application_name"] = "deploydb-r2"
	pool, err := db.NewPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc := deploydb.New(pool)
	app := mustApp(t, svc)
	// Make sure all connections exist.
	var warm sync.WaitGroup
	for i := 0; i < size*3; i++ {
		warm.Add(1)
		go func() { defer warm.Done(); _, _ = svc.GetApp(ctx, app.ID) }()
	}
	warm.Wait()
	other := pgtest.Pool(t)
	var killed int
	if err := other.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE application_name = 'deploydb-r2'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	var errCount, after int
	var firstOK = -1
	for i := 0; i < 200; i++ {
		_, err := svc.GetApp(ctx, app.ID)
		switch {
		case err != nil && !errors.Is(err, deploydb.ErrUnavailable):
			t.Fatalf("call %d: %v, want nil or ErrUnavailable", i, err)
		case err != nil:
			errCount++
			if firstOK >= 0 {
				after++
			}
		case firstOK < 0:
			firstOK = i
		}
	}
	// Concurrent load so that the pool opens all its connections again.
	var load sync.WaitGroup
	for i := 0; i < size*4; i++ {
		load.Add(1)
		go func() {
			defer load.Done()
			_, _ = svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID}, 10)
		}()
	}
	load.Wait()
	total := pool.Stat().TotalConns()
	figure(t, "R2", "pg_terminate_backend on %d pooled connections: %d errors seen (pool size %d), %d errors after the first success; pool back to %d connections",
		killed, errCount, size, after, total)
	if killed < size || errCount > size || after != 0 || total < size {
		t.Fatalf("killed %d, errors %d (max %d), errors after recovery %d, pool %d", killed, errCount, size, after, total)
	}
}

// TestReliabilityR3SerializableContention moves money between accounts in
// SERIALIZABLE transactions from many goroutines: every transfer commits
// after retries and the total never changes.
func TestReliabilityR3SerializableContention(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	svc, pool := newService(t)
	const accounts, workers, transfers = 5, 8, 40
	if _, err := pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 5) g`); err != nil {
		t.Fatal(err)
	}
	var (
		wg         sync.WaitGroup
		maxTries   atomic.Int64
		failures   atomic.Int64
		totalTries atomic.Int64
	)
	before := svc.Stats().TxRetries
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < transfers; i++ {
				from, to := 1+rng.Intn(accounts), 1+rng.Intn(accounts)
				tries := int64(0)
				err := svc.InTxWith(ctx, deploydb.TxOptions{Isolation: deploydb.Serializable, MaxAttempts: 100}, func(tx *deploydb.Service) error {
					tries++
					var bal int64
					if err := tx.Conn().QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", from).Scan(&bal); err != nil {
						return err
					}
					if bal < 10 {
						return nil
					}
					if _, err := tx.Conn().Exec(ctx, "UPDATE accounts SET balance = balance - 10 WHERE id = $1", from); err != nil {
						return err
					}
					_, err := tx.Conn().Exec(ctx, "UPDATE accounts SET balance = balance + 10 WHERE id = $1", to)
					return err
				})
				if err != nil {
					failures.Add(1)
					t.Errorf("transfer: %v", err)
				}
				totalTries.Add(tries)
				for m := maxTries.Load(); tries > m && !maxTries.CompareAndSwap(m, tries); m = maxTries.Load() {
				}
			}
		}(w)
	}
	wg.Wait()
	var total int64
	if err := pool.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&total); err != nil {
		t.Fatal(err)
	}
	figure(t, "R3", "serializable contention: %d transfers by %d workers on %d accounts: %d committed, %d failed, %d retries (max %d attempts for one transfer); total balance %d (want %d)",
		workers*transfers, workers, accounts, int64(workers*transfers)-failures.Load(), failures.Load(), svc.Stats().TxRetries-before, maxTries.Load(), total, accounts*1000)
	if total != accounts*1000 || failures.Load() != 0 {
		t.Fatalf("invariant broken: total %d, failures %d", total, failures.Load())
	}
}

// TestReliabilityR4SustainedRolloutLoad runs workers that claim and drive
// rollout operations for a bounded time, then checks the invariants.
func TestReliabilityR4SustainedRolloutLoad(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	svc, pool := newService(t, deploydb.WithCursorSecret([]byte("r4")))
	const workers, deployments, targetsPer = 6, 60, 4
	targets := []string{"eu-1", "eu-2", "us-1", "us-2", "ap-1", "ap-2"}
	apps := []deploydb.App{mustApp(t, svc), mustApp(t, svc), mustApp(t, svc)}
	builds := make([]deploydb.Build, len(apps))
	for i, a := range apps {
		builds[i] = mustBuild(t, svc, a.ID, deploydb.BuildSucceeded)
	}
	created := 0
	createOne := func(i int) error {
		a := i % len(apps)
		start := i % len(targets)
		ts := make([]string, targetsPer)
		for j := range ts {
			ts[j] = targets[(start+j)%len(targets)]
		}
		_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: apps[a].ID, BuildID: builds[a].ID, Environment: fmt.Sprintf("env-%d", i%10), Targets: ts})
		return err
	}
	for ; created < deployments; created++ {
		if err := createOne(created); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      []error
		ops       atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
		// retries refused by the one-in-progress rule (see below)
		retryRefused atomic.Int64
	)
	timed := func(f func() error) error {
		start := time.Now()
		err := f()
		mu.Lock()
		latencies = append(latencies, time.Since(start))
		mu.Unlock()
		ops.Add(1)
		return err
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for !stop.Load() {
				target := targets[rng.Intn(len(targets))]
				var o deploydb.Operation
				err := timed(func() (err error) {
					o, err = svc.ClaimNextOperation(ctx, target, fmt.Sprintf("r4-%d", w))
					return err
				})
				if errors.Is(err, deploydb.ErrNotFound) || errors.Is(err, deploydb.ErrConflict) {
					// Nothing claimable, or another deployment of the same app
					// and environment started first: both are answers, not faults.
					continue
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				var path []deploydb.OperationState
				switch rng.Intn(5) {
				case 0:
					path = []deploydb.OperationState{deploydb.OperationFailed, deploydb.OperationPending}
				case 1:
					path = []deploydb.OperationState{deploydb.OperationWaitingForCutover, deploydb.OperationStopped, deploydb.OperationPending}
				default:
					path = []deploydb.OperationState{deploydb.OperationWaitingForCutover, deploydb.OperationCuttingOver, deploydb.OperationCompleted}
				}
				for _, s := range path {
					if err := timed(func() error { _, _, err := svc.TransitionOperation(ctx, o.ID, s, "r4"); return err }); err != nil {
						if s == deploydb.OperationPending && errors.Is(err, deploydb.ErrConflict) {
							// A retry would make the deployment in_progress again
							// while another deployment of the same app and
							// environment holds the slot: refused, as the
							// one-in-progress rule requires. Counted, not a fault.
							retryRefused.Add(1)
							break
						}
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break
					}
				}
			}
		}(w)
	}
	// Keep feeding new rollouts while the workers run.
	deadline := time.Now().Add(loadSeconds())
	for time.Now().Before(deadline) {
		if err := createOne(created); err != nil {
			t.Fatal(err)
		}
		created++
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	var doubleInProgress int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT app_id, environment FROM deployments WHERE status = 'in_progress' GROUP BY 1, 2 HAVING count(*) > 1) x`).Scan(&doubleInProgress); err != nil {
		t.Fatal(err)
	}
	slices.Sort(latencies)
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	figure(t, "R4", "sustained rollout load for %s: %d workers, %d rollouts x %d targets, %d calls (%.0f/s), %d errors, %d retries refused (another deployment in progress), %d app/environments with two deployments in progress; latency p50 %s, p99 %s",
		loadSeconds(), workers, created, targetsPer, ops.Load(), float64(ops.Load())/loadSeconds().Seconds(), len(errs), retryRefused.Load(), doubleInProgress,
		p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond))
	checkAllDerived(t, pool)
	if len(errs) != 0 || doubleInProgress != 0 {
		t.Fatalf("errors %v, double in-progress %d", errs[:min(len(errs), 5)], doubleInProgress)
	}
}
