package seed

import (
	"context"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// checkForeignKeys finds a row that the skipped triggers let through.
func TestCheckForeignKeysFindsOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if _, err := Run(ctx, pool, Config{Apps: 3, Builds: 50, Deployments: 50, Operations: 30, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := checkForeignKeys(ctx, pool, 2); err != nil {
		t.Fatalf("clean data set: %v", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// A deployment of app 2 that deploys a build of app 1: only the
	// composite key (build_id, app_id) catches it.
	for _, stmt := range []string{
		"SET LOCAL session_replication_role = replica",
		`INSERT INTO deployments (app_id, build_id) SELECT 2, id FROM builds WHERE app_id = 1 AND status = 'succeeded' LIMIT 1`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = checkForeignKeys(ctx, pool, 2)
	if err == nil || !strings.Contains(err.Error(), "deployments_build_id_app_id_fkey") {
		t.Fatalf("orphan not found: %v", err)
	}
}
