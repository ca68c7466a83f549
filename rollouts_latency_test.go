package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestCreateToClaimLatency is the wake-up figure: an idle worker waits on a
// target through a Waiter while deployments to that target are created one
// at a time; each must be claimed by that worker. The figure is the time
// from the start of CreateDeploymentWithTargets to the worker's successful
// claim, with notifications and with polling alone (the fallback where
// LISTEN does not work). Only counts and orderings are asserted: every
// deployment claimed once, in creation order, by the waiting worker.
func TestCreateToClaimLatency(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)

	run := func(mode deploydb.ListenMode, poll time.Duration, rounds int) []time.Duration {
		t.Helper()
		target := fmt.Sprintf("latency-%s", mode)
		w, err := svc.NewWaiter(ctx, deploydb.WaiterParams{PollInterval: poll, Listen: mode})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if mode == deploydb.ListenAuto && !w.Listening() {
			t.Fatalf("the waiter does not listen")
		}
		type claim struct {
			op deploydb.Operation
			at time.Time
		}
		claims := make(chan claim)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer close(claims)
			for {
				op, err := svc.ClaimNextOperation(wctx, target, "idle-worker")
				if errors.Is(err, deploydb.ErrNotFound) {
					if err := w.Wait(wctx, target); err != nil {
						return
					}
					continue
				}
				if err != nil {
					return
				}
				claims <- claim{op, time.Now()}
			}
		}()
		var lat []time.Duration
		for i := range rounds {
			env := fmt.Sprintf("lat-%s-%d", mode, i) // its own environment: nothing supersedes or waits
			start := time.Now()
			d, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
				AppID: app.ID, BuildID: b.ID, Environment: env, Targets: []string{target}})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case c, ok := <-claims:
				if !ok {
					t.Fatalf("round %d: the worker stopped", i)
				}
				if c.op.DeploymentID != d.ID {
					t.Fatalf("round %d: claimed an operation of deployment %d, want %d", i, c.op.DeploymentID, d.ID)
				}
				lat = append(lat, c.at.Sub(start))
				if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: c.op.Lease(), To: deploydb.OperationCompleted}); err != nil {
					t.Fatal(err)
				}
			case <-ctx.Done():
				t.Fatalf("round %d: no claim", i)
			}
		}
		return lat
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	notified := run(deploydb.ListenAuto, time.Minute, 100)
	polled := run(deploydb.ListenOff, 200*time.Millisecond, 10)
	if len(notified) != 100 || len(polled) != 10 {
		t.Fatalf("claims: %d notified, %d polled", len(notified), len(polled))
	}
	figure(t, "WAKE", "create-to-claim with an idle worker waiting: LISTEN/NOTIFY p50 %v p99 %v (100 deployments, poll interval 1 min, so every wake was a notification); polling every 200ms p50 %v p99 %v (10 deployments)",
		pct(notified, 0.50).Round(10*time.Microsecond), pct(notified, 0.99).Round(10*time.Microsecond),
		pct(polled, 0.50).Round(time.Millisecond), pct(polled, 0.99).Round(time.Millisecond))
}
