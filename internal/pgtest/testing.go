package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// startTimeout bounds starting the shared server, image pull excluded
// (ensureImage has its own bound).
const startTimeout = 5 * time.Minute

var shared struct {
	once   sync.Once
	mu     sync.Mutex // guards server for Main's close
	server *Server
	err    error
}

// SharedServer returns the process-wide server, starting it on first use
// with Start. A test that cannot get one fails (t.Fatal) with Start's
// error, which says how to provide PostgreSQL; it is never skipped. The
// server is closed by Main.
func SharedServer(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		s, err := Start(ctx)
		shared.mu.Lock()
		shared.server, shared.err = s, err
		shared.mu.Unlock()
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.server
}

// Main runs the package's tests and then closes the shared server before
// exiting with the tests' status. Call it from TestMain in every package
// that uses SharedServer, URL, Pool or EmptyURL:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without it a docker provider's container outlives the tests.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	s := shared.server
	shared.mu.Unlock()
	if s != nil {
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// URL returns the URL of a new database holding all migrations, cloned
// from the shared server's migrated template. The database is dropped when
// the test ends.
func URL(t testing.TB) string {
	t.Helper()
	s := SharedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tpl, err := s.MigratedTemplate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return createForTest(t, s, tpl)
}

// EmptyURL returns the URL of a new, empty database (for tests of the
// migrator itself). The database is dropped when the test ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return createForTest(t, SharedServer(t), "")
}

// Pool returns a pgx pool connected to a new migrated database (see URL).
// The pool is closed, and the database dropped, when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect to test database: %v", err)
	}
	// Registered after URL's cleanup, so it runs first.
	t.Cleanup(pool.Close)
	return pool
}

func createForTest(t testing.TB, s *Server, template string) string {
	t.Helper()
	name := newDatabaseName("deploydb_t")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, err := s.CreateDatabase(ctx, name, template)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return url
}
