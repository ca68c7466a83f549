// Package migrations embeds deploydb's versioned migration files: the
// *.sql files and atlas.sum in this directory, which `make migration`
// writes from schema.hcl and which are never edited after merge. Only this
// file is hand-written.
//
// It depends on the standard library only, so that both the migrator
// (package db, which links the Atlas library) and the root package
// deploydb (which links nothing but pgx) read the same files. It also holds
// the one rule both use to decide which migrations a database has applied:
// Compare.
package migrations

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// FS holds the migration files (*.sql) and atlas.sum at its root.
//
//go:embed *.sql atlas.sum
var FS embed.FS

// Versions returns the versions of the embedded migration files in
// ascending order. A file's version is the part of its name before the
// first underscore (20261122003720 for 20261122003720_init.sql), as in
// Atlas.
func Versions() []string {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		// The pattern is valid, so Glob cannot fail on it.
		panic(err)
	}
	vs := make([]string, len(names))
	for i, n := range names {
		vs[i] = Version(n)
	}
	sort.Strings(vs)
	return vs
}

// Version returns the version of the migration file called name: the part
// of the name before the first underscore, without the .sql extension.
func Version(name string) string {
	v, _, _ := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
	return v
}

// TypeBaseline is the bit of a revision's type that marks a baseline
// revision (Atlas's RevisionTypeBaseline): the database was adopted at
// that version, and the files up to and including it count as applied
// without having run.
const TypeBaseline = 1

// Revision is what Compare needs of one row of the revisions table
// (atlas_schema_revisions, in the Atlas CLI v0.12 layout).
type Revision struct {
	// Version is the migration version the row records.
	Version string
	// Type is the row's type column, a bit set (see TypeBaseline).
	Type int64
	// Applied and Total are the statements of the file that ran and that
	// it has; Applied < Total is a file that stopped part way (a txmode
	// none file that failed or was interrupted).
	Applied, Total int64
}

// Complete reports whether the revision counts as applied on its own: it
// is a baseline, or every statement of its file ran.
func (r Revision) Complete() bool {
	return r.Type&TypeBaseline != 0 || r.Applied >= r.Total
}

// Comparison is the outcome of Compare. Each list is in ascending order
// and never nil.
type Comparison struct {
	// Applied lists the known versions the database has applied: their
	// revision is complete, or they have none and are older than the
	// newest baseline revision.
	Applied []string
	// Missing lists the known versions the database has not applied: no
	// revision (and no later baseline), or a revision of a file that
	// stopped part way.
	Missing []string
	// Unknown lists the versions of revisions for which versions has no
	// file, complete or not: a newer migration set applied them.
	Unknown []string
}

// Compare decides which of the migration versions in versions the
// database whose revisions table holds revs has applied, and which
// revisions it records that versions does not know. It is the rule the
// migrator's status report (db.Inspect) and the schema check of
// deploydb.Open share. revs must not include the Atlas CLI's
// ".atlas_cloud_identifier" bookkeeping row.
func Compare(versions []string, revs []Revision) Comparison {
	byVersion := make(map[string]Revision, len(revs))
	baseline := ""
	for _, r := range revs {
		byVersion[r.Version] = r
		if r.Type&TypeBaseline != 0 && r.Version > baseline {
			baseline = r.Version
		}
	}
	c := Comparison{Applied: []string{}, Missing: []string{}, Unknown: []string{}}
	known := make(map[string]bool, len(versions))
	for _, v := range versions {
		known[v] = true
		r, ok := byVersion[v]
		switch {
		case ok && r.Complete(), !ok && v < baseline:
			c.Applied = append(c.Applied, v)
		default:
			c.Missing = append(c.Missing, v)
		}
	}
	for _, r := range revs {
		if !known[r.Version] {
			c.Unknown = append(c.Unknown, r.Version)
		}
	}
	sort.Strings(c.Applied)
	sort.Strings(c.Missing)
	sort.Strings(c.Unknown)
	return c
}
