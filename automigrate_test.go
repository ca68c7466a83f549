package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// Replicas that start together with WithAutoMigrate migrate the database
// once between them, through the migration lock, and all come up.
func TestOpenWithAutoMigrate(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	base := pgtest.EmptyURL(t)
	// The application's URL, pool settings included, works for migrating.
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	url := base + sep + "pool_max_conns=3"

	const replicas = 4
	var (
		wg      sync.WaitGroup
		applied atomic.Int64
		start   = make(chan struct{})
		svcs    = make([]*deploydb.Service, replicas)
		errs    = make([]error, replicas)
	)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			svcs[i], errs[i] = deploydb.Open(ctx, url, deploydb.WithAutoMigrate(
				db.Migrator(db.WithLog(func(string, ...any) { applied.Add(1) }))))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer svcs[i].Close()
	}
	if got := int(applied.Load()); got != len(db.Versions()) {
		t.Fatalf("%d files applied across %d replicas, want each of the %d once", got, replicas, len(db.Versions()))
	}
	if n := pgtest.RevisionRows(t, base); n != len(db.Versions()) {
		t.Fatalf("%d revision rows, want %d", n, len(db.Versions()))
	}
	if svcs[0].Pool().Config().MaxConns != 3 {
		t.Errorf("pool_max_conns from the URL was not applied")
	}
	if _, err := svcs[1].CreateApp(ctx, deploydb.CreateAppParams{Name: "auto-migrated"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replicas opened with WithAutoMigrate: %d file(s) applied once in total, 0 errors", replicas, applied.Load())
}

// A replica that cannot get the migration lock in time does not start.
func TestOpenWithAutoMigrateLocked(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	url := pgtest.EmptyURL(t)
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	h := fnv.New32()
	h.Write([]byte("atlas_migrate_execute"))
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(h.Sum32())); err != nil {
		t.Fatal(err)
	}
	svc, err := deploydb.Open(ctx, url, deploydb.WithAutoMigrate(db.Migrator(db.WithLockWait(200*time.Millisecond))))
	if !errors.Is(err, db.ErrLocked) {
		if svc != nil {
			svc.Close()
		}
		t.Fatalf("Open while the migration lock is held: %v, want ErrLocked", err)
	}
	if n := pgtest.RevisionRows(t, url); n != 0 {
		t.Fatalf("a locked-out Open migrated %d files", n)
	}
	// Without the option Open does not touch the schema: its check refuses
	// the unmigrated database.
	if _, err = deploydb.Open(ctx, url); !errors.Is(err, deploydb.ErrSchemaMismatch) {
		t.Fatalf("Open without WithAutoMigrate on an empty database: %v, want ErrSchemaMismatch", err)
	}
	if n := pgtest.RevisionRows(t, url); n != 0 {
		t.Fatalf("Open without WithAutoMigrate migrated %d files", n)
	}
}

// A service that migrates at startup: replicas starting together take
// turns on the migration lock, and a replica that cannot migrate does not
// start.
func ExampleWithAutoMigrate() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(false) // in a service: os.Getenv("DATABASE_URL")
	svc, err := deploydb.Open(ctx, url,
		deploydb.WithAutoMigrate(db.Migrator(db.WithLockWait(2*time.Minute))))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("migrated and serving:", app.Name)
	// Output: migrated and serving: checkout
}
