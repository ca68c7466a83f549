package migrations

import (
	"io/fs"
	"slices"
	"testing"
)

func TestVersions(t *testing.T) {
	vs := Versions()
	if len(vs) < 2 || !slices.IsSorted(vs) {
		t.Fatalf("Versions() = %v, want at least two, sorted", vs)
	}
	names, err := fs.Glob(FS, "*.sql")
	if err != nil || len(names) != len(vs) {
		t.Fatalf("%d embedded .sql files (%v), %d versions", len(names), err, len(vs))
	}
	if _, err := fs.ReadFile(FS, "atlas.sum"); err != nil {
		t.Errorf("atlas.sum is not embedded: %v", err)
	}
	if got := Version("20261122003720_init.sql"); got != "20261122003720" {
		t.Errorf("Version(20261122003720_init.sql) = %q", got)
	}
	if got := Version("7.sql"); got != "7" {
		t.Errorf("Version(7.sql) = %q", got)
	}
}

func TestCompare(t *testing.T) {
	versions := []string{"1", "2", "3"}
	done := func(v string) Revision { return Revision{Version: v, Type: 2, Applied: 4, Total: 4} }
	for _, tc := range []struct {
		name                      string
		revs                      []Revision
		applied, missing, unknown []string
	}{
		{"never migrated", nil, nil, []string{"1", "2", "3"}, nil},
		{"all applied", []Revision{done("1"), done("2"), done("3")}, []string{"1", "2", "3"}, nil, nil},
		{"behind", []Revision{done("1")}, []string{"1"}, []string{"2", "3"}, nil},
		{"ahead", []Revision{done("1"), done("2"), done("3"), done("4")}, []string{"1", "2", "3"}, nil, []string{"4"}},
		{"partial last file", []Revision{done("1"), done("2"), {Version: "3", Type: 2, Applied: 1, Total: 3}},
			[]string{"1", "2"}, []string{"3"}, nil},
		{"failed before any statement", []Revision{done("1"), {Version: "2", Type: 2, Applied: 0, Total: 3}},
			[]string{"1"}, []string{"2", "3"}, nil},
		{"baseline covers earlier files", []Revision{{Version: "2", Type: TypeBaseline}},
			[]string{"1", "2"}, []string{"3"}, nil},
		{"baseline then applied", []Revision{{Version: "2", Type: TypeBaseline}, done("3")},
			[]string{"1", "2", "3"}, nil, nil},
		// A partial row before the baseline speaks for itself.
		{"partial before baseline", []Revision{{Version: "1", Type: 2, Applied: 1, Total: 2}, {Version: "2", Type: TypeBaseline}},
			[]string{"2"}, []string{"1", "3"}, nil},
		{"unknown partial, behind", []Revision{done("1"), {Version: "9", Type: 2, Applied: 1, Total: 2}},
			[]string{"1"}, []string{"2", "3"}, []string{"9"}},
		{"baseline at an unknown version covers the older known files", []Revision{{Version: "25", Type: TypeBaseline}},
			[]string{"1", "2"}, []string{"3"}, []string{"25"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(versions, tc.revs)
			for _, l := range []struct {
				name      string
				got, want []string
			}{{"applied", c.Applied, tc.applied}, {"missing", c.Missing, tc.missing}, {"unknown", c.Unknown, tc.unknown}} {
				if l.got == nil {
					t.Errorf("%s is nil, want an empty slice", l.name)
				}
				if !slices.Equal(l.got, l.want) && !(len(l.got) == 0 && len(l.want) == 0) {
					t.Errorf("%s = %v, want %v", l.name, l.got, l.want)
				}
			}
		})
	}
}
