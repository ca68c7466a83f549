package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// syntheticFiles exercise what a rollback has to reverse: tables, identity
// columns, defaults, checks, foreign keys, comments, a concurrent index in a
// txmode none file, and a column type change.
var syntheticFiles = []pgtest.MigrationFile{
	{Name: "20260101000001_t1.sql", SQL: `CREATE TABLE t1 (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name varchar(100) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t1_created_at_idx ON t1 (created_at DESC, id DESC);
COMMENT ON TABLE t1 IS 'first table';
`},
	{Name: "20260101000002_t2.sql", SQL: `ALTER TABLE t1 ADD COLUMN status text NOT NULL DEFAULT 'new'
  CONSTRAINT t1_status_valid CHECK (status IN ('new', 'old'));
CREATE TABLE t2 (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  t1_id bigint NOT NULL REFERENCES t1 (id) ON DELETE CASCADE,
  note text
);
COMMENT ON COLUMN t2.note IS 'free text';
`},
	{Name: "20260101000003_t1_status_idx.sql", SQL: `-- atlas:txmode none

CREATE INDEX CONCURRENTLY t1_status_idx ON t1 (status);
`},
	{Name: "20260101000004_widen_name.sql", SQL: `ALTER TABLE t1 ALTER COLUMN name TYPE text;
ALTER TABLE t2 ADD CONSTRAINT t2_note_key UNIQUE (note);
`},
}

func versionsOf(t *testing.T, dir migrate.Dir) []string {
	t.Helper()
	files, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]string, len(files))
	for i, f := range files {
		vs[i] = f.Version()
	}
	return vs
}

// TestDownRoundTrip rolls back to every boundary of the embedded and of a
// synthetic directory, compares the result with a database migrated
// straight to that boundary, then migrates up again and compares with a
// straight `up`.
func TestDownRoundTrip(t *testing.T) {
	t.Parallel()
	synthetic, _ := pgtest.MigrationDir(t, syntheticFiles...)
	for _, tc := range []struct {
		name string
		dir  migrate.Dir
	}{
		{"embedded", db.Dir()},
		{"synthetic", synthetic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			withDir := db.WithDir(tc.dir)
			vs := versionsOf(t, tc.dir)
			head := pgtest.MigrateTo(t, vs[len(vs)-1], withDir)
			headPrint := pgtest.SchemaFingerprint(t, head)
			for k := 0; k < len(vs); k++ {
				target := ""
				if k > 0 {
					target = vs[k-1]
				}
				url := pgtest.MigrateTo(t, vs[len(vs)-1], withDir)
				rep, err := db.Down(ctx, url, withDir, db.WithSteps(len(vs)-k))
				if err != nil {
					t.Fatalf("down %d files: %v", len(vs)-k, err)
				}
				if !rep.Applied || rep.To != target || len(rep.Files) != len(vs)-k {
					t.Fatalf("down report: %+v", rep)
				}
				var ref string
				if k == 0 {
					ref = pgtest.EmptyURL(t)
				} else {
					ref = pgtest.MigrateTo(t, target, withDir)
				}
				if d := pgtest.SchemaDiff(t, url, ref); len(d) > 0 {
					t.Fatalf("after down to %q the schema differs from a straight migration to it:\n%s", target, strings.Join(d, "\n"))
				}
				if a, b := pgtest.SchemaFingerprint(t, url), pgtest.SchemaFingerprint(t, ref); a != b {
					t.Fatalf("after down to %q the catalogs differ:\n--- rolled back\n%s\n--- straight\n%s", target, a, b)
				}
				if n := pgtest.RevisionRows(t, url); n != k {
					t.Fatalf("after down to %q: %d revision rows, want %d", target, n, k)
				}
				if err := db.Migrate(ctx, url, withDir); err != nil {
					t.Fatalf("up again after down to %q: %v", target, err)
				}
				if d := pgtest.SchemaDiff(t, url, head); len(d) > 0 {
					t.Fatalf("up -> down to %q -> up differs from a straight up:\n%s", target, strings.Join(d, "\n"))
				}
				if got := pgtest.SchemaFingerprint(t, url); got != headPrint {
					t.Fatalf("up -> down to %q -> up: catalogs differ from a straight up:\n%s\n---\n%s", target, got, headPrint)
				}
				if n := pgtest.RevisionRows(t, url); n != len(vs) {
					t.Fatalf("after up again: %d revision rows, want %d", n, len(vs))
				}
				t.Logf("boundary %d/%d (to %q): down %d file(s) with a %d-statement plan, schema identical to a straight migration; up again identical to a straight up",
					k, len(vs), target, len(rep.Files), len(rep.Plan))
			}
		})
	}
}

func TestDownRefusesDataLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, _ := pgtest.MigrationDir(t, syntheticFiles...)
	withDir := db.WithDir(dir)
	vs := versionsOf(t, dir)
	url := pgtest.MigrateTo(t, vs[len(vs)-1], withDir)
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, `INSERT INTO t1 (name) VALUES ('a'), ('b');
		INSERT INTO t2 (t1_id, note) SELECT id, name FROM t1`); err != nil {
		t.Fatal(err)
	}
	before := pgtest.SchemaFingerprint(t, url)

	// Rolling back file 2 drops t2 (2 rows) and t1.status (2 values).
	rep, err := db.Down(ctx, url, withDir, db.WithTarget(vs[0]), db.WithDryRun())
	if err != nil || rep.Applied || len(rep.Plan) == 0 || len(rep.DataLoss) != 3 {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	t.Logf("dry-run plan for down to %s:\n  %s\ndata loss: %s", vs[0], planText(rep), strings.Join(rep.DataLoss, "; "))
	_, err = db.Down(ctx, url, withDir, db.WithTarget(vs[0]))
	var dl *db.DataLossError
	if !errors.Is(err, db.ErrDataLoss) || !errors.As(err, &dl) || len(dl.Losses) != 3 {
		t.Fatalf("destructive down without the flag: %v", err)
	}
	if pgtest.SchemaFingerprint(t, url) != before || pgtest.RevisionRows(t, url) != len(vs) {
		t.Fatal("a refused down changed the database")
	}
	// Rolling back only the last file narrows t1.name back to varchar(100):
	// a type change of a column with values counts as data loss too.
	if _, err := db.Down(ctx, url, withDir, db.WithSteps(1)); !errors.As(err, &dl) || len(dl.Losses) != 1 {
		t.Fatalf("down 1 (type change of a column with values): %v", err)
	}
	rep, err = db.Down(ctx, url, withDir, db.WithTarget(vs[0]), db.WithAllowDataLoss())
	if err != nil || !rep.Applied {
		t.Fatalf("destructive down with the flag: %v", err)
	}
	var rows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t1`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("t1 rows after down: %d, %v", rows, err)
	}
	if d := pgtest.SchemaDiff(t, url, pgtest.MigrateTo(t, vs[0], withDir)); len(d) > 0 {
		t.Fatalf("schema after down: %v", d)
	}
}

func planText(rep *db.DownReport) string {
	var b strings.Builder
	for i, st := range rep.Plan {
		if i > 0 {
			b.WriteString("\n  ")
		}
		fmt.Fprintf(&b, "%s;", st.SQL)
	}
	return b.String()
}
