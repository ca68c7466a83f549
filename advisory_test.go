package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestLockKeys(t *testing.T) {
	t.Parallel()
	a, b := deploydb.NamedLock("rollout"), deploydb.NamedLock("rollout")
	if a != b || a.ID() != b.ID() {
		t.Fatalf("same name, different keys: %v %v", a, b)
	}
	if c := deploydb.NamedLock("rollout2"); c.ID() == a.ID() {
		t.Fatalf("different names, same id %d", c.ID())
	}
	e1, e2 := deploydb.AppEnvironmentLock(1, "production"), deploydb.AppEnvironmentLock(1, "staging")
	if e1 == e2 || e1 != deploydb.AppEnvironmentLock(1, "production") {
		t.Fatalf("app/environment keys: %v %v", e1, e2)
	}
	if !strings.Contains(a.String(), "rollout") {
		t.Errorf("String() = %q, want the name", a.String())
	}
	svc, _ := newService(t)
	ctx := ctxT(t)
	for name, call := range map[string]func() error{
		"zero key":        func() error { _, err := svc.LockHolders(ctx, deploydb.LockKey{}); return err },
		"empty name":      func() error { _, _, err := svc.TryLockSession(ctx, deploydb.NamedLock("")); return err },
		"tx lock outside": func() error { return svc.LockTx(ctx, a) },
		"tx try outside":  func() error { _, err := svc.TryLockTx(ctx, a); return err },
	} {
		if err := call(); !errors.Is(err, deploydb.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

// A transaction-scoped lock keeps others out until the transaction ends; a
// blocked LockTx gives up with its context.
func TestLockTx(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	key := deploydb.NamedLock("tx-test")
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- svc.InTx(ctx, func(tx *deploydb.Service) error {
			if err := tx.LockTx(ctx, key); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	err := svc.InTx(ctx, func(tx *deploydb.Service) error {
		ok, err := tx.TryLockTx(ctx, key)
		if err != nil || ok {
			return fmt.Errorf("TryLockTx while held = %v, %v; want false, nil", ok, err)
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return tx.LockTx(short, key)
	})
	if !errors.Is(err, deploydb.ErrTimeout) {
		t.Fatalf("LockTx past its deadline: err = %v, want ErrTimeout", err)
	}
	holders, err := svc.LockHolders(ctx, key)
	if err != nil || len(holders) != 1 || !holders[0].Granted {
		t.Fatalf("LockHolders while held = %+v, %v; want one holder", holders, err)
	}
	released = true
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := svc.InTx(ctx, func(tx *deploydb.Service) error {
		ok, err := tx.TryLockTx(ctx, key)
		if err == nil && !ok {
			err = errors.New("lock still held after the holder's commit")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A session lock is visible with its holder's pid and application_name, a
// waiter is listed after it, Unlock hands the lock over, and a holder whose
// session dies releases it.
func TestLockSession(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	url := pgtest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	open := func(app string) *deploydb.Service {
		svc, err := deploydb.Open(ctx, url+sep+"application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(svc.Close)
		return svc
	}
	w1, w2 := open("worker-1"), open("worker-2")
	key := deploydb.AppEnvironmentLock(42, "production")

	l1, ok, err := w1.TryLockSession(ctx, key)
	if err != nil || !ok {
		t.Fatalf("TryLockSession on a free lock = %v, %v", ok, err)
	}
	t.Cleanup(func() { _ = l1.Unlock(context.Background()) }) // lets Close return if the test stops early
	if _, ok, err := w2.TryLockSession(ctx, key); err != nil || ok {
		t.Fatalf("TryLockSession while held = %v, %v; want false", ok, err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = w2.LockSession(short, key)
	cancel()
	if !errors.Is(err, deploydb.ErrTimeout) {
		t.Fatalf("LockSession past its deadline: err = %v, want ErrTimeout", err)
	}

	got := make(chan *deploydb.SessionLock, 1)
	go func() {
		l2, err := w2.LockSession(ctx, key)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	var holders []deploydb.LockHolder
	for i := 0; i < 200; i++ { // the waiter shows up within a few polls
		if holders, err = w1.LockHolders(ctx, key); err != nil {
			t.Fatal(err)
		}
		if len(holders) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(holders) != 2 || !holders[0].Granted || holders[1].Granted ||
		holders[0].ApplicationName != "worker-1" || holders[1].ApplicationName != "worker-2" ||
		holders[0].PID == 0 || holders[1].WaitStart.IsZero() {
		t.Fatalf("holders = %+v; want worker-1 holding, worker-2 waiting", holders)
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	l2 := <-got
	if l2 == nil {
		t.Fatal("waiter did not get the lock")
	}
	holders, err = w1.LockHolders(ctx, key)
	if err != nil || len(holders) != 1 || holders[0].ApplicationName != "worker-2" {
		t.Fatalf("after hand-over holders = %+v, %v", holders, err)
	}

	// The holder's session dies: the server releases the lock.
	if _, err := w1.Conn().Exec(ctx, "SELECT pg_terminate_backend($1)", holders[0].PID); err != nil {
		t.Fatal(err)
	}
	var l3 *deploydb.SessionLock
	for i := 0; i < 200 && l3 == nil; i++ {
		if l3, ok, err = w1.TryLockSession(ctx, key); err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if l3 == nil {
		t.Fatal("lock not released after its session was terminated")
	}
	if err := l2.Unlock(ctx); err == nil {
		t.Error("Unlock on a terminated session reported success")
	}
	if err := l3.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// One worker at a time per app and environment, across processes: the
// second try fails while the first holds the lock.
func ExampleService_TryLockSession() {
	ctx := context.Background()
	svc, err := deploydb.Open(ctx, pgtest.ExampleDatabase(true)) // in a service: os.Getenv("DATABASE_URL")
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	key := deploydb.AppEnvironmentLock(7, "production")
	lock, ok, err := svc.TryLockSession(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first worker holds it:", ok)
	_, ok, err = svc.TryLockSession(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second worker holds it:", ok)
	holders, err := svc.LockHolders(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("holders:", len(holders))
	if err := lock.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// first worker holds it: true
	// second worker holds it: false
	// holders: 1
}
