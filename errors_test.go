package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
)

// TestErrorMappingForReal triggers every mapped PostgreSQL condition for
// real and checks the typed error each surfaces as, with the driver error
// still in the chain.
func TestErrorMappingForReal(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	noRetry := deploydb.TxOptions{MaxAttempts: 1}

	// holdBuild starts a transaction that locks build id until release is
	// closed, and returns once the lock is held.
	holdBuild := func(id deploydb.BuildID) (release func()) {
		locked, done := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = svc.InTx(ctx, func(tx *deploydb.Service) error {
				if _, err := tx.Conn().Exec(ctx, "SELECT 1 FROM builds WHERE id = $1 FOR UPDATE", id); err != nil {
					return err
				}
				close(locked)
				<-done
				return errors.New("release")
			})
		}()
		<-locked
		return func() { close(done); wg.Wait() }
	}

	type check struct {
		name string
		code string // expected SQLSTATE in the chain, "" for none
		want error
		run  func() error
	}
	checks := []check{
		{"unique violation", "23505", deploydb.ErrConflict, func() error {
			_, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: app.Name})
			return err
		}},
		{"foreign key on delete", "23503", deploydb.ErrInUse, func() error {
			d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
			return svc.DeleteBuild(ctx, d.BuildID)
		}},
		{"foreign key on insert", "23503", deploydb.ErrNotFound, func() error {
			_, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: 1 << 40, SourceVersion: "v1"})
			return err
		}},
		{"check violation", "23514", deploydb.ErrInvalidArgument, func() error {
			_, err := svc.CreateBuilds(ctx, deploydb.CreateBuildsParams{Rows: []deploydb.BuildRow{{AppID: app.ID, Status: deploydb.BuildSucceeded}}})
			return err
		}},
		{"serialization failure", "40001", deploydb.ErrRetryable, func() error {
			return writeSkew(t, ctx, svc, noRetry)
		}},
		{"deadlock", "40P01", deploydb.ErrRetryable, func() error {
			return deadlock(t, ctx, svc, app.ID, noRetry)
		}},
		{"lock timeout", "55P03", deploydb.ErrTimeout, func() error {
			b := mustBuild(t, svc, app.ID, deploydb.BuildPending)
			release := holdBuild(b.ID)
			defer release()
			return svc.InTxWith(ctx, deploydb.TxOptions{LockTimeout: 100 * time.Millisecond}, func(tx *deploydb.Service) error {
				_, _, err := tx.UpdateBuildStatus(ctx, b.ID, deploydb.BuildInProgress)
				return err
			})
		}},
		{"statement timeout", "57014", deploydb.ErrTimeout, func() error {
			b := mustBuild(t, svc, app.ID, deploydb.BuildPending)
			release := holdBuild(b.ID)
			defer release()
			return svc.InTxWith(ctx, deploydb.TxOptions{StatementTimeout: 100 * time.Millisecond}, func(tx *deploydb.Service) error {
				_, _, err := tx.UpdateBuildStatus(ctx, b.ID, deploydb.BuildInProgress)
				return err
			})
		}},
		{"backend terminated while waiting", "57P01", deploydb.ErrUnavailable, func() error {
			b := mustBuild(t, svc, app.ID, deploydb.BuildPending)
			release := holdBuild(b.ID)
			defer release()
			return svc.InTx(ctx, func(tx *deploydb.Service) error {
				var pid int
				if err := tx.Conn().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					return err
				}
				go func() {
					time.Sleep(200 * time.Millisecond)
					_, _ = pool.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid)
				}()
				_, _, err := tx.UpdateBuildStatus(ctx, b.ID, deploydb.BuildInProgress)
				return err
			})
		}},
		{"connection lost", "", deploydb.ErrUnavailable, func() error {
			return svc.InTx(ctx, func(tx *deploydb.Service) error {
				var pid int
				if err := tx.Conn().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					return err
				}
				if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", pid); err != nil {
					return err
				}
				// The first call reads the server's goodbye (57P01); the
				// connection is gone for the next one.
				if _, err := tx.GetApp(ctx, app.ID); !errors.Is(err, deploydb.ErrUnavailable) {
					return fmt.Errorf("first call after termination: %w", err)
				}
				_, err := tx.GetApp(ctx, app.ID)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) {
					return fmt.Errorf("second call still saw a server error: %w", err)
				}
				return err
			})
		}},
		{"context deadline", "", context.DeadlineExceeded, func() error {
			b := mustBuild(t, svc, app.ID, deploydb.BuildPending)
			release := holdBuild(b.ID)
			defer release()
			dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, _, err := svc.UpdateBuildStatus(dctx, b.ID, deploydb.BuildInProgress)
			return err
		}},
	}
	mapped := 0
	for _, c := range checks {
		err := c.run()
		var pgErr *pgconn.PgError
		switch {
		case !errors.Is(err, c.want) || len(matched(err)) != 1:
			t.Errorf("%s: got %v, matching %v; want exactly %v", c.name, err, matched(err), c.want)
		case c.code != "" && (!errors.As(err, &pgErr) || pgErr.Code != c.code):
			t.Errorf("%s: %v does not wrap SQLSTATE %s", c.name, err, c.code)
		default:
			mapped++
			t.Logf("%-34s -> %v", c.name, err)
		}
	}
	figure(t, "E1", "%d/%d failure conditions triggered for real map to their typed errors (23505, 23503 x2, 23514, 40001, 40P01, 55P03, 57014, 57P01, connection lost, context deadline)", mapped, len(checks))
}

// writeSkew runs two serializable transactions that each read what the
// other writes; one of them must fail with 40001.
func writeSkew(t *testing.T, ctx context.Context, svc *deploydb.Service, opts deploydb.TxOptions) error {
	opts.Isolation = deploydb.Serializable
	bothRead := make(chan struct{})
	var once sync.Once
	var readers sync.WaitGroup
	readers.Add(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			first := true
			errs[i] = svc.InTxWith(ctx, opts, func(tx *deploydb.Service) error {
				var n int
				if err := tx.Conn().QueryRow(ctx, "SELECT count(*) FROM apps WHERE name LIKE 'skew-%'").Scan(&n); err != nil {
					return err
				}
				if first {
					first = false
					readers.Done()
					once.Do(func() { go func() { readers.Wait(); close(bothRead) }() })
					<-bothRead
				}
				_, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "skew-" + string(rune('a'+i)) + "-" + time.Now().Format("150405.000000")[7:]})
				return err
			})
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deadlock runs two transactions that lock two builds in opposite orders.
func deadlock(t *testing.T, ctx context.Context, svc *deploydb.Service, appID deploydb.AppID, opts deploydb.TxOptions) error {
	b1 := mustBuild(t, svc, appID, deploydb.BuildPending)
	b2 := mustBuild(t, svc, appID, deploydb.BuildPending)
	var both sync.WaitGroup
	both.Add(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, order := range [][2]deploydb.BuildID{{b1.ID, b2.ID}, {b2.ID, b1.ID}} {
		wg.Add(1)
		go func(i int, order [2]deploydb.BuildID) {
			defer wg.Done()
			first := true
			errs[i] = svc.InTxWith(ctx, opts, func(tx *deploydb.Service) error {
				if _, err := tx.Conn().Exec(ctx, "SELECT 1 FROM builds WHERE id = $1 FOR UPDATE", order[0]); err != nil {
					return err
				}
				if first {
					first = false
					both.Done()
					both.Wait()
				}
				_, _, err := tx.UpdateBuildStatus(ctx, order[1], deploydb.BuildInProgress)
				return err
			})
		}(i, order)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestInTxRetriesConflicts shows that with retries on (the default) both
// conflicting transactions commit, and that the retries are counted.
func TestInTxRetriesConflicts(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	before := svc.Stats().TxRetries
	if err := writeSkew(t, ctx, svc, deploydb.TxOptions{}); err != nil {
		t.Fatalf("write skew with retries: %v", err)
	}
	if err := deadlock(t, ctx, svc, app.ID, deploydb.TxOptions{}); err != nil {
		t.Fatalf("deadlock with retries: %v", err)
	}
	retries := svc.Stats().TxRetries - before
	figure(t, "E2", "InTx with default retries: a serialization failure and a deadlock both committed after %d transaction retries", retries)
	if retries < 2 {
		t.Fatalf("%d retries counted, want at least one per conflict", retries)
	}
}
