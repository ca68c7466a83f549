package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5/pgconn"
)

// DownReport describes a rollback that Down planned and, unless it was a
// dry run or refused, applied.
type DownReport struct {
	// From is the last applied version before the rollback; To the version
	// the database is rolled back to ("" when every file is rolled back).
	From string `json:"from_version"`
	To   string `json:"to_version"`
	// Files are the files rolled back, newest first.
	Files []string `json:"files"`
	// Plan is the SQL that takes the live schema to the schema the
	// migrations up to To create.
	Plan []PlanStep `json:"plan"`
	// DataLoss describes each step that drops data (tables with rows,
	// columns with values); Down refuses such a plan without
	// WithAllowDataLoss.
	DataLoss []string `json:"data_loss"`
	DryRun   bool     `json:"dry_run"`
	// Applied is true when the plan ran and the revision rows of Files were
	// removed.
	Applied  bool          `json:"applied"`
	LockWait time.Duration `json:"lock_wait_ns"`
	Retries  int           `json:"retries"`
}

// PlanStep is one statement of a rollback plan.
type PlanStep struct {
	Comment string `json:"comment,omitempty"`
	SQL     string `json:"sql"`
}

// Down rolls back the last applied migration files: the last one, the last
// n with WithSteps(n), or every file after a version with WithTarget.
//
// Migration files have no down scripts; the plan is computed: the
// directory's files up to the target version are replayed on a scratch
// database created on the same server (the user needs CREATEDB), the live
// schema is diffed against it with the Atlas library, and the resulting
// statements are the plan. Down returns the plan in its report, refuses
// (ErrDataLoss) a plan that drops tables holding rows or columns holding
// values unless WithAllowDataLoss is given, and then applies it and deletes
// the files' revision rows in one transaction, under the migration lock and
// the session timeouts Up uses (retrying on lock timeouts). Data changes a
// rolled-back file made (backfills) are not undone; only the schema is.
func Down(ctx context.Context, databaseURL string, opts ...MigrateOption) (*DownReport, error) {
	cfg := newConfig(opts)
	rep := &DownReport{DryRun: cfg.dryRun, Files: []string{}, Plan: []PlanStep{}, DataLoss: []string{}}
	if cfg.steps < 0 || (cfg.steps > 0 && cfg.target != "") {
		return rep, errors.New("db: down takes a number of files or a target version, not both")
	}
	s, err := openSession(ctx, databaseURL, cfg)
	if err != nil {
		return rep, err
	}
	defer s.close()
	unlock, waited, err := s.lock(ctx)
	rep.LockWait = waited
	if err != nil {
		return rep, err
	}
	defer unlock()

	revs, err := s.readRevisions(ctx)
	if err != nil {
		return rep, err
	}
	if len(revs) == 0 {
		return rep, errors.New("db: nothing to roll back: the database has no applied migrations")
	}
	if err := s.checkApplied(revs); err != nil {
		return rep, err
	}
	rep.From = revs[len(revs)-1].Version
	undo, err := s.downTarget(revs, rep)
	if err != nil {
		return rep, err
	}
	for i := len(undo) - 1; i >= 0; i-- {
		f, _ := s.file(undo[i].Version)
		rep.Files = append(rep.Files, f.Name())
	}

	changes, err := s.downChanges(ctx, rep.To)
	if err != nil {
		return rep, err
	}
	drv, err := postgres.Open(s.db)
	if err != nil {
		return rep, fmt.Errorf("db: open migration driver: %w", err)
	}
	plan, err := drv.PlanChanges(ctx, "down", changes)
	if err != nil {
		return rep, fmt.Errorf("db: plan rollback: %w", err)
	}
	for _, c := range plan.Changes {
		rep.Plan = append(rep.Plan, PlanStep{Comment: c.Comment, SQL: c.Cmd})
	}
	losses, err := dataLoss(ctx, s.db, s.schema, changes)
	if err != nil {
		return rep, err
	}
	for _, l := range losses {
		rep.DataLoss = append(rep.DataLoss, l.text)
	}
	if cfg.dryRun {
		return rep, nil
	}
	if len(losses) > 0 && !cfg.allowDataLoss {
		return rep, &DataLossError{Losses: rep.DataLoss}
	}
	for attempt := 0; ; attempt++ {
		err := s.applyDown(ctx, plan, changes, undo)
		if err == nil {
			break
		}
		if isSQLState(err, sqlstateLockNotAvailable) && attempt < cfg.retries && ctx.Err() == nil {
			rep.Retries++
			wait := s.backoff(attempt)
			cfg.progress("rollback: a statement waited longer than lock_timeout (%s) for its lock; retry %d of %d in %s",
				cfg.ddlLockTimeout, attempt+1, cfg.retries, wait.Round(time.Millisecond))
			if err := sleepCtx(ctx, wait); err != nil {
				return rep, err
			}
			continue
		}
		return rep, err
	}
	rep.Applied = true
	return rep, nil
}

// downTarget works out which revisions Down removes and sets rep.To.
func (s *session) downTarget(revs []*migrate.Revision, rep *DownReport) ([]*migrate.Revision, error) {
	for _, r := range revs {
		if _, ok := s.file(r.Version); !ok {
			return nil, fmt.Errorf("db: the database has applied version %s, which this migration directory does not have; "+
				"roll back with the build that applied it", r.Version)
		}
	}
	keep := len(revs) - 1 // index of the last revision that stays
	switch {
	case s.cfg.target != "":
		keep = -2
		for i, r := range revs {
			if r.Version == s.cfg.target {
				keep = i
			}
		}
		if keep == -2 {
			return nil, fmt.Errorf("%w: version %s is not applied, so the database cannot be rolled back to it", ErrBadTarget, s.cfg.target)
		}
		if keep == len(revs)-1 {
			return nil, fmt.Errorf("db: nothing to roll back: version %s is the last applied one", s.cfg.target)
		}
	default:
		n := max(s.cfg.steps, 1)
		if n > len(revs) {
			return nil, fmt.Errorf("%w: cannot roll back %d files: only %d are applied", ErrBadTarget, n, len(revs))
		}
		keep = len(revs) - 1 - n
	}
	undo := revs[keep+1:]
	for _, r := range undo {
		if r.Type.Has(migrate.RevisionTypeBaseline) {
			return nil, fmt.Errorf("db: cannot roll back past the baseline at version %s: the migrations did not create that schema", r.Version)
		}
	}
	if keep >= 0 {
		rep.To = revs[keep].Version
	}
	return undo, nil
}

// downChanges replays the directory up to version on a scratch database and
// returns the changes that take the live schema there.
func (s *session) downChanges(ctx context.Context, version string) ([]schema.Change, error) {
	desired, err := s.replaySchema(ctx, version)
	if err != nil {
		return nil, err
	}
	live, err := inspectSchema(ctx, s.db, s.schema)
	if err != nil {
		return nil, err
	}
	drv, err := postgres.Open(s.db)
	if err != nil {
		return nil, fmt.Errorf("db: open migration driver: %w", err)
	}
	changes, err := drv.SchemaDiff(live, desired)
	if err != nil {
		return nil, fmt.Errorf("db: diff live schema against version %s: %w", version, err)
	}
	return changes, nil
}

// inspectSchema inspects the named schema without the revisions table.
func inspectSchema(ctx context.Context, q schema.ExecQuerier, name string) (*schema.Schema, error) {
	drv, err := postgres.Open(q)
	if err != nil {
		return nil, fmt.Errorf("db: open migration driver: %w", err)
	}
	sch, err := drv.InspectSchema(ctx, name, &schema.InspectOptions{Exclude: []string{RevisionsTable}})
	if err != nil {
		return nil, fmt.Errorf("db: inspect schema %s: %w", name, err)
	}
	return sch, nil
}

// replaySchema applies the directory's files up to and including version
// ("" for none) to a scratch database on the same server and returns the
// inspected schema. The scratch database is dropped before it returns.
func (s *session) replaySchema(ctx context.Context, version string) (_ *schema.Schema, err error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "deploydb_scratch_" + hex.EncodeToString(b)
	if _, err := s.db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil {
		return nil, fmt.Errorf("db: create scratch database to replay the migrations (the user needs CREATEDB): %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := s.db.ExecContext(dctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); derr != nil && err == nil {
			err = fmt.Errorf("db: drop scratch database %s: %w", name, derr)
		}
	}()
	cfg := s.connCfg.Copy()
	cfg.Database = name
	scratch := openDB(cfg)
	defer scratch.Close()
	conn, err := scratch.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: connect to scratch database: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+quoteIdent(s.schema)); err != nil {
		return nil, fmt.Errorf("db: prepare scratch database: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT set_config('search_path', $1, false)`, quoteIdent(s.schema)); err != nil {
		return nil, fmt.Errorf("db: prepare scratch database: %w", err)
	}
	drv, err := postgres.Open(conn)
	if err != nil {
		return nil, fmt.Errorf("db: open migration driver: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, s.cfg.dir, migrate.NopRevisionReadWriter{}, migrate.WithAllowDirty(true))
	if err != nil {
		return nil, err
	}
	for _, f := range s.files {
		if version == "" || f.Version() > version {
			break
		}
		if err := ex.Execute(ctx, f); err != nil {
			return nil, fmt.Errorf("db: replay %s on the scratch database: %w", f.Name(), err)
		}
	}
	return inspectSchema(ctx, conn, s.schema)
}

// loss is one plan step that drops data.
type loss struct {
	table string // table to lock before re-checking
	check string // query returning the number of affected rows (capped)
	text  string
}

const lossCap = 1000

// dataLoss lists the changes that drop tables with rows or columns with
// values (or change the type of a column with values).
func dataLoss(ctx context.Context, q revisionQuerier, schemaName string, changes []schema.Change) ([]loss, error) {
	var out []loss
	for _, l := range candidateLosses(schemaName, changes) {
		n, err := countLoss(ctx, q, l)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			l.text = fmt.Sprintf("%s (%s)", l.text, rowsText(n))
			out = append(out, l)
		}
	}
	return out, nil
}

func countLoss(ctx context.Context, q revisionQuerier, l loss) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, l.check).Scan(&n); err != nil {
		return 0, fmt.Errorf("db: check whether the rollback drops data (%s): %w", l.text, err)
	}
	return n, nil
}

func rowsText(n int) string {
	switch {
	case n >= lossCap:
		return fmt.Sprintf("%d+ rows", lossCap)
	case n == 1:
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}

// applyDown runs the plan and deletes the rolled-back revisions in one
// transaction. Unless data loss is allowed, it first locks the tables the
// plan drops data from and checks again that they hold none, so rows
// written since the plan was made are not lost.
func (s *session) applyDown(ctx context.Context, plan *migrate.Plan, changes []schema.Change, undo []*migrate.Revision) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin rollback: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := s.setTimeouts(ctx, tx, true); err != nil {
		return err
	}
	if !s.cfg.allowDataLoss {
		if err := recheckLoss(ctx, tx, s.schema, changes); err != nil {
			return err
		}
	}
	for _, c := range plan.Changes {
		if _, err := tx.ExecContext(ctx, c.Cmd, c.Args...); err != nil {
			return rollbackError(c.Cmd, err)
		}
	}
	for _, r := range undo {
		if _, err := tx.ExecContext(ctx, `DELETE FROM atlas_schema_revisions WHERE version = $1`, r.Version); err != nil {
			return fmt.Errorf("db: delete revision %s: %w", r.Version, err)
		}
	}
	return tx.Commit()
}

// recheckLoss locks every table the changes could drop data from and fails
// with a *DataLossError when one now holds such data.
func recheckLoss(ctx context.Context, tx *sql.Tx, schemaName string, changes []schema.Change) error {
	locked := map[string]bool{}
	var found []string
	for _, l := range candidateLosses(schemaName, changes) {
		if !locked[l.table] {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE `+l.table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
				return err
			}
			locked[l.table] = true
		}
		n, err := countLoss(ctx, tx, l)
		if err != nil {
			return err
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s (%s)", l.text, rowsText(n)))
		}
	}
	if len(found) > 0 {
		return &DataLossError{Losses: found}
	}
	return nil
}

// candidateLosses lists the changes that could drop data, without checking
// whether they do.
func candidateLosses(schemaName string, changes []schema.Change) []loss {
	var out []loss
	qual := func(t string) string { return quoteIdent(schemaName) + "." + quoteIdent(t) }
	for _, c := range changes {
		switch c := c.(type) {
		case *schema.DropTable:
			out = append(out, loss{
				table: qual(c.T.Name),
				check: `SELECT count(*) FROM (SELECT FROM ` + qual(c.T.Name) + ` LIMIT ` + fmt.Sprint(lossCap) + `) s`,
				text:  "drop table " + c.T.Name,
			})
		case *schema.ModifyTable:
			for _, cc := range c.Changes {
				var col, what string
				switch cc := cc.(type) {
				case *schema.DropColumn:
					col, what = cc.C.Name, "drop column "
				case *schema.ModifyColumn:
					if cc.Change.Is(schema.ChangeType) {
						col, what = cc.From.Name, "change the type of column "
					}
				}
				if col == "" {
					continue
				}
				out = append(out, loss{
					table: qual(c.T.Name),
					check: `SELECT count(*) FROM (SELECT FROM ` + qual(c.T.Name) + ` WHERE ` + quoteIdent(col) +
						` IS NOT NULL LIMIT ` + fmt.Sprint(lossCap) + `) s`,
					text: what + c.T.Name + "." + col,
				})
			}
		}
	}
	return out
}

func rollbackError(stmt string, err error) error {
	me := &MigrationError{File: "rollback plan", Statement: strings.TrimSpace(stmt), Err: err}
	if isSQLState(err, sqlstateLockNotAvailable) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		me.SQLState = pgErr.Code
	}
	return me
}
