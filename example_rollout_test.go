package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// exampleBuild creates an app with one succeeded build.
func exampleBuild(ctx context.Context, svc *deploydb.Service, name string) (deploydb.AppID, deploydb.BuildID) {
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: name})
	if err != nil {
		log.Fatal(err)
	}
	b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "3f2a9c1"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
		if _, _, err := svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
			log.Fatal(err)
		}
	}
	return app.ID, b.ID
}

// ExampleService_ClaimOperations is the worker loop of a rollout to three
// clusters: claim with a lease, heartbeat while working, move with the
// lease, stop when nothing is claimable. Then a worker that vanished: its
// lease expires, the rescuer returns its operation to pending, and its late
// move fails with ErrLeaseLost.
func ExampleService_ClaimOperations() {
	ctx := context.Background()
	svc, err := deploydb.Open(ctx, pgtest.ExampleDatabase(true))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	app, build := exampleBuild(ctx, svc, "checkout")
	targets := []string{"eu-west-1", "us-east-1", "ap-south-1"}
	d, _, _, err := svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
		AppID: app, BuildID: build, Environment: "production", Targets: targets})
	if err != nil {
		log.Fatal(err)
	}

	// One worker per cluster; here they run one after the other.
	for _, target := range targets {
		for {
			ops, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: target, Worker: "worker-" + target, Lease: 30 * time.Second})
			if errors.Is(err, deploydb.ErrNotFound) {
				break // in a service: wait for a NOTIFY or the poll interval, then claim again
			}
			if err != nil {
				log.Fatal(err)
			}
			for _, op := range ops {
				// ... roll out to the cluster, heartbeating every lease/3 ...
				if _, err := svc.Heartbeat(ctx, op.Lease(), 0); err != nil {
					log.Fatal(err)
				}
				if _, _, err := svc.MoveOperation(ctx, deploydb.MoveParams{Lease: op.Lease(), To: deploydb.OperationCompleted}); err != nil {
					log.Fatal(err)
				}
				fmt.Printf("%s: completed, attempt %d\n", op.Target, op.Attempt)
			}
		}
	}
	d, err = svc.GetDeployment(ctx, d.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("deployment: %s, %d of %d completed\n", d.Status, d.Operations.Completed, d.Operations.Total())

	// A worker claims with a short lease and vanishes.
	app, build = exampleBuild(ctx, svc, "search")
	d, _, _, err = svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
		AppID: app, BuildID: build, Environment: "production", Targets: []string{"eu-west-1"}})
	if err != nil {
		log.Fatal(err)
	}
	lost, err := svc.ClaimOperations(ctx, deploydb.ClaimParams{Target: "eu-west-1", Worker: "worker-gone", Lease: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	res, err := svc.RescueExpiredOperations(ctx, deploydb.RescueParams{}) // a maintenance loop runs this
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rescued: %d back to pending, %d failed\n", len(res.Requeued), len(res.Failed))
	_, _, err = svc.MoveOperation(ctx, deploydb.MoveParams{Lease: lost[0].Lease(), To: deploydb.OperationCompleted})
	fmt.Println("late move of the vanished worker:", errors.Is(err, deploydb.ErrLeaseLost))
	again, err := svc.ClaimNextOperation(ctx, "eu-west-1", "worker-2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("claimed again by %s, attempt %d\n", again.ClaimedBy, again.Attempt)
	// Output:
	// eu-west-1: completed, attempt 1
	// us-east-1: completed, attempt 1
	// ap-south-1: completed, attempt 1
	// deployment: deployed, 3 of 3 completed
	// rescued: 1 back to pending, 0 failed
	// late move of the vanished worker: true
	// claimed again by worker-2, attempt 2
}
