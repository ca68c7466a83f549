package txhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/txhttp"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t *testing.T) (*deploydb.Service, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t)
	return deploydb.New(pool), pool
}

// exists reports whether an app of that name was committed.
func exists(t *testing.T, svc *deploydb.Service, name string) bool {
	t.Helper()
	_, err := svc.GetAppByName(context.Background(), name)
	if err != nil && !errors.Is(err, deploydb.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// createThen returns a handler that creates the app named by the request
// path in the request's transaction and then ends as then says.
func createThen(t *testing.T, then func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return txhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		svc, ok := txhttp.FromContext(r.Context())
		if !ok {
			t.Error("no transaction in the request's context")
			return nil
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if _, err := svc.CreateApp(r.Context(), deploydb.CreateAppParams{Name: name}); err != nil {
			return err
		}
		return then(w, r)
	})
}

func TestCommitAndRollback(t *testing.T) {
	t.Parallel()
	svc, _ := setup(t)
	cases := []struct {
		name   string
		then   func(w http.ResponseWriter, r *http.Request) error
		code   int
		commit bool
	}{
		{"ok-201", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(http.StatusCreated); return nil }, 201, true},
		{"ok-implicit-200", func(w http.ResponseWriter, r *http.Request) error { _, err := io.WriteString(w, "done"); return err }, 200, true},
		{"ok-nothing-written", func(w http.ResponseWriter, r *http.Request) error { return nil }, 200, true},
		{"redirect-303", func(w http.ResponseWriter, r *http.Request) error {
			http.Redirect(w, r, "/elsewhere", http.StatusSeeOther)
			return nil
		}, 303, true},
		{"client-error-409", func(w http.ResponseWriter, r *http.Request) error {
			http.Error(w, "conflict", http.StatusConflict)
			return nil
		}, 409, false},
		{"server-error-503", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusServiceUnavailable)
			return nil
		}, 503, false},
		{"handler-error", func(w http.ResponseWriter, r *http.Request) error { return errors.New("failed") }, 500, false},
		{"marked-for-rollback", func(w http.ResponseWriter, r *http.Request) error {
			if !txhttp.MarkForRollback(r.Context()) {
				t.Error("MarkForRollback found no transaction")
			}
			w.WriteHeader(http.StatusAccepted)
			return nil
		}, 202, false},
	}
	for _, c := range cases {
		h := txhttp.Middleware(svc)(createThen(t, c.then))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+c.name, nil))
		if rec.Code != c.code {
			t.Errorf("%s: status %d, want %d", c.name, rec.Code, c.code)
		}
		if got := exists(t, svc, c.name); got != c.commit {
			t.Errorf("%s: committed %v, want %v", c.name, got, c.commit)
		}
	}
	if rec := httptest.NewRecorder(); true {
		txhttp.Middleware(svc)(createThen(t, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Location", "/apps/1")
			w.WriteHeader(http.StatusCreated)
			_, err := io.WriteString(w, "created")
			return err
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/with-body", nil))
		if rec.Code != 201 || rec.Body.String() != "created" || rec.Header().Get("Location") != "/apps/1" {
			t.Errorf("buffered response not passed on: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
		}
	}
}

// A panicking handler rolls back and the panic goes on.
func TestPanicRollsBack(t *testing.T) {
	t.Parallel()
	svc, _ := setup(t)
	h := txhttp.Middleware(svc)(createThen(t, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		panic("handler bug")
	}))
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != "handler bug" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/panicked", nil))
	}()
	if exists(t, svc, "panicked") {
		t.Error("a panicking handler's work was committed")
	}
	if rec.Body.Len() != 0 || rec.Code != http.StatusOK && rec.Flushed {
		t.Errorf("a response was sent for a panicked request: %d %q", rec.Code, rec.Body.String())
	}
	// Through a real server, which recovers the panic: the client gets no
	// success, and the app is not there.
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/panicked-served", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
		t.Errorf("the client got a response (%d) from a panicked request", resp.StatusCode)
	}
	if exists(t, svc, "panicked-served") {
		t.Error("a panicking handler's work was committed (served)")
	}
}

// A commit that fails replaces the handler's success with the error
// handler's answer: the client never sees 200 for work that was rolled
// back.
func TestFailedCommitIsNotSuccess(t *testing.T) {
	t.Parallel()
	svc, _ := setup(t)
	var seen error
	mw := txhttp.Middleware(svc, txhttp.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		seen = err
		http.Error(w, "not committed", http.StatusInternalServerError)
	}))
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tx := txhttp.Resolve(r.Context(), nil)
		if _, err := tx.CreateApp(r.Context(), deploydb.CreateAppParams{Name: "lost"}); err != nil {
			t.Error(err)
		}
		// A failed statement the handler ignores aborts the transaction.
		_, _ = tx.Conn().Exec(r.Context(), "SELECT * FROM no_such_table")
		_, _ = io.WriteString(w, "all good")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "all good") {
		t.Errorf("failed commit answered %d %q", rec.Code, rec.Body.String())
	}
	if !errors.Is(seen, deploydb.ErrTxAborted) {
		t.Errorf("error handler got %v, want ErrTxAborted", seen)
	}
	if exists(t, svc, "lost") {
		t.Error("the aborted transaction's app exists")
	}
}

// A transaction that cannot begin answers 503 without running the handler.
func TestBeginFailure(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://u:p@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc := deploydb.New(pool)
	ran := false
	h := txhttp.Middleware(svc)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if ran || rec.Code != http.StatusServiceUnavailable {
		t.Errorf("unreachable server: handler ran %v, status %d; want 503 without the handler", ran, rec.Code)
	}
}

// Requests in flight at once each have their own transaction; Resolve
// falls back outside requests; nested InTx is a savepoint of the request's
// transaction; the options apply.
func TestConcurrentRequestsAndResolve(t *testing.T) {
	t.Parallel()
	svc, _ := setup(t)
	if txhttp.Resolve(context.Background(), svc) != svc {
		t.Error("Resolve outside a request did not return the fallback")
	}
	if _, ok := txhttp.FromContext(context.Background()); ok || txhttp.MarkForRollback(context.Background()) {
		t.Error("a transaction found outside a request")
	}
	const n = 3 // below the test pool's size: each request holds a connection
	var both sync.WaitGroup
	both.Add(n)
	h := txhttp.Middleware(svc, txhttp.WithTxOptions(deploydb.TxOptions{Isolation: deploydb.RepeatableRead}))(txhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		tx := txhttp.Resolve(r.Context(), svc)
		if tx == svc {
			return errors.New("Resolve returned the fallback inside a request")
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if _, err := tx.CreateApp(r.Context(), deploydb.CreateAppParams{Name: name}); err != nil {
			return err
		}
		var iso string
		if err := tx.Conn().QueryRow(r.Context(), "SELECT current_setting('transaction_isolation')").Scan(&iso); err != nil || iso != "repeatable read" {
			return fmt.Errorf("isolation %q, %v", iso, err)
		}
		// Every request has created its app before any commits: each sees
		// only its own.
		both.Done()
		both.Wait()
		var visible int
		if err := tx.Conn().QueryRow(r.Context(), "SELECT count(*) FROM apps WHERE name LIKE 'req-%'").Scan(&visible); err != nil || visible != 1 {
			return fmt.Errorf("request sees %d apps, %v", visible, err)
		}
		err := tx.InTx(r.Context(), func(sp *deploydb.Service) error {
			_, err := sp.CreateApp(r.Context(), deploydb.CreateAppParams{Name: name}) // duplicate
			return err
		})
		if !errors.Is(err, deploydb.ErrConflict) {
			return fmt.Errorf("nested duplicate: %v", err)
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	}))
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, fmt.Sprintf("/req-%d", i), nil))
			codes[i] = rec.Code
			if rec.Code != http.StatusCreated {
				t.Errorf("request %d: %d %s", i, rec.Code, rec.Body.String())
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("requests did not finish")
	}
	for i := range n {
		if !exists(t, svc, fmt.Sprintf("req-%d", i)) {
			t.Errorf("request %d's app was not committed", i)
		}
	}
}
