package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ariga.io/atlas/sql/migrate"
	"github.com/jackc/pgx/v5/pgconn"
)

// FileState is the state of one migration file in a database.
type FileState string

// File states reported by Status.
const (
	StateApplied  FileState = "applied"  // every statement ran and committed
	StatePending  FileState = "pending"  // not applied yet
	StatePartial  FileState = "partial"  // some statements ran (applied outside a transaction)
	StateBaseline FileState = "baseline" // marked as applied by a baseline, not run
)

// FileStatus describes one embedded migration file and what the database
// says about it.
type FileStatus struct {
	Version     string        `json:"version"`
	Description string        `json:"description"`
	State       FileState     `json:"state"`
	Applied     int           `json:"applied_statements"`
	Total       int           `json:"total_statements"`
	ExecutedAt  time.Time     `json:"executed_at,omitzero"`
	Duration    time.Duration `json:"duration_ns,omitempty"`
	Operator    string        `json:"operator,omitempty"`
	Error       string        `json:"error,omitempty"`
}

// Status reports, for every embedded migration file, whether the database at
// databaseURL has applied it. A database that was never migrated reports
// every file pending.
func Status(ctx context.Context, databaseURL string) ([]FileStatus, error) {
	sqlDB, err := openSQL(databaseURL)
	if err != nil {
		return nil, err
	}
	defer sqlDB.Close()
	files, err := Dir().Files()
	if err != nil {
		return nil, err
	}
	rr := &revisions{q: sqlDB}
	revs, err := rr.ReadRevisions(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		revs, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("db: status: %w", err)
	}
	byVersion := make(map[string]*migrate.Revision, len(revs))
	for _, r := range revs {
		byVersion[r.Version] = r
	}
	out := make([]FileStatus, 0, len(files))
	for _, f := range files {
		fs := FileStatus{Version: f.Version(), Description: f.Desc(), State: StatePending}
		if stmts, err := f.Stmts(); err == nil {
			fs.Total = len(stmts)
		}
		if r, ok := byVersion[f.Version()]; ok {
			fs.Applied, fs.Total = r.Applied, r.Total
			fs.ExecutedAt, fs.Duration, fs.Operator, fs.Error = r.ExecutedAt, r.ExecutionTime, r.OperatorVersion, r.Error
			switch {
			case r.Type.Has(migrate.RevisionTypeBaseline):
				fs.State = StateBaseline
			case r.Applied < r.Total:
				fs.State = StatePartial
			default:
				fs.State = StateApplied
			}
		}
		out = append(out, fs)
	}
	return out, nil
}
