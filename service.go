package deploydb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/gen"
)

// conn is what a Service runs its statements on: a pool, or a transaction
// inside InTx.
type conn interface {
	gen.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Service is deploydb's typed data layer. It is safe for concurrent use. A
// Service handed to an InTx callback runs every call in that transaction and
// must not be used after the callback returns.
type Service struct {
	pool    *pgxpool.Pool
	conn    conn
	q       *gen.Queries
	cursors cursorCodec
	ownPool bool
	inTx    bool
}

// Option configures Open and New.
type Option func(*options)

type options struct {
	maxConns        int32
	connectTimeout  time.Duration
	maxConnIdleTime time.Duration
	configure       func(*pgxpool.Config)
	cursorSecret    []byte
}

// WithMaxConns sets the pool's maximum number of connections (default
// db.DefaultMaxConns, 10). Only Open uses it.
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithConnectTimeout sets how long establishing one connection may take
// (default db.DefaultConnectTimeout, 30 s). Only Open uses it.
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithMaxConnIdleTime sets how long an idle connection is kept (default
// db.DefaultMaxConnIdleTime, 10 min). Only Open uses it.
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
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Service, error) {
	o := buildOptions(opts)
	cfg, err := db.PoolConfig(databaseURL)
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
	pool, err := db.NewPool(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("deploydb: open: %w", err)
	}
	s := New(pool, opts...)
	s.ownPool = true
	return s, nil
}

// New wraps an existing pool. The caller keeps ownership: Close does not
// close it.
func New(pool *pgxpool.Pool, opts ...Option) *Service {
	o := buildOptions(opts)
	return &Service{pool: pool, conn: pool, q: gen.New(pool), cursors: cursorCodec{secret: o.cursorSecret}}
}

// Close closes the pool if Open created it.
func (s *Service) Close() {
	if s.ownPool && !s.inTx {
		s.pool.Close()
	}
}

// Pool returns the underlying pool.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// Queries returns the sqlc-generated queries bound to this Service's pool
// or transaction, for queries the Service does not wrap. They return raw
// driver errors.
func (s *Service) Queries() *gen.Queries { return s.q }

// InTx runs fn in one transaction: it commits when fn returns nil and rolls
// back when fn returns an error or panics. The *Service passed to fn runs
// every call inside the transaction. Nested InTx calls use savepoints.
func (s *Service) InTx(ctx context.Context, fn func(tx *Service) error) (err error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return mapError(opRead, "begin transaction", err)
	}
	defer func() {
		// Rollback after Commit is a no-op; on error or panic it undoes fn.
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = mapError(opWrite, "roll back transaction", rbErr)
		}
	}()
	txs := &Service{pool: s.pool, conn: tx, q: s.q.WithTx(tx), cursors: s.cursors, inTx: true}
	if err := fn(txs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(opWrite, "commit transaction", err)
	}
	return nil
}
