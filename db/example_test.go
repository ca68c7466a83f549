package db_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// A CD step: apply what is pending, tolerating live traffic, and tell a
// lock held by another runner from a broken migration.
func ExampleUp() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(false) // in a CD step: os.Getenv("DATABASE_URL")
	rep, err := db.Up(ctx, url,
		db.WithLockWait(5*time.Minute),              // other replicas may be migrating
		db.WithDDLLockTimeout(500*time.Millisecond)) // never queue reads behind DDL for longer
	var me *db.MigrationError
	switch {
	case errors.Is(err, db.ErrLocked):
		log.Fatalf("still locked after 5 minutes: %v", err)
	case errors.As(err, &me):
		log.Fatalf("%s failed at %q (SQLSTATE %s)", me.File, me.Statement, me.SQLState)
	case err != nil:
		log.Fatal(err)
	}
	versions := db.Versions()
	fmt.Println("applied every embedded file:", len(rep.Applied) == len(versions))
	fmt.Println("at the newest version:", rep.To == versions[len(versions)-1])

	// A second run finds nothing to do.
	rep, err = db.Up(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("applied on the second run:", len(rep.Applied))
	// Output:
	// applied every embedded file: true
	// at the newest version: true
	// applied on the second run: 0
}

// Roll back the last file after looking at the plan.
func ExampleDown() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(true) // a migrated database
	plan, err := db.Down(ctx, url, db.WithSteps(1), db.WithDryRun())
	if err != nil {
		log.Fatal(err)
	}
	if len(plan.DataLoss) > 0 {
		log.Fatalf("the rollback would drop data: %v", plan.DataLoss)
	}
	fmt.Println("files to roll back:", len(plan.Files), "planned statements > 0:", len(plan.Plan) > 0)
	rep, err := db.Down(ctx, url, db.WithSteps(1))
	if err != nil {
		log.Fatal(err)
	}
	versions := db.Versions()
	fmt.Println("back at the previous version:", rep.To == versions[len(versions)-2])
	// Output:
	// files to roll back: 1 planned statements > 0: true
	// back at the previous version: true
}

// Inspect tells a pipeline whether the database is ready for this build.
func ExampleInspect() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(false) // an empty database: everything is pending
	st, err := db.Inspect(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Verdict, st.Pending == len(db.Versions()))
	if err := db.Migrate(ctx, url); err != nil {
		log.Fatal(err)
	}
	if st, err = db.Inspect(ctx, url); err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Verdict, st.Pending)
	// Output:
	// pending true
	// ok 0
}
