package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// allSentinels is every error a failure may match: deploydb's sentinels and
// the two context errors.
var allSentinels = map[string]error{
	"ErrNotFound":              deploydb.ErrNotFound,
	"ErrConflict":              deploydb.ErrConflict,
	"ErrInvalidTransition":     deploydb.ErrInvalidTransition,
	"ErrInvalidArgument":       deploydb.ErrInvalidArgument,
	"ErrInUse":                 deploydb.ErrInUse,
	"ErrRetryable":             deploydb.ErrRetryable,
	"ErrTimeout":               deploydb.ErrTimeout,
	"ErrUnavailable":           deploydb.ErrUnavailable,
	"ErrTxAborted":             deploydb.ErrTxAborted,
	"ErrSchemaMismatch":        deploydb.ErrSchemaMismatch,
	"ErrInternal":              deploydb.ErrInternal,
	"ErrLeaseLost":             deploydb.ErrLeaseLost,
	"context.Canceled":         context.Canceled,
	"context.DeadlineExceeded": context.DeadlineExceeded,
}

// matched returns the names of the sentinels err matches.
func matched(err error) []string {
	var out []string
	for name, s := range allSentinels {
		if errors.Is(err, s) {
			out = append(out, name)
		}
	}
	return out
}

// checkOne fails unless err matches want and no other sentinel.
func checkOne(t *testing.T, what string, err, want error) {
	t.Helper()
	m := matched(err)
	if !errors.Is(err, want) || len(m) != 1 {
		t.Errorf("%s: %v matches %v; want exactly %v", what, err, m, want)
	}
}

func TestSentinelListIsComplete(t *testing.T) {
	t.Parallel()
	declared := sentinels(t)
	for _, name := range declared {
		if _, ok := allSentinels[name]; !ok {
			t.Errorf("errors.go declares %s, which this test does not check", name)
		}
	}
	if len(declared) != len(allSentinels)-2 {
		t.Errorf("errors.go declares %d sentinels, the test knows %d", len(declared), len(allSentinels)-2)
	}
}

// silentServer accepts TCP connections and never answers: a server that
// does not respond within the connect timeout.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestOpenFailuresAreTyped: Open's failures match one sentinel each.
func TestOpenFailuresAreTyped(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	closed := "postgres://u:p@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	silent := "postgres://u:p@" + silentServer(t) + "/x?sslmode=disable"
	cases := []struct {
		name string
		url  string
		opts []deploydb.Option
		want error
	}{
		{"unparsable URL", "postgres://u:p@[::1/x", nil, deploydb.ErrInvalidArgument},
		{"bad sslmode", "postgres://u:p@127.0.0.1:1/x?sslmode=bogus", nil, deploydb.ErrInvalidArgument},
		{"closed port", closed, nil, deploydb.ErrUnavailable},
		{"server that never answers", silent, []deploydb.Option{deploydb.WithConnectTimeout(300 * time.Millisecond)}, deploydb.ErrUnavailable},
		{"negative max conns", pgtest.URL(t), []deploydb.Option{deploydb.WithMaxConns(-1)}, deploydb.ErrInvalidArgument},
		{"negative connect timeout", pgtest.URL(t), []deploydb.Option{deploydb.WithConnectTimeout(-time.Second)}, deploydb.ErrInvalidArgument},
		{"negative idle time", pgtest.URL(t), []deploydb.Option{deploydb.WithMaxConnIdleTime(-time.Second)}, deploydb.ErrInvalidArgument},
		{"unknown database", strings.Replace(pgtest.URL(t), "/deploydb_t_", "/no_such_db_", 1), nil, deploydb.ErrInvalidArgument},
		{"failed auto-migration", pgtest.URL(t), []deploydb.Option{deploydb.WithAutoMigrate(func(context.Context, string) error {
			return errors.New("checksum mismatch")
		})}, deploydb.ErrSchemaMismatch},
	}
	for _, c := range cases {
		svc, err := deploydb.Open(ctx, c.url, c.opts...)
		if err == nil {
			svc.Close()
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		checkOne(t, c.name, err, c.want)
		var connErr *pgconn.ConnectError
		if c.url == silent && (!errors.As(err, &connErr) || !errors.Is(connErr, context.DeadlineExceeded)) {
			// The driver's error is a connect timeout that wraps
			// context.DeadlineExceeded; only ErrUnavailable shows.
			t.Errorf("%s: want the driver's timeout in the chain: %v", c.name, err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := deploydb.Open(canceled, silent)
	checkOne(t, "canceled context", err, context.Canceled)
}

// TestCallerSQLFailuresAreTyped: SQL of the caller's own, through Conn and
// inside InTx, fails with the same sentinels as deploydb's statements, and
// the transaction-level failures (aborted transactions, read-only writes,
// a Service used after its transaction) are typed too.
func TestCallerSQLFailuresAreTyped(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	raise := func(code string) string {
		return fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '%s'; END $$`, code)
	}
	for _, code := range []string{"40001", "40P01"} {
		var attempts atomic.Int32
		err := svc.InTxWith(ctx, deploydb.TxOptions{MaxAttempts: 3}, func(tx *deploydb.Service) error {
			attempts.Add(1)
			_, err := tx.Conn().Exec(ctx, raise(code))
			return err
		})
		checkOne(t, "caller SQL raising "+code, err, deploydb.ErrRetryable)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code {
			t.Errorf("caller SQL raising %s: the PgError is not in the chain: %v", code, err)
		}
		if n := attempts.Load(); n != 3 {
			t.Errorf("caller SQL raising %s: %d attempts, want 3 (retried)", code, n)
		}
	}
	// The caller's own error wrapping an unmapped driver error is mapped,
	// and still matches the caller's error.
	mine := errors.New("mine")
	err := svc.InTxWith(ctx, deploydb.TxOptions{MaxAttempts: 1}, func(tx *deploydb.Service) error {
		return fmt.Errorf("%w: %w", mine, &pgconn.PgError{Code: "40001"})
	})
	checkOne(t, "callback error wrapping a raw 40001", err, deploydb.ErrRetryable)
	if !errors.Is(err, mine) {
		t.Errorf("the callback's own error is lost: %v", err)
	}
	// The caller's own error alone comes back unchanged.
	if err := svc.InTx(ctx, func(*deploydb.Service) error { return mine }); err != mine {
		t.Errorf("the callback's own error came back as %v", err)
	}

	// A failed statement the callback ignores: the next statement is
	// 25P02, and a commit is a rollback.
	var next error
	err = svc.InTx(ctx, func(tx *deploydb.Service) error {
		_, _ = tx.Conn().Exec(ctx, "SELECT * FROM no_such_table")
		_, next = tx.GetApp(ctx, app.ID)
		return nil
	})
	checkOne(t, "statement after a failed one (25P02)", next, deploydb.ErrTxAborted)
	checkOne(t, "commit of an aborted transaction", err, deploydb.ErrTxAborted)

	// A write in a read-only transaction (25006).
	err = svc.InTxWith(ctx, deploydb.TxOptions{ReadOnly: true}, func(tx *deploydb.Service) error {
		_, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "read-only-write"})
		return err
	})
	checkOne(t, "write in a read-only transaction", err, deploydb.ErrInvalidArgument)

	// A Service from InTx used after the callback returned.
	var leaked *deploydb.Service
	if err := svc.InTx(ctx, func(tx *deploydb.Service) error { leaked = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = leaked.GetApp(ctx, app.ID)
	checkOne(t, "Service used after its transaction", err, deploydb.ErrTxAborted)

	// Caller SQL outside transactions.
	_, err = svc.Conn().Exec(ctx, "SELEC 1")
	checkOne(t, "syntax error", err, deploydb.ErrInternal)
	var id int64
	err = svc.Conn().QueryRow(ctx, "SELECT id FROM apps WHERE name = 'nobody'").Scan(&id)
	checkOne(t, "QueryRow without a row", err, deploydb.ErrNotFound)
	if !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("QueryRow without a row: pgx.ErrNoRows is not in the chain: %v", err)
	}
	_, err = svc.Conn().Exec(ctx, "INSERT INTO apps (name) VALUES ($1)", app.Name)
	checkOne(t, "caller's duplicate insert", err, deploydb.ErrConflict)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	_, err = svc.Conn().Exec(ctx, "INSERT INTO builds (app_id) VALUES ($1)", 1<<40)
	checkOne(t, "caller's insert with a missing parent", err, deploydb.ErrNotFound)
	_, err = svc.Conn().Exec(ctx, "DELETE FROM builds WHERE app_id = $1", app.ID)
	checkOne(t, "caller's delete of a referenced row", err, deploydb.ErrInUse)
	rows, err := svc.Conn().Query(ctx, "SELECT 1 / (id - $1) FROM builds WHERE id = $1", b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	checkOne(t, "caller's query failing while reading rows", rows.Err(), deploydb.ErrInternal)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = svc.Conn().Exec(canceled, "SELECT 1")
	checkOne(t, "caller SQL with a canceled context", err, context.Canceled)
	_ = pool
}

// TestTxOptionsAreValidated: every TxOptions value is checked before
// anything is sent; an isolation level is never pasted into SQL.
func TestTxOptionsAreValidated(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	ctx := ctxT(t)
	bad := []deploydb.TxOptions{
		{Isolation: "read committed; CREATE TABLE injected (i int)"},
		{Isolation: "serializable read only; CREATE TABLE injected (i int)"},
		{Isolation: "READ COMMITTED"},
		{Isolation: "snapshot"},
		{LockTimeout: -time.Second},
		{StatementTimeout: -1},
		{StatementTimeout: 25 * 24 * time.Hour},
		{MaxAttempts: -1},
	}
	for _, o := range bad {
		ran := false
		err := svc.InTxWith(ctx, o, func(tx *deploydb.Service) error {
			ran = true
			return nil
		})
		checkOne(t, fmt.Sprintf("%+v", o), err, deploydb.ErrInvalidArgument)
		if ran {
			t.Errorf("%+v: the callback ran", o)
		}
		// Nested (savepoint) calls validate too.
		_ = svc.InTx(ctx, func(tx *deploydb.Service) error {
			checkOne(t, fmt.Sprintf("nested %+v", o), tx.InTxWith(ctx, o, func(*deploydb.Service) error { return nil }), deploydb.ErrInvalidArgument)
			return nil
		})
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('injected') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("table created by an isolation level: %v, %v", exists, err)
	}
	for _, iso := range []deploydb.Isolation{deploydb.DefaultIsolation, deploydb.ReadCommitted, deploydb.RepeatableRead, deploydb.Serializable} {
		var got string
		err := svc.InTxWith(ctx, deploydb.TxOptions{Isolation: iso, LockTimeout: 1500 * time.Microsecond}, func(tx *deploydb.Service) error {
			return tx.Conn().QueryRow(ctx, "SELECT current_setting('transaction_isolation') || ' ' || current_setting('lock_timeout')").Scan(&got)
		})
		want := string(iso)
		if iso == deploydb.DefaultIsolation {
			want = "read committed"
		}
		if err != nil || got != want+" 2ms" {
			t.Errorf("isolation %q: %q, %v; want %q", iso, got, err, want+" 2ms")
		}
	}
}
