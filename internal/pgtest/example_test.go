package pgtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// A dev command gets a server, a migrated database on it, and tears the
// server down when done. (Tests use pgtest.Pool(t) or pgtest.URL(t) with
// `func TestMain(m *testing.M) { pgtest.Main(m) }` instead.)
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
	url, err := srv.CreateDatabase(ctx, "deploydb_example_start", tpl)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.DropDatabase(ctx, "deploydb_example_start")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	var apps int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM apps`).Scan(&apps); err != nil {
		log.Fatal(err)
	}
	fmt.Println("migrated clone, apps:", apps)
	// Output: migrated clone, apps: 0
}

// Runnable godoc examples, which have no *testing.T, take their databases
// from ExampleDatabase; Main drops them.
func ExampleExampleDatabase() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.ExampleDatabase(true))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('apps', 'builds', 'deployments')`).Scan(&tables)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tables:", tables)
	// Output: tables: 3
}
