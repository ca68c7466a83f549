package deploydb_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb"
)

// TestJoinCallersTransaction: a Service made on the caller's pgx.Tx runs
// every method in it, the ones that use transactions themselves
// (CreateDeploymentWithTargets, TransitionOperation, ClaimNextOperation)
// included: nothing is visible outside before the caller commits, and a
// rollback of the caller's transaction undoes all of it.
func TestJoinCallersTransaction(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	count := func(table string) (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	work := func(in *deploydb.Service) {
		t.Helper()
		app, err := in.CreateApp(ctx, deploydb.CreateAppParams{Name: "joined"})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := in.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
			if _, _, err := in.UpdateBuildStatus(ctx, b.ID, s); err != nil {
				t.Fatal(err)
			}
		}
		d, _, _, err := in.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
			AppID: app.ID, BuildID: b.ID, Environment: "production", Targets: []string{"eu", "us"}})
		if err != nil {
			t.Fatal(err)
		}
		o, err := in.ClaimNextOperation(ctx, "eu", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := in.MarkCompleted(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		got, err := in.GetDeployment(ctx, d.ID)
		if err != nil || got.Status != deploydb.DeploymentInProgress {
			t.Fatalf("derived status inside the caller's transaction: %+v, %v", got, err)
		}
		if n := count("apps") + count("builds") + count("deployments") + count("deployment_operations"); n != 0 {
			t.Fatalf("%d rows visible outside the caller's transaction before it committed", n)
		}
	}
	for _, commit := range []bool{false, true} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		work(svc.WithTx(tx))
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if commit {
			want = 1
		}
		if a, b, d, o := count("apps"), count("builds"), count("deployments"), count("deployment_operations"); a != want || b != want || d != want || o != 2*want {
			t.Fatalf("commit %v: %d apps, %d builds, %d deployments, %d operations", commit, a, b, d, o)
		}
	}
}

// TestJoinedInTxIsASavepoint: InTx on a Service made with New(tx) runs its
// callback once in a savepoint: a failure rolls back to it and the caller's
// transaction goes on; a serialization failure is ErrRetryable at once, for
// the caller to retry the whole transaction.
func TestJoinedInTxIsASavepoint(t *testing.T) {
	t.Parallel()
	_, pool := newService(t)
	ctx := ctxT(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	in := deploydb.New(tx)
	if in.Pool() != nil {
		t.Error("a Service on a transaction reports a pool")
	}
	if _, err := in.CreateApp(ctx, deploydb.CreateAppParams{Name: "outer"}); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	err = in.InTx(ctx, func(sp *deploydb.Service) error {
		runs.Add(1)
		if _, err := sp.CreateApp(ctx, deploydb.CreateAppParams{Name: "inner"}); err != nil {
			return err
		}
		_, err := sp.CreateApp(ctx, deploydb.CreateAppParams{Name: "outer"}) // duplicate
		return err
	})
	checkOne(t, "duplicate in the savepoint", err, deploydb.ErrConflict)
	err = in.InTx(ctx, func(sp *deploydb.Service) error {
		runs.Add(1)
		_, err := sp.Conn().Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`)
		return err
	})
	checkOne(t, "serialization failure in the savepoint", err, deploydb.ErrRetryable)
	if n := runs.Load(); n != 2 {
		t.Errorf("%d callback runs, want 2 (savepoints are not retried)", n)
	}
	if _, err := in.CreateApp(ctx, deploydb.CreateAppParams{Name: "after"}); err != nil {
		t.Fatalf("the caller's transaction after failed savepoints: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	rows, _ := pool.Query(ctx, `SELECT name FROM apps ORDER BY id`)
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 2 || names[0] != "outer" || names[1] != "after" {
		t.Fatalf("committed apps %v, %v; want [outer after]", names, err)
	}
}

// TestServiceOnConn: a Service on a *pgx.Conn runs every call on that
// connection, and InTx begins real transactions there with the options
// asked for.
func TestServiceOnConn(t *testing.T) {
	t.Parallel()
	_, pool := newService(t)
	ctx := ctxT(t)
	c, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	svc := deploydb.New(c)
	app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "on-conn"})
	if err != nil {
		t.Fatal(err)
	}
	var iso string
	err = svc.InTxWith(ctx, deploydb.TxOptions{Isolation: deploydb.Serializable, ReadOnly: true}, func(tx *deploydb.Service) error {
		if _, err := tx.GetApp(ctx, app.ID); err != nil {
			return err
		}
		return tx.Conn().QueryRow(ctx, `SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only')`).Scan(&iso)
	})
	if err != nil || iso != "serializable on" {
		t.Fatalf("InTx on a connection: %q, %v", iso, err)
	}
	boom := errors.New("boom")
	if err := svc.InTx(ctx, func(tx *deploydb.Service) error {
		if _, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "rolled-back"}); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatal(err)
	}
	if _, err := svc.GetAppByName(ctx, "rolled-back"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("rolled-back app: %v", err)
	}
}
