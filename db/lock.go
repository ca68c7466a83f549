package db

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"time"
)

// lockName is the advisory-lock name the Atlas CLI takes around
// `migrate apply`. deploydb takes the same lock, so the two tools never
// apply migrations to one database at the same time.
const lockName = "atlas_migrate_execute"

// lockKey is the advisory-lock key of lockName: FNV-1 32-bit of the name,
// as the Atlas PostgreSQL driver computes it.
func lockKey() int64 {
	h := fnv.New32()
	h.Write([]byte(lockName))
	return int64(h.Sum32())
}

// lock takes the migration advisory lock on a dedicated connection, polling
// with pg_try_advisory_lock (backoff up to 200 ms) until the lock wait
// expires. It returns the release function and how long it waited.
//
// It polls rather than blocking in pg_advisory_lock, as the Atlas CLI does:
// a session blocked in that call keeps a transaction open, and a CREATE
// INDEX CONCURRENTLY of the run holding the lock would wait for it.
func (s *session) lock(ctx context.Context) (func(), time.Duration, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("db: connect: %w", err)
	}
	key := lockKey()
	start := time.Now()
	deadline := start.Add(s.cfg.lockWait)
	backoff := 25 * time.Millisecond
	announced := false
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("db: take migration lock: %w", err)
		}
		if ok {
			break
		}
		if !announced {
			holder, _ := lockHolder(ctx, conn)
			s.cfg.progress("waiting up to %s for the migration lock held by %s", s.cfg.lockWait, holder)
			announced = true
		}
		if time.Now().After(deadline) {
			holder, _ := lockHolder(ctx, conn)
			conn.Close()
			return nil, time.Since(start), &LockedError{Waited: time.Since(start), Holder: holder}
		}
		if err := sleepCtx(ctx, min(backoff, time.Until(deadline)+time.Millisecond)); err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("db: wait for migration lock: %w", err)
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
	waited := time.Since(start)
	if announced {
		s.cfg.progress("took the migration lock after %s", waited.Round(time.Millisecond))
	}
	return func() {
		// A fresh context: the lock must be released even when ctx is done.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, key)
		conn.Close()
	}, waited, nil
}

// lockHolder returns the session holding the migration lock on the current
// database, or nil when nobody holds it.
func lockHolder(ctx context.Context, q queryer) (*LockHolder, error) {
	var (
		h     LockHolder
		app   sql.NullString
		addr  sql.NullString
		start sql.NullTime
		state sql.NullString
	)
	// A bigint advisory key is shown as classid (high 32 bits), objid (low
	// 32 bits) and objsubid 1.
	err := q.QueryRowContext(ctx, `
		SELECT l.pid, a.application_name, host(a.client_addr), a.backend_start, a.state
		FROM pg_locks l
		LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
		LIMIT 1`, lockKey()).Scan(&h.PID, &app, &addr, &start, &state)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("db: read migration lock holder: %w", err)
	}
	h.ApplicationName, h.ClientAddr, h.BackendStart, h.State = app.String, addr.String, start.Time, state.String
	return &h, nil
}
