package db_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateAppliesAndRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyURL(t)

	st, err := db.Status(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(db.Versions()) || len(st) == 0 {
		t.Fatalf("status lists %d files, want %d", len(st), len(db.Versions()))
	}
	for _, f := range st {
		if f.State != db.StatePending {
			t.Fatalf("fresh database: %s is %s, want pending", f.Version, f.State)
		}
	}

	var logged []string
	if err := db.Migrate(ctx, url, db.WithLog(func(f string, a ...any) { logged = append(logged, f) })); err != nil {
		t.Fatal(err)
	}
	if len(logged) != len(db.Versions()) {
		t.Fatalf("logged %d applied files, want %d", len(logged), len(db.Versions()))
	}
	st, err = db.Status(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st {
		if f.State != db.StateApplied || f.Applied != f.Total || f.Total == 0 || f.Operator != "deploydb" || f.ExecutedAt.IsZero() {
			t.Fatalf("after Migrate: %+v", f)
		}
	}

	// A second run does nothing and logs nothing.
	logged = nil
	if err := db.Migrate(ctx, url, db.WithLog(func(f string, a ...any) { logged = append(logged, f) })); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 0 {
		t.Fatalf("second Migrate applied %d files", len(logged))
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var revs int
	var hash string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(hash) FROM atlas_schema_revisions`).Scan(&revs, &hash); err != nil {
		t.Fatal(err)
	}
	if revs != len(db.Versions()) || hash == "" {
		t.Fatalf("%d revision rows (hash %q), want %d", revs, hash, len(db.Versions()))
	}
	for _, table := range []string{"apps", "builds", "deployments"} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Fatalf("table %s missing after Migrate (%v)", table, err)
		}
	}
}

func TestMigrateConcurrentRunners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyURL(t)
	const runners = 4
	var wg sync.WaitGroup
	errs := make([]error, runners)
	applied := make([]int, runners)
	for i := 0; i < runners; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = db.Migrate(ctx, url, db.WithLog(func(string, ...any) { applied[i]++ }))
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range errs {
		if errs[i] != nil {
			t.Errorf("runner %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != len(db.Versions()) {
		t.Fatalf("%d files applied across %d runners, want each file exactly once (%d)", total, runners, len(db.Versions()))
	}
}

func TestMigrateLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyURL(t)
	// Hold the lock the way another runner (or the Atlas CLI) would.
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = db.Migrate(ctx, url, db.WithLockWait(300*time.Millisecond))
	if !errors.Is(err, db.ErrLocked) {
		t.Fatalf("Migrate while locked: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("waited %s for a 300ms lock wait", waited)
	}
	st, err := db.Status(ctx, url)
	if err != nil || st[0].State != db.StatePending {
		t.Fatalf("a locked-out Migrate changed the database: %+v, %v", st, err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, url); err != nil {
		t.Fatalf("Migrate after the lock was released: %v", err)
	}
}

// lockKey is the advisory-lock key of the Atlas CLI's "atlas_migrate_execute"
// lock: FNV-1 32-bit of the name.
func lockKey() int64 {
	h := uint32(2166136261)
	for _, c := range []byte("atlas_migrate_execute") {
		h *= 16777619
		h ^= uint32(c)
	}
	return int64(h)
}

func TestMigrateBadURLHidesPassword(t *testing.T) {
	t.Parallel()
	err := db.Migrate(context.Background(), "postgres://u:hunter2@[::1/db")
	if !errors.Is(err, db.ErrInvalidURL) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}

func TestEmbeddedMigrationsMatchSum(t *testing.T) {
	sum, err := db.Dir().Open("atlas.sum")
	if err != nil {
		t.Fatal(err)
	}
	defer sum.Close()
	first := make([]byte, 47)
	if _, err := sum.Read(first); err != nil {
		t.Fatal(err)
	}
	if db.Checksum() != string(first) {
		t.Fatalf("Checksum() = %q, atlas.sum starts with %q", db.Checksum(), first)
	}
	vs := db.Versions()
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			t.Fatalf("versions out of order: %v", vs)
		}
	}
}
