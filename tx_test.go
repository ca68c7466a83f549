package deploydb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

func TestInTx(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)

	var committed deploydb.App
	err := svc.InTx(ctx, func(tx *deploydb.Service) error {
		var err error
		committed, err = tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "tx-commit"})
		if err != nil {
			return err
		}
		_, _, err = tx.CreateBuild(ctx, deploydb.CreateBuildParams{AppID: committed.ID, SourceVersion: "v1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: committed.ID}, 10); err != nil || len(b) != 1 {
		t.Fatalf("after commit: %d builds, %v", len(b), err)
	}

	boom := errors.New("boom")
	err = svc.InTx(ctx, func(tx *deploydb.Service) error {
		if _, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "tx-rollback"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx returned %v, want the callback's error", err)
	}
	if _, err := svc.GetAppByName(ctx, "tx-rollback"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("rolled-back app is visible: %v", err)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic was swallowed")
			}
		}()
		_ = svc.InTx(ctx, func(tx *deploydb.Service) error {
			if _, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "tx-panic"}); err != nil {
				return err
			}
			panic("callback panicked")
		})
	}()
	if _, err := svc.GetAppByName(ctx, "tx-panic"); !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatalf("app from a panicking transaction is visible: %v", err)
	}

	// A typed error inside the transaction reaches the caller intact, and
	// a nested InTx (savepoint) can fail without aborting the outer one.
	err = svc.InTx(ctx, func(tx *deploydb.Service) error {
		nested := tx.InTx(ctx, func(inner *deploydb.Service) error {
			_, err := inner.CreateApp(ctx, deploydb.CreateAppParams{Name: "tx-commit"}) // duplicate
			return err
		})
		if !errors.Is(nested, deploydb.ErrConflict) {
			t.Errorf("nested duplicate: %v, want ErrConflict", nested)
		}
		_, err := tx.CreateApp(ctx, deploydb.CreateAppParams{Name: "tx-after-savepoint"})
		return err
	})
	if err != nil {
		t.Fatalf("outer transaction after a failed savepoint: %v", err)
	}
	if _, err := svc.GetAppByName(ctx, "tx-after-savepoint"); err != nil {
		t.Fatal(err)
	}
}

func TestContextDeadline(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	_, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "too-late"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateApp: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	err = svc.InTx(ctx, func(*deploydb.Service) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("InTx: %v, want an error wrapping context.DeadlineExceeded", err)
	}
}

func TestOpenNeverLeaksPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pa55"
	urls := []string{
		"postgres://deploy:" + secret + "@127.0.0.1:1/deploydb?sslmode=disable&connect_timeout=1",
		"host=127.0.0.1 port=1 user=deploy password=" + secret + " dbname=x sslmode=disable connect_timeout=1",
		"postgres://deploy:" + secret + "@127.0.0.1:notaport/deploydb",
		"postgres://deploy:" + secret + "@[::1/deploydb",
		"host=127.0.0.1 password='" + secret + "' port=abc",
	}
	for _, u := range urls {
		_, err := deploydb.Open(context.Background(), u, deploydb.WithConnectTimeout(time.Second))
		if err == nil {
			t.Fatalf("Open(%q) succeeded", strings.ReplaceAll(u, secret, "***"))
		}
		for _, s := range []string{err.Error(), fmtAll(err)} {
			if strings.Contains(s, secret) {
				t.Errorf("error leaks the password: %s", strings.ReplaceAll(s, secret, "<SECRET>"))
			}
		}
	}
}
