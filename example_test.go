package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
)

// Example shows the main calls: migrate, create an app and a build, run the
// build, deploy it, and read the deployment back with its build.
func Example() {
	ctx := context.Background()
	url := os.Getenv("DATABASE_URL")
	if err := db.Migrate(ctx, url); err != nil {
		log.Fatal(err)
	}
	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout"})
	if err != nil {
		log.Fatal(err)
	}
	build, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "3f2a9c1"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
		if build, _, err = svc.UpdateBuildStatus(ctx, build.ID, s); err != nil {
			log.Fatal(err)
		}
	}
	d, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: build.ID, Environment: "production"})
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, deploydb.DeploymentInProgress); errors.Is(err, deploydb.ErrConflict) {
		log.Fatal("another deployment of checkout to production is in progress")
	}
	dwb, err := svc.GetDeploymentWithBuild(ctx, d.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dwb.Deployment.Status, dwb.Build.SourceVersion)
}

// ExampleService_ListDeployments walks every page of an app's deployments
// that finished successfully, most recent first.
func ExampleService_ListDeployments() {
	ctx := context.Background()
	svc, err := deploydb.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	const appID = 1
	filter := deploydb.DeploymentFilter{AppID: appID, Status: deploydb.DeploymentDeployed, OrderBy: deploydb.OrderByFinishedAt}
	page := deploydb.PageRequest{Size: 50}
	for {
		p, err := svc.ListDeployments(ctx, filter, page)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range p.Items {
			fmt.Println(d.ID, d.Environment, d.FinishedAt)
		}
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
}

// ExampleService_InTx creates an app and its first build atomically.
func ExampleService_InTx() {
	ctx := context.Background()
	svc, err := deploydb.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	err = svc.InTx(ctx, func(tx *deploydb.Service) error {
		app, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "search"})
		if err != nil {
			return err // rolls back
		}
		_, _, err = tx.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1.0.0"})
		return err
	})
	var te *deploydb.TransitionError
	switch {
	case errors.Is(err, deploydb.ErrConflict):
		fmt.Println("app exists already")
	case errors.As(err, &te):
		fmt.Println("illegal transition", te.From, "->", te.To)
	case err != nil:
		log.Fatal(err)
	}
}
