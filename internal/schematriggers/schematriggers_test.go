package schematriggers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const triggersV1 = `CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER apps_touch BEFORE UPDATE ON apps
  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
`

const atlasDiff = "-- Modify \"apps\" table\nALTER TABLE \"apps\" ADD COLUMN \"note\" text NULL;\n"

func carrying(migration, triggers string) string {
	return migration + "\n" + Marker([]byte(triggers)) + "\n" + triggers
}

func TestParse(t *testing.T) {
	t.Parallel()
	sum := Sum([]byte(triggersV1))
	for _, c := range []struct {
		name, data string
		want       *Carried // nil: no marker
		err        string
	}{
		{name: "no marker", data: atlasDiff},
		{name: "marker in the middle of a line does not count", data: "SELECT 1; -- deploydb:triggers sha256=" + sum + "\n"},
		{name: "after atlas statements", data: carrying(atlasDiff, triggersV1),
			want: &Carried{Line: 4, SHA256: sum, Content: []byte(triggersV1)}},
		{name: "first line of a new file", data: Marker([]byte(triggersV1)) + "\n" + triggersV1,
			want: &Carried{Line: 1, SHA256: sum, Content: []byte(triggersV1)}},
		{name: "content without a final newline", data: "-- deploydb:triggers sha256=" + Sum([]byte("SELECT 1;")) + "\nSELECT 1;",
			want: &Carried{Line: 1, SHA256: Sum([]byte("SELECT 1;")), Content: []byte("SELECT 1;")}},
		{name: "marker as the last line", data: "-- deploydb:triggers sha256=" + Sum(nil),
			want: &Carried{Line: 1, SHA256: Sum(nil)}},
		{name: "a second marker-like line is content",
			data: "-- deploydb:triggers sha256=" + sum + "\n-- deploydb:triggers sha256=x\n",
			want: &Carried{Line: 1, SHA256: sum, Content: []byte("-- deploydb:triggers sha256=x\n")}},
		{name: "upper-case hex", data: "-- deploydb:triggers sha256=" + strings.ToUpper(sum) + "\n", err: "malformed marker"},
		{name: "short sum", data: "-- deploydb:triggers sha256=abc\n", err: "malformed marker"},
		{name: "no sum", data: "SELECT 1;\n-- deploydb:triggers\n", err: "x.sql:2: malformed marker"},
		{name: "trailing text", data: "-- deploydb:triggers sha256=" + sum + " v2\n", err: "malformed marker"},
		{name: "carriage return", data: "-- deploydb:triggers sha256=" + sum + "\r\n", err: "malformed marker"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse("x.sql", []byte(c.data))
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Parse = %+v, %v; want an error containing %q", got, err, c.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			case c.want == nil:
				if got != nil {
					t.Fatalf("Parse = %+v, want no marker", got)
				}
				return
			case got == nil:
				t.Fatal("Parse found no marker")
			}
			if got.File != "x.sql" || got.Line != c.want.Line || got.SHA256 != c.want.SHA256 || !bytes.Equal(got.Content, c.want.Content) {
				t.Fatalf("Parse = {%s %d %s %q}, want {x.sql %d %s %q}", got.File, got.Line, got.SHA256, got.Content,
					c.want.Line, c.want.SHA256, c.want.Content)
			}
		})
	}
}

func TestNewest(t *testing.T) {
	t.Parallel()
	v2 := triggersV1 + "-- v2\n"
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	dir := fstest.MapFS{
		"20260101000000_init.sql":        file(atlasDiff),
		"20260201000000_triggers.sql":    file(carrying(atlasDiff, triggersV1)),
		"20260301000000_triggers_v2.sql": file(Marker([]byte(v2)) + "\n" + v2),
		"20260401000000_later.sql":       file(atlasDiff),
		"atlas.sum":                      file("-- deploydb:triggers is not read here\n"),
		"migrations.go":                  file("package migrations\n// -- deploydb:triggers\n"),
	}
	got, err := Newest(dir)
	if err != nil || got == nil || got.File != "20260301000000_triggers_v2.sql" || string(got.Content) != v2 {
		t.Fatalf("Newest = %+v, %v; want the v2 file", got, err)
	}

	// The name decides, not the order files come in: 2026 sorts after 2025.
	older := fstest.MapFS{
		"20260201000000_triggers.sql": file(carrying(atlasDiff, triggersV1)),
		"20250101000000_x.sql":        file(Marker([]byte(v2)) + "\n" + v2),
	}
	if got, err := Newest(older); err != nil || got == nil || got.File != "20260201000000_triggers.sql" {
		t.Fatalf("Newest = %+v, %v; want 20260201000000_triggers.sql", got, err)
	}

	if got, err := Newest(fstest.MapFS{"1_init.sql": file(atlasDiff)}); got != nil || err != nil {
		t.Fatalf("Newest of a directory without markers = %+v, %v", got, err)
	}
	dir["20260501000000_broken.sql"] = file("-- deploydb:triggers sha256=nope\n")
	if _, err := Newest(dir); err == nil || !strings.Contains(err.Error(), "20260501000000_broken.sql:1") {
		t.Fatalf("Newest with a malformed marker in the newest file: %v", err)
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	v1 := []byte(triggersV1)
	carried := func(content string) *Carried {
		c, err := Parse("20260201000000_triggers.sql", []byte(carrying(atlasDiff, content)))
		if err != nil || c == nil {
			t.Fatal(c, err)
		}
		return c
	}
	edited := carried(triggersV1)
	edited.Content = []byte(strings.Replace(triggersV1, "now()", "clock_timestamp()", 1))
	for _, c := range []struct {
		name     string
		triggers []byte
		exists   bool
		newest   *Carried
		problem  string // "" for in step
	}{
		{"no file, no copy", nil, false, nil, ""},
		{"carried as it is", v1, true, carried(triggersV1), ""},
		{"empty file carried", []byte{}, true, carried(""), ""},
		{"not carried yet", v1, true, nil, "is carried by no migration in db/migrations: run make migration NAME="},
		{"changed", append(v1, "-- more\n"...), true, carried(triggersV1),
			"changed since db/migrations/20260201000000_triggers.sql carried it (sha256 " + Sum(v1)[:12] + "): run make migration NAME="},
		{"copy differs under the file's sum", v1, true, edited,
			"db/migrations/20260201000000_triggers.sql:4 names the sha256 of schema_triggers.sql (" + Sum(v1)[:12] +
				"), but the copy after it differs from the file: run make migration NAME="},
		{"file removed", nil, false, carried(triggersV1), "schema_triggers.sql is missing, but db/migrations/20260201000000_triggers.sql carries it"},
		{"file holds a marker line", []byte("-- deploydb:triggers\n"), true, nil, "contains a line that starts with"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := Compare(c.triggers, c.exists, c.newest, "db/migrations")
			if c.problem == "" {
				if !st.Current() {
					t.Fatalf("Compare: %s", st.Problem)
				}
				return
			}
			if st.Current() || !strings.Contains(st.Problem, c.problem) {
				t.Fatalf("Compare problem %q, want one containing %q", st.Problem, c.problem)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, migration, want string }{
		{"atlas file", atlasDiff, atlasDiff + "\n" + Marker([]byte(triggersV1)) + "\n" + triggersV1},
		{"no final newline", strings.TrimSuffix(atlasDiff, "\n"), atlasDiff + "\n" + Marker([]byte(triggersV1)) + "\n" + triggersV1},
		{"blank line already there", atlasDiff + "\n", atlasDiff + "\n" + Marker([]byte(triggersV1)) + "\n" + triggersV1},
		{"empty file from atlas migrate new", "", Marker([]byte(triggersV1)) + "\n" + triggersV1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Append([]byte(c.migration), []byte(triggersV1))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("Append =\n%s\nwant\n%s", got, c.want)
			}
			back, err := Parse("x.sql", got)
			if err != nil || back == nil || back.SHA256 != Sum([]byte(triggersV1)) || string(back.Content) != triggersV1 {
				t.Fatalf("Parse(Append) = %+v, %v", back, err)
			}
			if !Compare([]byte(triggersV1), true, back, "d").Current() {
				t.Fatal("the appended copy is not current")
			}
		})
	}
	if _, err := Append([]byte(atlasDiff), []byte("-- deploydb:triggers sha256=x\nSELECT 1;\n")); err == nil {
		t.Error("Append accepted a triggers file that holds a marker line")
	}
	if _, err := Append([]byte(carrying(atlasDiff, triggersV1)), []byte(triggersV1)); err == nil {
		t.Error("Append carried the file twice in one migration")
	}
}

// fakeAtlas records the Atlas commands Carry runs; `migrate new NAME`
// creates an empty <version>_NAME.sql as the CLI does.
type fakeAtlas struct {
	dir     string
	version int
	calls   []string
}

func (f *fakeAtlas) run(_ context.Context, args ...string) error {
	f.calls = append(f.calls, strings.Join(args, " "))
	if len(args) > 2 && args[0] == "migrate" && args[1] == "new" {
		f.version++
		return os.WriteFile(filepath.Join(f.dir, fmt.Sprintf("2027010100000%d_%s.sql", f.version, args[2])), nil, 0o644)
	}
	return nil
}

// carryRepo returns a repository root with db/migrations holding files.
func carryRepo(t *testing.T, files map[string]string) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	dir = filepath.Join(root, "db", "migrations")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, s := range files {
		write(t, filepath.Join(dir, n), s)
	}
	return root, dir
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCarry runs Carry as make migration does, after a diff that wrote a
// file or none, with schema_triggers.sql unchanged, changed or absent.
func TestCarry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const init = "20260101000000_init.sql"
	const diffFile = "20260601000000_add_note.sql"
	setup := func(t *testing.T, triggers *string, carried bool) (Carrier, *fakeAtlas, string, []string) {
		files := map[string]string{init: atlasDiff}
		if carried {
			files["20260201000000_triggers.sql"] = carrying(atlasDiff, triggersV1)
		}
		root, dir := carryRepo(t, files)
		if triggers != nil {
			write(t, filepath.Join(root, FileName), *triggers)
		}
		fa := &fakeAtlas{dir: dir}
		before, err := SQLFiles(os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		return Carrier{Root: root, Dir: "db/migrations", Name: "touch", Atlas: fa.run}, fa, dir, before
	}
	v1, v2 := triggersV1, triggersV1+"-- v2\n"

	t.Run("unchanged, atlas wrote a file: no-op", func(t *testing.T) {
		c, fa, dir, before := setup(t, &v1, true)
		write(t, filepath.Join(dir, diffFile), atlasDiff)
		res, err := c.Carry(ctx, before)
		if err != nil || res.File != "" || len(fa.calls) != 0 || read(t, filepath.Join(dir, diffFile)) != atlasDiff {
			t.Fatalf("Carry = %+v, %v; atlas calls %v", res, err, fa.calls)
		}
	})
	t.Run("unchanged, atlas wrote nothing: no-op", func(t *testing.T) {
		c, fa, dir, before := setup(t, &v1, true)
		res, err := c.Carry(ctx, before)
		after, _ := SQLFiles(os.DirFS(dir))
		if err != nil || res.File != "" || len(fa.calls) != 0 || !slices.Equal(after, before) {
			t.Fatalf("Carry = %+v, %v; atlas calls %v; files %v", res, err, fa.calls, after)
		}
	})
	t.Run("no schema_triggers.sql: no-op", func(t *testing.T) {
		c, fa, dir, before := setup(t, nil, false)
		res, err := c.Carry(ctx, before)
		after, _ := SQLFiles(os.DirFS(dir))
		if err != nil || res.File != "" || res.Status.Exists || len(fa.calls) != 0 || !slices.Equal(after, before) {
			t.Fatalf("Carry = %+v, %v; atlas calls %v", res, err, fa.calls)
		}
	})
	t.Run("changed, atlas wrote a file: appended to it", func(t *testing.T) {
		c, fa, dir, before := setup(t, &v2, true)
		write(t, filepath.Join(dir, diffFile), atlasDiff)
		res, err := c.Carry(ctx, before)
		if err != nil || res.File != diffFile || res.Created {
			t.Fatalf("Carry = %+v, %v", res, err)
		}
		if got := read(t, filepath.Join(dir, diffFile)); got != carrying(atlasDiff, v2) {
			t.Fatalf("%s =\n%s", diffFile, got)
		}
		if !slices.Equal(fa.calls, []string{"migrate hash --dir file://db/migrations"}) {
			t.Fatalf("atlas calls %v, want one rehash", fa.calls)
		}
		if st, err := c.Status(); err != nil || !st.Current() || st.Newest.File != diffFile {
			t.Fatalf("Status after Carry = %+v, %v", st, err)
		}
		// make migration again: nothing more to carry.
		before, _ = SQLFiles(os.DirFS(dir))
		if res, err := c.Carry(ctx, before); err != nil || res.File != "" || len(fa.calls) != 1 {
			t.Fatalf("second Carry = %+v, %v; atlas calls %v", res, err, fa.calls)
		}
	})
	t.Run("changed, atlas wrote nothing: new migration", func(t *testing.T) {
		c, fa, dir, before := setup(t, &v2, true)
		res, err := c.Carry(ctx, before)
		const created = "20270101000001_touch.sql"
		if err != nil || res.File != created || !res.Created {
			t.Fatalf("Carry = %+v, %v", res, err)
		}
		if got := read(t, filepath.Join(dir, created)); got != Marker([]byte(v2))+"\n"+v2 {
			t.Fatalf("%s =\n%s", created, got)
		}
		want := []string{"migrate new touch --dir file://db/migrations", "migrate hash --dir file://db/migrations"}
		if !slices.Equal(fa.calls, want) {
			t.Fatalf("atlas calls %v, want %v", fa.calls, want)
		}
	})
	t.Run("first carry: no migration has a marker yet", func(t *testing.T) {
		c, _, dir, before := setup(t, &v1, false)
		write(t, filepath.Join(dir, diffFile), atlasDiff)
		if res, err := c.Carry(ctx, before); err != nil || res.File != diffFile || res.Status.Newest != nil {
			t.Fatalf("Carry = %+v, %v", res, err)
		}
	})
	t.Run("two new files: refused", func(t *testing.T) {
		c, fa, dir, before := setup(t, &v2, true)
		write(t, filepath.Join(dir, diffFile), atlasDiff)
		write(t, filepath.Join(dir, "20260602000000_other.sql"), atlasDiff)
		if res, err := c.Carry(ctx, before); err == nil || len(fa.calls) != 0 {
			t.Fatalf("Carry = %+v, %v; atlas calls %v", res, err, fa.calls)
		}
		if read(t, filepath.Join(dir, diffFile)) != atlasDiff {
			t.Fatal("a refused Carry changed a file")
		}
	})
}

// TestCarryWithPinnedAtlas runs Carry with the pinned Atlas CLI (make
// tools): `atlas migrate new` names the file as `atlas migrate diff` does,
// and after the rehash `atlas migrate validate` accepts the directory.
func TestCarryWithPinnedAtlas(t *testing.T) {
	t.Parallel()
	atlas, err := filepath.Abs(filepath.Join("..", "..", "bin", "atlas"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(atlas); err != nil {
		t.Fatalf("%s is missing: run make tools first (%v)", atlas, err)
	}
	root, dir := carryRepo(t, map[string]string{"20260101000000_init.sql": atlasDiff})
	write(t, filepath.Join(root, FileName), triggersV1)
	runAtlas := func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, atlas, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	ctx := context.Background()
	if err := runAtlas(ctx, "migrate", "hash", "--dir", "file://db/migrations"); err != nil {
		t.Fatal(err)
	}
	before, err := SQLFiles(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	c := Carrier{Root: root, Dir: "db/migrations", Name: "touch_updated_at", Atlas: runAtlas}
	res, err := c.Carry(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || !regexp.MustCompile(`^[0-9]{14}_touch_updated_at\.sql$`).MatchString(res.File) {
		t.Fatalf("Carry = %+v, want a new <yyyymmddhhmmss>_touch_updated_at.sql", res)
	}
	if got := read(t, filepath.Join(dir, res.File)); got != Marker([]byte(triggersV1))+"\n"+triggersV1 {
		t.Fatalf("%s =\n%s", res.File, got)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "atlas.sum")), res.File+" h1:") {
		t.Fatalf("atlas.sum does not list %s", res.File)
	}
	if err := runAtlas(ctx, "migrate", "validate", "--dir", "file://db/migrations"); err != nil {
		t.Fatalf("atlas migrate validate after Carry: %v", err)
	}
	if st, err := c.Status(); err != nil || !st.Current() {
		t.Fatalf("Status after Carry = %+v, %v", st, err)
	}
}
