package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/status"
)

// operationTransitions is the operation state machine as specified.
var operationTransitions = map[deploydb.OperationState][]deploydb.OperationState{
	deploydb.OperationPending:           {deploydb.OperationRunning, deploydb.OperationStopped},
	deploydb.OperationRunning:           {deploydb.OperationWaitingForCutover, deploydb.OperationCompleted, deploydb.OperationFailed, deploydb.OperationStopped},
	deploydb.OperationWaitingForCutover: {deploydb.OperationCuttingOver, deploydb.OperationFailed, deploydb.OperationStopped},
	deploydb.OperationCuttingOver:       {deploydb.OperationCompleted, deploydb.OperationFailed},
	deploydb.OperationCompleted:         {deploydb.OperationReverted},
	deploydb.OperationFailed:            {deploydb.OperationPending},
	deploydb.OperationStopped:           {deploydb.OperationPending},
}

func operationAllowed(from, to deploydb.OperationState) bool {
	for _, s := range operationTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// pathTo lists the legal moves from pending to a state.
var pathTo = map[deploydb.OperationState][]deploydb.OperationState{
	deploydb.OperationPending:           nil,
	deploydb.OperationRunning:           {deploydb.OperationRunning},
	deploydb.OperationWaitingForCutover: {deploydb.OperationRunning, deploydb.OperationWaitingForCutover},
	deploydb.OperationCuttingOver:       {deploydb.OperationRunning, deploydb.OperationWaitingForCutover, deploydb.OperationCuttingOver},
	deploydb.OperationCompleted:         {deploydb.OperationRunning, deploydb.OperationCompleted},
	deploydb.OperationFailed:            {deploydb.OperationRunning, deploydb.OperationFailed},
	deploydb.OperationStopped:           {deploydb.OperationStopped},
	deploydb.OperationReverted:          {deploydb.OperationRunning, deploydb.OperationCompleted, deploydb.OperationReverted},
}

var envSeq = 0
var envMu sync.Mutex

// uniqueEnv returns a fresh environment name, so that tests do not trip the
// one-in-progress-per-environment rule by accident.
func uniqueEnv() string {
	envMu.Lock()
	defer envMu.Unlock()
	envSeq++
	return fmt.Sprintf("env-%d", envSeq)
}

// mustRollout creates a deployment with the given targets of a fresh
// succeeded build.
func mustRollout(t *testing.T, svc *deploydb.Service, appID deploydb.AppID, targets ...string) (deploydb.Deployment, []deploydb.Operation) {
	t.Helper()
	b := mustBuild(t, svc, appID, deploydb.BuildSucceeded)
	d, ops, _, err := svc.CreateDeploymentWithTargets(context.Background(), deploydb.CreateDeploymentWithTargetsParams{AppID: appID, BuildID: b.ID, Environment: uniqueEnv(), Targets: targets})
	if err != nil {
		t.Fatalf("CreateDeploymentWithTargets: %v", err)
	}
	return d, ops
}

func driveTo(t *testing.T, svc *deploydb.Service, id deploydb.OperationID, to deploydb.OperationState) deploydb.Operation {
	t.Helper()
	o, err := svc.GetOperation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pathTo[to] {
		if o, _, err = svc.TransitionOperation(context.Background(), id, s, "driven to "+string(to)); err != nil {
			t.Fatalf("drive operation %d to %s: %v", id, s, err)
		}
	}
	return o
}

// checkDerived asserts that the deployment's stored status equals the one
// derived from its operations.
func checkDerived(t *testing.T, svc *deploydb.Service, deploymentID deploydb.DeploymentID) deploydb.Deployment {
	t.Helper()
	ctx := context.Background()
	d, err := svc.GetDeployment(ctx, deploymentID)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := svc.ListDeploymentOperations(ctx, deploymentID)
	if err != nil {
		t.Fatal(err)
	}
	states := make([]deploydb.OperationState, len(ops))
	for i, o := range ops {
		states[i] = o.State
	}
	// A deployment that has started decides "all pending" (in progress);
	// DeriveDeploymentStatus answers for one that has not.
	want := countsOf(states).DeploymentStatus(!d.StartedAt.IsZero())
	if d.StartedAt.IsZero() && deploydb.DeriveDeploymentStatus(states...) != want {
		t.Fatalf("DeriveDeploymentStatus and OperationCounts.DeploymentStatus disagree on %v", states)
	}
	if d.Status != want || d.Operations != countsOf(states) {
		t.Fatalf("deployment %d is %s %+v, but its operations %v derive %s", d.ID, d.Status, d.Operations, states, want)
	}
	return d
}

func TestCreateDeploymentWithTargets(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)

	d, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "production", Targets: []string{"us-east-1", "eu-west-1", "ap.south.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != deploydb.DeploymentPending || len(ops) != 3 {
		t.Fatalf("got %+v with %d operations", d, len(ops))
	}
	// The returned deployment carries the counts the insert gave it.
	if d.Operations != (deploydb.OperationCounts{Pending: 3}) {
		t.Fatalf("returned counts %+v, want 3 pending", d.Operations)
	}
	for _, o := range ops {
		if o.DeploymentID != d.ID || o.State != deploydb.OperationPending || o.Attempt != 1 || !o.StartedAt.IsZero() || o.ClaimedBy != "" {
			t.Fatalf("unexpected operation %+v", o)
		}
	}
	listed, err := svc.ListDeploymentOperations(ctx, d.ID)
	if err != nil || len(listed) != 3 || listed[0].Target != "ap.south.1" || listed[2].Target != "us-east-1" {
		t.Fatalf("ListDeploymentOperations = %v, %v (want ordered by target)", listed, err)
	}
	byTarget, err := svc.GetOperationByDeploymentAndTarget(ctx, d.ID, "eu-west-1")
	if err != nil || byTarget.ID != listed[1].ID {
		t.Fatalf("GetOperationByDeploymentAndTarget = %+v, %v", byTarget, err)
	}
	if _, err := svc.GetOperationByDeploymentAndTarget(ctx, d.ID, "mars-1"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("missing target: %v", err)
	}

	count := func() (n int) {
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM deployments) + (SELECT count(*) FROM deployment_operations)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	failed := mustBuild(t, svc, app.ID, deploydb.BuildFailed)
	bad := map[string]func() error{
		"no targets": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: nil})
			return err
		},
		"duplicate target": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: []string{"a", "b", "a"}})
			return err
		},
		"uppercase target": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: []string{"a", "EU"}})
			return err
		},
		"empty target": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: []string{""}})
			return err
		},
		"too many targets": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: make([]string, deploydb.MaxTargets+1)})
			return err
		},
		"failed build": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: failed.ID, Environment: "staging", Targets: []string{"a"}})
			return err
		},
		"bad environment": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "Staging", Targets: []string{"a"}})
			return err
		},
		"target with space": func() error {
			_, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "staging", Targets: []string{"a b"}})
			return err
		},
	}
	for name, call := range bad {
		if err := call(); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if after := count(); after != before {
		t.Fatalf("refused calls wrote %d rows", after-before)
	}
}

// TestOperationTransitions tries every (from, to) pair of operation states.
func TestOperationTransitions(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	for _, from := range status.Operations {
		for _, to := range status.Operations {
			d, ops := mustRollout(t, svc, app.ID, "t1", "t2")
			before := driveTo(t, svc, ops[0].ID, from)
			got, changed, err := svc.TransitionOperation(ctx, before.ID, to, "boom")
			switch {
			case from == to:
				if err != nil || changed || got.UpdatedAt != before.UpdatedAt || got.State != to {
					t.Errorf("%s -> %s (repeat): changed %v, %v", from, to, changed, err)
				}
			case operationAllowed(from, to):
				if err != nil || !changed || got.State != to {
					t.Errorf("%s -> %s: changed %v, %v", from, to, changed, err)
					continue
				}
				checkOperationMove(t, from, to, before, got)
			default:
				var te *deploydb.TransitionError
				if !errors.As(err, &te) || te.Entity != deploydb.EntityOperation || te.From != from || te.To != to || changed {
					t.Errorf("%s -> %s: %v, want *TransitionError", from, to, err)
				}
				if after, _ := svc.GetOperation(ctx, before.ID); after.UpdatedAt != before.UpdatedAt || after.State != from {
					t.Errorf("%s -> %s: refused transition changed the row", from, to)
				}
			}
			checkDerived(t, svc, d.ID)
		}
	}
	if _, _, err := svc.TransitionOperation(ctx, 1<<40, deploydb.OperationRunning, ""); !errors.Is(err, deploydb.ErrNotFound) {
		t.Errorf("missing operation: %v", err)
	}
	_, ops := mustRollout(t, svc, app.ID, "t1")
	if _, _, err := svc.TransitionOperation(ctx, ops[0].ID, "done", ""); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("unknown state: %v", err)
	}
	running := driveTo(t, svc, ops[0].ID, deploydb.OperationRunning)
	for _, reason := range []string{strings.Repeat("x", deploydb.MaxLastErrorLen+1), "a\x00b", "\xff"} {
		if _, _, err := svc.MarkFailed(ctx, running.ID, reason); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("MarkFailed(%.10q): %v", reason, err)
		}
	}
}

func checkOperationMove(t *testing.T, from, to deploydb.OperationState, before, got deploydb.Operation) {
	t.Helper()
	wantAttempt := before.Attempt
	if from == deploydb.OperationFailed && to == deploydb.OperationPending {
		wantAttempt++
	}
	if got.Attempt != wantAttempt {
		t.Errorf("%s -> %s: attempt %d, want %d", from, to, got.Attempt, wantAttempt)
	}
	switch {
	case to == deploydb.OperationFailed:
		if got.LastError != "boom" {
			t.Errorf("%s -> failed: last_error %v", from, got.LastError)
		}
	case got.LastError != before.LastError:
		t.Errorf("%s -> %s: last_error changed from %v to %v", from, to, before.LastError, got.LastError)
	}
	if !before.StartedAt.IsZero() && !got.StartedAt.Equal(before.StartedAt) {
		t.Errorf("%s -> %s: started_at moved", from, to)
	}
	if to == deploydb.OperationRunning && got.StartedAt.IsZero() {
		t.Errorf("%s -> running: started_at not set", from)
	}
	if to.Finished() != (!got.FinishedAt.IsZero()) {
		t.Errorf("%s -> %s: finished_at = %v", from, to, got.FinishedAt)
	}
	if to == deploydb.OperationPending && (got.ClaimedBy != "" || !got.ClaimedAt.IsZero()) {
		t.Errorf("%s -> pending: claim kept", from)
	}
}

func TestRetryKeepsErrorAndCountsAttempts(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := mustRollout(t, svc, app.ID, "cluster-a")
	id := ops[0].ID
	for attempt := int32(1); attempt <= 3; attempt++ {
		if _, _, err := svc.MarkStarted(ctx, id); err != nil {
			t.Fatal(err)
		}
		o, _, err := svc.MarkFailed(ctx, id, fmt.Sprintf("attempt %d: image pull failed", attempt))
		if err != nil || o.Attempt != attempt {
			t.Fatalf("attempt %d: %+v, %v", attempt, o, err)
		}
		if dd := checkDerived(t, svc, d.ID); dd.Status != deploydb.DeploymentFailed || dd.FinishedAt.IsZero() {
			t.Fatalf("deployment after failure: %+v", dd)
		}
		if o, _, err = svc.Retry(ctx, id); err != nil || o.Attempt != attempt+1 || o.LastError == "" || !strings.HasPrefix(o.LastError, fmt.Sprint("attempt ", attempt)) {
			t.Fatalf("retry %d: %+v, %v", attempt, o, err)
		}
		// A repeated Retry is a no-op: the attempt is not counted twice.
		if again, _, err := svc.Retry(ctx, id); err != nil || again.Attempt != attempt+1 {
			t.Fatalf("repeated retry: %+v, %v", again, err)
		}
		// It has started: with its operation pending again it keeps its
		// turn (in progress), it does not go back to pending.
		if dd := checkDerived(t, svc, d.ID); dd.Status != deploydb.DeploymentInProgress || !dd.FinishedAt.IsZero() || dd.StartedAt.IsZero() {
			t.Fatalf("deployment after retry: %+v", dd)
		}
	}
}

func TestManualStatusRefusedForRollouts(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, _ := mustRollout(t, svc, app.ID, "a", "b")
	for _, to := range []deploydb.DeploymentStatus{deploydb.DeploymentInProgress, deploydb.DeploymentCanceled, deploydb.DeploymentPending} {
		_, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, to)
		if !errors.Is(err, deploydb.ErrConflict) || !strings.Contains(err.Error(), "operations") {
			t.Errorf("manual %s on a rollout: %v, want ErrConflict explaining the operations", to, err)
		}
	}
	n, err := svc.DeleteDeploymentOperations(ctx, d.ID)
	if err != nil || n != 2 {
		t.Fatalf("DeleteDeploymentOperations = %d, %v", n, err)
	}
	// Without operations the deployment follows the manual lifecycle again.
	if _, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, deploydb.DeploymentInProgress); err != nil {
		t.Fatalf("manual start after deleting the operations: %v", err)
	}
}

// TestRolloutScenario walks a two-target rollout through the documented
// derived statuses.
func TestRolloutScenario(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d, ops := mustRollout(t, svc, app.ID, "eu", "us")
	eu, us := ops[0].ID, ops[1].ID
	steps := []struct {
		do   func() error
		want deploydb.DeploymentStatus
	}{
		{func() error { _, err := svc.ClaimNextOperation(ctx, "eu", "worker-1"); return err }, deploydb.DeploymentInProgress},
		{func() error { _, _, err := svc.MarkWaitingForCutover(ctx, eu); return err }, deploydb.DeploymentInProgress},
		{func() error { _, _, err := svc.MarkCuttingOver(ctx, eu); return err }, deploydb.DeploymentInProgress},
		{func() error { _, _, err := svc.MarkCompleted(ctx, eu); return err }, deploydb.DeploymentInProgress}, // us still pending
		{func() error { _, _, err := svc.Stop(ctx, us); return err }, deploydb.DeploymentCanceled},
		{func() error { _, _, err := svc.Retry(ctx, us); return err }, deploydb.DeploymentInProgress}, // resumed
		{func() error { _, _, err := svc.MarkStarted(ctx, us); return err }, deploydb.DeploymentInProgress},
		{func() error { _, _, err := svc.MarkCompleted(ctx, us); return err }, deploydb.DeploymentDeployed},
		{func() error { _, _, err := svc.Revert(ctx, us); return err }, deploydb.DeploymentCanceled},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := checkDerived(t, svc, d.ID); got.Status != s.want {
			t.Fatalf("step %d: deployment %s, want %s", i, got.Status, s.want)
		}
	}
	o, _ := svc.GetOperation(ctx, eu)
	if o.ClaimedBy == "" || o.ClaimedBy != "worker-1" || o.ClaimedAt.IsZero() {
		t.Fatalf("claim not recorded: %+v", o)
	}
	active, err := svc.ListActiveOperationsByTarget(ctx, "eu", 10)
	if err != nil || len(active) != 0 {
		t.Fatalf("ListActiveOperationsByTarget(eu) = %d, %v", len(active), err)
	}
}

func TestClaimNextOperation(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	if _, err := svc.ClaimNextOperation(ctx, "empty", "w"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("nothing to claim: %v", err)
	}
	for _, bad := range [][2]string{{"", "w"}, {"UP", "w"}, {"t", ""}, {"t", "a\x00"}, {"t", strings.Repeat("w", 256)}} {
		if _, err := svc.ClaimNextOperation(ctx, bad[0], bad[1]); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("ClaimNextOperation(%q, %q): %v", bad[0], bad[1], err)
		}
	}
	// Oldest first.
	_, first := mustRollout(t, svc, app.ID, "t")
	_, second := mustRollout(t, svc, app.ID, "t")
	o, err := svc.ClaimNextOperation(ctx, "t", "w1")
	if err != nil || o.ID != first[0].ID || o.State != deploydb.OperationRunning {
		t.Fatalf("first claim = %+v, %v", o, err)
	}
	active, err := svc.ListActiveOperationsByTarget(ctx, "t", 0)
	if err != nil || len(active) != 1 || active[0].ID != first[0].ID {
		t.Fatalf("active = %v, %v", active, err)
	}
	o, err = svc.ClaimNextOperation(ctx, "t", "w2")
	if err != nil || o.ID != second[0].ID {
		t.Fatalf("second claim = %+v, %v", o, err)
	}
	if _, err := svc.ClaimNextOperation(ctx, "t", "w3"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("third claim: %v", err)
	}

	// An operation whose deployment cannot start (same app and environment
	// in progress) is passed over.
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	busy, busyOps, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "blocked", Targets: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ClaimNextOperation(ctx, "x", "w"); err != nil {
		t.Fatal(err)
	}
	_, waiting, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: "blocked", Targets: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ClaimNextOperation(ctx, "x", "w"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("claim behind an in-progress deployment: %v, want ErrNotFound", err)
	}
	if _, _, err := svc.MarkCompleted(ctx, busyOps[0].ID); err != nil {
		t.Fatal(err)
	}
	checkDerived(t, svc, busy.ID)
	if o, err := svc.ClaimNextOperation(ctx, "x", "w"); err != nil || o.ID != waiting[0].ID {
		t.Fatalf("claim after the other deployment finished: %+v, %v", o, err)
	}
}

// TestClaimRace has W workers claim from one target holding N operations:
// every operation must be claimed exactly once.
func TestClaimRace(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	const workers, n = 8, 200
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	want := map[deploydb.OperationID]bool{}
	for i := 0; i < n; i++ {
		_, ops, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Environment: fmt.Sprintf("env-%d", i), Targets: []string{"shared-target"}})
		if err != nil {
			t.Fatal(err)
		}
		want[ops[0].ID] = true
	}
	var (
		mu     sync.Mutex
		claims = map[deploydb.OperationID]int{}
		perW   = make([]int, workers)
		errs   []error
		start  = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for {
				o, err := svc.ClaimNextOperation(ctx, "shared-target", fmt.Sprintf("worker-%d", w))
				if errors.Is(err, deploydb.ErrNotFound) {
					return
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					claims[o.ID]++
					perW[w]++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	dups, lost := 0, 0
	for id := range want {
		switch claims[id] {
		case 0:
			lost++
		case 1:
		default:
			dups++
		}
	}
	t.Logf("claim race: %d workers, %d operations on one target: %d claimed, %d duplicates, %d lost, %d errors; per worker %v",
		workers, n, len(claims), dups, lost, len(errs), perW)
	if dups != 0 || lost != 0 || len(errs) != 0 || len(claims) != n {
		t.Fatalf("claims: %d duplicates, %d lost, errors %v", dups, lost, errs)
	}
	var recorded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deployment_operations WHERE target = 'shared-target' AND state = 'running' AND claimed_by LIKE 'worker-%'`).Scan(&recorded); err != nil || recorded != n {
		t.Fatalf("%d operations recorded as claimed (%v), want %d", recorded, err, n)
	}
	checkAllDerived(t, pool)
}

// TestTransitionRace releases G goroutines at once on the same operation for
// R rounds; half ask for the round's transition and half for a competing
// one. Exactly one call per round may move the operation; every other call
// gets the no-op row (it asked for the state the winner reached) or a
// *TransitionError.
func TestTransitionRace(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	const goroutines, rounds = 50, 20
	app := mustApp(t, svc)
	targets := make([]string, 10)
	for i := range targets {
		targets[i] = fmt.Sprintf("race-%d", i)
	}
	d, ops := mustRollout(t, svc, app.ID, targets...)
	next := 0
	id := ops[0].ID
	// For each state, two competing legal requests (the same one twice
	// where only one move exists), chosen so that once either has won the
	// other is no longer legal: a second winner would be a bug.
	competing := map[deploydb.OperationState][2]deploydb.OperationState{
		deploydb.OperationPending:           {deploydb.OperationRunning, deploydb.OperationRunning},
		deploydb.OperationRunning:           {deploydb.OperationWaitingForCutover, deploydb.OperationCompleted},
		deploydb.OperationWaitingForCutover: {deploydb.OperationCuttingOver, deploydb.OperationStopped},
		deploydb.OperationCuttingOver:       {deploydb.OperationCompleted, deploydb.OperationFailed},
		deploydb.OperationCompleted:         {deploydb.OperationReverted, deploydb.OperationReverted},
		deploydb.OperationFailed:            {deploydb.OperationPending, deploydb.OperationPending},
		deploydb.OperationStopped:           {deploydb.OperationPending, deploydb.OperationPending},
	}
	totalWinners, totalNoop, totalTyped := 0, 0, 0
	for r := 0; r < rounds; r++ {
		cur, err := svc.GetOperation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if cur.State == deploydb.OperationReverted { // no way out: race on the next target
			next++
			id = ops[next].ID
			if cur, err = svc.GetOperation(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		pair := competing[cur.State]
		var (
			wg                   sync.WaitGroup
			mu                   sync.Mutex
			winners, noop, typed int
			winnerState          deploydb.OperationState
			other                []error
			barrier              = make(chan struct{})
			results              = make([]deploydb.Operation, goroutines)
			asked                = make([]deploydb.OperationState, goroutines)
		)
		for g := 0; g < goroutines; g++ {
			asked[g] = pair[g%2]
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-barrier
				o, changed, err := svc.TransitionOperation(ctx, id, asked[g], "raced")
				mu.Lock()
				defer mu.Unlock()
				var te *deploydb.TransitionError
				switch {
				case err == nil && changed:
					winners++
					winnerState = o.State
				case err == nil:
					noop++
					results[g] = o
				case errors.As(err, &te):
					typed++
				default:
					other = append(other, err)
				}
			}(g)
		}
		close(barrier)
		wg.Wait()
		for g, o := range results {
			if o.ID != 0 && (o.State != asked[g] || o.State != winnerState) {
				t.Fatalf("round %d: a no-op returned state %s for a request of %s (winner reached %s)", r, o.State, asked[g], winnerState)
			}
		}
		if winners != 1 || len(other) != 0 || winners+noop+typed != goroutines {
			t.Fatalf("round %d (%s|%s): %d winners, %d no-ops, %d typed errors, other errors %v",
				r, pair[0], pair[1], winners, noop, typed, other)
		}
		totalWinners += winners
		totalNoop += noop
		totalTyped += typed
	}
	t.Logf("transition race: %d goroutines x %d rounds: %d winners (1 per round), %d no-op rows, %d typed errors, 0 other",
		goroutines, rounds, totalWinners, totalNoop, totalTyped)
	checkDerived(t, svc, d.ID)
	checkAllDerived(t, pool)
}

// checkAllDerived compares, for every deployment with operations, the stored
// status with the status derived from its operations, read in one SQL
// statement.
func checkAllDerived(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT d.id, d.status, d.started_at IS NOT NULL, array_agg(o.state ORDER BY o.target)
		FROM deployments d JOIN deployment_operations o ON o.deployment_id = d.id
		GROUP BY d.id, d.status, d.started_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked, mismatches := 0, 0
	for rows.Next() {
		var (
			id      int64
			stored  string
			started bool
			states  []string
		)
		if err := rows.Scan(&id, &stored, &started, &states); err != nil {
			t.Fatal(err)
		}
		ops := make([]deploydb.OperationState, len(states))
		for i, s := range states {
			ops[i] = deploydb.OperationState(s)
		}
		derived := countsOf(ops).DeploymentStatus(started)
		if !started && deploydb.DeriveDeploymentStatus(ops...) != derived {
			t.Errorf("deployment %d: DeriveDeploymentStatus and OperationCounts.DeploymentStatus disagree on %v", id, states)
		}
		if string(derived) != stored {
			mismatches++
			t.Errorf("deployment %d: stored %s, derived %s from %v", id, stored, derived, states)
		}
		checked++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stored vs derived status: %d deployments checked, %d mismatches", checked, mismatches)
}
