package db_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/internal/schematriggers"
)

// A migration that carries schema_triggers.sql after Atlas's statements (a
// PL/pgSQL function whose body has BEGIN … END in dollar quotes, CREATE OR
// REPLACE TRIGGER … EXECUTE FUNCTION, a function with nested blocks in a
// tagged body, a DO block and a repair UPDATE) passes CheckFile, splits
// into its statements with every body intact, and applies with Up; a later
// migration that carries the file again applies too, and the triggers
// stay one per table and work.
func TestSchemaTriggersMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	triggers, err := os.ReadFile(filepath.Join("..", "internal", "schematriggers", "testdata", "schema_triggers.sql"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := schematriggers.Append([]byte("-- Modify \"apps\" table\nALTER TABLE \"apps\" ADD COLUMN \"note\" text NULL;\n"), triggers)
	if err != nil {
		t.Fatal(err)
	}
	again, err := schematriggers.Append(nil, triggers)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := db.Dir().Files()
	if err != nil {
		t.Fatal(err)
	}
	var files []pgtest.MigrationFile
	for _, f := range shipped {
		files = append(files, pgtest.MigrationFile{Name: f.Name(), SQL: string(f.Bytes())})
	}
	carriers := []pgtest.MigrationFile{
		{Name: "20300101000000_apps_note.sql", SQL: string(first)},
		{Name: "20300101000001_touch_again.sql", SQL: string(again)},
	}
	files = append(files, carriers...)
	dir, _ := pgtest.MigrationDir(t, files...)

	triggerStmts := []string{"CREATE OR REPLACE FUNCTION fixture_touch_updated_at()", "CREATE OR REPLACE TRIGGER apps_",
		"CREATE OR REPLACE TRIGGER builds_", "CREATE OR REPLACE TRIGGER deployments_",
		"CREATE OR REPLACE FUNCTION fixture_missing_touch_triggers()", "DO $$", "UPDATE apps"}
	wantStmts := map[string][]string{
		carriers[0].Name: append([]string{`ALTER TABLE "apps"`}, triggerStmts...),
		carriers[1].Name: triggerStmts,
	}
	for _, c := range carriers {
		f := migrate.NewLocalFile(c.Name, []byte(c.SQL))
		if rs, err := db.CheckFile(f); err != nil || len(rs) != 0 {
			t.Fatalf("CheckFile(%s) = %v, %v; want no refusal", c.Name, rs, err)
		}
		stmts, err := migrate.FileStmtDecls(&postgres.Driver{}, f)
		if err != nil {
			t.Fatal(err)
		}
		want := wantStmts[c.Name]
		if len(stmts) != len(want) {
			t.Fatalf("%s splits into %d statements, want %d", c.Name, len(stmts), len(want))
		}
		for i, s := range stmts {
			if !strings.HasPrefix(s.Text, want[i]) || !strings.HasSuffix(s.Text, ";") {
				t.Errorf("%s statement %d: %q, want it to start with %q and end the statement", c.Name, i+1, s.Text, want[i])
			}
		}
		// The function bodies stay whole: each ends where its quote closes.
		if body := stmts[len(stmts)-len(triggerStmts)].Text; !strings.HasSuffix(body, "END\n$$ LANGUAGE plpgsql;") {
			t.Errorf("the first function was cut: %q", body)
		}
	}
	if _, err := db.Validate(ctx, "", db.WithDir(dir)); err != nil {
		t.Fatalf("validate: %v", err)
	}

	url := pgtest.EmptyURL(t)
	rep, err := db.Up(ctx, url, db.WithDir(dir))
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	n := len(rep.Applied)
	if n != len(files) || rep.Applied[n-2].Total != len(triggerStmts)+1 || rep.Applied[n-1].Total != len(triggerStmts) {
		t.Fatalf("up applied %+v, want %d files, the last two of %d and %d statements", rep.Applied, len(files),
			len(triggerStmts)+1, len(triggerStmts))
	}

	conn := connect(t, url)
	var touch int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%\_fixture\_touch'`).
		Scan(&touch); err != nil || touch != 3 {
		t.Fatalf("%d touch triggers (%v), want 3: one per table after the file ran twice", touch, err)
	}
	var touched bool
	if _, err := conn.Exec(ctx, `INSERT INTO apps (name, created_at, updated_at) VALUES ('triggers', '2000-01-01', '2000-01-01')`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `UPDATE apps SET note = 'renamed' WHERE name = 'triggers' RETURNING updated_at > '2000-01-01'`).
		Scan(&touched); err != nil || !touched {
		t.Fatalf("the update did not move updated_at (touched %v, %v): the trigger does not run", touched, err)
	}
}
