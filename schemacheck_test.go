package deploydb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/db/migrations"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// futureVersion is a migration version no build of this binary embeds.
const futureVersion = "29991231235959"

// execSQL runs statements on the database at dbURL.
func execSQL(t *testing.T, dbURL string, stmts ...string) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// addFutureRevision records futureVersion as applied, as a newer binary's
// migrator would.
func addFutureRevision(t *testing.T, dbURL string) {
	t.Helper()
	execSQL(t, dbURL, `INSERT INTO atlas_schema_revisions
		(version, description, type, applied, total, executed_at, execution_time, hash, operator_version)
		VALUES ('`+futureVersion+`', 'add_future_column', 2, 1, 1, now(), 1000, 'h1:future', 'deploydb newer')`)
}

// withParam adds a connection parameter to a postgres:// URL.
func withParam(t *testing.T, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// openWith opens dbURL with check, closing the Service at once when it
// opens; it returns Open's error.
func openWith(t *testing.T, dbURL string, check deploydb.SchemaCheck) error {
	t.Helper()
	svc, err := deploydb.Open(ctxT(t), dbURL, deploydb.WithSchemaCheck(check))
	if err == nil {
		svc.Close()
	}
	return err
}

// schemaError asserts that err is a *SchemaError matching
// ErrSchemaMismatch and no other sentinel, and returns it.
func schemaError(t *testing.T, err error) *deploydb.SchemaError {
	t.Helper()
	var se *deploydb.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, deploydb.ErrSchemaMismatch) {
		t.Fatalf("err = %v, want a *SchemaError matching ErrSchemaMismatch", err)
	}
	for _, s := range allSentinels {
		if s != deploydb.ErrSchemaMismatch && errors.Is(err, s) {
			t.Errorf("the schema error also matches %v", s)
		}
	}
	return se
}

// sameVersions compares version lists, nil and empty alike.
func sameVersions(got, want []string) bool {
	return len(got) == len(want) && (len(got) == 0 || slices.Equal(got, want))
}

// checkLists asserts a SchemaError's lists, and that the error text names
// every missing and unknown version.
func checkLists(t *testing.T, se *deploydb.SchemaError, applied, missing, unknown []string) {
	t.Helper()
	if !sameVersions(se.Applied, applied) || !sameVersions(se.Missing, missing) || !sameVersions(se.Unknown, unknown) {
		t.Errorf("applied %v missing %v unknown %v, want %v %v %v", se.Applied, se.Missing, se.Unknown, applied, missing, unknown)
	}
	for _, v := range append(slices.Clone(missing), unknown...) {
		if !strings.Contains(se.Error(), v) {
			t.Errorf("error text does not name %s: %s", v, se.Error())
		}
	}
}

// notApplied returns the versions db.Inspect reports as neither applied
// nor covered by a baseline, and the unknown ones: the migrator's view,
// which the schema check must share.
func notApplied(t *testing.T, dbURL string) (missing, unknown []string) {
	t.Helper()
	rep, err := db.Inspect(ctxT(t), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Files {
		switch f.State {
		case db.StateApplied, db.StateBaseline, db.StateModified:
		case db.StateUnknown:
			unknown = append(unknown, f.Version)
		default:
			missing = append(missing, f.Version)
		}
	}
	return missing, unknown
}

// TestOpenSchemaCheck opens databases in every migration state with every
// check: what is refused, what the error names, and that the check agrees
// with the migrator's status report on every database.
func TestOpenSchemaCheck(t *testing.T) {
	t.Parallel()
	vs := migrations.Versions()
	if len(vs) < 2 {
		t.Fatalf("need two migrations, have %v", vs)
	}
	last := vs[len(vs)-1]
	type want struct {
		refused                   map[deploydb.SchemaCheck]bool
		applied, missing, unknown []string
	}
	exactOnly := map[deploydb.SchemaCheck]bool{deploydb.SchemaExact: true}
	refusedBoth := map[deploydb.SchemaCheck]bool{deploydb.SchemaExact: true, deploydb.SchemaAllowNewer: true}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
		want  want
	}{
		{"never migrated", func(t *testing.T) string { return pgtest.EmptyURL(t) }, want{refusedBoth, nil, vs, nil}},
		{"first migration only", func(t *testing.T) string { return pgtest.MigrateTo(t, vs[0]) },
			want{refusedBoth, vs[:1], vs[1:], nil}},
		{"fully migrated", func(t *testing.T) string { return pgtest.URL(t) }, want{nil, vs, nil, nil}},
		{"newer unknown version", func(t *testing.T) string {
			u := pgtest.URL(t)
			addFutureRevision(t, u)
			return u
		}, want{exactOnly, vs, nil, []string{futureVersion}}},
		{"behind and newer", func(t *testing.T) string {
			u := pgtest.MigrateTo(t, vs[0])
			addFutureRevision(t, u)
			return u
		}, want{refusedBoth, vs[:1], vs[1:], []string{futureVersion}}},
		// The last file stopped after its first statement, as a txmode
		// none file that failed or was interrupted leaves it.
		{"last file partial", func(t *testing.T) string {
			u := pgtest.URL(t)
			execSQL(t, u, `UPDATE atlas_schema_revisions SET applied = 1, total = 3, error = 'canceling statement due to lock timeout',
				error_stmt = 'CREATE INDEX CONCURRENTLY x_idx ON apps (name)' WHERE version = '`+last+`'`)
			return u
		}, want{refusedBoth, vs[:len(vs)-1], []string{last}, nil}},
		// A baseline revision at the last version covers the earlier ones,
		// which have no row.
		{"baseline", func(t *testing.T) string {
			u := pgtest.URL(t)
			execSQL(t, u, `DELETE FROM atlas_schema_revisions`)
			if _, err := db.Baseline(ctxT(t), u, last, db.WithForce()); err != nil {
				t.Fatal(err)
			}
			return u
		}, want{nil, vs, nil, nil}},
		// The Atlas CLI's bookkeeping row is not a migration.
		{"atlas cloud identifier row", func(t *testing.T) string {
			u := pgtest.URL(t)
			execSQL(t, u, `INSERT INTO atlas_schema_revisions
				(version, description, type, applied, total, executed_at, execution_time, hash, operator_version)
				VALUES ('.atlas_cloud_identifier', 'd0b5c8a4', 2, 0, 0, now(), 0, '', 'Atlas CLI v0.12.0')`)
			return u
		}, want{nil, vs, nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.setup(t)
			missing, unknown := notApplied(t, u)
			if !sameVersions(missing, tc.want.missing) || !sameVersions(unknown, tc.want.unknown) {
				t.Fatalf("setup: db.Inspect reports missing %v unknown %v, want %v %v", missing, unknown, tc.want.missing, tc.want.unknown)
			}
			for _, check := range []deploydb.SchemaCheck{deploydb.SchemaExact, deploydb.SchemaAllowNewer, deploydb.SchemaSkip} {
				err := openWith(t, u, check)
				if !tc.want.refused[check] {
					if err != nil {
						t.Errorf("%s: %v, want it opened", check, err)
					}
					continue
				}
				se := schemaError(t, err)
				if se.Check != check || se.Schema != "public" || se.Migrated != (tc.name != "never migrated") {
					t.Errorf("%s: Check %s Schema %q Migrated %v", check, se.Check, se.Schema, se.Migrated)
				}
				checkLists(t, se, tc.want.applied, tc.want.missing, tc.want.unknown)
			}
		})
	}
}

// The error text says what the database lacks or has too much of.
func TestSchemaErrorText(t *testing.T) {
	t.Parallel()
	vs := migrations.Versions()
	for _, tc := range []struct {
		name string
		se   deploydb.SchemaError
		want []string
	}{
		{"never migrated", deploydb.SchemaError{Schema: "public", Missing: vs},
			[]string{"never migrated", `schema "public"`, strings.Join(vs, ", "), "migrate up"}},
		{"behind", deploydb.SchemaError{Migrated: true, Applied: vs[:1], Missing: vs[1:]},
			[]string{"behind", strings.Join(vs[1:], ", ") + " are not applied", "applied: " + vs[0]}},
		{"ahead", deploydb.SchemaError{Migrated: true, Applied: vs, Unknown: []string{futureVersion}},
			[]string{"does not know: " + futureVersion, "WithSchemaCheck(SchemaAllowNewer)"}},
	} {
		msg := tc.se.Error()
		if !strings.HasPrefix(msg, "deploydb: schema mismatch: ") {
			t.Errorf("%s: %q", tc.name, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", tc.name, msg, w)
			}
		}
	}
}

// The check reads the revisions of the connection's current schema, where
// the migrator records them, whatever the search_path.
func TestOpenSchemaCheckSearchPath(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	base := pgtest.EmptyURL(t)
	execSQL(t, base, `CREATE SCHEMA tenant`, `CREATE SCHEMA other`)
	tenant := withParam(t, base, "search_path", "tenant")
	if err := db.Migrate(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := openWith(t, tenant, deploydb.SchemaExact); err != nil {
		t.Errorf("search_path=tenant, migrated there: %v", err)
	}
	// public was never migrated.
	se := schemaError(t, openWith(t, base, deploydb.SchemaExact))
	if se.Migrated || se.Schema != "public" {
		t.Errorf("public: Migrated %v Schema %q, want never migrated in public", se.Migrated, se.Schema)
	}
	// Unqualified, atlas_schema_revisions resolves to tenant's table; but
	// the current schema is other, which the migrator would migrate.
	otherFirst := withParam(t, base, "search_path", "other,tenant")
	if missing, _ := notApplied(t, otherFirst); !sameVersions(missing, migrations.Versions()) {
		t.Fatalf("db.Inspect with search_path=other,tenant: missing %v, want every version", missing)
	}
	se = schemaError(t, openWith(t, otherFirst, deploydb.SchemaExact))
	if se.Migrated || se.Schema != "other" || !sameVersions(se.Missing, migrations.Versions()) {
		t.Errorf("search_path=other,tenant: Migrated %v Schema %q Missing %v", se.Migrated, se.Schema, se.Missing)
	}
	// A search_path that names no existing schema.
	se = schemaError(t, openWith(t, withParam(t, base, "search_path", "nosuchschema"), deploydb.SchemaExact))
	if se.Migrated || se.Schema != "" {
		t.Errorf("search_path=nosuchschema: Migrated %v Schema %q", se.Migrated, se.Schema)
	}
}

// WithAutoMigrate runs before the check: an empty database opens.
func TestOpenSchemaCheckAfterAutoMigrate(t *testing.T) {
	t.Parallel()
	u := pgtest.EmptyURL(t)
	svc, err := deploydb.Open(ctxT(t), u, deploydb.WithAutoMigrate(db.Migrator()))
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()
}

// A check that is none of the constants is refused before anything is
// sent: the address below accepts no connection.
func TestWithSchemaCheckInvalid(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	for _, c := range []deploydb.SchemaCheck{-1, 3, 42} {
		_, err := deploydb.Open(ctx, "postgres://u@127.0.0.1:1/x?connect_timeout=1", deploydb.WithSchemaCheck(c))
		if !errors.Is(err, deploydb.ErrInvalidArgument) || errors.Is(err, deploydb.ErrUnavailable) {
			t.Errorf("WithSchemaCheck(%d): %v, want ErrInvalidArgument", int(c), err)
		}
		if !strings.Contains(fmt.Sprint(err), c.String()) {
			t.Errorf("WithSchemaCheck(%d): %v does not name the value", int(c), err)
		}
	}
	pool := pgtest.Pool(t)
	if err := deploydb.CheckSchema(ctx, pool, 7); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("CheckSchema(7): %v, want ErrInvalidArgument", err)
	}
}

// CheckSchema is Open's check for a pool New wraps.
func TestCheckSchema(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pool := pgtest.Pool(t)
	if err := deploydb.CheckSchema(ctx, pool, deploydb.SchemaExact); err != nil {
		t.Fatalf("migrated: %v", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM atlas_schema_revisions WHERE version = $1`, migrations.Versions()[0]); err != nil {
		t.Fatal(err)
	}
	se := schemaError(t, deploydb.CheckSchema(ctx, pool, deploydb.SchemaAllowNewer))
	checkLists(t, se, migrations.Versions()[1:], migrations.Versions()[:1], nil)
	if err := deploydb.CheckSchema(ctx, pool, deploydb.SchemaSkip); err != nil {
		t.Errorf("SchemaSkip: %v", err)
	}
	// New checks nothing.
	deploydb.New(pool).Close()
}

// A role that may not read the revisions table cannot be checked: Open
// refuses it with ErrSchemaMismatch and says how to fix it. Reading the
// four columns db.EnsureRoles grants is enough for the check.
func TestOpenSchemaCheckWithoutReadPrivilege(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	role := fmt.Sprintf("dd_noread_%d", time.Now().UnixNano()%1_000_000_000)
	execSQL(t, u, "CREATE ROLE "+role+" LOGIN PASSWORD 'noread-pw'") // servers with password auth (Docker) need one
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP OWNED BY "+role)
		_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.User = url.UserPassword(role, "noread-pw")
	asRole := parsed.String()

	err = openWith(t, asRole, deploydb.SchemaExact)
	if !errors.Is(err, deploydb.ErrSchemaMismatch) || !strings.Contains(fmt.Sprint(err), "SchemaSkip") {
		t.Fatalf("Open as a role that may not read the revisions table: %v, want ErrSchemaMismatch", err)
	}
	for _, s := range allSentinels {
		if s != deploydb.ErrSchemaMismatch && errors.Is(err, s) {
			t.Errorf("the error also matches %v", s)
		}
	}
	if err := openWith(t, asRole, deploydb.SchemaSkip); err != nil {
		t.Errorf("SchemaSkip: %v", err)
	}
	execSQL(t, u, "GRANT SELECT (version, type, applied, total) ON atlas_schema_revisions TO "+role)
	if err := openWith(t, asRole, deploydb.SchemaExact); err != nil {
		t.Errorf("with SELECT on version, type, applied and total: %v", err)
	}
}

// Open's check runs under the connect timeout: a revisions table that
// another session holds locked makes Open fail instead of wait, while the
// caller's context is still live.
func TestOpenSchemaCheckBoundedByConnectTimeout(t *testing.T) {
	t.Parallel()
	// Far beyond the connect timeout, so that a check that waits fails
	// the test without holding it for long.
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	u := pgtest.URL(t)
	holder, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE atlas_schema_revisions IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	svc, err := deploydb.Open(ctx, u, deploydb.WithConnectTimeout(time.Second))
	if err == nil {
		svc.Close()
		t.Fatal("Open read a table locked in ACCESS EXCLUSIVE mode")
	}
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Errorf("Open with the revisions table locked: %v (test context: %v), want the connect timeout's deadline", err, ctx.Err())
	}
	if err := openWith(t, u, deploydb.SchemaSkip); err != nil {
		t.Errorf("SchemaSkip reads nothing, so the lock does not matter: %v", err)
	}
}

// Open refuses a database that was never migrated, naming the versions it
// lacks; after the migrations ran, it opens.
func ExampleSchemaError() {
	ctx := context.Background()
	url := pgtest.ExampleDatabase(false) // in a service: os.Getenv("DATABASE_URL")

	_, err := deploydb.Open(ctx, url)
	var se *deploydb.SchemaError
	if errors.As(err, &se) {
		fmt.Println("refused:", errors.Is(err, deploydb.ErrSchemaMismatch))
		fmt.Println("migrated:", se.Migrated)
		fmt.Println("lacks every embedded version:", slices.Equal(se.Missing, migrations.Versions()))
	}

	if err := db.Migrate(ctx, url); err != nil { // or: deploydb migrate up
		log.Fatal(err)
	}
	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	fmt.Println("opened after migrating")
	// Output:
	// refused: true
	// migrated: false
	// lacks every embedded version: true
	// opened after migrating
}
