package pgtest

import (
	"testing"

	"github.com/deploydb/deploydb/db"
)

func TestMigrateTo(t *testing.T) {
	t.Parallel()
	vs := db.Versions()
	url := MigrateTo(t, vs[0])
	st, err := db.Status(testContext(t), url)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range st {
		want := db.StatePending
		if i == 0 {
			want = db.StateApplied
		}
		if f.State != want {
			t.Fatalf("after MigrateTo(%s): %s is %s, want %s", vs[0], f.Version, f.State, want)
		}
	}
	if n := RevisionRows(t, url); n != 1 {
		t.Fatalf("%d revision rows, want 1", n)
	}
	head := MigrateTo(t, vs[len(vs)-1])
	if d := SchemaDiff(t, head, URL(t)); len(d) > 0 {
		t.Fatalf("MigrateTo(head) differs from URL: %v", d)
	}
	if SchemaFingerprint(t, head) != SchemaFingerprint(t, URL(t)) {
		t.Fatal("MigrateTo(head) and URL have different catalogs")
	}
	if d := SchemaDiff(t, url, head); len(vs) > 1 && len(d) == 0 {
		t.Fatal("SchemaDiff finds no difference between two versions")
	}
}

func TestMigrationDir(t *testing.T) {
	t.Parallel()
	dir, _ := MigrationDir(t,
		MigrationFile{Name: "20260101000001_a.sql", SQL: "CREATE TABLE a (id int);\n"},
		MigrationFile{Name: "20260101000002_b.sql", SQL: "CREATE TABLE b (id int);\n"})
	url := MigrateTo(t, "20260101000001", db.WithDir(dir))
	if SchemaFingerprint(t, url) == SchemaFingerprint(t, MigrateTo(t, "20260101000002", db.WithDir(dir))) {
		t.Fatal("the two versions have the same catalogs")
	}
}
