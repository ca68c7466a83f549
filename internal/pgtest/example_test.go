package pgtest_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// A dev command gets a server, a migrated database on it, and tears the
// server down when done.
func ExampleStart() {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		log.Fatal(err) // says how to provide PostgreSQL
	}
	defer srv.Close()

	tpl, err := srv.MigratedTemplate(ctx)
	if err != nil {
		log.Fatal(err)
	}
	url, err := srv.CreateDatabase(ctx, "deploydb_demo", tpl)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("demo database:", pgtest.Redact(url))
}

// Tests take a fresh migrated database each; TestMain closes the shared
// server at the end.
func ExamplePool() {
	// func TestMain(m *testing.M) { pgtest.Main(m) }
	testCountApps := func(t *testing.T) {
		t.Parallel()
		pool := pgtest.Pool(t)
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM apps`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("new database has %d apps", n)
		}
	}
	_ = testCountApps
}
