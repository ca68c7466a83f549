package db

import (
	"fmt"
	"io/fs"
	"sort"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db/migrations"
)

// Dir returns the embedded migration directory (package migrations) as an
// Atlas migrate.Dir. It is read-only: WriteFile returns an error.
func Dir() migrate.Dir {
	return embedDir{FS: migrations.FS}
}

// Checksum returns the total hash of the embedded migration directory as
// recorded in atlas.sum (e.g. "h1:…"). It changes whenever a migration file is
// added or edited, so it names a migrated template database unambiguously.
func Checksum() string {
	sum, err := Dir().Checksum()
	if err != nil {
		panic(fmt.Sprintf("db: hash embedded migrations: %v", err))
	}
	return "h1:" + sum.Sum()
}

// Versions returns the versions of the embedded migration files in order.
func Versions() []string {
	files, err := Dir().Files()
	if err != nil {
		panic(fmt.Sprintf("db: read embedded migrations: %v", err))
	}
	vs := make([]string, len(files))
	for i, f := range files {
		vs[i] = f.Version()
	}
	return vs
}

// embedDir adapts an fs.FS holding *.sql files and atlas.sum to migrate.Dir.
type embedDir struct{ fs.FS }

func (d embedDir) WriteFile(name string, _ []byte) error {
	return fmt.Errorf("db: embedded migration directory is read-only (write %s)", name)
}

func (d embedDir) Files() ([]migrate.File, error) {
	names, err := fs.Glob(d.FS, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	files := make([]migrate.File, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(d.FS, n)
		if err != nil {
			return nil, fmt.Errorf("db: read migration %s: %w", n, err)
		}
		files = append(files, migrate.NewLocalFile(n, b))
	}
	return files, nil
}

func (d embedDir) Checksum() (migrate.HashFile, error) {
	files, err := d.Files()
	if err != nil {
		return nil, err
	}
	return migrate.NewHashFile(files)
}
