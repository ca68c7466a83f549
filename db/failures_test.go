package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func writeFile(t *testing.T, path, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(path, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tableExists(t *testing.T, url, table string) bool {
	t.Helper()
	var ok bool
	if err := connect(t, url).QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A failing statement in a transactional file is reported with file,
// statement and SQLSTATE; nothing of the file stays; after the file is fixed
// and re-hashed, up completes.
func TestFailingStatementThenFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, path := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260401000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: "20260401000002_b.sql", SQL: "CREATE TABLE b (id int PRIMARY KEY);\nINSERT INTO missing VALUES (1);\n"},
	)
	dir := pgtest.Rehash(t, path)
	url := pgtest.EmptyURL(t)
	rep, err := db.Up(ctx, url, db.WithDir(dir))
	var me *db.MigrationError
	if !errors.As(err, &me) || me.File != "20260401000002_b.sql" || me.SQLState != "42P01" ||
		!strings.Contains(me.Statement, "INSERT INTO missing") || me.Applied != 0 {
		t.Fatalf("failing statement: %v", err)
	}
	if len(rep.Applied) != 1 || rep.To != "20260401000001" {
		t.Fatalf("report of the failed run: %+v", rep)
	}
	t.Logf("reported: %v", err)
	if tableExists(t, url, "b") {
		t.Fatal("the failed file's first statement stayed applied")
	}
	st, err := db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil || st.Files[1].State != db.StatePending || st.Verdict != db.VerdictPending {
		t.Fatalf("status after a failed transactional file: %v %+v", err, st)
	}

	writeFile(t, path, "20260401000002_b.sql", "CREATE TABLE b (id int PRIMARY KEY);\nINSERT INTO b VALUES (1);\n")
	dir = pgtest.Rehash(t, path)
	if rep, err := db.Up(ctx, url, db.WithDir(dir)); err != nil || len(rep.Applied) != 1 {
		t.Fatalf("up after the fix: %v", err)
	}
	if _, err := db.Validate(ctx, url, db.WithDir(dir)); err != nil {
		t.Fatal(err)
	}
}

// A txmode none file that fails half-way is partial: its first statement
// stays, status says so with the error, an edit of the applied statement is
// refused, and a fix of the failed one resumes after the applied one.
func TestPartialFileThenFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "20260401000002_c.sql"
	_, path := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260401000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: name, SQL: "-- atlas:txmode none\n\nCREATE TABLE c (id int PRIMARY KEY);\nINSERT INTO c VALUES (1 / 0);\n"},
	)
	dir := pgtest.Rehash(t, path)
	url := pgtest.EmptyURL(t)
	_, err := db.Up(ctx, url, db.WithDir(dir))
	var me *db.MigrationError
	if !errors.As(err, &me) || me.File != name || me.SQLState != "22012" || me.Applied != 1 || me.Total != 2 {
		t.Fatalf("failing txmode none file: %v", err)
	}
	if !strings.Contains(err.Error(), "partially applied: 1 of 2") {
		t.Errorf("error does not say the file is partial: %v", err)
	}
	st, err := db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	f := st.Files[1]
	if f.State != db.StatePartial || f.Applied != 1 || f.Total != 2 || !strings.Contains(f.Error, "division by zero") ||
		!strings.Contains(f.ErrorStatement, "1 / 0") || st.Verdict != db.VerdictFailed || st.Partial != 1 {
		t.Fatalf("status of the partial file: %+v", st)
	}
	if !tableExists(t, url, "c") {
		t.Fatal("the applied statement of the partial file is not in effect")
	}

	// Editing the statement that was applied is refused.
	writeFile(t, path, name, "-- atlas:txmode none\n\nCREATE TABLE c (id bigint PRIMARY KEY);\nINSERT INTO c VALUES (1);\n")
	dir = pgtest.Rehash(t, path)
	if _, err := db.Up(ctx, url, db.WithDir(dir)); !errors.Is(err, db.ErrChecksum) || !strings.Contains(err.Error(), name) {
		t.Fatalf("edit of an applied statement: %v", err)
	}

	// Fixing the failed statement resumes after the applied one.
	writeFile(t, path, name, "-- atlas:txmode none\n\nCREATE TABLE c (id int PRIMARY KEY);\nINSERT INTO c VALUES (1);\n")
	dir = pgtest.Rehash(t, path)
	rep, err := db.Up(ctx, url, db.WithDir(dir))
	if err != nil || len(rep.Applied) != 1 || rep.Applied[0].Skipped != 1 {
		t.Fatalf("up after the fix: %v %+v", err, rep)
	}
	st, err = db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil || st.Verdict != db.VerdictOK || st.Files[1].State != db.StateApplied || st.Files[1].Error != "" {
		t.Fatalf("status after the fix: %v %+v", err, st)
	}
	// The fixed file's hash is recorded, so it does not count as edited.
	if _, err := db.Validate(ctx, url, db.WithDir(dir)); err != nil {
		t.Fatal(err)
	}
}

// An applied file that was edited (and re-hashed) is refused with its name
// before anything runs; an edit without re-hashing fails atlas.sum.
func TestChecksumTamper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const first = "20260401000001_a.sql"
	_, path := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: first, SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: "20260401000002_b.sql", SQL: "CREATE TABLE b (id int PRIMARY KEY);\n"},
	)
	url := pgtest.EmptyURL(t)
	if err := db.Migrate(ctx, url, db.WithDir(pgtest.Rehash(t, path))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, first, "CREATE TABLE a (id bigint PRIMARY KEY);\n")
	writeFile(t, path, "20260401000003_d.sql", "CREATE TABLE d (id int);\n")

	_, err := db.Up(ctx, url, db.WithDir(pgtest.Rehash(t, path)))
	var ce *db.ChecksumError
	if !errors.Is(err, db.ErrChecksum) || !errors.As(err, &ce) || ce.Dir || len(ce.Files) != 1 || !strings.Contains(ce.Files[0], first) {
		t.Fatalf("edited applied file: %v", err)
	}
	if tableExists(t, url, "d") {
		t.Fatal("a pending file ran although an applied one was edited")
	}
	st, err := db.Inspect(ctx, url, db.WithDir(pgtest.Rehash(t, path)))
	if err != nil || st.Files[0].State != db.StateModified || st.Verdict != db.VerdictChecksum {
		t.Fatalf("status with an edited applied file: %v %+v", err, st)
	}
	if _, err := db.Validate(ctx, url, db.WithDir(pgtest.Rehash(t, path))); !errors.Is(err, db.ErrChecksum) {
		t.Fatalf("validate with an edited applied file: %v", err)
	}

	// Edited without re-hashing: atlas.sum no longer matches.
	writeFile(t, path, "20260401000002_b.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\n")
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Up(ctx, url, db.WithDir(dir))
	if !errors.As(err, &ce) || !ce.Dir || !strings.Contains(err.Error(), "20260401000002_b.sql") {
		t.Fatalf("file edited without re-hashing: %v", err)
	}
	t.Logf("refused: %v", err)
}

// Dry runs and targets.
func TestUpDryRunAndTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyURL(t)
	vs := db.Versions()
	rep, err := db.Up(ctx, url, db.WithDryRun())
	if err != nil || len(rep.Planned) != len(vs) || len(rep.Applied) != 0 || len(rep.Planned[0].Statements) == 0 {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	if tableExists(t, url, db.RevisionsTable) {
		t.Fatal("a dry run created the revisions table")
	}
	rep, err = db.Up(ctx, url, db.WithTarget(vs[0]))
	if err != nil || len(rep.Applied) != 1 || rep.To != vs[0] {
		t.Fatalf("up --to %s: %v %+v", vs[0], err, rep)
	}
	if _, err := db.Up(ctx, url, db.WithTarget("19990101000000")); !errors.Is(err, db.ErrBadTarget) || !strings.Contains(err.Error(), "no migration file has version") {
		t.Fatalf("unknown target: %v", err)
	}
	rep, err = db.Up(ctx, url)
	if err != nil || len(rep.Applied) != len(vs)-1 || rep.From != vs[0] || rep.To != vs[len(vs)-1] {
		t.Fatalf("up after --to: %v %+v", err, rep)
	}
}

// Baseline adopts a database whose schema exists but was never migrated.
func TestBaseline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vs := db.Versions()
	files := pgtest.EmbeddedMigrationFiles(t)
	// A database built from the first file's SQL by hand.
	url := pgtest.EmptyURL(t)
	if _, err := connect(t, url).Exec(ctx, files[0].SQL); err != nil {
		t.Fatal(err)
	}
	err := db.Migrate(ctx, url)
	var me *db.MigrationError
	if !errors.As(err, &me) || me.SQLState != "42P07" || !strings.Contains(err.Error(), "migrate baseline") {
		t.Fatalf("up on an unbaselined database with the schema in place: %v", err)
	}
	rep, err := db.Baseline(ctx, url, vs[0])
	if err != nil || rep.File != files[0].Name {
		t.Fatalf("baseline: %v %+v", err, rep)
	}
	st, err := db.Inspect(ctx, url)
	if err != nil || st.Files[0].State != db.StateBaseline || st.Current != vs[0] || st.Pending != len(vs)-1 {
		t.Fatalf("status after baseline: %v %+v", err, st)
	}
	up, err := db.Up(ctx, url)
	if err != nil || len(up.Applied) != len(vs)-1 {
		t.Fatalf("up after baseline: %v %+v", err, up)
	}
	if _, err := db.Baseline(ctx, url, vs[0]); err == nil || !strings.Contains(err.Error(), "already has migration revisions") {
		t.Fatalf("second baseline: %v", err)
	}
	if d := pgtest.SchemaDiff(t, url, pgtest.URL(t)); len(d) > 0 {
		t.Fatalf("baselined database differs from a migrated one: %v", d)
	}

	// A schema that differs from the files is refused unless forced.
	other := pgtest.EmptyURL(t)
	if _, err := connect(t, other).Exec(ctx, `CREATE TABLE apps (id bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	brep, err := db.Baseline(ctx, other, vs[0])
	if err == nil || len(brep.Differences) == 0 || pgtest.RevisionRows(t, other) != 0 {
		t.Fatalf("baseline of a different schema: %v %+v", err, brep)
	}
	t.Logf("refused baseline, %d difference(s), first: %s", len(brep.Differences), brep.Differences[0])
	if _, err := db.Baseline(ctx, other, vs[0], db.WithForce()); err != nil {
		t.Fatalf("forced baseline: %v", err)
	}
}

// Validate finds statements that cannot run in the file's transaction.
func TestValidateFindsConcurrentIndexInTransaction(t *testing.T) {
	t.Parallel()
	dir, _ := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260401000001_a.sql", SQL: "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id_idx ON a (id);\n"},
		pgtest.MigrationFile{Name: "20260401000002_b.sql", SQL: "-- atlas:txmode all\n\nCREATE TABLE b (id int);\n"},
	)
	rep, err := db.Validate(context.Background(), "", db.WithDir(dir))
	if !errors.Is(err, db.ErrInvalidMigrations) || len(rep.Problems) != 2 {
		t.Fatalf("validate: %v %+v", err, rep)
	}
	if rep, err := db.Validate(context.Background(), ""); err != nil || rep.Files != len(db.Versions()) {
		t.Fatalf("validate embedded: %v", err)
	}
}

// `down 1` undoes a partially applied file, invalid index included.
func TestDownUndoesPartialFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, _ := pgtest.MigrationDir(t, partialFiles...)
	url := pgtest.EmptyURL(t)
	if err := db.Migrate(ctx, url, db.WithDir(dir)); err == nil {
		t.Fatal("migrate over duplicate emails succeeded")
	}
	rep, err := db.Down(ctx, url, db.WithDir(dir))
	if err != nil || !rep.Applied || len(rep.Plan) != 2 {
		t.Fatalf("down 1 of a partial file: %v %+v", err, rep)
	}
	st, err := db.Inspect(ctx, url, db.WithDir(dir))
	if err != nil || st.Verdict != db.VerdictPending || len(st.InvalidIndexes) != 0 || st.Files[1].State != db.StatePending {
		t.Fatalf("status after down: %v %+v", err, st)
	}
	t.Logf("down plan for the partial file: %s", planText(rep))
}
