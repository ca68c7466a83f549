package db

import (
	"context"
	"fmt"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db/migrations"
)

// FileState is the state of one migration file in a database.
type FileState string

// File states reported by Status and Inspect.
const (
	StateApplied  FileState = "applied"  // every statement ran and committed
	StatePending  FileState = "pending"  // not applied yet
	StatePartial  FileState = "partial"  // some statements ran (a txmode none file that failed or was interrupted)
	StateBaseline FileState = "baseline" // marked as applied by a baseline (or older than it), not run
	// StateFailed is a txmode none file whose last attempt failed before
	// any of its statements took effect.
	StateFailed FileState = "failed"
	// StateModified is an applied file whose content changed after it was
	// applied (its hash differs from the recorded one). Up refuses to run
	// until the file is restored.
	StateModified FileState = "modified"
	// StateUnknown is a revision the database records for which the
	// directory has no file: a newer build of deploydb applied it.
	StateUnknown FileState = "unknown"
)

// FileStatus describes one migration file and what the database says
// about it.
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
	// ErrorStatement is the statement that failed, for partial and failed
	// files.
	ErrorStatement string `json:"error_statement,omitempty"`
}

// Verdict summarizes a StatusReport, most severe first.
type Verdict string

// Verdicts of StatusReport.Verdict.
const (
	// VerdictChecksum: an applied file was edited since (StateModified).
	VerdictChecksum Verdict = "checksum_mismatch"
	// VerdictLocked: a migration run holds the migration lock right now;
	// the other figures may be changing.
	VerdictLocked Verdict = "locked"
	// VerdictFailed: a file is partial or failed, or a failed concurrent
	// index build left an invalid index (one being built right now does not
	// count).
	VerdictFailed Verdict = "failed"
	// VerdictPending: files are waiting to be applied.
	VerdictPending Verdict = "pending"
	// VerdictOK: every file is applied (or covered by the baseline).
	VerdictOK Verdict = "ok"
)

// StatusReport is the migration state of one database.
type StatusReport struct {
	// Files lists every file of the directory in order, then any
	// StateUnknown revisions.
	Files []FileStatus `json:"files"`
	// Current is the last recorded version ("" when none is).
	Current string `json:"current_version"`
	// Pending counts StatePending files; Partial counts StatePartial and
	// StateFailed ones.
	Pending int `json:"pending"`
	Partial int `json:"partial"`
	// InvalidIndexes lists invalid indexes in the migrated schema.
	InvalidIndexes []InvalidIndex `json:"invalid_indexes"`
	// Lock names the session holding the migration lock, nil when no
	// migration is running.
	Lock    *LockHolder `json:"lock"`
	Verdict Verdict     `json:"verdict"`
}

// Status reports, for every embedded migration file, whether the database at
// databaseURL has applied it. A database that was never migrated reports
// every file pending. Inspect reports more.
func Status(ctx context.Context, databaseURL string) ([]FileStatus, error) {
	r, err := Inspect(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	return r.Files, nil
}

// Inspect reports the migration state of the database at databaseURL
// against the embedded migrations (or WithDir's): each file's state,
// invalid indexes, who holds the migration lock, and a verdict. It does not
// take the lock and changes nothing. A directory that does not match its
// atlas.sum is an error (ErrChecksum).
func Inspect(ctx context.Context, databaseURL string, opts ...MigrateOption) (*StatusReport, error) {
	cfg := newConfig(opts)
	s, err := openSession(ctx, databaseURL, cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	revs, err := s.readRevisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: status: %w", err)
	}
	rep := &StatusReport{Files: s.fileStates(revs), InvalidIndexes: []InvalidIndex{}}
	if len(revs) > 0 {
		rep.Current = revs[len(revs)-1].Version
	}
	if rep.Lock, err = lockHolder(ctx, s.db); err != nil {
		return nil, err
	}
	idx, err := invalidIndexes(ctx, s.db)
	if err != nil {
		return nil, err
	}
	for _, ix := range idx {
		// Name the unfinished file that builds it, if any.
		for _, f := range s.files {
			if st := rep.state(f.Version()); st == StatePending || st == StatePartial || st == StateFailed {
				if stmts, err := statements(f); err == nil && buildsIndex(stmts, ix.Name) {
					ix.File = f.Name()
					break
				}
			}
		}
		rep.InvalidIndexes = append(rep.InvalidIndexes, ix)
	}
	modified := false
	for _, f := range rep.Files {
		switch f.State {
		case StatePending:
			rep.Pending++
		case StatePartial, StateFailed:
			rep.Partial++
		case StateModified:
			modified = true
		}
	}
	switch {
	case modified:
		rep.Verdict = VerdictChecksum
	case rep.Lock != nil:
		rep.Verdict = VerdictLocked
	case rep.Partial > 0 || leftover(rep.InvalidIndexes):
		rep.Verdict = VerdictFailed
	case rep.Pending > 0:
		rep.Verdict = VerdictPending
	default:
		rep.Verdict = VerdictOK
	}
	return rep, nil
}

func (r *StatusReport) state(version string) FileState {
	for _, f := range r.Files {
		if f.Version == version {
			return f.State
		}
	}
	return ""
}

// leftover reports whether an invalid index is not being built right now,
// so that a failed build left it.
func leftover(idx []InvalidIndex) bool {
	for _, ix := range idx {
		if ix.BuildingPID == 0 {
			return true
		}
	}
	return false
}

// buildsIndex reports whether stmts build the named index concurrently.
func buildsIndex(stmts []string, name string) bool {
	for _, st := range stmts {
		if n, ok := concurrentIndexName(st); ok && n == name {
			return true
		}
	}
	return false
}

// fileStates matches the directory's files with the recorded revisions.
// Which files count as applied, and which revisions are unknown, is
// migrations.Compare's rule, the one deploydb.Open's schema check uses.
func (s *session) fileStates(revs []*migrate.Revision) []FileStatus {
	versions := make([]string, len(s.files))
	for i, f := range s.files {
		versions[i] = f.Version()
	}
	cmp := migrations.Compare(versions, compareRevisions(revs))
	applied := make(map[string]bool, len(cmp.Applied))
	for _, v := range cmp.Applied {
		applied[v] = true
	}
	byVersion := make(map[string]*migrate.Revision, len(revs))
	for _, r := range revs {
		byVersion[r.Version] = r
	}
	out := make([]FileStatus, 0, len(s.files)+len(cmp.Unknown))
	modified := s.firstModified(revs)
	for _, f := range s.files {
		fs := FileStatus{Version: f.Version(), Description: f.Desc(), State: StatePending}
		if stmts, err := statements(f); err == nil {
			fs.Total = len(stmts)
		}
		r, ok := byVersion[f.Version()]
		if ok {
			fs.Applied, fs.Total = r.Applied, r.Total
			fs.ExecutedAt, fs.Duration, fs.Operator = r.ExecutedAt, r.ExecutionTime, r.OperatorVersion
			fs.Error, fs.ErrorStatement = r.Error, r.ErrorStmt
		}
		switch {
		case !applied[f.Version()] && ok && r.Applied == 0 && r.Error != "":
			fs.State = StateFailed
		case !applied[f.Version()] && ok:
			fs.State = StatePartial
		case !applied[f.Version()]:
			// StatePending
		case !ok || r.Type.Has(migrate.RevisionTypeBaseline):
			fs.State = StateBaseline
		case f.Name() == modified:
			fs.State = StateModified
		default:
			fs.State = StateApplied
		}
		out = append(out, fs)
	}
	for _, v := range cmp.Unknown {
		r := byVersion[v]
		out = append(out, FileStatus{
			Version: r.Version, Description: r.Description, State: StateUnknown,
			Applied: r.Applied, Total: r.Total, ExecutedAt: r.ExecutedAt, Duration: r.ExecutionTime,
			Operator: r.OperatorVersion, Error: r.Error, ErrorStatement: r.ErrorStmt,
		})
	}
	return out
}

// compareRevisions converts revisions for migrations.Compare.
func compareRevisions(revs []*migrate.Revision) []migrations.Revision {
	out := make([]migrations.Revision, len(revs))
	for i, r := range revs {
		out[i] = migrations.Revision{Version: r.Version, Type: int64(r.Type), Applied: int64(r.Applied), Total: int64(r.Total)}
	}
	return out
}
