package db_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/deploydb/deploydb/db"
)

// A CD step: apply what is pending, tolerating live traffic, and tell a
// lock held by another runner from a broken migration.
func ExampleUp() {
	ctx := context.Background()
	rep, err := db.Up(ctx, os.Getenv("DATABASE_URL"),
		db.WithLockWait(5*time.Minute),              // other replicas may be migrating
		db.WithDDLLockTimeout(500*time.Millisecond), // never queue reads behind DDL for longer
		db.WithLog(log.Printf))
	var me *db.MigrationError
	switch {
	case errors.Is(err, db.ErrLocked):
		log.Fatalf("still locked after 5 minutes: %v", err)
	case errors.As(err, &me):
		log.Fatalf("%s failed at %q (SQLSTATE %s)", me.File, me.Statement, me.SQLState)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("applied %d file(s); at version %s\n", len(rep.Applied), rep.To)
}

// Roll back the last file after looking at the plan.
func ExampleDown() {
	ctx := context.Background()
	url := os.Getenv("DATABASE_URL")
	plan, err := db.Down(ctx, url, db.WithSteps(1), db.WithDryRun())
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range plan.Plan {
		fmt.Println(st.SQL)
	}
	if len(plan.DataLoss) > 0 {
		log.Fatalf("the rollback would drop data: %v", plan.DataLoss)
	}
	if _, err := db.Down(ctx, url, db.WithSteps(1)); err != nil {
		log.Fatal(err)
	}
}

// Inspect tells a pipeline whether the database is ready for this build.
func ExampleInspect() {
	st, err := db.Inspect(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if st.Verdict != db.VerdictOK {
		log.Fatalf("database not ready: %s (%d pending, %d partial, %d invalid indexes)",
			st.Verdict, st.Pending, st.Partial, len(st.InvalidIndexes))
	}
}
