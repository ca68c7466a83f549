package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// interopFiles are the embedded migrations plus a txmode none file, so that
// both tools also apply a file outside a transaction.
func interopFiles(t *testing.T) []pgtest.MigrationFile {
	return append(pgtest.EmbeddedMigrationFiles(t), pgtest.MigrationFile{
		Name: "20991231000000_apps_updated_at_idx.sql",
		SQL:  "-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY apps_updated_at_idx ON apps (updated_at);\n",
	})
}

// TestAtlasCLIInterop proves, with the pinned Atlas CLI (./bin/atlas), that
// either tool can apply deploydb's migrations and either tool's status tells
// the truth about the other's work, for complete and partial files.
func TestAtlasCLIInterop(t *testing.T) {
	t.Parallel()
	atlasBin(t)
	ctx := context.Background()
	dir, path := pgtest.MigrationDir(t, interopFiles(t)...)
	withDir := db.WithDir(dir)
	vs := versionsOf(t, dir)
	last := vs[len(vs)-1]

	t.Run("deploydb first, then atlas", func(t *testing.T) {
		t.Parallel()
		url := pgtest.EmptyURL(t)
		if _, err := db.Up(ctx, url, withDir, db.WithTarget(vs[0])); err != nil {
			t.Fatal(err)
		}
		ours := revisionsTableDef(t, url)
		st := runAtlasStatus(t, path, url)
		if st.Current != vs[0] || st.Status != "PENDING" || len(st.Pending) != len(vs)-1 {
			t.Fatalf("atlas status after deploydb applied %s: %+v", vs[0], st)
		}
		if out, err := runAtlas(t, "migrate", "apply", "--dir", "file://"+path, "--url", atlasURL(url)); err != nil {
			t.Fatalf("atlas migrate apply: %v\n%s", err, out)
		}
		if after := revisionsTableDef(t, url); after != ours {
			t.Fatalf("the Atlas CLI altered the revisions table deploydb created:\n%s\n---\n%s", ours, after)
		}
		rep, err := db.Inspect(ctx, url, withDir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != db.VerdictOK || rep.Current != last {
			t.Fatalf("deploydb status after atlas applied the rest: %+v", rep)
		}
		for i, f := range rep.Files {
			want := "deploydb"
			if i > 0 {
				want = "Atlas CLI"
			}
			if f.State != db.StateApplied || !strings.HasPrefix(f.Operator, want) || f.Applied != f.Total {
				t.Fatalf("file %s: %+v, want applied by %s", f.Version, f, want)
			}
		}
		if _, err := db.Validate(ctx, url, withDir); err != nil {
			t.Fatalf("validate: the hashes Atlas recorded differ from deploydb's: %v", err)
		}
		up, err := db.Up(ctx, url, withDir)
		if err != nil || len(up.Applied) != 0 {
			t.Fatalf("deploydb up after atlas: %v, applied %d", err, len(up.Applied))
		}
		if st := runAtlasStatus(t, path, url); st.Status != "OK" || st.Current != last {
			t.Fatalf("atlas status at the end: %+v", st)
		}
		t.Logf("deploydb applied 1 file, atlas status saw it and %d pending; atlas applied %d; deploydb status: all %d applied (1 by deploydb, %d by Atlas CLI)",
			len(vs)-1, len(vs)-1, len(vs), len(vs)-1)
	})

	t.Run("atlas first, then deploydb", func(t *testing.T) {
		t.Parallel()
		url := pgtest.EmptyURL(t)
		if out, err := runAtlas(t, "migrate", "apply", "1", "--dir", "file://"+path, "--url", atlasURL(url)); err != nil {
			t.Fatalf("atlas migrate apply 1: %v\n%s", err, out)
		}
		theirs := revisionsTableDef(t, url)
		ours := pgtest.MigrateTo(t, vs[0], withDir)
		if def := revisionsTableDef(t, ours); def != theirs {
			t.Fatalf("revisions table: deploydb creates\n%s\nthe Atlas CLI creates\n%s", def, theirs)
		}
		rep, err := db.Inspect(ctx, url, withDir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != db.VerdictPending || rep.Pending != len(vs)-1 || rep.Files[0].State != db.StateApplied ||
			!strings.HasPrefix(rep.Files[0].Operator, "Atlas CLI") {
			t.Fatalf("deploydb status after atlas applied 1 file: %+v", rep)
		}
		up, err := db.Up(ctx, url, withDir)
		if err != nil || len(up.Applied) != len(vs)-1 {
			t.Fatalf("deploydb up after atlas: %v, applied %d", err, len(up.Applied))
		}
		st := runAtlasStatus(t, path, url)
		if st.Status != "OK" || st.Current != last || len(st.Pending) != 0 || len(st.Applied) != len(vs) {
			t.Fatalf("atlas status after deploydb applied the rest: %+v", st)
		}
		for _, a := range st.Applied[1:] {
			if a.OperatorVersion != "deploydb" || a.Applied != a.Total {
				t.Fatalf("atlas sees %+v", a)
			}
		}
		out, err := runAtlas(t, "migrate", "apply", "--dir", "file://"+path, "--url", atlasURL(url))
		if err != nil || !strings.Contains(out, "No migration files to execute") {
			t.Fatalf("atlas migrate apply on a database deploydb finished: %v\n%s", err, out)
		}
		// The two tools take the same advisory lock.
		holder := connect(t, url)
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey()); err != nil {
			t.Fatal(err)
		}
		out, err = runAtlas(t, "migrate", "apply", "--lock-timeout", "300ms", "--dir", "file://"+path, "--url", atlasURL(url))
		if err == nil || !strings.Contains(out, "lock") {
			t.Fatalf("atlas migrate apply while deploydb's lock is held: %v\n%s", err, out)
		}
		if d := pgtest.SchemaDiff(t, url, pgtest.MigrateTo(t, last, withDir)); len(d) > 0 {
			t.Fatalf("schema built by both tools differs from deploydb's alone: %v", d)
		}
		t.Logf("atlas applied 1 file, deploydb status saw it and %d pending; deploydb applied %d; atlas status OK at %s; revisions table identical; atlas waits on deploydb's lock",
			len(vs)-1, len(vs)-1, last)
	})

	t.Run("partial files", func(t *testing.T) {
		t.Parallel()
		pdir, ppath := pgtest.MigrationDir(t, partialFiles...)
		withPDir := db.WithDir(pdir)
		pvs := versionsOf(t, pdir)

		// Atlas fails half-way through the txmode none file: deploydb's
		// status shows it partial, with the error and the invalid index.
		url := pgtest.EmptyURL(t)
		if out, err := runAtlas(t, "migrate", "apply", "--dir", "file://"+ppath, "--url", atlasURL(url)); err == nil {
			t.Fatalf("atlas migrate apply succeeded on duplicate emails:\n%s", out)
		}
		rep, err := db.Inspect(ctx, url, withPDir)
		if err != nil {
			t.Fatal(err)
		}
		f := rep.Files[1]
		if rep.Verdict != db.VerdictFailed || f.State != db.StatePartial || f.Applied != 1 || f.Total != 2 ||
			!strings.Contains(f.Error, "u_email_key") || !strings.Contains(f.ErrorStatement, "u_email_key") ||
			len(rep.InvalidIndexes) != 1 || rep.InvalidIndexes[0].Name != "u_email_key" {
			t.Fatalf("deploydb status after atlas failed half-way: %+v", rep)
		}
		// deploydb finishes the file once the data is fixed: it drops the
		// invalid index the failed build left and resumes at statement 2.
		if _, err := connect(t, url).Exec(ctx, `DELETE FROM u WHERE id = 2`); err != nil {
			t.Fatal(err)
		}
		up, err := db.Up(ctx, url, withPDir)
		if err != nil || len(up.Applied) != 1 || up.Applied[0].Skipped != 1 ||
			len(up.Applied[0].DroppedIndexes) != 1 {
			t.Fatalf("deploydb up after the fix: %v %+v", err, up)
		}
		if st := runAtlasStatus(t, ppath, url); st.Status != "OK" || st.Current != pvs[1] {
			t.Fatalf("atlas status after deploydb finished: %+v", st)
		}

		// deploydb fails half-way: atlas status shows the partial file.
		url2 := pgtest.EmptyURL(t)
		if _, err := db.Up(ctx, url2, withPDir); err == nil {
			t.Fatal("deploydb up succeeded on duplicate emails")
		}
		st := runAtlasStatus(t, ppath, url2)
		if st.Status != "PENDING" || st.Current != pvs[1] || st.Count != 1 || st.Total != 2 || st.Error == "" {
			t.Fatalf("atlas status after deploydb failed half-way: %+v", st)
		}
		t.Logf("partial file: atlas failed at statement 2/2, deploydb status said partial 1/2 + invalid index %s, deploydb dropped it and finished; deploydb failed at 2/2, atlas status said %s with %d/%d and the error",
			rep.InvalidIndexes[0].Name, st.Status, st.Count, st.Total)
	})
}

// partialFiles fail in the middle of a txmode none file when the table
// holds duplicate emails: the unique index build fails and leaves an
// invalid index behind.
var partialFiles = []pgtest.MigrationFile{
	{Name: "20260201000001_u.sql", SQL: `CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO u VALUES (1, 'a@example.com'), (2, 'a@example.com');
`},
	{Name: "20260201000002_u_indexes.sql", SQL: `-- atlas:txmode none

CREATE INDEX CONCURRENTLY u_id_email_idx ON u (id, email);
CREATE UNIQUE INDEX CONCURRENTLY u_email_key ON u (email);
`},
}
