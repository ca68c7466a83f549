package pgtest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/deploydb/deploydb/db"
)

// MigrateTo returns the URL of a new database on the shared server holding
// the migrations up to and including version, and none after it: a test
// seeds rows as they were at that version, then migrates on and checks what
// happened to them. opts go to db.Migrate after db.WithTarget(version); pass
// db.WithDir to use another directory than the embedded one. The database is
// dropped when the test ends.
func MigrateTo(t testing.TB, version string, opts ...db.MigrateOption) string {
	t.Helper()
	url := EmptyURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.Migrate(ctx, url, append([]db.MigrateOption{db.WithTarget(version)}, opts...)...); err != nil {
		t.Fatalf("pgtest: migrate to %s: %v", version, err)
	}
	return url
}

// MigrationFile is one file of a test migration directory.
type MigrationFile struct {
	Name string // e.g. "20260101000000_create_t.sql"
	SQL  string
}

// MigrationDir writes files into a new temporary directory, hashes it into
// atlas.sum the way `atlas migrate hash` does, and returns the directory
// and its path. Tests use it to run the migrator, the binary or the Atlas
// CLI on migrations of their own.
func MigrationDir(t testing.TB, files ...MigrationFile) (*migrate.LocalDir, string) {
	t.Helper()
	path := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(path, f.Name), []byte(f.SQL), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Rehash(t, path), path
}

// Rehash rewrites atlas.sum of the migration directory at path to match its
// files (after a test edited one) and returns the directory.
func Rehash(t testing.TB, path string) *migrate.LocalDir {
	t.Helper()
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
	return dir
}

// EmbeddedMigrationFiles returns the embedded migrations as MigrationFiles,
// to build test directories that extend them.
func EmbeddedMigrationFiles(t testing.TB) []MigrationFile {
	t.Helper()
	files, err := db.Dir().Files()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]MigrationFile, len(files))
	for i, f := range files {
		out[i] = MigrationFile{Name: f.Name(), SQL: string(f.Bytes())}
	}
	return out
}

// SchemaDiff inspects the current schema of the databases at urlA and urlB
// with the Atlas library, ignoring the revisions table, and returns the
// statements that would turn A's schema into B's: none when the two are
// identical.
func SchemaDiff(t testing.TB, urlA, urlB string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, closeA := inspect(t, ctx, urlA)
	defer closeA()
	b, closeB := inspect(t, ctx, urlB)
	defer closeB()
	drv, err := postgres.Open(a.db)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := drv.SchemaDiff(a.schema, b.schema)
	if err != nil {
		t.Fatalf("pgtest: diff schemas: %v", err)
	}
	if len(changes) == 0 {
		return nil
	}
	plan, err := drv.PlanChanges(ctx, "diff", changes)
	if err != nil {
		t.Fatalf("pgtest: plan schema diff: %v", err)
	}
	out := make([]string, len(plan.Changes))
	for i, c := range plan.Changes {
		out[i] = c.Cmd
	}
	return out
}

type inspected struct {
	db     *sql.DB
	schema *schema.Schema
}

func inspect(t testing.TB, ctx context.Context, url string) (inspected, func()) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgtest: parse URL: %v", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	drv, err := postgres.Open(sqlDB)
	if err != nil {
		sqlDB.Close()
		t.Fatal(err)
	}
	var name string
	if err := sqlDB.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&name); err != nil {
		sqlDB.Close()
		t.Fatal(err)
	}
	s, err := drv.InspectSchema(ctx, name, &schema.InspectOptions{Exclude: []string{db.RevisionsTable}})
	if err != nil {
		sqlDB.Close()
		t.Fatalf("pgtest: inspect %s: %v", Redact(url), err)
	}
	return inspected{db: sqlDB, schema: s}, func() { sqlDB.Close() }
}

// SchemaFingerprint describes the current schema of the database at url
// from the PostgreSQL catalogs, independently of Atlas: every column (type,
// nullability, default, identity), constraint, index (with its validity),
// sequence and comment, one sorted line each, the revisions table left
// out. Two databases with the same fingerprint have the same schema.
func SchemaFingerprint(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, fingerprintQuery, db.RevisionsTable)
	if err != nil {
		t.Fatalf("pgtest: read catalog: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("pgtest: read catalog: %v", err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

const fingerprintQuery = `
WITH rel AS (
	SELECT c.oid, c.relname, c.relkind
	FROM pg_class c
	WHERE c.relnamespace = current_schema()::regnamespace AND NOT starts_with(c.relname, $1)
)
SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s',
	rel.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
	coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity, a.attgenerated)
FROM rel
JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE rel.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT format('constraint %s.%s %s', rel.relname, con.conname, pg_get_constraintdef(con.oid))
FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
UNION ALL
SELECT format('index %s valid=%s', pg_get_indexdef(i.indexrelid), i.indisvalid)
FROM pg_index i JOIN rel ON rel.oid = i.indrelid
UNION ALL
SELECT format('relation %s kind=%s comment=%s', rel.relname, rel.relkind, coalesce(obj_description(rel.oid, 'pg_class'), ''))
FROM rel
UNION ALL
SELECT format('comment %s.%s %s', rel.relname, a.attname, col_description(rel.oid, a.attnum))
FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE col_description(rel.oid, a.attnum) IS NOT NULL`

// RevisionRows returns the number of migration rows in the revisions table
// of the database at url (0 when the table does not exist).
func RevisionRows(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('atlas_schema_revisions') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatalf("pgtest: look for revisions table: %v", err)
	}
	if !exists {
		return 0
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM atlas_schema_revisions WHERE version <> '.atlas_cloud_identifier'`).Scan(&n); err != nil {
		t.Fatalf("pgtest: count revisions: %v", err)
	}
	return n
}
