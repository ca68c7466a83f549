package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func columnExists(t *testing.T, url, table, column string) bool {
	t.Helper()
	var ok bool
	err := connect(t, url).QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2)`, table, column).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// refusedFiles are migration files the migrator must refuse, with the
// statement it must name.
var refusedFiles = []struct{ name, sql, stmt string }{
	{"begin without commit", "BEGIN;\nALTER TABLE a ADD COLUMN c int;\n", "BEGIN;"},
	{"begin commit then a failing statement",
		"BEGIN;\nALTER TABLE a ADD COLUMN c int;\nCOMMIT;\nALTER TABLE a ADD COLUMN d int;\nINSERT INTO missing VALUES (1);\n", "BEGIN;"},
	{"savepoint", "SAVEPOINT before_c;\nALTER TABLE a ADD COLUMN c int;\nRELEASE SAVEPOINT before_c;\n", "SAVEPOINT before_c;"},
	{"set transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nALTER TABLE a ADD COLUMN c int;\n", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;"},
	{"set lock_timeout 0", "SET lock_timeout = 0;\nALTER TABLE a ADD COLUMN c int;\n", "SET lock_timeout = 0;"},
	{"set_config statement_timeout", "ALTER TABLE a ADD COLUMN c int;\nSELECT set_config('statement_timeout', '0', true);\n",
		"SELECT set_config('statement_timeout', '0', true);"},
}

// Up refuses every pending file, before anything runs, when one of them
// holds transaction control or switches a timeout off: on an empty
// database not even the revisions table is created; on a database at the
// first version the refused file's column and the later file's table are
// absent and no revision is added. The dry run and Validate refuse it too,
// naming the file and the statement.
func TestUpRefusesBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const bad = "20260601000002_b.sql"
	for _, c := range refusedFiles {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := pgtest.MigrationDir(t,
				pgtest.MigrationFile{Name: "20260601000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
				pgtest.MigrationFile{Name: bad, SQL: c.sql},
				pgtest.MigrationFile{Name: "20260601000003_z.sql", SQL: "CREATE TABLE z (id int PRIMARY KEY);\n"},
			)
			url := pgtest.EmptyURL(t)
			refused := func(rep *db.UpReport, err error) {
				t.Helper()
				var ie *db.InvalidMigrationsError
				if !errors.As(err, &ie) || !errors.Is(err, db.ErrInvalidMigrations) || len(ie.Refused) == 0 {
					t.Fatalf("not refused: %v", err)
				}
				r := ie.Refused[0]
				if r.File != bad || r.SQL != c.stmt || len(rep.Refused) != len(ie.Refused) || len(rep.Applied) != 0 {
					t.Fatalf("refusal %+v, report %+v", r, rep)
				}
				if msg := err.Error(); !strings.Contains(msg, bad) || !strings.Contains(msg, c.stmt) ||
					!strings.Contains(msg, "nothing was executed") {
					t.Fatalf("the error does not name file and statement: %s", msg)
				}
			}

			rep, err := db.Up(ctx, url, db.WithDir(dir))
			refused(rep, err)
			if tableExists(t, url, "a") || tableExists(t, url, "atlas_schema_revisions") {
				t.Fatal("something ran on the empty database although a pending file was refused")
			}

			// At the first version, the refused file and the one after it
			// are pending.
			if _, err := db.Up(ctx, url, db.WithDir(dir), db.WithTarget("20260601000001")); err != nil {
				t.Fatal(err)
			}
			rep, err = db.Up(ctx, url, db.WithDir(dir))
			refused(rep, err)
			rep, err = db.Up(ctx, url, db.WithDir(dir), db.WithDryRun())
			refused(rep, err)
			if columnExists(t, url, "a", "c") || tableExists(t, url, "z") || pgtest.RevisionRows(t, url) != 1 {
				t.Fatalf("something of the pending files ran: column c %v, table z %v, %d revisions",
					columnExists(t, url, "a", "c"), tableExists(t, url, "z"), pgtest.RevisionRows(t, url))
			}

			vrep, err := db.Validate(ctx, "", db.WithDir(dir))
			if !errors.Is(err, db.ErrInvalidMigrations) || len(vrep.Refused) == 0 || vrep.Refused[0].File != bad ||
				vrep.Refused[0].SQL != c.stmt || !strings.Contains(err.Error(), c.stmt) {
				t.Fatalf("validate: %v %+v", err, vrep)
			}
			t.Logf("%v", err)
		})
	}
}

// Statements that only look like transaction control or a timeout switched
// off run: a PL/pgSQL body with BEGIN and END in dollar quotes, an SQL
// standard body, a column named begin, a comment mentioning COMMIT, and a
// larger lock_timeout.
func TestUpRunsLookAlikes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, _ := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260601000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: "20260601000002_b.sql", SQL: `-- The migrator will COMMIT this file; do not BEGIN or ROLLBACK here.
SET lock_timeout = '5s';
ALTER TABLE a ADD COLUMN begin timestamptz;
ALTER TABLE a ADD COLUMN "end" timestamptz;
CREATE FUNCTION a_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.begin := coalesce(NEW.begin, now());
  RETURN NEW;
END
$$;
CREATE FUNCTION a_span(x a) RETURNS interval LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x."end" IS NULL THEN NULL ELSE x."end" - x.begin END;
END;
COMMENT ON COLUMN a.begin IS 'BEGIN; COMMIT; SET lock_timeout = 0';
`},
	)
	url := pgtest.EmptyURL(t)
	if _, err := db.Validate(ctx, "", db.WithDir(dir)); err != nil {
		t.Fatal(err)
	}
	rep, err := db.Up(ctx, url, db.WithDir(dir))
	if err != nil || len(rep.Applied) != 2 || rep.Applied[1].Total != 6 {
		t.Fatalf("up: %v %+v", err, rep)
	}
	if !columnExists(t, url, "a", "begin") || !columnExists(t, url, "a", "end") || pgtest.RevisionRows(t, url) != 2 {
		t.Fatal("the file did not apply")
	}
	var span string
	if err := connect(t, url).QueryRow(ctx, `SELECT a_span(ROW(1, '2026-01-01', '2026-01-02')::a)::text`).Scan(&span); err != nil || span != "1 day" {
		t.Fatalf("the function with an SQL-standard body: %q %v", span, err)
	}
}

// The session check after each statement, on its own (the check before the
// run disabled): a transactional file whose COMMIT ends the migrator's
// transaction fails at that statement, and nothing after it runs; the
// error says the statements before it are in effect.
func TestSessionCheckCommitInFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "20260601000002_b.sql"
	dir, _ := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260601000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: name, SQL: "BEGIN;\nALTER TABLE a ADD COLUMN c int;\nCOMMIT;\n" +
			"ALTER TABLE a ADD COLUMN d int;\nINSERT INTO missing VALUES (1);\n"},
	)
	url := pgtest.EmptyURL(t)
	rep, err := db.Up(ctx, url, db.WithDir(dir), db.WithoutRefusalCheck())
	var me *db.MigrationError
	if !errors.As(err, &me) || me.File != name || me.Statement != "COMMIT;" || me.Applied != 2 || me.Total != 5 ||
		!strings.Contains(err.Error(), "ended the migrator's transaction") || me.Hint == "" {
		t.Fatalf("COMMIT in a transactional file: %v", err)
	}
	if len(rep.Applied) != 1 || rep.To != "20260601000001" {
		t.Fatalf("report: %+v", rep)
	}
	if columnExists(t, url, "a", "d") {
		t.Fatal("a statement after the file's COMMIT ran")
	}
	st, err := db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil || st.Verdict == db.VerdictOK || st.Files[1].State == db.StateApplied {
		t.Fatalf("status after the failed file: %v %+v", err, st)
	}
	t.Logf("%v", me)
}

// The session check on its own: a txmode none file that opens a
// transaction (before the check, Up reported it applied, and the open
// transaction was rolled back when the connection closed) fails at that
// statement; the statement before it is recorded as in effect, the one
// after it never ran.
func TestSessionCheckBeginInNoTxFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "20260601000002_b.sql"
	dir, _ := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260601000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: name, SQL: "-- atlas:txmode none\n\nALTER TABLE a ADD COLUMN c int;\nBEGIN;\nALTER TABLE a ADD COLUMN d int;\n"},
	)
	url := pgtest.EmptyURL(t)
	_, err := db.Up(ctx, url, db.WithDir(dir), db.WithoutRefusalCheck())
	var me *db.MigrationError
	if !errors.As(err, &me) || me.File != name || me.Statement != "BEGIN;" || me.Applied != 1 ||
		!strings.Contains(err.Error(), "opened a transaction") {
		t.Fatalf("BEGIN in a txmode none file: %v", err)
	}
	if !columnExists(t, url, "a", "c") || columnExists(t, url, "a", "d") {
		t.Fatal("want the statement before BEGIN in effect and the one after it not run")
	}
	st, err := db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil || st.Files[1].State != db.StatePartial || st.Files[1].Applied != 1 {
		t.Fatalf("status after the failed file: %v %+v", err, st)
	}
}

// The session check catches a timeout switched off where the check before
// the run cannot see it, in a function body: the file fails at the call
// and is rolled back.
func TestSessionCheckTimeoutSwitchedOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "20260601000002_b.sql"
	dir, _ := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260601000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n" +
			"CREATE FUNCTION no_lock_timeout() RETURNS text LANGUAGE sql AS $$ SELECT set_config('lock_timeout', '0', true) $$;\n"},
		pgtest.MigrationFile{Name: name, SQL: "ALTER TABLE a ADD COLUMN c int;\nSELECT no_lock_timeout();\nALTER TABLE a ADD COLUMN d int;\n"},
	)
	url := pgtest.EmptyURL(t)
	_, err := db.Up(ctx, url, db.WithDir(dir))
	var me *db.MigrationError
	if !errors.As(err, &me) || me.File != name || !strings.Contains(me.Statement, "no_lock_timeout()") ||
		!strings.Contains(err.Error(), "switched lock_timeout off") {
		t.Fatalf("timeout switched off in a function: %v", err)
	}
	if columnExists(t, url, "a", "c") || columnExists(t, url, "a", "d") || pgtest.RevisionRows(t, url) != 1 {
		t.Fatal("the failed transactional file left something behind")
	}
}
