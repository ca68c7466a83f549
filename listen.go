package deploydb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPollInterval is the longest a Wait lasts when
// WaiterParams.PollInterval is 0: without a notification, a worker looks for
// work this often.
const DefaultPollInterval = 5 * time.Second

// waiterChannel is the channel the database notifies when operations may
// have become claimable. Its payload is a target name, or waiterAll.
const waiterChannel = "deploydb_operations"

// waiterAll is the payload that means "anything may have become claimable,
// on any target": a deployment left in_progress, a halt cleared.
const waiterAll = "*"

const (
	// waiterSetupTimeout bounds one attempt to take a connection, LISTEN
	// on it and send the probe notification.
	waiterSetupTimeout = 10 * time.Second
	// waiterProbeTimeout is how long the listener waits for its own probe
	// notification before it concludes that notifications do not reach it.
	waiterProbeTimeout = 2 * time.Second
	// waiterResetTimeout bounds the UNLISTEN run before the connection
	// goes back to the pool.
	waiterResetTimeout = 5 * time.Second
	// waiterRetryMin and waiterRetryMax bound the backoff between attempts
	// to listen again after the connection broke or could not be had.
	waiterRetryMin = 250 * time.Millisecond
	waiterRetryMax = 30 * time.Second
	// waiterRefusedRetry is how long the Waiter polls before it tries
	// again after the server refused LISTEN or the probe never arrived.
	waiterRefusedRetry = 5 * time.Minute
	// waiterForget is how long a Waiter keeps a target no Wait is
	// waiting on, counted from its last Wait or notification.
	waiterForget = time.Minute
)

// ListenMode says whether a Waiter uses LISTEN/NOTIFY.
type ListenMode int

// Listen modes for WaiterParams.
const (
	// ListenAuto, the default, listens on a dedicated pool connection and
	// polls when that is not possible (see NewWaiter).
	ListenAuto ListenMode = iota
	// ListenOff only polls: every Wait lasts the poll interval.
	ListenOff
)

// String returns the mode's name: "auto", "off", or the number of an
// unknown mode.
func (m ListenMode) String() string {
	switch m {
	case ListenAuto:
		return "auto"
	case ListenOff:
		return "off"
	}
	return "ListenMode(" + strconv.Itoa(int(m)) + ")"
}

// WaiterParams configures NewWaiter. Every field is validated; a value out
// of range is ErrInvalidArgument.
type WaiterParams struct {
	// PollInterval is the longest one Wait lasts when no notification
	// arrives: 0 means DefaultPollInterval (5 s); negative values are
	// refused. It is the delay after which a worker finds work that no
	// notification announced, and, while notifications cannot be had,
	// how often it looks.
	PollInterval time.Duration
	// Listen says whether to use notifications: ListenAuto (the zero
	// value) or ListenOff.
	Listen ListenMode
}

// Waiter wakes workers that wait for claimable operations on a target,
// without making them poll the database in a tight loop. The database
// notifies channel deploydb_operations with a target's name when operations
// on that target become pending, and with "*" when anything may have become
// claimable anywhere (a deployment left in_progress, a halt was cleared);
// a Waiter listens on one connection of its own and hands each notification
// to the Waits on that target.
//
// Notifications are only a hint: the claim (ClaimNextOperation) is the
// truth. A notification may be lost (the listener connection broke, the
// Waiter was made after it was sent) or may announce work another worker
// claims first, so a worker claims after every Wait, whatever woke it, and
// Wait also returns after the poll interval. The usual loop:
//
//	for {
//		op, err := svc.ClaimNextOperation(ctx, target, worker)
//		if errors.Is(err, deploydb.ErrNotFound) {
//			if err := w.Wait(ctx, target); err != nil {
//				return err // ctx ended or the Waiter was closed
//			}
//			continue
//		}
//		...
//	}
//
// A Waiter is safe for concurrent use: many goroutines may Wait on many
// targets at once. It holds one pool connection while it listens; Close
// gives it back, and must be called before the Service is closed (the
// pool's Close waits for the connections taken from it).
type Waiter struct {
	pool   *pgxpool.Pool // nil for a Waiter that only polls
	poll   time.Duration
	health time.Duration // how long the listener stays quiet before it checks its connection

	listening atomic.Bool

	// The dispatcher goroutine's lifetime: Close cancels ctx and waits for
	// done; closeErr is set before done is closed.
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	closeErr error

	mu     sync.Mutex
	closed bool
	// Every notification handed to the Waits gets the next seq. star is the
	// seq of the last "*"; floor is the consumed seq a newly seen target
	// starts from (see sweep).
	seq, star, floor uint64
	targets          map[string]*waitTarget
	swept            time.Time
}

// waitTarget is what a Waiter knows of one target.
type waitTarget struct {
	notified uint64        // seq of the target's last notification
	consumed uint64        // seq when the last Wait on the target returned nil
	waiting  int           // Waits in flight
	waited   bool          // a Wait has asked about the target
	wake     chan struct{} // closed to wake the Waits in flight; nil when none waits
	used     time.Time     // last Wait or notification
}

// pending reports whether a notification for the target, or a "*", came
// after the last Wait returned.
func (t *waitTarget) pending(star uint64) bool { return max(t.notified, star) > t.consumed }

func (t *waitTarget) wakeUp() {
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// NewWaiter returns a Waiter for workers that wait for claimable operations
// on a target (see Waiter). With ListenAuto it takes one connection from
// the Service's pool, runs LISTEN deploydb_operations on it and checks that
// a notification sent on another connection reaches it, before it returns;
// Listening then says whether notifications are in use. The Waiter polls
// instead, and only polls, when:
//
//   - p.Listen is ListenOff;
//   - the Service has no pool (made with New on a transaction or a single
//     connection), or a pool of one connection, which listening would take;
//   - the connection cannot be had or breaks: the Waiter polls meanwhile
//     and listens again as soon as it can, with a backoff of at most 30 s;
//     Waits in flight then return, since notifications may have been missed;
//   - the server refuses LISTEN (a hot standby) or notifications do not
//     reach the listening session (a PgBouncer in transaction pooling mode,
//     where LISTEN seems to succeed): the Waiter tries again every 5 min.
//
// NewWaiter fails only on an invalid p (ErrInvalidArgument) or when ctx
// ends (ctx's error); a database that cannot be reached makes a Waiter
// that polls. The caller must Close the Waiter.
func (s *Service) NewWaiter(ctx context.Context, p WaiterParams) (*Waiter, error) {
	const op = "new waiter"
	if p.PollInterval < 0 {
		return nil, invalidArg(op, "PollInterval %s cannot be negative", p.PollInterval)
	}
	if p.Listen != ListenAuto && p.Listen != ListenOff {
		return nil, invalidArg(op, "Listen %s is not ListenAuto or ListenOff", p.Listen)
	}
	if err := ctx.Err(); err != nil {
		return nil, mapError(ctx, opRead, op, err)
	}
	w := &Waiter{poll: p.PollInterval, targets: map[string]*waitTarget{}, swept: time.Now()}
	if w.poll == 0 {
		w.poll = DefaultPollInterval
	}
	w.health = min(max(w.poll, time.Second), time.Minute)
	if p.Listen == ListenOff || s.pool == nil || s.pool.Config().MaxConns < 2 {
		return w, nil
	}
	w.pool = s.pool
	w.ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	conn, next, err := w.listen(ctx)
	if err != nil {
		w.cancel()
		return nil, mapError(ctx, opRead, op, err)
	}
	w.listening.Store(conn != nil)
	go w.run(conn, next)
	return w, nil
}

// Listening reports whether the Waiter is listening for notifications now.
// When it is false, Waits last the poll interval (or until ctx ends).
func (w *Waiter) Listening() bool { return w.listening.Load() }

// Wait blocks until work may be claimable on target: it returns nil when a
// notification for target, or a "*", arrived since the last Wait on target
// returned nil (at once if one did), or when the poll interval has passed.
// For a target no Wait has asked about yet, notifications count from when
// the Waiter was made; a notification for such a target is remembered for
// a minute. When several goroutines Wait on the same target, a
// notification wakes all the Waits in flight, and one that arrived while
// none was waiting wakes the next one only.
//
// When ctx ends first, the error matches ctx's error and a notification
// that arrived meanwhile is kept for the next Wait. An invalid target, or
// a Waiter that is closed (or is closed during the Wait), is
// ErrInvalidArgument.
func (w *Waiter) Wait(ctx context.Context, target string) error {
	op := "wait for operations on target"
	if err := checkTarget(op, target); err != nil {
		return err
	}
	op += " " + target
	if err := ctx.Err(); err != nil {
		return mapError(ctx, opRead, op, err)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return waiterClosed(op)
	}
	now := time.Now()
	w.sweep(now)
	t := w.target(target, now)
	t.waited = true
	if t.pending(w.star) {
		t.consumed, t.used = w.seq, now
		w.mu.Unlock()
		return nil
	}
	if t.wake == nil {
		t.wake = make(chan struct{})
	}
	wake := t.wake
	t.waiting++
	w.mu.Unlock()

	timer := time.NewTimer(w.poll)
	defer timer.Stop()
	var err error
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
		err = mapError(ctx, opRead, op, ctx.Err())
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	t.waiting--
	t.used = time.Now()
	switch {
	case w.closed:
		return waiterClosed(op)
	case err != nil:
		return err
	}
	t.consumed = w.seq
	return nil
}

// Close stops listening, gives the listener's connection back to the pool
// and wakes the Waits in flight, which return ErrInvalidArgument. It waits
// until the connection is back; it is safe to call more than once. Its
// error, if any, says that the connection could not be reset (UNLISTEN
// failed) and was closed instead; the Waiter is closed either way.
func (w *Waiter) Close() error {
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	for _, t := range w.targets {
		t.wakeUp()
	}
	w.mu.Unlock()
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	<-w.done
	w.listening.Store(false)
	if first {
		return w.closeErr
	}
	return nil
}

func waiterClosed(op string) error {
	return &Error{Kind: ErrInvalidArgument, Op: op, Msg: "the Waiter is closed"}
}

// target returns what the Waiter knows of name, making a new entry if it
// knows nothing. w.mu must be held.
func (w *Waiter) target(name string, now time.Time) *waitTarget {
	t := w.targets[name]
	if t == nil {
		t = &waitTarget{consumed: w.floor, used: now}
		w.targets[name] = t
	}
	return t
}

// sweep forgets, at most once per waiterForget, the targets no Wait is
// waiting on that have been quiet for waiterForget, so that a Waiter that
// sees notifications for every target of the platform does not keep them
// all. A target with a wake that a Wait has not taken yet is kept, unless
// no Wait ever asked about it. Newly seen targets then start from floor, the
// last "*" at the sweep: every target forgotten had seen it, and a later "*"
// still counts for them. w.mu must be held.
func (w *Waiter) sweep(now time.Time) {
	if now.Sub(w.swept) < waiterForget {
		return
	}
	w.swept = now
	w.floor = w.star
	for name, t := range w.targets {
		if t.waiting > 0 || now.Sub(t.used) < waiterForget || t.waited && t.pending(w.star) {
			continue
		}
		delete(w.targets, name)
	}
}

// deliver hands a notification's payload to the Waits. Payloads that are
// neither "*" nor a target name are ignored.
func (w *Waiter) deliver(payload string) {
	all := payload == waiterAll
	if !all && !validTarget(payload) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	now := time.Now()
	w.sweep(now)
	w.seq++
	if all {
		w.star = w.seq
		for _, t := range w.targets {
			t.wakeUp()
		}
		return
	}
	t := w.target(payload, now)
	t.notified, t.used = w.seq, now
	t.wakeUp()
}

// listenOutcome is what became of one attempt to listen.
type listenOutcome int

const (
	listenOK      listenOutcome = iota
	listenBroken                // no connection, or it broke: try again soon
	listenRefused               // LISTEN refused, or the probe never arrived: try again much later
)

// trouble classifies an error met while setting up the listener: a server
// error other than one saying it is unavailable is a refusal.
func trouble(err error) listenOutcome {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgKind(opRead, pgErr) != ErrUnavailable {
		return listenRefused
	}
	return listenBroken
}

// listen takes a pool connection, runs LISTEN on it, and sends a probe
// notification from another connection, which must come back to it: only
// then does a notification sent by any session reach the listener. It
// returns the connection, or nil and why not; err is set only when ctx
// ended. Notifications that arrive during the probe are delivered.
func (w *Waiter) listen(ctx context.Context) (*pgxpool.Conn, listenOutcome, error) {
	sctx, cancel := context.WithTimeout(ctx, waiterSetupTimeout)
	defer cancel()
	conn, err := w.pool.Acquire(sctx)
	if err != nil {
		return nil, listenBroken, ctx.Err()
	}
	if _, err := conn.Exec(sctx, "LISTEN "+waiterChannel); err != nil {
		drop(conn)
		return nil, trouble(err), ctx.Err()
	}
	token, err := probeToken()
	if err == nil {
		_, err = w.pool.Exec(sctx, "SELECT pg_notify($1, $2)", waiterChannel, token)
	}
	if err != nil {
		_ = reset(conn)
		return nil, trouble(err), ctx.Err()
	}
	pctx, pcancel := context.WithTimeout(ctx, waiterProbeTimeout)
	defer pcancel()
	for {
		n, err := conn.Conn().WaitForNotification(pctx)
		switch {
		case err == nil:
			if n != nil && n.Payload == token {
				return conn, listenOK, nil
			}
			if n != nil {
				w.deliver(n.Payload)
			}
		case ctx.Err() != nil:
			_ = reset(conn)
			return nil, listenBroken, ctx.Err()
		case pctx.Err() != nil && !conn.Conn().IsClosed():
			// The session is fine, but the notification did not reach it.
			_ = reset(conn)
			return nil, listenRefused, nil
		default:
			drop(conn)
			return nil, listenBroken, nil
		}
	}
}

// probeToken returns a payload that no other Waiter takes for a target or
// for "*".
func probeToken() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "~probe " + hex.EncodeToString(b[:]), nil
}

// run is the dispatcher: it reads the listener's notifications and hands
// them to the Waits, and takes a new connection when the listener's
// breaks. conn is the listener NewWaiter set up, or nil with why not.
func (w *Waiter) run(conn *pgxpool.Conn, outcome listenOutcome) {
	defer close(w.done)
	failures := 0
	for {
		if conn == nil {
			delay := waiterRefusedRetry
			if outcome == listenBroken {
				delay = min(waiterRetryMin<<min(failures, 16), waiterRetryMax)
				failures++
			}
			timer := time.NewTimer(delay)
			select {
			case <-w.ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			var err error
			if conn, outcome, err = w.listen(w.ctx); err != nil {
				return
			}
			if conn == nil {
				continue
			}
			// Notifications sent while nobody listened are lost: every
			// Wait in flight looks for work again.
			w.deliver(waiterAll)
		}
		failures = 0
		w.listening.Store(true)
		w.receive(conn)
		w.listening.Store(false)
		if w.ctx.Err() != nil {
			if err := reset(conn); err != nil {
				w.closeErr = mapError(context.Background(), opRead, "close waiter", err)
			}
			return
		}
		drop(conn)
		conn, outcome = nil, listenBroken
	}
}

// receive delivers the listener's notifications until the connection breaks
// or the Waiter is closed. After w.health without a notification it checks
// the connection, so that one that silently went away is noticed. The
// error says why it stopped.
func (w *Waiter) receive(conn *pgxpool.Conn) error {
	for {
		ctx, cancel := context.WithTimeout(w.ctx, w.health)
		n, err := conn.Conn().WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			if n != nil {
				w.deliver(n.Payload)
			}
		case w.ctx.Err() != nil:
			return err
		case errors.Is(err, context.DeadlineExceeded) && !conn.Conn().IsClosed():
			// Not cancelled by Close: a query interrupted in flight closes
			// the connection, and Close would then fail to give it back.
			pctx, pcancel := context.WithTimeout(context.Background(), waiterSetupTimeout)
			_, err = conn.Exec(pctx, "SELECT 1")
			pcancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// reset ends LISTEN on conn and gives it back to the pool; if that fails,
// it closes the connection instead.
func reset(conn *pgxpool.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), waiterResetTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "UNLISTEN *"); err != nil {
		_ = conn.Hijack().Close(ctx)
		return err
	}
	conn.Release()
	return nil
}

// drop closes a connection that broke rather than give it back to the pool.
func drop(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), waiterResetTimeout)
	defer cancel()
	_ = conn.Hijack().Close(ctx)
}
