package db_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

var hotFiles = []pgtest.MigrationFile{
	{Name: "20260301000001_hot.sql", SQL: `CREATE TABLE hot (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO hot SELECT g, 'v' || g FROM generate_series(1, 1000) g;
`},
	{Name: "20260301000002_hot_note.sql", SQL: "ALTER TABLE hot ADD COLUMN note text;\n"},
}

type trafficResult struct {
	maxStall    time.Duration // longest single read of the probes
	reads       int
	retries     int
	readerEnd   time.Time // when the long reader began to commit (its lock can go no earlier)
	migrateEnd  time.Time // when Up returned
	migrateTook time.Duration
}

// ddlBehindReader runs `ALTER TABLE hot ...` while a transaction that read
// hot stays open for 2 s, with probes reading hot every few milliseconds,
// and measures how long the probes stall.
func ddlBehindReader(t *testing.T, lockTimeout time.Duration) trafficResult {
	t.Helper()
	ctx := context.Background()
	dir, _ := pgtest.MigrationDir(t, hotFiles...)
	url := pgtest.MigrateTo(t, "20260301000001", db.WithDir(dir))
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	var res trafficResult
	// The long reader: holds ACCESS SHARE on hot for 2 s.
	readerIn := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			readerDone <- err
			return
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM hot`).Scan(&n); err != nil {
			readerDone <- err
			return
		}
		close(readerIn)
		time.Sleep(2 * time.Second)
		// Taken before Commit: once the server releases the lock the
		// migration may finish before this goroutine runs again.
		res.readerEnd = time.Now()
		err = tx.Commit(ctx)
		readerDone <- err
	}()
	<-readerIn

	// Probes: the application's short reads.
	stop := make(chan struct{})
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				var v string
				if err := pool.QueryRow(ctx, `SELECT v FROM hot WHERE id = $1`, i%1000+1).Scan(&v); err != nil {
					t.Errorf("probe read: %v", err)
					return
				}
				d := time.Since(start)
				mu.Lock()
				res.reads++
				res.maxStall = max(res.maxStall, d)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	rep, err := db.Up(ctx, url, db.WithDir(dir), db.WithDDLLockTimeout(lockTimeout),
		db.WithLockRetries(100), db.WithRetryBackoff(50*time.Millisecond, 400*time.Millisecond))
	res.migrateEnd = time.Now()
	res.migrateTook = res.migrateEnd.Sub(start)
	if err != nil {
		t.Fatalf("migrate behind the reader: %v", err)
	}
	if len(rep.Applied) != 1 {
		t.Fatalf("applied %d files, want 1", len(rep.Applied))
	}
	res.retries = rep.Applied[0].Retries
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	return res
}

// TestDDLBehindLongReader: with lock_timeout 100 ms, an ALTER TABLE stuck
// behind a 2 s reader stalls the application's reads for about 100 ms at a
// time instead of 2 s, and is retried until it goes through after the
// reader ends. Without lock_timeout the same reads stall for the rest of the
// reader's 2 s.
func TestDDLBehindLongReader(t *testing.T) {
	t.Parallel()
	const lockTimeout = 100 * time.Millisecond
	// Scheduling on a busy 2-core machine adds latency unrelated to locks.
	const jitter = 300 * time.Millisecond
	t.Run("lock_timeout 100ms", func(t *testing.T) {
		t.Parallel()
		r := ddlBehindReader(t, lockTimeout)
		t.Logf("lock_timeout %s: max stall of %d concurrent reads %s, %d retries, migration took %s and finished %s after the reader ended",
			lockTimeout, r.reads, r.maxStall.Round(time.Millisecond), r.retries, r.migrateTook.Round(time.Millisecond),
			r.migrateEnd.Sub(r.readerEnd).Round(time.Millisecond))
		if r.retries < 1 {
			t.Errorf("the migration was not retried")
		}
		if r.migrateEnd.Before(r.readerEnd) {
			t.Errorf("the migration finished before the reader released its lock")
		}
		if r.maxStall > lockTimeout+jitter {
			t.Errorf("reads stalled %s, want at most lock_timeout %s + %s", r.maxStall, lockTimeout, jitter)
		}
	})
	t.Run("no lock_timeout", func(t *testing.T) {
		t.Parallel()
		r := ddlBehindReader(t, 0)
		t.Logf("no lock_timeout: max stall of %d concurrent reads %s, %d retries", r.reads, r.maxStall.Round(time.Millisecond), r.retries)
		if r.maxStall < time.Second {
			t.Errorf("without lock_timeout reads stalled only %s; the comparison is void", r.maxStall)
		}
	})
}

// A statement that outlives statement_timeout fails the run without retries.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	dir, _ := pgtest.MigrationDir(t, pgtest.MigrationFile{Name: "20260301000001_slow.sql", SQL: "SELECT pg_sleep(2);\n"})
	url := pgtest.EmptyURL(t)
	start := time.Now()
	_, err := db.Up(context.Background(), url, db.WithDir(dir), db.WithStatementTimeout(100*time.Millisecond))
	var me *db.MigrationError
	if !errors.As(err, &me) || me.SQLState != "57014" || me.Retries != 0 || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("slow statement: %v (after %s)", err, time.Since(start))
	}
}
