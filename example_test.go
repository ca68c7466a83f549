package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// Example shows the main calls: create an app and a build, run the build,
// deploy it, and read the deployment back with its build. (The database is
// migrated already: see db.Migrate or `deploydb migrate up`.)
func Example() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(true) // in a service: os.Getenv("DATABASE_URL")

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
	_, changed, err := svc.UpdateDeploymentStatus(ctx, d.ID, deploydb.DeploymentInProgress)
	if errors.Is(err, deploydb.ErrConflict) {
		log.Fatal("another deployment of checkout to production is in progress")
	}
	dwb, err := svc.GetDeploymentWithBuild(ctx, d.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dwb.Deployment.Environment, dwb.Deployment.Status, changed, dwb.Build.SourceVersion)
	// Output: production in_progress true 3f2a9c1
}

// ExampleService_ListDeployments walks every page of an app's deployments
// that finished successfully, most recent first.
func ExampleService_ListDeployments() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(true)
	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	app := exampleDeployments(ctx, svc, "checkout", 5)

	filter := deploydb.DeploymentFilter{AppID: app, Status: deploydb.DeploymentDeployed, OrderBy: deploydb.OrderByFinishedAt}
	page := deploydb.PageRequest{Size: 2}
	for n := 1; ; n++ {
		p, err := svc.ListDeployments(ctx, filter, page)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("page %d: %d deployments\n", n, len(p.Items))
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	// Output:
	// page 1: 2 deployments
	// page 2: 2 deployments
	// page 3: 1 deployments
}

// exampleDeployments creates an app with n deployed deployments.
func exampleDeployments(ctx context.Context, svc *deploydb.Service, name string, n int) deploydb.AppID {
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: name})
	if err != nil {
		log.Fatal(err)
	}
	for i := range n {
		b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: fmt.Sprint("v", i)})
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
			if _, _, err := svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
				log.Fatal(err)
			}
		}
		d, _, err := svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID, Environment: "production"})
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range []deploydb.DeploymentStatus{deploydb.DeploymentInProgress, deploydb.DeploymentDeployed} {
			if _, _, err := svc.UpdateDeploymentStatus(ctx, d.ID, s); err != nil {
				log.Fatal(err)
			}
		}
	}
	return app.ID
}

// ExampleService_InTx creates an app and its first build atomically; the
// second attempt fails on the duplicate name and leaves nothing behind.
func ExampleService_InTx() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(true)
	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	create := func() error {
		return svc.InTx(ctx, func(tx *deploydb.Service) error {
			app, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "search"})
			if err != nil {
				return err // rolls back
			}
			_, _, err = tx.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1.0.0"})
			return err
		})
	}
	fmt.Println("first:", create())
	err = create()
	fmt.Println("second conflicts:", errors.Is(err, deploydb.ErrConflict))
	// Output:
	// first: <nil>
	// second conflicts: true
}

// ExampleService_WithTx runs deploydb's calls inside a transaction of the
// caller's, together with the caller's own SQL: both commit or roll back
// together. InTx on the joined Service is a savepoint.
func ExampleService_WithTx() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(true)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	svc := deploydb.New(pool)
	if _, err := pool.Exec(ctx, `CREATE TABLE audit (entry text NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) // a no-op after Commit
	in := svc.WithTx(tx)
	app, err := in.CreateApp(ctx, deploydb.CreateAppParams{Name: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit VALUES ($1)`, "created "+app.Name); err != nil {
		log.Fatal(err)
	}
	// A failed savepoint does not abort the caller's transaction.
	err = in.InTx(ctx, func(sp *deploydb.Service) error {
		_, err := sp.CreateApp(ctx, deploydb.CreateAppParams{Name: "billing"})
		return err
	})
	fmt.Println("duplicate in a savepoint:", errors.Is(err, deploydb.ErrConflict))
	if _, err := svc.GetAppByName(ctx, "billing"); errors.Is(err, deploydb.ErrNotFound) {
		fmt.Println("not visible before the caller commits")
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	var entry string
	if err := pool.QueryRow(ctx, `SELECT entry FROM audit`).Scan(&entry); err != nil {
		log.Fatal(err)
	}
	got, err := svc.GetAppByName(ctx, "billing")
	fmt.Println(entry, "/", got.Name, err)
	// Output:
	// duplicate in a savepoint: true
	// not visible before the caller commits
	// created billing / billing <nil>
}
