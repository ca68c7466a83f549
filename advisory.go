package deploydb

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockKey names a PostgreSQL advisory lock. Keys are made by NamedLock or
// AppEnvironmentLock, never from a bare number, so two parts of a program
// cannot pick the same lock by accident; keys made from the same inputs are
// equal, in every process. A key maps to one 64-bit advisory lock id in
// deploydb's own key space (the name is hashed with a "deploydb:" prefix),
// which keeps it apart from the migration lock and from locks other
// programs take by small integers. (The hash is the first 8 bytes of MD5,
// chosen because SQL computes it too; it is not used for security.)
type LockKey struct {
	name string
	id   int64
}

// NamedLock returns the key of the advisory lock called name. The name is
// free text and is what LockHolder and errors print; it must not be empty
// (an empty name gives the zero LockKey, which every lock call refuses with
// ErrInvalidArgument).
func NamedLock(name string) LockKey {
	if name == "" {
		return LockKey{}
	}
	// The first 8 bytes of an MD5, big-endian: what SQL computes as
	// ('x' || left(md5('deploydb:' || name), 16))::bit(64)::bigint, which is
	// how ClaimOperations takes AppEnvironmentLock inside its statement.
	sum := md5.Sum([]byte("deploydb:" + name))
	return LockKey{name: name, id: int64(binary.BigEndian.Uint64(sum[:8]))}
}

// AppEnvironmentLock returns the key of the lock for one app and
// environment, for work that must not run twice at once for them (a
// rollout, a cutover). ClaimOperations holds it, until its transaction
// ends, while it starts a deployment of that app and environment; a claim
// that cannot take it at once passes the deployment over.
func AppEnvironmentLock(app AppID, environment string) LockKey {
	return NamedLock("app/" + strconv.FormatInt(int64(app), 10) + "/env/" + environment)
}

// Name returns the name the key was made from.
func (k LockKey) Name() string { return k.name }

// ID returns the 64-bit advisory lock id PostgreSQL sees
// (pg_advisory_lock(id)); pg_locks shows it as classid (high 32 bits) and
// objid (low 32 bits) with objsubid 1.
func (k LockKey) ID() int64 { return k.id }

// String returns the key's name and id.
func (k LockKey) String() string {
	return k.name + " (advisory lock " + strconv.FormatInt(k.id, 10) + ")"
}

func (k LockKey) check(op string) error {
	if k.name == "" {
		return &Error{Kind: ErrInvalidArgument, Op: op, Msg: "the zero LockKey names no lock: use NamedLock or AppEnvironmentLock"}
	}
	return nil
}

// LockTx takes the transaction-scoped advisory lock key, waiting until it
// is free; the lock is released when the transaction ends (commit or
// rollback). It must be called on the Service of a transaction (inside
// InTx); elsewhere it returns ErrInvalidArgument, because a
// transaction-scoped lock taken outside one would be released at once.
//
// The wait ends with ctx's deadline: the error then matches ErrTimeout (and
// no other sentinel), and the transaction is aborted (the
// server's lock_timeout ended the wait), so the InTx callback should return
// the error. A ctx cancelled without a deadline cancels the statement.
func (s *Service) LockTx(ctx context.Context, key LockKey) error {
	const op = "lock advisory (transaction)"
	if err := s.lockTxCheck(op, key); err != nil {
		return err
	}
	return waitAdvisory(ctx, s.conn, op, key, "SELECT pg_advisory_xact_lock($1)")
}

// lockQuerier is what waitAdvisory runs on: a transaction's connection.
type lockQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// waitAdvisory runs the blocking lock statement inside the current
// transaction. When ctx has a deadline, the wait is bounded by the server's
// lock_timeout, set for this statement only, rather than by cancelling the
// statement, so the connection stays usable and the error is a plain
// timeout: it matches ErrTimeout.
func waitAdvisory(ctx context.Context, q lockQuerier, op string, key LockKey, stmt string) error {
	deadline, bounded := ctx.Deadline()
	prev := ""
	if bounded {
		// The server's timeout fires a little before ctx's, so that the
		// statement ends on the server's terms with the connection intact.
		left := time.Until(deadline)
		ms := (left - min(left/4, 50*time.Millisecond)).Milliseconds()
		if ms < 1 {
			return &Error{Kind: ErrTimeout, Op: op + " " + key.name, Msg: "the context's deadline has passed"}
		}
		// OFFSET 0 keeps the old value's read before the new value's write.
		err := q.QueryRow(ctx, `SELECT p.prev, set_config('lock_timeout', $1, true)
			FROM (SELECT current_setting('lock_timeout') AS prev OFFSET 0) p`,
			strconv.FormatInt(ms, 10)+"ms").Scan(&prev, new(string))
		if err != nil {
			return mapError(ctx, opWrite, op+" "+key.name, err)
		}
	}
	if _, err := q.Exec(ctx, stmt, key.id); err != nil {
		var pgErr *pgconn.PgError
		if bounded && errors.As(err, &pgErr) && pgErr.Code == "55P03" {
			return &Error{Kind: ErrTimeout, Op: op + " " + key.name, Msg: "the lock was not free before the context's deadline",
				Err: err}
		}
		return mapError(ctx, opWrite, op+" "+key.name, err)
	}
	if bounded {
		if _, err := q.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", prev); err != nil {
			return mapError(ctx, opWrite, op+" "+key.name, err)
		}
	}
	return nil
}

// TryLockTx takes the transaction-scoped advisory lock key if it is free
// and reports whether it did; it never waits. Like LockTx, it must be
// called inside a transaction.
func (s *Service) TryLockTx(ctx context.Context, key LockKey) (bool, error) {
	const op = "try advisory lock (transaction)"
	if err := s.lockTxCheck(op, key); err != nil {
		return false, err
	}
	var ok bool
	if err := s.conn.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", key.id).Scan(&ok); err != nil {
		return false, mapError(ctx, opWrite, op+" "+key.name, err)
	}
	return ok, nil
}

func (s *Service) lockTxCheck(op string, key LockKey) error {
	if err := key.check(op); err != nil {
		return err
	}
	if s.tx == nil {
		return &Error{Kind: ErrInvalidArgument, Op: op, Msg: "a transaction-scoped lock needs a transaction: call it inside InTx"}
	}
	return nil
}

// SessionLock is a held session-scoped advisory lock. It keeps one pool
// connection until Unlock; the lock is also released if that connection
// breaks (the server ends the session), so a holder that dies never blocks
// others for longer than it takes the server to notice.
type SessionLock struct {
	key  LockKey
	conn *pgxpool.Conn
}

// Key returns the lock's key.
func (l *SessionLock) Key() LockKey { return l.key }

// Unlock releases the lock and returns its connection to the pool. It is
// safe to call more than once. If the release statement fails, the
// connection is closed instead of returned, which releases the lock on the
// server.
func (l *SessionLock) Unlock(ctx context.Context) error {
	if l == nil || l.conn == nil {
		return nil
	}
	conn := l.conn
	l.conn = nil
	var released bool
	err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", l.key.id).Scan(&released)
	if err != nil {
		// Closing the session is the other way to release it.
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return mapError(ctx, opWrite, "unlock advisory "+l.key.name, err)
	}
	conn.Release()
	if !released {
		return &Error{Kind: ErrNotFound, Op: "unlock advisory " + l.key.name, Msg: "the session no longer held the lock"}
	}
	return nil
}

// LockSession takes the session-scoped advisory lock key on a connection of
// its own, waiting until the lock is free or ctx ends (past ctx's deadline
// the error matches ErrTimeout). The caller must Unlock it.
// It needs a Service with a pool (Open or New); on a Service bound to a
// single connection or transaction it returns ErrInvalidArgument.
func (s *Service) LockSession(ctx context.Context, key LockKey) (*SessionLock, error) {
	const op = "lock advisory (session)"
	conn, err := s.acquireForLock(ctx, op, key)
	if err != nil {
		return nil, err
	}
	// The wait runs in a short transaction so that its lock_timeout stays
	// local; a session-scoped lock outlives the transaction.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return waitAdvisory(ctx, tx, op, key, "SELECT pg_advisory_lock($1)")
	})
	if err != nil {
		// A cancelled wait may leave the statement's outcome unknown:
		// close the session rather than return it to the pool.
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return nil, mapError(ctx, opWrite, op+" "+key.name, err)
	}
	return &SessionLock{key: key, conn: conn}, nil
}

// TryLockSession takes the session-scoped advisory lock key if it is free;
// it never waits. It returns nil and false when another session holds it.
func (s *Service) TryLockSession(ctx context.Context, key LockKey) (*SessionLock, bool, error) {
	const op = "try advisory lock (session)"
	conn, err := s.acquireForLock(ctx, op, key)
	if err != nil {
		return nil, false, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key.id).Scan(&ok); err != nil {
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return nil, false, mapError(ctx, opWrite, op+" "+key.name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &SessionLock{key: key, conn: conn}, true, nil
}

func (s *Service) acquireForLock(ctx context.Context, op string, key LockKey) (*pgxpool.Conn, error) {
	if err := key.check(op); err != nil {
		return nil, err
	}
	if s.pool == nil {
		return nil, &Error{Kind: ErrInvalidArgument, Op: op, Msg: "a session lock needs a Service with a pool (Open or New)"}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapError(ctx, opRead, op+": acquire connection", err)
	}
	return conn, nil
}

// LockHolder describes a session that holds, or waits for, an advisory
// lock, as pg_locks and pg_stat_activity show it.
type LockHolder struct {
	// PID is the server process id of the session (pg_backend_pid()).
	PID int32
	// ApplicationName is the session's application_name setting.
	ApplicationName string
	// ClientAddr is the client's address, empty for a Unix-socket session.
	ClientAddr string
	// Granted is true for the holder and false for a session waiting.
	Granted bool
	// BackendStart is when the session connected.
	BackendStart time.Time
	// WaitStart is, for a waiter, when it started to wait; zero for the
	// holder.
	WaitStart time.Time
}

// LockHolders lists the sessions holding key (Granted) and those waiting
// for it, holders first. An empty slice means the lock is free. Seeing
// other roles' application names and addresses needs pg_read_all_stats or
// the same role, as for pg_stat_activity; without it those fields are
// empty.
func (s *Service) LockHolders(ctx context.Context, key LockKey) ([]LockHolder, error) {
	const op = "list advisory lock holders"
	if err := key.check(op); err != nil {
		return nil, err
	}
	u := uint64(key.id)
	rows, err := s.conn.Query(ctx, `
		SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), ''),
		       l.granted, coalesce(a.backend_start, 'epoch'), coalesce(l.waitstart, 'epoch')
		FROM pg_locks l
		LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1
		ORDER BY l.granted DESC, l.waitstart NULLS FIRST, l.pid`,
		int64(u>>32), int64(u&0xffffffff))
	if err != nil {
		return nil, mapError(ctx, opRead, op, err)
	}
	defer rows.Close()
	holders := []LockHolder{}
	for rows.Next() {
		var h LockHolder
		if err := rows.Scan(&h.PID, &h.ApplicationName, &h.ClientAddr, &h.Granted, &h.BackendStart, &h.WaitStart); err != nil {
			return nil, mapError(ctx, opRead, op, err)
		}
		if h.WaitStart.Equal(time.Unix(0, 0)) {
			h.WaitStart = time.Time{}
		}
		if h.BackendStart.Equal(time.Unix(0, 0)) {
			h.BackendStart = time.Time{}
		}
		holders = append(holders, h)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(ctx, opRead, op, err)
	}
	return holders, nil
}
