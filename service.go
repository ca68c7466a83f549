package deploydb

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/internal/dbsqlc"
	"github.com/deploydb/deploydb/internal/pgconf"
)

// conn is what a Service runs its statements on: the pool (through
// retryPool), the caller's DB, or a transaction.
type conn interface {
	dbsqlc.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DB is what a Service can run on: *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// satisfy it. See New.
type DB interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	// QueryRow runs a statement that returns at most one row.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	// CopyFrom bulk-loads rows with COPY.
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	// Begin starts a transaction, or a savepoint inside one.
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Querier runs SQL of the caller's own: it is what Service.Conn returns. Its
// errors are mapped like every other error of the package: they match a
// sentinel (a syntax error is ErrInternal, a serialization failure
// ErrRetryable, a missing row from QueryRow ErrNotFound) and keep the driver
// error in the chain. *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it too.
type Querier interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	// QueryRow runs a statement that returns at most one row; its error is
	// reported by Scan.
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Service is deploydb's typed data layer. A Service on a pool is safe for
// concurrent use. A Service handed to an InTx callback, or made on a
// transaction of the caller's, runs every call in that transaction (like the
// transaction itself, it is for one goroutine at a time) and must not be
// used after the transaction ends.
type Service struct {
	pool    *pgxpool.Pool // the pool, when the Service was made on one
	root    conn          // where transactions begin: the retrying pool or the caller's DB
	conn    conn          // root, or the transaction
	tx      pgx.Tx        // the transaction every call runs in: InTx's, or the caller's; nil otherwise
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
	err             error       // the first invalid option value
}

// invalid records the first invalid option value; Open refuses it.
func (o *options) invalid(format string, args ...any) {
	if o.err == nil {
		o.err = invalidArg("open", format, args...)
	}
}

// WithMaxConns sets the pool's maximum number of connections (default
// 10; 0 keeps the default, a negative n makes Open fail with
// ErrInvalidArgument). Only Open uses it.
func WithMaxConns(n int32) Option {
	return func(o *options) {
		if n < 0 {
			o.invalid("WithMaxConns(%d): the number of connections cannot be negative", n)
		}
		o.maxConns = n
	}
}

// WithConnectTimeout sets how long establishing one connection may take
// (default 30 s; 0 keeps the default, a negative d makes Open fail with
// ErrInvalidArgument). Only Open uses it.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.invalid("WithConnectTimeout(%s): the timeout cannot be negative", d)
		}
		o.connectTimeout = d
	}
}

// WithMaxConnIdleTime sets how long an idle connection is kept (default
// 10 min; 0 keeps the default, a negative d makes Open fail with
// ErrInvalidArgument). Only Open uses it.
func WithMaxConnIdleTime(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.invalid("WithMaxConnIdleTime(%s): the idle time cannot be negative", d)
		}
		o.maxConnIdleTime = d
	}
}

// WithPoolConfig lets the caller adjust the parsed pool configuration before
// the pool is created (tracers, TLS, hooks). Only Open uses it.
func WithPoolConfig(fn func(*pgxpool.Config)) Option { return func(o *options) { o.configure = fn } }

// WithCursorSecret sets the key that signs page cursors. Services that hand
// cursors to untrusted clients, or that run as several replicas, should set
// the same secret everywhere; the default is a fixed key, which still
// detects corrupted and foreign cursors. An empty secret keeps the default.
func WithCursorSecret(secret []byte) Option {
	return func(o *options) {
		if len(secret) > 0 {
			o.cursorSecret = append([]byte(nil), secret...)
		}
	}
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
// pool_max_conn_idle_time. Errors never contain the password: a URL that
// cannot be parsed, a rejected login or an unknown database, and an invalid
// option value are ErrInvalidArgument; a server that cannot be reached is
// ErrUnavailable; a failed WithAutoMigrate is ErrSchemaMismatch.
//
// Before it returns, Open checks the schema (WithSchemaCheck, after
// WithAutoMigrate's migration): a database that lacks a migration this
// binary embeds, or records one it does not know, is refused with a
// *SchemaError (ErrSchemaMismatch) and the pool is closed.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Service, error) {
	o := buildOptions(opts)
	if o.err != nil {
		return nil, o.err
	}
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
		return nil, mapError(ctx, opRead, "open", err)
	}
	if err := checkOpenSchema(ctx, pool, o.schemaCheck, cfg.ConnConfig.ConnectTimeout); err != nil {
		pool.Close()
		return nil, err
	}
	s := New(pool, opts...)
	s.ownPool = true
	return s, nil
}

// New returns a Service that runs on db, which the caller keeps owning
// (Close does not close it):
//
//   - a *pgxpool.Pool: every call takes a connection from the pool;
//     statements the driver proves never reached the server are re-sent,
//     and InTx begins transactions on the pool and retries them (see
//     InTxWith);
//   - a pgx.Tx: every call runs inside the caller's transaction, which the
//     caller commits or rolls back; InTx runs its callback in a savepoint
//     of it, once (a serialization failure aborts the caller's whole
//     transaction, which the caller must retry);
//   - a *pgx.Conn, or any other DB: every call runs on it; InTx begins a
//     transaction on it.
//
// Only WithCursorSecret applies to New; the options of Open are ignored.
// WithTx makes such a Service from an existing one. New does not check
// the schema; call CheckSchema first for Open's check.
func New(db DB, opts ...Option) *Service {
	o := buildOptions(opts)
	return newService(db, cursorCodec{secret: o.cursorSecret}, new(counters))
}

// WithTx returns a Service that runs every call on db, usually a pgx.Tx of
// the caller's, with s's cursor secret and retry counters. It is New(db) for
// a Service that exists already: a request handler joins its own
// transaction with svc.WithTx(tx).
func (s *Service) WithTx(db DB) *Service { return newService(db, s.cursors, s.stats) }

func newService(db DB, cursors cursorCodec, stats *counters) *Service {
	s := &Service{cursors: cursors, stats: stats}
	switch d := db.(type) {
	case *pgxpool.Pool:
		s.pool, s.root = d, retryPool{pool: d, stats: stats}
	case pgx.Tx:
		s.root, s.tx = d, d
	default:
		s.root = d
	}
	s.conn = s.root
	s.q = dbsqlc.New(s.conn)
	return s
}

// Close closes the pool if Open created it; otherwise it does nothing.
func (s *Service) Close() {
	if s.ownPool && s.tx == nil {
		s.pool.Close()
	}
}

// Pool returns the pool the Service was made on (by Open, or New with a
// pool), or nil for a Service made on a connection or transaction.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// Conn returns what this Service runs statements on, for SQL of the
// caller's own: inside InTx (or on the caller's transaction) the
// transaction, otherwise the pool or connection. Its errors are mapped to
// the sentinels (see Querier).
func (s *Service) Conn() Querier { return callerConn{s.conn} }

// callerConn runs the caller's SQL and maps its errors.
type callerConn struct{ c dbsqlc.DBTX }

const callerOp = "run the caller's SQL"

func (c callerConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.c.Exec(ctx, sql, args...)
	return tag, mapError(ctx, opCaller, callerOp, err)
}

func (c callerConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.c.Query(ctx, sql, args...)
	if err != nil {
		return rows, mapError(ctx, opCaller, callerOp, err)
	}
	return callerRows{Rows: rows, ctx: ctx}, nil
}

func (c callerConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return callerRow{row: c.c.QueryRow(ctx, sql, args...), ctx: ctx}
}

type callerRow struct {
	row pgx.Row
	ctx context.Context
}

func (r callerRow) Scan(dest ...any) error {
	return mapError(r.ctx, opCaller, callerOp, r.row.Scan(dest...))
}

// callerRows maps the errors pgx reports while reading rows.
type callerRows struct {
	pgx.Rows
	ctx context.Context
}

func (r callerRows) Err() error { return mapError(r.ctx, opCaller, callerOp, r.Rows.Err()) }

func (r callerRows) Scan(dest ...any) error {
	return mapError(r.ctx, opCaller, callerOp, r.Rows.Scan(dest...))
}

func (r callerRows) Values() ([]any, error) {
	v, err := r.Rows.Values()
	return v, mapError(r.ctx, opCaller, callerOp, err)
}

// Isolation is a transaction isolation level. Only the constants below are
// accepted; any other value is ErrInvalidArgument, refused before anything
// is sent (the value is never sent as text).
type Isolation string

// Isolation levels for TxOptions.
const (
	DefaultIsolation Isolation = "" // the server's default (read committed)
	ReadCommitted    Isolation = "read committed"
	RepeatableRead   Isolation = "repeatable read"
	Serializable     Isolation = "serializable"
)

// maxTimeout is the longest lock_timeout or statement_timeout PostgreSQL
// accepts: INT_MAX milliseconds.
const maxTimeout = (1<<31 - 1) * time.Millisecond

// DefaultTxAttempts is how often InTx runs a transaction that keeps failing
// on serialization failures or deadlocks before it gives up.
const DefaultTxAttempts = 5

// TxOptions configures InTxWith. Every field is validated before anything
// is sent; a value out of range is ErrInvalidArgument.
type TxOptions struct {
	// Isolation is the isolation level: one of the Isolation constants;
	// DefaultIsolation ("") means the server's default (read committed).
	Isolation Isolation
	// ReadOnly starts a read-only transaction; a write in it is
	// ErrInvalidArgument (25006).
	ReadOnly bool
	// LockTimeout and StatementTimeout, when positive, set lock_timeout and
	// statement_timeout for this transaction only (rounded up to whole
	// milliseconds; at most 2147483647 ms). 0 leaves the session's value;
	// negative values are refused.
	LockTimeout, StatementTimeout time.Duration
	// MaxAttempts bounds how often the transaction runs when it fails on a
	// serialization failure (40001) or a deadlock (40P01); 0 means
	// DefaultTxAttempts and 1 disables retries. Negative values are
	// refused.
	MaxAttempts int
}

// pgx validates o and returns the pgx options for BEGIN.
func (o TxOptions) pgx(op string) (pgx.TxOptions, error) {
	var t pgx.TxOptions
	switch o.Isolation {
	case DefaultIsolation:
	case ReadCommitted:
		t.IsoLevel = pgx.ReadCommitted
	case RepeatableRead:
		t.IsoLevel = pgx.RepeatableRead
	case Serializable:
		t.IsoLevel = pgx.Serializable
	default:
		return t, invalidArg(op, "isolation level %q is not one of read committed, repeatable read and serializable", truncate(string(o.Isolation)))
	}
	if o.ReadOnly {
		t.AccessMode = pgx.ReadOnly
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"LockTimeout", o.LockTimeout}, {"StatementTimeout", o.StatementTimeout}} {
		if d.d < 0 || d.d > maxTimeout {
			return t, invalidArg(op, "%s %s is out of range (0 to %s)", d.name, d.d, maxTimeout)
		}
	}
	if o.MaxAttempts < 0 {
		return t, invalidArg(op, "MaxAttempts %d cannot be negative", o.MaxAttempts)
	}
	return t, nil
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
// A failure that remains after the last attempt matches ErrRetryable,
// whether deploydb's statements or the caller's own SQL raised it.
//
// InTxWith returns an error fn returns as it is, unless it carries a
// database error that is not mapped yet (SQL run on a pgx.Tx of the
// caller's), which is mapped like every other; the error from Conn's
// methods and from Service calls are mapped already. A failed COMMIT is
// mapped too: a transaction in which a statement failed and fn still
// returned nil is ErrTxAborted.
//
// Called on a Service that is already in a transaction, InTxWith runs fn
// in a savepoint of it, once; opts are validated, and otherwise ignored.
func (s *Service) InTxWith(ctx context.Context, opts TxOptions, fn func(tx *Service) error) error {
	const op = "transaction"
	txOpts, err := opts.pgx(op)
	if err != nil {
		return err
	}
	if s.tx != nil {
		return txResult(ctx, s.runTx(ctx, func() (pgx.Tx, error) { return s.tx.Begin(ctx) }, TxOptions{}, fn))
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultTxAttempts
	}
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, func() (pgx.Tx, error) { return beginTx(ctx, s.root, txOpts) }, opts, fn)
		if err == nil || !retryableTx(err) || attempt >= opts.MaxAttempts || ctx.Err() != nil {
			return txResult(ctx, err)
		}
		if !backoff(ctx, attempt, 10*time.Millisecond, 500*time.Millisecond) {
			return txResult(ctx, err)
		}
		s.stats.tx.Add(1)
	}
}

// txResult maps a database error that fn returned unmapped, and leaves
// typed errors and the caller's own errors alone.
func txResult(ctx context.Context, err error) error {
	if err == nil || typed(err) || !driverError(err) {
		return err
	}
	return mapError(ctx, opCaller, "transaction", err)
}

// runTx runs fn once in the transaction begin starts.
func (s *Service) runTx(ctx context.Context, begin func() (pgx.Tx, error), opts TxOptions, fn func(tx *Service) error) (err error) {
	tx, err := begin()
	if err != nil {
		return mapError(ctx, opRead, "begin transaction", err)
	}
	defer func() {
		// Rollback after Commit is a no-op; on error or panic it undoes fn.
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = mapError(ctx, opWrite, "roll back transaction", rbErr)
		}
	}()
	for name, d := range map[string]time.Duration{"lock_timeout": opts.LockTimeout, "statement_timeout": opts.StatementTimeout} {
		if d > 0 {
			if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", name, strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)+"ms"); err != nil {
				return mapError(ctx, opWrite, "set "+name, err)
			}
		}
	}
	txs := &Service{pool: s.pool, root: s.root, conn: tx, tx: tx, q: dbsqlc.New(tx), cursors: s.cursors, stats: s.stats}
	if err := fn(txs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(ctx, opWrite, "commit transaction", err)
	}
	return nil
}

// beginTx begins a transaction on c with opts: through BeginTx where c has
// it (a pool, a *pgx.Conn), else with BEGIN and SET TRANSACTION, whose text
// comes from the validated options only.
func beginTx(ctx context.Context, c conn, opts pgx.TxOptions) (pgx.Tx, error) {
	if b, ok := c.(interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	}); ok {
		return b.BeginTx(ctx, opts)
	}
	tx, err := c.Begin(ctx)
	if err != nil || opts == (pgx.TxOptions{}) {
		return tx, err
	}
	set := "SET TRANSACTION"
	if opts.IsoLevel != "" {
		set += " ISOLATION LEVEL " + string(opts.IsoLevel)
	}
	if opts.AccessMode != "" {
		set += " " + string(opts.AccessMode)
	}
	if _, err := tx.Exec(ctx, set); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}
