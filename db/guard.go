package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
)

// Transaction states PostgreSQL reports after each command (the
// ReadyForQuery status byte).
const (
	txIdle   = 'I' // not in a transaction block
	txActive = 'T' // in a transaction block ('E' when it failed)
)

// errSessionState is the error of a statement after which the migration
// session is not in the state the migrator left it in: the file ended or
// opened a transaction, or switched a timeout off, in a way the check
// before the run (CheckFile) did not see.
var errSessionState = errors.New("db: the statement changed the migration session")

// sessionError reports what the statement changed. Committed is true when
// the file's own statements committed the migrator's transaction, so that
// the statements before it are in effect.
type sessionError struct {
	what      string
	committed bool
}

func (e *sessionError) Error() string { return errSessionState.Error() + ": " + e.what }
func (e *sessionError) Unwrap() error { return errSessionState }

// sessionGuard is what the Atlas executor runs a file's statements
// through. After each statement it checks, on the server's word, that the
// session is still in the state the migrator put it in: inside the
// migrator's own transaction (a transactional file) or outside any
// transaction (txmode none), with the timeouts the migrator set still
// switched on. A statement that leaves it otherwise fails, so that Up never
// reports a file as applied that did not commit as one.
type sessionGuard struct {
	q    revisionQuerier // the transaction or the connection the file runs on
	conn *sql.Conn       // the connection under q, for its transaction status
	// want is txActive for a transactional file, txIdle for txmode none.
	want byte
	// xid is the migrator's transaction id (transactional files only).
	xid                 int64
	lockOn, statementOn bool // the migrator set a non-zero lock_timeout, statement_timeout
}

// newSessionGuard records the state to keep: call it after the
// transaction began and the timeouts were set.
func (s *session) newSessionGuard(ctx context.Context, q revisionQuerier, conn *sql.Conn, inTx bool) (*sessionGuard, error) {
	g := &sessionGuard{q: q, conn: conn, want: txIdle,
		lockOn: s.cfg.ddlLockTimeout > 0, statementOn: s.cfg.statementTimeout > 0}
	if inTx {
		g.want = txActive
		if err := q.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&g.xid); err != nil {
			return nil, fmt.Errorf("db: read the migration transaction's id: %w", err)
		}
	}
	return g, nil
}

// ExecContext runs a statement of the file and checks the session after it.
func (g *sessionGuard) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := g.q.ExecContext(ctx, query, args...)
	if err != nil {
		return res, err
	}
	return res, g.check(ctx)
}

// QueryContext runs a query of the executor's driver.
func (g *sessionGuard) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return g.q.QueryContext(ctx, query, args...)
}

// check fails when the session left the state the migrator put it in.
func (g *sessionGuard) check(ctx context.Context) error {
	status, err := txStatus(g.conn)
	if err != nil {
		return err
	}
	switch {
	case g.want == txActive && status == txIdle:
		return &sessionError{what: "it ended the migrator's transaction (the server reports no transaction in progress), " +
			"so the statements before it were committed on their own and nothing after it would be part of the file's transaction",
			committed: true}
	case g.want == txIdle && status != txIdle:
		// Whatever the statement opened must not take the revision rows
		// with it: roll it back, so that the bookkeeping is written as the
		// migrator's own statements.
		_, rerr := g.conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return errors.Join(&sessionError{what: "it opened a transaction in a txmode none file, whose statements " +
			"each commit on their own; it was rolled back"}, rerr)
	}
	var lock, stmt string
	if g.want == txActive {
		var xid int64
		if err := g.q.QueryRowContext(ctx, `SELECT txid_current(), current_setting('lock_timeout'), current_setting('statement_timeout')`).
			Scan(&xid, &lock, &stmt); err != nil {
			return fmt.Errorf("db: check the migration session: %w", err)
		}
		if xid != g.xid {
			return &sessionError{what: "it committed the migrator's transaction and began another one", committed: true}
		}
	} else if err := g.q.QueryRowContext(ctx, `SELECT current_setting('lock_timeout'), current_setting('statement_timeout')`).
		Scan(&lock, &stmt); err != nil {
		return fmt.Errorf("db: check the migration session: %w", err)
	}
	switch {
	case g.lockOn && lock == "0":
		return &sessionError{what: "it switched lock_timeout off"}
	case g.statementOn && stmt == "0":
		return &sessionError{what: "it switched statement_timeout off"}
	}
	return nil
}

// txStatus returns the transaction status the server reported with its
// last answer on conn.
func txStatus(conn *sql.Conn) (byte, error) {
	var status byte
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("db: unexpected database/sql driver connection %T", dc)
		}
		status = c.Conn().PgConn().TxStatus()
		return nil
	})
	return status, err
}
