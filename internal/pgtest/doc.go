// Package pgtest owns where deploydb's tests and dev commands get
// PostgreSQL: it starts (or connects to) a server, keeps one migrated
// template database per migration set on it, and hands each test a fresh
// clone of that template. Only tests and dev commands import it.
//
// # Providers
//
// Start picks a provider by the DEPLOYDB_PG_PROVIDER environment variable:
//
//   - url: TEST_DATABASE_URL names an existing server whose user may CREATE
//     DATABASE (e.g. postgres://postgres:secret@localhost:5432/postgres).
//     Nothing is started; several test processes may share the server.
//   - docker: a container from DEPLOYDB_PG_IMAGE (default
//     postgres:15-alpine), run by testcontainers-go's postgres module and
//     removed at Close. Readiness is the log line "database system is ready
//     to accept connections" seen twice (the image's init server, then the
//     real one). testcontainers runs out of process, in the command
//     internal/pgtest/pgcontainer (a module of its own, so testcontainers
//     and the Docker client are not requirements of deploydb's module),
//     built once with the go command into the user cache directory; it
//     removes the container when pgtest closes its standard input, which
//     also happens when the test process dies.
//   - local: a throwaway cluster made with the installed initdb, pg_ctl and
//     postgres (found on PATH, then in the newest /usr/lib/postgresql/N/bin),
//     in a temp dir, listening on a free 127.0.0.1 port with durability off.
//     When the process runs as root, the cluster runs as the postgres user
//     (or nobody). Close stops it and removes the directory.
//   - auto (the default): url if TEST_DATABASE_URL is set; otherwise docker
//     if a Docker engine answers a quick ping and the container starts;
//     otherwise local.
//
// When no provider works, Start's error (and so every test's failure) says
// how to get one: set TEST_DATABASE_URL, start Docker, or install the
// PostgreSQL server binaries. Tests fail; they are never skipped.
//
// On a machine that is itself a container (such as CI), testcontainers
// needs TESTCONTAINERS_HOST_OVERRIDE=localhost to reach published ports,
// and TESTCONTAINERS_RYUK_DISABLED=true when its ryuk image cannot be
// pulled. Without registry access, .ci/pg-image.sh builds an equivalent
// image from the host's PostgreSQL 15 (deploydb/postgres:15-offline):
//
//	.ci/pg-image.sh
//	DEPLOYDB_PG_PROVIDER=docker DEPLOYDB_PG_IMAGE=deploydb/postgres:15-offline \
//	TESTCONTAINERS_HOST_OVERRIDE=localhost TESTCONTAINERS_RYUK_DISABLED=true go test ./...
//
// Start prints one line to standard error per process naming the provider
// and address (never a password); Server.String is the printable form of a
// server, with its password redacted.
//
// # Template databases
//
// MigratedTemplate applies package db's migrations once into a database
// named deploydb_tpl_ followed by 12 hex digits of a digest of
// db.Checksum, so a server keeps one template per migration set and later
// runs reuse it. Creation takes a PostgreSQL advisory lock on the
// maintenance database, migrates a temporary database and renames it into
// place only after the migrations succeed, so processes sharing a server
// (go test ./... runs packages in parallel) never see a half-built
// template. The template is then closed to connections, which keeps
// CREATE DATABASE ... TEMPLATE from failing because someone is connected to
// it; clones are still serialized within a process and retried briefly on
// SQLSTATE 55006.
//
// Each test database is a clone named deploydb_t_<pid>_<counter>_<random>,
// dropped (WITH (FORCE), so PostgreSQL 13 or newer) when the test ends. On
// a shared server, clones of killed test runs and templates of old
// migration sets stay behind; drop them by hand (a template first needs
// ALTER DATABASE ... IS_TEMPLATE false).
//
// # Use in tests
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.Pool(t) // fresh migrated database, cleaned up after the test
//		...
//	}
//
// # Migrations in tests
//
// MigrateTo gives a fresh database migrated up to a chosen version (not
// from the template), so a test can seed rows as they were at that version,
// migrate to the head and check what happened to them. MigrationDir writes a
// migration directory of the test's own, hashed into atlas.sum, for tests of
// the migrator, the binary (--dir) or the Atlas CLI; Rehash rewrites the sum
// after a test edits a file. SchemaDiff (the Atlas library's diff) and
// SchemaFingerprint (one line per column, constraint, index and comment,
// read from the catalogs) compare two databases' schemas; RevisionRows
// counts the recorded migrations.
//
// pgtest imports package db, so tests inside package db that use pgtest
// must be in the external test package db_test.
package pgtest
