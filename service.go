package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/internal/dbsqlc"
	"github.com/deploydb/deploydb/internal/pgconf"
)

// conn is what a Service runs its statements on: a pool, or a transaction
// inside InTx.
type conn interface {
	dbsqlc.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Querier runs SQL of the caller's own: it is what Service.Conn returns, and
// is satisfied by *pgxpool.Pool, *pgx.Conn and pgx.Tx.
type Querier interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	// QueryRow runs a statement that returns at most one row; its error is
	// reported by Scan.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Service is deploydb's typed data layer. It is safe for concurrent use. A
// Service handed to an InTx callback runs every call in that transaction and
// must not be used after the callback returns.
type Service struct {
	pool    *pgxpool.Pool
	root    retryPool // statements outside transactions
	conn    conn      // root, or tx inside InTx
	tx      pgx.Tx    // nil outside InTx
	q       *dbsqlc.Queries
	cursors cursorCodec
	stats   *counters
	ownPool bool
}

// Option configures Open and New.
type Option func(*options)

type options struct {
	maxConns        int32
	connectTimeout  time.Duration
	maxConnIdleTime time.Duration
	configure       func(*pgxpool.Config)
	cursorSecret    []byte
	autoMigrate     MigrateFunc // WithAutoMigrate, in automigrate.go
	schemaCheck     SchemaCheck // WithSchemaCheck, in schemacheck.go
}

// WithMaxConns sets the pool's maximum number of connections (default
// 10). Only Open uses it.
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithConnectTimeout sets how long establishing one connection may take
// (default 30 s). Only Open uses it.
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithMaxConnIdleTime sets how long an idle connection is kept (default
// 10 min). Only Open uses it.
func WithMaxConnIdleTime(d time.Duration) Option {
	return func(o *options) { o.maxConnIdleTime = d }
}

// WithPoolConfig lets the caller adjust the parsed pool configuration before
// the pool is created (tracers, TLS, hooks). Only Open uses it.
func WithPoolConfig(fn func(*pgxpool.Config)) Option { return func(o *options) { o.configure = fn } }

// WithCursorSecret sets the key that signs page cursors. Services that hand
// cursors to untrusted clients, or that run as several replicas, should set
// the same secret everywhere; the default is a fixed key, which still
// detects corrupted and foreign cursors.
func WithCursorSecret(secret []byte) Option {
	return func(o *options) { o.cursorSecret = append([]byte(nil), secret...) }
}

func buildOptions(opts []Option) options {
	o := options{cursorSecret: defaultCursorSecret}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Open connects a new pool to databaseURL (a postgres:// URL or keyword/value
// string) and returns a Service that owns it; Close closes the pool. Defaults:
// 10 connections, 30 s connect timeout, 10 min idle time, each overridable
// by an Option or by the URL's pool_max_conns / connect_timeout /
// pool_max_conn_idle_time. Errors never contain the password.
//
// Before it returns, Open checks the schema (WithSchemaCheck, after
// WithAutoMigrate's migration): a database that lacks a migration this
// binary embeds, or records one it does not know, is refused with a
// *SchemaError (ErrSchemaMismatch) and the pool is closed.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Service, error) {
	o := buildOptions(opts)
	if err := o.schemaCheck.validate("open"); err != nil {
		return nil, err
	}
	cfg, err := pgconf.PoolConfig(databaseURL)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidArgument, Op: "open", Err: err}
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	if o.connectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.connectTimeout
	}
	if o.maxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = o.maxConnIdleTime
	}
	if o.configure != nil {
		o.configure(cfg)
	}
	if err := o.runAutoMigrate(ctx, databaseURL); err != nil {
		return nil, err
	}
	pool, err := pgconf.NewPool(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("deploydb: open: %w", err)
	}
	if err := checkOpenSchema(ctx, pool, o.schemaCheck, cfg.ConnConfig.ConnectTimeout); err != nil {
		pool.Close()
		return nil, err
	}
	s := New(pool, opts...)
	s.ownPool = true
	return s, nil
}

// New wraps an existing pool. The caller keeps ownership: Close does not
// close it. New does not check the schema; call CheckSchema first for
// Open's check.
func New(pool *pgxpool.Pool, opts ...Option) *Service {
	o := buildOptions(opts)
	stats := new(counters)
	root := retryPool{pool: pool, stats: stats}
	return &Service{pool: pool, root: root, conn: root, q: dbsqlc.New(root), cursors: cursorCodec{secret: o.cursorSecret}, stats: stats}
}

// Close closes the pool if Open created it.
func (s *Service) Close() {
	if s.ownPool && s.tx == nil {
		s.pool.Close()
	}
}

// Pool returns the underlying pool.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// Conn returns what this Service runs statements on: inside InTx the
// transaction, otherwise the pool. Use it to run SQL of your own in the same
// transaction as Service calls.
func (s *Service) Conn() Querier { return s.conn }

// Isolation is a transaction isolation level.
type Isolation string

// Isolation levels for TxOptions.
const (
	ReadCommitted  Isolation = "read committed"
	RepeatableRead Isolation = "repeatable read"
	Serializable   Isolation = "serializable"
)

// DefaultTxAttempts is how often InTx runs a transaction that keeps failing
// on serialization failures or deadlocks before it gives up.
const DefaultTxAttempts = 5

// TxOptions configures InTxWith.
type TxOptions struct {
	// Isolation is the isolation level; "" means the server's default
	// (read committed).
	Isolation Isolation
	// ReadOnly starts a read-only transaction.
	ReadOnly bool
	// LockTimeout and StatementTimeout, when positive, set lock_timeout and
	// statement_timeout for this transaction only.
	LockTimeout, StatementTimeout time.Duration
	// MaxAttempts bounds how often the transaction runs when it fails on a
	// serialization failure (40001) or a deadlock (40P01); 0 means
	// DefaultTxAttempts and 1 disables retries.
	MaxAttempts int
}

// InTx runs fn in one transaction with default TxOptions: see InTxWith.
func (s *Service) InTx(ctx context.Context, fn func(tx *Service) error) error {
	return s.InTxWith(ctx, TxOptions{}, fn)
}

// InTxWith runs fn in one transaction: it commits when fn returns nil and
// rolls back when fn returns an error or panics. The *Service passed to fn
// runs every call inside the transaction.
//
// When the transaction fails on a serialization failure or a deadlock, it is
// rolled back and fn runs again, up to opts.MaxAttempts times in all, after
// a jittered exponential backoff and never past ctx; fn must therefore keep
// its effects inside the transaction. The retries are counted in Stats.
// A failure that remains after the last attempt matches ErrRetryable.
//
// Called on a Service that is already in a transaction, InTxWith runs fn
// in a savepoint of it, once, and ignores opts.
func (s *Service) InTxWith(ctx context.Context, opts TxOptions, fn func(tx *Service) error) error {
	if s.tx != nil {
		return s.runTx(ctx, func() (pgx.Tx, error) { return s.tx.Begin(ctx) }, TxOptions{}, fn)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultTxAttempts
	}
	txOpts := pgx.TxOptions{IsoLevel: pgx.TxIsoLevel(opts.Isolation)}
	if opts.ReadOnly {
		txOpts.AccessMode = pgx.ReadOnly
	}
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, func() (pgx.Tx, error) { return s.root.BeginTx(ctx, txOpts) }, opts, fn)
		if err == nil || !retryableTx(err) || attempt >= opts.MaxAttempts || ctx.Err() != nil {
			return err
		}
		if !backoff(ctx, attempt, 10*time.Millisecond, 500*time.Millisecond) {
			return err
		}
		s.stats.tx.Add(1)
	}
}

// runTx runs fn once in the transaction begin starts.
func (s *Service) runTx(ctx context.Context, begin func() (pgx.Tx, error), opts TxOptions, fn func(tx *Service) error) (err error) {
	tx, err := begin()
	if err != nil {
		return mapError(opRead, "begin transaction", err)
	}
	defer func() {
		// Rollback after Commit is a no-op; on error or panic it undoes fn.
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = mapError(opWrite, "roll back transaction", rbErr)
		}
	}()
	for name, d := range map[string]time.Duration{"lock_timeout": opts.LockTimeout, "statement_timeout": opts.StatementTimeout} {
		if d > 0 {
			if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", name, strconv.FormatInt(max(d.Milliseconds(), 1), 10)+"ms"); err != nil {
				return mapError(opWrite, "set "+name, err)
			}
		}
	}
	txs := &Service{pool: s.pool, root: s.root, conn: tx, tx: tx, q: s.q.WithTx(tx), cursors: s.cursors, stats: s.stats}
	if err := fn(txs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(opWrite, "commit transaction", err)
	}
	return nil
}
