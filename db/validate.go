package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidMigrations is returned by Validate when a migration file cannot
// run as written (a statement that does not parse, an unknown txmode, a
// statement that cannot run inside the file's transaction, a statement the
// migrator refuses), and by Up when a pending file holds a statement the
// migrator refuses (nothing ran). The error is an *InvalidMigrationsError.
var ErrInvalidMigrations = errors.New("db: invalid migration files")

// InvalidMigrationsError lists what Validate or Up found wrong. It matches
// ErrInvalidMigrations.
type InvalidMigrationsError struct {
	Problems []string
	// Refused lists the statements the migrator refuses to run, each
	// also described in Problems.
	Refused []Refusal
	// Refusing is true when Up refused to run the pending files.
	Refusing bool
}

// Error implements error.
func (e *InvalidMigrationsError) Error() string {
	head := ErrInvalidMigrations.Error()
	if e.Refusing {
		head = "db: refusing to migrate, nothing was executed: " + strings.TrimPrefix(head, "db: ")
	}
	return head + ":\n\t" + strings.Join(e.Problems, "\n\t")
}

// refusedError is Up's error for refused statements of pending files.
func refusedError(refused []Refusal) error {
	e := &InvalidMigrationsError{Refused: refused, Refusing: true}
	for _, r := range refused {
		e.Problems = append(e.Problems, r.String())
	}
	return e
}

// Is reports whether target is ErrInvalidMigrations.
func (e *InvalidMigrationsError) Is(target error) bool { return target == ErrInvalidMigrations }

// ValidateReport describes what Validate checked.
type ValidateReport struct {
	// Files is the number of migration files checked.
	Files int `json:"files"`
	// Database is true when a database was checked too.
	Database bool `json:"database_checked"`
	// Problems lists files that cannot run as written.
	Problems []string `json:"problems"`
	// Refused lists the statements the migrator refuses to run (also in
	// Problems).
	Refused []Refusal `json:"refused"`
	// Modified lists applied files whose content changed since.
	Modified []string `json:"modified"`
	// Unknown lists versions the database has applied that the directory
	// does not have (a newer build applied them).
	Unknown []string `json:"unknown"`
}

// outsideTx matches statements PostgreSQL refuses to run inside a
// transaction block.
var outsideTx = regexp.MustCompile(`(?is)^\s*(?:(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|REINDEX\s+.*\bCONCURRENTLY\b|VACUUM\b|(?:CREATE|DROP)\s+DATABASE\b|ALTER\s+SYSTEM\b)`)

// Validate checks the migration directory (the embedded one unless WithDir
// says otherwise) without changing anything. atlas.sum must match the files
// (else ErrChecksum). Every file must parse and have a valid txmode
// directive, keep statements that cannot run in a transaction (CREATE INDEX
// CONCURRENTLY, VACUUM, ...) in `-- atlas:txmode none` files, and hold no
// transaction control and no timeout switched off (CheckFile); else the
// error is ErrInvalidMigrations and the report lists the problems.
// With a databaseURL it also checks that no file the database applied was
// edited since (ErrChecksum) and lists revisions the directory does not
// know.
func Validate(ctx context.Context, databaseURL string, opts ...MigrateOption) (*ValidateReport, error) {
	cfg := newConfig(opts)
	rep := &ValidateReport{Problems: []string{}, Refused: []Refusal{}, Modified: []string{}, Unknown: []string{}}
	files, _, err := loadDir(cfg.dir)
	if err != nil {
		return rep, err
	}
	rep.Files = len(files)
	for _, f := range files {
		mode, err := txMode(f)
		if err != nil {
			rep.Problems = append(rep.Problems, strings.TrimPrefix(err.Error(), "db: "))
			continue
		}
		stmts, err := statements(f)
		if err != nil {
			rep.Problems = append(rep.Problems, strings.TrimPrefix(err.Error(), "db: "))
			continue
		}
		refused, err := CheckFile(f)
		if err != nil {
			rep.Problems = append(rep.Problems, strings.TrimPrefix(err.Error(), "db: "))
			continue
		}
		for _, r := range refused {
			rep.Refused = append(rep.Refused, r)
			rep.Problems = append(rep.Problems, r.String())
		}
		if mode == txModeFile {
			for i, st := range stmts {
				if outsideTx.MatchString(stripLeadingComments(st)) {
					rep.Problems = append(rep.Problems, fmt.Sprintf(
						"%s: statement %d cannot run inside a transaction; start the file with `-- atlas:txmode none` and a blank line",
						f.Name(), i+1))
				}
			}
		}
	}
	if databaseURL != "" {
		s, err := openSession(ctx, databaseURL, cfg)
		if err != nil {
			return rep, err
		}
		defer s.close()
		rep.Database = true
		revs, err := s.readRevisions(ctx)
		if err != nil {
			return rep, err
		}
		for _, st := range s.fileStates(revs) {
			switch st.State {
			case StateModified:
				rep.Modified = append(rep.Modified, st.Version)
			case StateUnknown:
				rep.Unknown = append(rep.Unknown, st.Version)
			}
		}
		if err := s.checkApplied(revs); err != nil {
			return rep, err
		}
	}
	if len(rep.Problems) > 0 {
		return rep, &InvalidMigrationsError{Problems: rep.Problems, Refused: rep.Refused}
	}
	return rep, nil
}
