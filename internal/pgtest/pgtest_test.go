package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { Main(m) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func queryOne[T any](t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := q.QueryRow(testContext(t), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// dropTemplate removes a template database made by a test.
func dropTemplate(t *testing.T, s *Server, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE false"); err != nil {
		t.Errorf("unmark template %s: %v", name, err)
	}
	if err := s.DropDatabase(ctx, name); err != nil {
		t.Error(err)
	}
}

// otherProcess returns a second Server on the shared server's admin URL,
// standing in for another test process that shares it.
func otherProcess(t *testing.T) *Server {
	t.Helper()
	base := SharedServer(t)
	s := newServer(base.provider, base.admin, "second handle", nil)
	if err := s.connect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStartPicksProvider(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	want := os.Getenv(EnvProvider)
	switch {
	case want == "" || want == "auto":
		if os.Getenv(EnvURL) != "" {
			want = ProviderURL
		} else {
			want = s.Provider() // docker or local, depending on the machine
			if want != ProviderDocker && want != ProviderLocal {
				t.Fatalf("auto mode without %s chose %q", EnvURL, want)
			}
		}
	}
	if got := s.Provider(); got != want {
		t.Fatalf("Provider() = %q, want %q", got, want)
	}
	t.Logf("provider %s: %s", s.Provider(), s)

	conn := connect(t, s.AdminURL())
	if v := queryOne[int](t, conn, `SELECT current_setting('server_version_num')::int`); v < 130000 {
		t.Errorf("server_version_num = %d; pgtest needs PostgreSQL 13 or newer", v)
	}
	if pw := conn.Config().Password; pw != "" && strings.Contains(s.String(), pw) {
		t.Errorf("String() shows the password: %s", s)
	}
	if s.Provider() != ProviderURL {
		if got := queryOne[string](t, conn, `SHOW fsync`); got != "off" {
			t.Errorf("fsync = %s, want off", got)
		}
	}
}

func TestURLIsMigratedClone(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	url := URL(t)
	conn := connect(t, url)

	db := queryOne[string](t, conn, `SELECT current_database()`)
	if !strings.HasPrefix(db, "deploydb_t_") {
		t.Errorf("current_database() = %q, want a deploydb_t_ clone", db)
	}
	tpl, err := s.MigratedTemplate(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tpl, TemplatePrefix) || len(tpl) != len(TemplatePrefix)+12 {
		t.Errorf("template name %q, want %s + 12 hex digits", tpl, TemplatePrefix)
	}
	if !queryOne[bool](t, conn, `SELECT to_regclass('public.atlas_schema_revisions') IS NOT NULL`) {
		t.Fatal("clone has no atlas_schema_revisions table: migrations did not run")
	}
	if n := queryOne[int](t, conn, `SELECT count(*) FROM public.atlas_schema_revisions`); n == 0 {
		t.Error("clone records no applied migration")
	}
	// The clone is a copy of the template, so it holds the same tables.
	tables := queryOne[int](t, conn,
		`SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'atlas_schema_revisions'`)
	if tables == 0 {
		t.Error("clone has no application tables")
	}
}

func TestClonesAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := Pool(t), Pool(t)
	ctx := testContext(t)
	dbA := queryOne[string](t, a, `SELECT current_database()`)
	dbB := queryOne[string](t, b, `SELECT current_database()`)
	if dbA == dbB {
		t.Fatalf("two Pool calls share database %s", dbA)
	}
	if _, err := a.Exec(ctx, `CREATE TABLE pgtest_probe (v int); INSERT INTO pgtest_probe VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if queryOne[bool](t, b, `SELECT to_regclass('public.pgtest_probe') IS NOT NULL`) {
		t.Error("a table created in one clone is visible in the other")
	}
	if v := queryOne[int](t, a, `SELECT v FROM pgtest_probe`); v != 42 {
		t.Errorf("probe = %d, want 42", v)
	}
	// And the template was not touched: a new clone lacks the table too.
	c := Pool(t)
	if queryOne[bool](t, c, `SELECT to_regclass('public.pgtest_probe') IS NOT NULL`) {
		t.Error("a table created in a clone leaked into the template")
	}
}

func TestEmptyURL(t *testing.T) {
	t.Parallel()
	conn := connect(t, EmptyURL(t))
	if n := queryOne[int](t, conn, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 0 {
		t.Errorf("empty database has %d tables in public", n)
	}
}

func TestCreateAndDropDatabase(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	ctx := testContext(t)
	name := newDatabaseName("deploydb_t")
	url, err := s.CreateDatabase(ctx, name, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), name) })
	if ok, err := s.databaseExists(ctx, name); err != nil || !ok {
		t.Fatalf("after CreateDatabase: exists = %v, %v", ok, err)
	}
	if _, err := s.CreateDatabase(ctx, name, ""); err == nil {
		t.Error("creating an existing database succeeded")
	}

	// A session still connected does not stop the drop (WITH (FORCE)).
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := s.DropDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.databaseExists(ctx, name); err != nil || ok {
		t.Fatalf("after DropDatabase: exists = %v, %v", ok, err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("session on the dropped database still works")
	}
	if err := s.DropDatabase(ctx, name); err != nil {
		t.Errorf("dropping a missing database: %v", err)
	}
}

func TestDatabaseNameLimits(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	ctx := testContext(t)
	for _, name := range []string{"", strings.Repeat("x", maxIdentifierLen+1)} {
		if _, err := s.CreateDatabase(ctx, name, ""); err == nil {
			t.Errorf("CreateDatabase(%q) succeeded", name)
		}
	}
	// Names are quoted, not pasted into SQL.
	odd := `deploydb_t_"; DROP DATABASE postgres; --` + randomHex(2)
	if _, err := s.CreateDatabase(ctx, odd, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DropDatabase(ctx, odd); err != nil {
		t.Fatal(err)
	}
}

func TestCloneWaitsForTemplateToBeFree(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	ctx := testContext(t)
	src := newDatabaseName("deploydb_t")
	srcURL, err := s.CreateDatabase(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), src) })
	busy, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = busy.Close(context.Background())
		close(released)
	}()

	clone := newDatabaseName("deploydb_t")
	start := time.Now()
	if _, err := s.CreateDatabase(ctx, clone, src); err != nil {
		t.Fatalf("clone of a template in use, released after 300ms: %v", err)
	}
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), clone) })
	<-released
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("clone finished after %s, before the template was released", waited)
	}
}

func TestTemplateIsReused(t *testing.T) {
	t.Parallel()
	s := SharedServer(t)
	ctx := testContext(t)
	first, err := s.MigratedTemplate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.MigratedTemplate(ctx)
	if err != nil || again != first {
		t.Fatalf("second MigratedTemplate = %q, %v; want %q", again, err, first)
	}

	// Another process finds the template and does not migrate again.
	other := otherProcess(t)
	other.migrate = func(context.Context, string) error {
		t.Error("template rebuilt although it exists")
		return errors.New("unexpected migrate")
	}
	got, err := other.MigratedTemplate(ctx)
	if err != nil || got != first {
		t.Fatalf("other process MigratedTemplate = %q, %v; want %q", got, err, first)
	}

	conn := connect(t, s.AdminURL())
	var isTemplate, allowConn bool
	err = conn.QueryRow(ctx, `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1`, first).
		Scan(&isTemplate, &allowConn)
	if err != nil {
		t.Fatal(err)
	}
	if !isTemplate || allowConn {
		t.Errorf("template flags: datistemplate=%v datallowconn=%v, want true, false", isTemplate, allowConn)
	}
	if n := queryOne[int](t, conn, `SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)`,
		first+"_build_"); n != 0 {
		t.Errorf("%d temporary build databases left behind", n)
	}
}

// TestTemplateBuiltOnceAcrossProcesses races several server handles (as if
// from separate test processes) to build the same new template.
func TestTemplateBuiltOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	const handles = 4
	checksum := "pgtest-race-" + randomHex(8)
	var migrations atomic.Int32
	servers := make([]*Server, handles)
	for i := range servers {
		servers[i] = otherProcess(t)
		servers[i].checksum = func() string { return checksum }
		servers[i].migrate = func(ctx context.Context, url string) error {
			migrations.Add(1)
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			time.Sleep(200 * time.Millisecond) // widen the window for a race
			_, err = conn.Exec(ctx, `CREATE TABLE raced (id int)`)
			return err
		}
	}

	names := make([]string, handles)
	errs := make([]error, handles)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, s := range servers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			names[i], errs[i] = s.MigratedTemplate(testContext(t))
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	t.Cleanup(func() { dropTemplate(t, servers[0], servers[0].templateName()) })

	for i := range servers {
		if errs[i] != nil {
			t.Fatalf("handle %d: %v", i, errs[i])
		}
		if names[i] != names[0] {
			t.Fatalf("handles disagree on the template: %q vs %q", names[i], names[0])
		}
	}
	if n := migrations.Load(); n != 1 {
		t.Errorf("migrations ran %d times, want 1", n)
	}
	url, err := servers[1].CreateDatabase(testContext(t), newDatabaseName("deploydb_t"), names[0])
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	t.Cleanup(func() {
		_ = conn.Close(context.Background())
		_ = servers[1].DropDatabase(context.Background(), conn.Config().Database)
	})
	if !queryOne[bool](t, conn, `SELECT to_regclass('public.raced') IS NOT NULL`) {
		t.Error("clone of the raced template lacks the migrated table")
	}
}

func TestTemplateFailedMigrationLeavesNothing(t *testing.T) {
	t.Parallel()
	s := otherProcess(t)
	checksum := "pgtest-fail-" + randomHex(8)
	s.checksum = func() string { return checksum }
	s.migrate = func(context.Context, string) error { return errors.New("boom") }
	ctx := testContext(t)

	if _, err := s.MigratedTemplate(ctx); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("MigratedTemplate with a failing migration: err = %v", err)
	}
	name := s.templateName()
	conn := connect(t, s.AdminURL())
	if n := queryOne[int](t, conn, `SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)`, name); n != 0 {
		t.Fatalf("a failed build left %d databases named %s*", n, name)
	}

	// The failure is not cached: a working migration builds it next time.
	s.migrate = func(context.Context, string) error { return nil }
	got, err := s.MigratedTemplate(ctx)
	if err != nil || got != name {
		t.Fatalf("retry: %q, %v", got, err)
	}
	dropTemplate(t, s, name)
}

// TestNoProvider checks the error every test shows when PostgreSQL cannot be
// had. Not parallel: it changes the environment.
func TestNoProvider(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv(EnvURL, "")
	savedGlob, savedPing := localBinGlob, dockerAnswers
	localBinGlob = empty + "/none/*/bin"
	dockerAnswers = func(context.Context) error { return errors.New("no engine (test)") }
	t.Cleanup(func() { localBinGlob, dockerAnswers = savedGlob, savedPing })

	for _, mode := range []string{"", "auto", "local", "url"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Setenv(EnvProvider, mode)
			s, err := Start(testContext(t))
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start found %s", s.Provider())
			}
			if !errors.Is(err, ErrNoProvider) {
				t.Errorf("error does not wrap ErrNoProvider: %v", err)
			}
			for _, hint := range []string{EnvURL, "CREATE DATABASE", "Docker", "initdb", "PostgreSQL server binaries"} {
				if !strings.Contains(err.Error(), hint) {
					t.Errorf("error lacks %q:\n%v", hint, err)
				}
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		t.Setenv(EnvProvider, "podman")
		if _, err := Start(testContext(t)); err == nil || !strings.Contains(err.Error(), "want auto, url, docker or local") {
			t.Errorf("unknown provider: err = %v", err)
		}
	})
}

func TestDockerErrorNamesTheFixes(t *testing.T) {
	t.Parallel()
	err := dockerError(errors.New("connection refused"))
	for _, want := range []string{"TESTCONTAINERS_HOST_OVERRIDE=localhost", "TESTCONTAINERS_RYUK_DISABLED=true",
		EnvImage, ".ci/pg-image.sh", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("docker error lacks %q:\n%v", want, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=xxxxx"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='se cret' dbname=db", "host=h password=xxxxx dbname=db"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ admin, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"},
		{"host=h dbname=postgres", "host=h dbname=postgres dbname='x'"},
	} {
		s := &Server{admin: tc.admin}
		if got := s.DatabaseURL("x"); got != tc.want {
			t.Errorf("DatabaseURL on %q = %q, want %q", tc.admin, got, tc.want)
		}
		cfg, err := pgxpool.ParseConfig(s.DatabaseURL("x"))
		if err != nil || cfg.ConnConfig.Database != "x" {
			t.Errorf("DatabaseURL on %q does not parse to database x: %v", tc.admin, err)
		}
	}
}

func TestCloneNamesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		n := newDatabaseName("deploydb_t")
		if seen[n] {
			t.Fatalf("duplicate name %s", n)
		}
		if len(n) > maxIdentifierLen {
			t.Fatalf("name %s is longer than %d bytes", n, maxIdentifierLen)
		}
		seen[n] = true
	}
	if want := fmt.Sprintf("deploydb_t_%d_", os.Getpid()); !strings.HasPrefix(newDatabaseName("deploydb_t"), want) {
		t.Errorf("names lack the process id prefix %s", want)
	}
}
