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
	once     sync.Once
	mu       sync.Mutex // guards server for Main's close
	server   *Server
	err      error
	examples []string // databases made by ExampleDatabase
}

// SharedServer returns the process-wide server, starting it on first use
// with Start. A test that cannot get one fails (t.Fatal) with Start's
// error, which says how to provide PostgreSQL; it is never skipped. The
// server is closed by Main.
func SharedServer(t testing.TB) *Server {
	t.Helper()
	s, err := sharedServer()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sharedServer starts the process-wide server once.
func sharedServer() (*Server, error) {
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		s, err := Start(ctx)
		shared.mu.Lock()
		shared.server, shared.err = s, err
		shared.mu.Unlock()
	})
	return shared.server, shared.err
}

// ExampleDatabase returns the URL of a new database on the shared server,
// migrated when migrated is true, for runnable godoc examples, which have
// no *testing.T. It panics when no server can be had (the example then
// fails with Start's message). Main drops these databases before it closes
// the server.
func ExampleDatabase(migrated bool) string {
	s, err := sharedServer()
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tpl := ""
	if migrated {
		if tpl, err = s.MigratedTemplate(ctx); err != nil {
			panic(err)
		}
	}
	name := newDatabaseName("deploydb_ex")
	url, err := s.CreateDatabase(ctx, name, tpl)
	if err != nil {
		panic(err)
	}
	shared.mu.Lock()
	shared.examples = append(shared.examples, name)
	shared.mu.Unlock()
	return url
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
	s, examples := shared.server, shared.examples
	shared.mu.Unlock()
	if s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for _, name := range examples {
			if err := s.DropDatabase(ctx, name); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
		cancel()
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
