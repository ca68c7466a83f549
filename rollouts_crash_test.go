package deploydb_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// buildRolloutWorker builds internal/rolloutworker into a temporary
// directory.
func buildRolloutWorker(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "rolloutworker")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./internal/rolloutworker").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./internal/rolloutworker: %v\n%s", err, out)
	}
	return bin
}

// TestWorkerKilledMidOperation kills (SIGKILL) a worker process that holds
// a claimed operation. A rescue loop and a worker in the test process then
// take over: the operation is rescued once its lease has expired, claimed
// again by the new worker (attempt 2, a new fencing token), and the
// deployment finishes. The dead worker's lease is lost.
func TestWorkerKilledMidOperation(t *testing.T) {
	t.Parallel()
	bin := buildRolloutWorker(t)
	url := pgtest.URL(t)
	ctx := ctxT(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	svc := deploydb.New(pool)
	app := mustApp(t, svc)
	d, ops := roDeploy(t, svc, app.ID, uniqueEnv(), "crash-a", "crash-b")

	const lease = 500 * time.Millisecond
	const rescueEvery = 200 * time.Millisecond
	cmd := exec.Command(bin, "-target", "crash-a", "-worker", "doomed-worker", "-lease", lease.String())
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case err := <-exited:
		t.Fatalf("the worker exited before claiming: %v\n%s", err, stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("the worker printed nothing\n%s", stderr.String())
	}
	var claimedID deploydb.OperationID
	var token int64
	if _, err := fmt.Sscanf(line, "claimed %d %d", &claimedID, &token); err != nil {
		t.Fatalf("worker said %q: %v", line, err)
	}
	if claimedID != ops[0].ID {
		t.Fatalf("the worker claimed %d, want %d", claimedID, ops[0].ID)
	}
	held := roOp(t, svc, claimedID)
	if held.State != deploydb.OperationRunning || held.ClaimedBy != "doomed-worker" || held.LeaseToken != token {
		t.Fatalf("claimed operation = %+v", held)
	}

	// Mid-operation: kill -9.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("worker exit: %v, want killed", err)
	}
	exited <- nil // for the cleanup

	// The survivors: a rescue loop and a worker polling both targets.
	var (
		mu                   sync.Mutex
		rescuedAt, reclaimAt time.Time
		reclaimed            deploydb.Operation
		rescues, claims      int
		errs                 []error
	)
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for lctx.Err() == nil {
			res, err := svc.RescueExpiredOperations(lctx, deploydb.RescueParams{})
			mu.Lock()
			rescues++
			if err != nil && lctx.Err() == nil {
				errs = append(errs, fmt.Errorf("rescue: %w", err))
			}
			for _, o := range res.Requeued {
				if o.ID == claimedID && rescuedAt.IsZero() {
					rescuedAt = time.Now()
				}
			}
			mu.Unlock()
			select {
			case <-lctx.Done():
			case <-time.After(rescueEvery):
			}
		}
	}()
	go func() {
		defer wg.Done()
		for lctx.Err() == nil {
			for _, target := range []string{"crash-a", "crash-b"} {
				got, err := svc.ClaimOperations(lctx, deploydb.ClaimParams{Target: target, Worker: "survivor", Lease: time.Minute})
				if errors.Is(err, deploydb.ErrNotFound) || lctx.Err() != nil {
					continue
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("claim: %w", err))
					mu.Unlock()
					continue
				}
				for _, o := range got {
					mu.Lock()
					claims++
					if o.ID == claimedID {
						reclaimAt, reclaimed = time.Now(), o
					}
					mu.Unlock()
					// A move cut short by the end of the test (its commit seen
					// as the deployment's status before its reply arrived) is
					// not an error, as for claims.
					if _, _, err := svc.MoveOperation(lctx, deploydb.MoveParams{Lease: o.Lease(), To: deploydb.OperationCompleted}); err != nil && lctx.Err() == nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("complete %d: %w", o.ID, err))
						mu.Unlock()
					}
				}
			}
			select {
			case <-lctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	var final deploydb.Deployment
	for {
		final = roDep(t, svc, d.ID)
		if final.Status == deploydb.DeploymentDeployed || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()

	if len(errs) != 0 {
		t.Fatalf("survivor errors: %v", errs)
	}
	if final.Status != deploydb.DeploymentDeployed || final.Operations != (deploydb.OperationCounts{Completed: 2}) {
		t.Fatalf("deployment after the crash = %s %+v", final.Status, final.Operations)
	}
	checkCounts(t, svc, pool, d.ID)
	if reclaimed.ID != claimedID || reclaimed.ClaimedBy != "survivor" || reclaimed.Attempt != 2 || reclaimed.LeaseToken != token+2 {
		t.Fatalf("re-claim = %+v (dead worker's token %d)", reclaimed, token)
	}
	done := roOp(t, svc, claimedID)
	if done.State != deploydb.OperationCompleted || !strings.Contains(done.LastError, "doomed-worker") {
		t.Fatalf("operation at the end = %+v", done)
	}
	// The dead worker's lease is lost for good.
	if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: deploydb.Lease{OperationID: claimedID, Token: token}, To: deploydb.OperationFailed}); !errors.Is(err, deploydb.ErrLeaseLost) {
		t.Fatalf("the dead worker's lease: %v, want ErrLeaseLost", err)
	}
	leaseLeft := held.LeaseExpiresAt.Sub(killedAt)
	figure(t, "CRASH", "worker killed (SIGKILL) %s before its %s lease ended: rescued %s and claimed again %s after the kill (attempt %d; bound: lease left + rescue interval = %s); %d rescue passes, %d claims by the survivor",
		leaseLeft.Round(time.Millisecond), lease, rescuedAt.Sub(killedAt).Round(time.Millisecond), reclaimAt.Sub(killedAt).Round(time.Millisecond),
		reclaimed.Attempt, (max(leaseLeft, 0) + rescueEvery).Round(time.Millisecond), rescues, claims)
}
