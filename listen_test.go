package deploydb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// forever is a poll interval no test outlives: a Wait that returns nil
// under it was woken by a notification.
const forever = time.Hour

// notifyTargets sends the notifications the database sends when operations
// become pending, one transaction each, in order.
func notifyTargets(t *testing.T, pool *pgxpool.Pool, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if _, err := pool.Exec(context.Background(), "SELECT pg_notify('deploydb_operations', $1)", p); err != nil {
			t.Fatalf("pg_notify(%q): %v", p, err)
		}
	}
}

// newWaiter makes a Waiter that the test closes when it ends.
func newWaiter(t *testing.T, svc *deploydb.Service, p deploydb.WaiterParams) *deploydb.Waiter {
	t.Helper()
	w, err := svc.NewWaiter(ctxT(t), p)
	if err != nil {
		t.Fatalf("NewWaiter: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// listeningWaiter makes a Waiter that listens, with a poll interval of
// forever.
func listeningWaiter(t *testing.T, svc *deploydb.Service) *deploydb.Waiter {
	t.Helper()
	w := newWaiter(t, svc, deploydb.WaiterParams{PollInterval: forever})
	if !w.Listening() {
		t.Fatal("the Waiter does not listen")
	}
	return w
}

// waitNil runs a Wait that must be woken.
func waitNil(t *testing.T, w *deploydb.Waiter, target string) {
	t.Helper()
	if err := w.Wait(ctxT(t), target); err != nil {
		t.Fatalf("Wait(%s): %v", target, err)
	}
}

// waitNothing runs a Wait that nothing may wake: it must end with its
// context's deadline.
func waitNothing(t *testing.T, w *deploydb.Waiter, target string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := w.Wait(ctx, target)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, deploydb.ErrTimeout) {
		t.Fatalf("Wait(%s) = %v, want the context's deadline", target, err)
	}
}

// listenerPIDs returns the sessions of the test database whose last
// statement was the Waiter's LISTEN.
func listenerPIDs(t *testing.T, pool *pgxpool.Pool) []int32 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN deploydb_operations' ORDER BY pid`)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// eventually polls cond until it holds, failing the test when ctxT ends.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := ctxT(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("never happened: %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestWaiterWakesOnItsTarget(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	// Sent before the Wait: the wake is kept for it.
	notifyTargets(t, pool, "web-1")
	waitNil(t, w, "web-1")

	// Sent while the Wait is (most likely) in flight.
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctxT(t), "web-1") }()
	notifyTargets(t, pool, "web-1")
	if err := <-done; err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestWaiterIgnoresOtherTargets(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	// Notifications arrive in commit order: once web-3's has woken its
	// Wait, web-2's has been handled too.
	notifyTargets(t, pool, "web-2", "web-3", "not a target", "~probe 00")
	waitNil(t, w, "web-3")
	waitNothing(t, w, "web-1")
	waitNil(t, w, "web-2") // kept for web-2 all along
	waitNothing(t, w, "web-2")
	waitNothing(t, w, "web-3")
}

func TestWaiterStarWakesAllTargets(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	targets := []string{"web-1", "web-2", "eu-west.db-1", "us-east-2"}
	errs := make(chan error, len(targets))
	for _, target := range targets {
		go func() { errs <- w.Wait(ctxT(t), target) }()
	}
	notifyTargets(t, pool, "*")
	for range targets {
		if err := <-errs; err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	// Each Wait took the wake; a target that was not waiting gets one too.
	waitNil(t, w, "web-9")
	for _, target := range append(targets, "web-9") {
		waitNothing(t, w, target)
	}
}

func TestWaiterKeepsNotificationBetweenWaits(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	notifyTargets(t, pool, "web-1")
	waitNil(t, w, "web-1")
	// No Wait on web-1 is in flight when its next notification arrives:
	// web-2's wake proves it has arrived.
	notifyTargets(t, pool, "web-1", "web-2")
	waitNil(t, w, "web-2")
	waitNil(t, w, "web-1")
	// Two notifications before one Wait wake it once.
	notifyTargets(t, pool, "web-1", "web-1", "web-2")
	waitNil(t, w, "web-2")
	waitNil(t, w, "web-1")
	waitNothing(t, w, "web-1")
}

func TestWaiterKeepsWakeForWaitWhoseContextEnded(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	waitNothing(t, w, "web-1")
	notifyTargets(t, pool, "web-1", "web-2")
	waitNil(t, w, "web-2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Wait(ctx, "web-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
	waitNil(t, w, "web-1")
}

func TestWaiterManyTargetsFromManyGoroutines(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	const targets, rounds = 24, 5
	var woken atomic.Int64
	ready := make(chan int, targets) // a target's goroutine is about to Wait
	var wg sync.WaitGroup
	errs := make(chan error, targets)
	for i := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := fmt.Sprintf("t-%d", i)
			for range rounds {
				ready <- i
				if err := w.Wait(ctxT(t), target); err != nil {
					errs <- err
					return
				}
				woken.Add(1)
			}
		}()
	}
	// One notification per announced Wait; one round's notifications for a
	// target go out only after its previous Wait returned.
	for range targets * rounds {
		notifyTargets(t, pool, fmt.Sprintf("t-%d", <-ready))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Wait: %v", err)
	}
	if got := woken.Load(); got != targets*rounds {
		t.Fatalf("%d Waits woken, want %d", got, targets*rounds)
	}
}

func TestWaiterListenOffPolls(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)

	w := newWaiter(t, svc, deploydb.WaiterParams{PollInterval: 20 * time.Millisecond, Listen: deploydb.ListenOff})
	if w.Listening() {
		t.Fatal("a ListenOff Waiter listens")
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("a ListenOff Waiter holds %d connections", n)
	}
	for range 3 {
		waitNil(t, w, "web-1") // the poll interval elapsed
	}

	deaf := newWaiter(t, svc, deploydb.WaiterParams{PollInterval: forever, Listen: deploydb.ListenOff})
	notifyTargets(t, pool, "web-1", "*")
	waitNothing(t, deaf, "web-1")
	if pids := listenerPIDs(t, pool); len(pids) != 0 {
		t.Fatalf("listener sessions %v, want none", pids)
	}
}

func TestWaiterWithoutPoolPolls(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	_, pool := newService(t)

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	onTx := deploydb.New(tx)
	w := newWaiter(t, onTx, deploydb.WaiterParams{PollInterval: 20 * time.Millisecond})
	if w.Listening() {
		t.Fatal("a Waiter of a Service on a transaction listens")
	}
	waitNil(t, w, "web-1")

	cfg := pool.Config()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(one.Close) // after the Waiter's Close, registered later
	w = newWaiter(t, deploydb.New(one), deploydb.WaiterParams{PollInterval: 20 * time.Millisecond})
	if w.Listening() {
		t.Fatal("a Waiter took the only connection of a one-connection pool")
	}
	waitNil(t, w, "web-1")
}

// TestWaiterPollsWhenNotificationsDoNotArrive: a listener whose session
// does not get the notifications other sessions send (as behind a
// transaction-pooling proxy) is detected by the probe, and the Waiter
// polls. Here the pool's first connection, the listener's, goes to
// another database than the rest, so the probe never reaches it.
func TestWaiterPollsWhenNotificationsDoNotArrive(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	elsewhere, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		if conns.Add(1) == 1 {
			cc.Database = elsewhere.Database
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the Waiter's Close, registered later

	w := newWaiter(t, deploydb.New(pool), deploydb.WaiterParams{PollInterval: 20 * time.Millisecond})
	if w.Listening() {
		t.Fatal("the Waiter listens on a session that notifications do not reach")
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("the polling Waiter holds %d connections", n)
	}
	if conns.Load() < 2 {
		t.Fatalf("%d connections made: the probe was not sent from a second one", conns.Load())
	}
	waitNil(t, w, "web-1")
}

func TestWaiterCloseReleasesConnection(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)

	w, err := svc.NewWaiter(ctxT(t), deploydb.WaiterParams{PollInterval: forever})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Listening() {
		t.Fatal("the Waiter does not listen")
	}
	if n := pool.Stat().AcquiredConns(); n != 1 {
		t.Fatalf("the listening Waiter holds %d connections, want 1", n)
	}
	if pids := listenerPIDs(t, pool); len(pids) != 1 {
		t.Fatalf("listener sessions %v, want one", pids)
	}
	inFlight := make(chan error, 1)
	go func() { inFlight <- w.Wait(ctxT(t), "web-1") }()

	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-inFlight; !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Fatalf("Wait in flight during Close = %v, want ErrInvalidArgument", err)
	}
	if w.Listening() {
		t.Fatal("a closed Waiter listens")
	}
	st := pool.Stat()
	if st.AcquiredConns() != 0 {
		t.Fatalf("after Close the pool still lends %d connections", st.AcquiredConns())
	}
	if st.IdleConns() < 1 {
		t.Fatalf("after Close the listener's connection is not idle in the pool (%d idle)", st.IdleConns())
	}
	if pids := listenerPIDs(t, pool); len(pids) != 0 {
		t.Fatalf("listener sessions %v after Close, want none", pids)
	}
	// The connection came back without LISTEN: no idle connection listens.
	for range st.IdleConns() {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var n int
		if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_listening_channels()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a pool connection still listens on %d channels", n)
		}
	}
	if err := w.Wait(ctxT(t), "web-1"); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Fatalf("Wait after Close = %v, want ErrInvalidArgument", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestWaiterServiceClosesAfterWaiter: a Service from Open closes (its pool
// waits for every connection it lent) once its Waiter is closed.
func TestWaiterServiceClosesAfterWaiter(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	svc, err := deploydb.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.NewWaiter(ctx, deploydb.WaiterParams{PollInterval: forever})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Listening() {
		t.Fatal("the Waiter does not listen")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed := make(chan struct{})
	go func() { svc.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the Service's Close never returned")
	}
}

func TestWaiterRecoversFromKilledConnection(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)
	pids := listenerPIDs(t, pool)
	if len(pids) != 1 {
		t.Fatalf("listener sessions %v, want one", pids)
	}
	old := pids[0]

	inFlight := make(chan error, 1)
	go func() { inFlight <- w.Wait(ctxT(t), "web-1") }()
	var killed bool
	if err := pool.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", old).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", old, killed, err)
	}
	// Notifications may have been lost while nobody listened: the Wait in
	// flight is woken once the Waiter listens again.
	if err := <-inFlight; err != nil {
		t.Fatalf("Wait across the reconnection: %v", err)
	}
	eventually(t, "the Waiter listens on a new connection", func() bool {
		pids := listenerPIDs(t, pool)
		return w.Listening() && len(pids) == 1 && pids[0] != old
	})
	waitNil(t, w, "web-2") // the wake every target got at the reconnection

	done := make(chan error, 1)
	go func() { done <- w.Wait(ctxT(t), "web-2") }()
	notifyTargets(t, pool, "web-2")
	if err := <-done; err != nil {
		t.Fatalf("Wait after the reconnection: %v", err)
	}
	waitNothing(t, w, "web-2")
	if n := pool.Stat().AcquiredConns(); n != 1 {
		t.Fatalf("the Waiter holds %d connections, want 1", n)
	}
}

// TestWaiterChecksIdleConnection: a listener that hears nothing for a poll
// interval checks its connection, and keeps listening on it.
func TestWaiterChecksIdleConnection(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := newWaiter(t, svc, deploydb.WaiterParams{PollInterval: time.Second})
	pids := listenerPIDs(t, pool)
	if !w.Listening() || len(pids) != 1 {
		t.Fatalf("listening %v, listener sessions %v; want one", w.Listening(), pids)
	}
	eventually(t, "the listener checks its connection", func() bool {
		var q string
		err := pool.QueryRow(context.Background(), "SELECT query FROM pg_stat_activity WHERE pid = $1", pids[0]).Scan(&q)
		if err != nil {
			t.Fatal(err)
		}
		return q == "SELECT 1"
	})
	var alive bool
	if err := pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pids[0]).Scan(&alive); err != nil {
		t.Fatal(err)
	}
	if !alive || !w.Listening() {
		t.Fatalf("after checking its connection: session alive %v, listening %v", alive, w.Listening())
	}
	if n := pool.Stat().AcquiredConns(); n != 1 {
		t.Fatalf("the Waiter holds %d connections, want 1", n)
	}
}

func TestWaiterRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	for _, p := range []deploydb.WaiterParams{
		{PollInterval: -time.Second},
		{Listen: deploydb.ListenMode(7)},
	} {
		if _, err := svc.NewWaiter(ctx, p); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("NewWaiter(%+v) = %v, want ErrInvalidArgument", p, err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := svc.NewWaiter(cancelled, deploydb.WaiterParams{}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewWaiter with a cancelled context = %v, want context.Canceled", err)
	}
	w := newWaiter(t, svc, deploydb.WaiterParams{PollInterval: forever})
	for _, target := range []string{"", "*", "Web-1", "web_1", "-web"} {
		if err := w.Wait(ctx, target); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("Wait(%q) = %v, want ErrInvalidArgument", target, err)
		}
	}
	if err := w.Wait(cancelled, "web-1"); !errors.Is(err, context.Canceled) || errors.Is(err, deploydb.ErrTimeout) {
		t.Errorf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
	if got := deploydb.ListenOff.String(); got != "off" {
		t.Errorf("ListenOff.String() = %q", got)
	}
}

// TestWaiterLatencyFigure reports how long a notification takes to wake a
// Wait, over 200 notifications, each sent once the previous Wait returned.
func TestWaiterLatencyFigure(t *testing.T) {
	t.Parallel()
	svc, pool := newService(t)
	w := listeningWaiter(t, svc)

	const n = 200
	sent := make(chan time.Time)
	latencies := make([]time.Duration, 0, n)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for range n {
			at := <-sent
			if err := w.Wait(ctxT(t), "web-1"); err != nil {
				errs <- err
				return
			}
			latencies = append(latencies, time.Since(at))
			sent <- time.Time{} // woken: the next one may go
		}
	}()
	for range n {
		at := time.Now()
		sent <- at
		notifyTargets(t, pool, "web-1")
		select {
		case <-sent:
		case err := <-errs:
			t.Fatalf("Wait: %v", err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if len(latencies) != n {
		t.Fatalf("%d wakes, want %d", len(latencies), n)
	}
	slices.Sort(latencies)
	t.Logf("FIGURE waiter notify-to-wake latency over %d notifications: p50 %v, p99 %v, max %v (polling alone: up to the poll interval, %v by default)",
		n, latencies[n/2], latencies[n*99/100], latencies[n-1], deploydb.DefaultPollInterval)
}

// ExampleWaiter shows a worker that claims the operations of its target
// and, when there are none, waits for some instead of polling in a tight
// loop.
func ExampleWaiter() {
	ctx := context.Background()
	svc, err := deploydb.Open(ctx, pgtest.ExampleDatabase(true))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	w, err := svc.NewWaiter(ctx, deploydb.WaiterParams{PollInterval: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close() // before svc.Close

	// Elsewhere, a deployment to web-1 is created.
	go func() {
		app, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "checkout"})
		if err != nil {
			log.Fatal(err)
		}
		b, _, err := svc.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: app.ID, SourceVersion: "3f2a9c1"})
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range []deploydb.BuildStatus{deploydb.BuildInProgress, deploydb.BuildSucceeded} {
			if _, _, err := svc.UpdateBuildStatus(ctx, b.ID, s); err != nil {
				log.Fatal(err)
			}
		}
		_, _, _, err = svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{
			AppID: app.ID, BuildID: b.ID, Environment: "production", Targets: []string{"web-1"}})
		if err != nil {
			log.Fatal(err)
		}
	}()

	for {
		op, err := svc.ClaimNextOperation(ctx, "web-1", "worker-1")
		if errors.Is(err, deploydb.ErrNotFound) {
			// Nothing yet: wait for a notification, or the poll interval.
			if err := w.Wait(ctx, "web-1"); err != nil {
				log.Fatal(err)
			}
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(op.Target, op.State, op.ClaimedBy)
		return
	}
	// Output: web-1 running worker-1
}

// stallProxy, armed, withholds the server's reply to the next query that
// completes as "SELECT 1" (the Waiter's connection check) until release is
// closed.
type stallProxy struct {
	armed   atomic.Bool
	holding chan struct{} // closed when a reply is withheld
	release chan struct{}
	once    sync.Once
}

func (p *stallProxy) onReply(_ *proxyConn, typ byte, body []byte) ([]byte, bool) {
	if typ == 'C' && bytes.HasPrefix(body, []byte("SELECT 1\x00")) && p.armed.CompareAndSwap(true, false) {
		close(p.holding)
		<-p.release
	}
	return message(typ, body), false
}

func (p *stallProxy) letGo() { p.once.Do(func() { close(p.release) }) }

// Close while the listener checks its connection: the check is not
// interrupted (a query cancelled in flight closes the connection, and
// Close then failed to give it back: "conn closed", seen in CI), and the
// connection goes back to the pool.
func TestWaiterCloseDuringConnectionCheck(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	proxy := &stallProxy{holding: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(proxy.letGo) // before the proxy stops: Cleanups run last first
	pool := proxiedPool(t, ctx, proxy.onReply)
	svc := deploydb.New(pool)
	w, err := svc.NewWaiter(ctx, deploydb.WaiterParams{PollInterval: time.Second})
	if err != nil {
		t.Fatalf("NewWaiter: %v", err)
	}
	if !w.Listening() {
		t.Fatal("the Waiter does not listen")
	}
	proxy.armed.Store(true) // the next "SELECT 1" is the check, within a second
	select {
	case <-proxy.holding:
	case <-ctx.Done():
		t.Fatal("the listener never checked its connection")
	}
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	// Give Close time to cancel what it cancels, then let the reply through.
	time.Sleep(100 * time.Millisecond)
	proxy.letGo()
	if err := <-closed; err != nil {
		t.Fatalf("Close during the connection check: %v; want nil, the connection given back", err)
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("after Close the pool has %d connections out, want 0", n)
	}
}
