package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
)

// BaselineReport describes what Baseline did.
type BaselineReport struct {
	Version string `json:"version"`
	File    string `json:"file"`
	// Differences is the SQL that would take the live schema to what the
	// migrations up to Version create; Baseline refuses when it is not
	// empty, unless WithForce is given.
	Differences []string `json:"differences"`
	Forced      bool     `json:"forced"`
}

// Baseline adopts a database whose schema was created without deploydb's
// migrator (by hand, by another tool, from a dump): it records version as a
// baseline revision, so the files up to and including it count as applied
// and Up starts after it. It is the Atlas CLI's `migrate apply --baseline`
// and writes the same row.
//
// Baseline refuses a database that already has revisions. Unless WithForce
// is given, it first replays the files up to version on a scratch database
// on the same server and refuses when the live schema differs from the
// result, listing the differences.
func Baseline(ctx context.Context, databaseURL, version string, opts ...MigrateOption) (*BaselineReport, error) {
	cfg := newConfig(opts)
	rep := &BaselineReport{Version: version, Differences: []string{}, Forced: cfg.force}
	s, err := openSession(ctx, databaseURL, cfg)
	if err != nil {
		return rep, err
	}
	defer s.close()
	if err := s.checkVersion(version); err != nil {
		return rep, err
	}
	f, _ := s.file(version)
	rep.File = f.Name()
	unlock, _, err := s.lock(ctx)
	if err != nil {
		return rep, err
	}
	defer unlock()
	revs, err := s.readRevisions(ctx)
	if err != nil {
		return rep, err
	}
	if len(revs) > 0 {
		return rep, fmt.Errorf("db: the database already has migration revisions (last: %s); baseline only adopts a database that was never migrated",
			revs[len(revs)-1].Version)
	}
	if !cfg.force {
		changes, err := s.downChanges(ctx, version)
		if err != nil {
			return rep, err
		}
		if len(changes) > 0 {
			rep.Differences = describeChanges(ctx, s, changes)
			return rep, errors.New("db: the database's schema differs from what the migrations up to " + version +
				" create; to match, it would need:\n\t" + strings.Join(rep.Differences, "\n\t") +
				"\n(fix the schema, pick another version, or force the baseline)")
		}
	}
	if _, err := s.db.ExecContext(ctx, createRevisionsTable); err != nil {
		return rep, fmt.Errorf("db: create %s: %w", RevisionsTable, err)
	}
	rrw := &revisions{q: s.db, schema: s.schema}
	err = rrw.WriteRevision(ctx, &migrate.Revision{
		Version: f.Version(), Description: f.Desc(), Type: migrate.RevisionTypeBaseline,
		ExecutedAt: time.Now(), OperatorVersion: operatorVersion,
	})
	if err != nil {
		return rep, fmt.Errorf("db: %w", err)
	}
	return rep, nil
}

// describeChanges returns the SQL Atlas plans for changes or, for changes it
// cannot plan (it cannot turn an existing column into an identity column,
// for one), a description of each change.
func describeChanges(ctx context.Context, s *session, changes []schema.Change) []string {
	var out []string
	if drv, err := postgres.Open(s.db); err == nil {
		if plan, err := drv.PlanChanges(ctx, "baseline", changes); err == nil {
			for _, c := range plan.Changes {
				out = append(out, c.Cmd)
			}
			return out
		}
	}
	for _, c := range changes {
		out = append(out, describeChange(c))
	}
	return out
}

func describeChange(c schema.Change) string {
	switch c := c.(type) {
	case *schema.AddTable:
		return "add table " + c.T.Name
	case *schema.DropTable:
		return "drop table " + c.T.Name
	case *schema.ModifyTable:
		var parts []string
		for _, cc := range c.Changes {
			parts = append(parts, describeChange(cc))
		}
		return "modify table " + c.T.Name + ": " + strings.Join(parts, ", ")
	case *schema.AddColumn:
		return "add column " + c.C.Name
	case *schema.DropColumn:
		return "drop column " + c.C.Name
	case *schema.ModifyColumn:
		return "modify column " + c.To.Name
	case *schema.AddIndex:
		return "add index " + c.I.Name
	case *schema.DropIndex:
		return "drop index " + c.I.Name
	case *schema.ModifyIndex:
		return "modify index " + c.To.Name
	case *schema.AddForeignKey:
		return "add foreign key " + c.F.Symbol
	case *schema.DropForeignKey:
		return "drop foreign key " + c.F.Symbol
	case *schema.AddAttr, *schema.ModifyAttr, *schema.DropAttr:
		return "change a table attribute (such as its comment)"
	case *schema.AddCheck:
		return "add check " + c.C.Name
	case *schema.DropCheck:
		return "drop check " + c.C.Name
	}
	return fmt.Sprintf("%T", c)
}
