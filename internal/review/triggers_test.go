package review

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/internal/schematriggers"
)

// A change that edits schema_triggers.sql and adds the migration make
// migration writes for it (only the file changed: the marker and the file)
// passes the review: the functions, triggers, DO block and repair UPDATE
// replay and lint clean, the report names the file that carries
// schema_triggers.sql with its sha256, and the drift check of
// schema_triggers.sql passes. Once the file is edited again without a new
// migration, that drift check fails and names make migration.
func TestSchemaTriggersReview(t *testing.T) {
	t.Parallel()
	triggers, err := os.ReadFile(filepath.Join("..", "schematriggers", "testdata", "schema_triggers.sql"))
	if err != nil {
		t.Fatal(err)
	}
	repo := projectRepo(t)
	if err := os.WriteFile(filepath.Join(repo, schematriggers.FileName), triggers, 0o644); err != nil {
		t.Fatal(err)
	}
	migration, err := schematriggers.Append(nil, triggers)
	if err != nil {
		t.Fatal(err)
	}
	const name = "20300101000000_fixture_touch.sql"
	if err := os.WriteFile(filepath.Join(repo, "db", "migrations", name), migration, 0o644); err != nil {
		t.Fatal(err)
	}
	rehash(t, repo)

	rep := reviewRepo(t, repo, Options{Sections: []string{SectionChanges, SectionLint, SectionDrift}})
	md := rep.Markdown()
	if n := rep.Errors(); n != 0 {
		t.Fatalf("the review fails with %d errors:\n%s", n, findingsText(rep.Findings))
	}
	if len(rep.NewFiles) != 1 || rep.NewFiles[0].Triggers == nil || len(rep.NewFiles[0].Stmts) != 7 {
		t.Fatalf("new files %+v: want %s carrying schema_triggers.sql, in 7 statements", rep.NewFiles, name)
	}
	sum := schematriggers.Sum(triggers)[:12]
	for _, want := range []string{
		"no schema change, schema_triggers.sql carried",
		"`db/migrations/" + name + "` carries schema_triggers.sql (sha256 " + sum + ", marker on line 1)",
		"<code>db/migrations/" + name + "</code>: 7 statements, one transaction, carries schema_triggers.sql (sha256 " + sum + ")",
		"- ✅ schema_triggers.sql ⇔ db/migrations",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report does not say %q:\n%s", want, md)
		}
	}

	stale := append(append([]byte(nil), triggers...), "-- edited after the migration\n"...)
	if err := os.WriteFile(filepath.Join(repo, schematriggers.FileName), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	rep = reviewRepo(t, repo, Options{Sections: []string{SectionDrift}})
	var hit *Finding
	for i, f := range rep.Findings {
		if f.Section == SectionDrift && strings.HasPrefix(f.Where, schematriggers.FileName) && f.IsError() {
			hit = &rep.Findings[i]
		}
	}
	if hit == nil || rep.Errors() != 1 || !strings.Contains(hit.Message, "changed since db/migrations/"+name) ||
		!strings.Contains(hit.Fix, "make migration NAME=") {
		t.Fatalf("a stale schema_triggers.sql: want one drift error naming %s and make migration; findings:\n%s",
			name, findingsText(rep.Findings))
	}
	t.Logf("%s", findingLine(*hit))
}
