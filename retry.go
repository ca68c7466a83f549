package deploydb

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Stats are counters for metrics. They only grow.
type Stats struct {
	// TxRetries counts InTx attempts re-run after a serialization failure
	// or a deadlock.
	TxRetries uint64
	// StatementRetries counts statements re-sent because the driver proved
	// the first attempt never reached the server.
	StatementRetries uint64
}

type counters struct{ tx, stmt atomic.Uint64 }

// Stats returns the retry counters of the Service (shared with the
// Services InTx hands out).
func (s *Service) Stats() Stats {
	return Stats{TxRetries: s.stats.tx.Load(), StatementRetries: s.stats.stmt.Load()}
}

// statementRetryBudget bounds how long one statement keeps being re-sent
// while the server provably never received it: long enough to ride out a
// server restart, never longer than the caller's context.
const statementRetryBudget = 5 * time.Second

// backoff sleeps before retry attempt n (1-based) with full jitter on an
// exponential scale from base up to max, or returns false when ctx ends
// first.
func backoff(ctx context.Context, n int, base, max time.Duration) bool {
	d := base << min(n-1, 16)
	if d > max || d <= 0 {
		d = max
	}
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryPool runs statements on the pool and re-sends one, for at most
// statementRetryBudget, only when the earlier attempt provably never
// reached the server (pgconn.SafeToRetry, or no connection could be made):
// typically a pooled connection that died while idle, or a server that is
// restarting. Statements inside a transaction are never
// re-sent one by one; InTx retries whole transactions instead.
type retryPool struct {
	pool  *pgxpool.Pool
	stats *counters
}

func (r retryPool) again(ctx context.Context, start time.Time, attempt int, err error) bool {
	if time.Since(start) >= statementRetryBudget || ctx.Err() != nil || !neverSent(err) {
		return false
	}
	if !backoff(ctx, attempt, 10*time.Millisecond, 400*time.Millisecond) {
		return false
	}
	r.stats.stmt.Add(1)
	return true
}

func (r retryPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		tag, err := r.pool.Exec(ctx, sql, args...)
		if err == nil || !r.again(ctx, start, attempt, err) {
			return tag, err
		}
	}
}

func (r retryPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		rows, err := r.pool.Query(ctx, sql, args...)
		if err == nil || !r.again(ctx, start, attempt, err) {
			return rows, err
		}
	}
}

func (r retryPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{r: r, ctx: ctx, sql: sql, args: args}
}

// CopyFrom is not re-sent: its source cannot be replayed.
func (r retryPool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return r.pool.CopyFrom(ctx, table, columns, src)
}

func (r retryPool) Begin(ctx context.Context) (pgx.Tx, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		tx, err := r.pool.Begin(ctx)
		if err == nil || !r.again(ctx, start, attempt, err) {
			return tx, err
		}
	}
}

func (r retryPool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		tx, err := r.pool.BeginTx(ctx, opts)
		if err == nil || !r.again(ctx, start, attempt, err) {
			return tx, err
		}
	}
}

// neverSent reports errors that prove the statement never reached the
// server: the driver says so, or no connection could be established for it.
func neverSent(err error) bool {
	var connErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &connErr)
}

// retryRow defers the query to Scan, where pgx reports its error.
type retryRow struct {
	r    retryPool
	ctx  context.Context
	sql  string
	args []any
}

func (row retryRow) Scan(dest ...any) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := row.r.pool.QueryRow(row.ctx, row.sql, row.args...).Scan(dest...)
		if err == nil || errors.Is(err, pgx.ErrNoRows) || !row.r.again(row.ctx, start, attempt, err) {
			return err
		}
	}
}

// retryableTx reports whether a transaction failed on a serialization
// failure or a deadlock, after which running it again may succeed.
func retryableTx(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
