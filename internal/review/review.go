package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5"
)

// Section names, in report order.
const (
	SectionChanges = "changes"
	SectionLint    = "lint"
	SectionDrift   = "drift"
	SectionPlans   = "plans"
	SectionERD     = "erd"
)

// AllSections are the sections a review runs by default.
var AllSections = []string{SectionChanges, SectionLint, SectionDrift, SectionPlans, SectionERD}

// Options configure a review.
type Options struct {
	Repo string // repository root; the working tree is what is reviewed
	Base string // git ref to compare with; "" for the merge base with main
	// Dir is the migration directory, slash-separated, relative to Repo
	// (default db/migrations); Queries the sqlc query directory (default
	// queries).
	Dir, Queries string
	Atlas, Sqlc  string // paths of the pinned CLIs
	// Sections to run (default AllSections).
	Sections []string
	// Scale multiplies the seeded data set of the plans section (default 1).
	Scale float64
	// QueryFilter, when set, limits the plans section to the queries it
	// accepts.
	QueryFilter func(name string) bool
	Server      Server    // where scratch databases are created
	Log         io.Writer // progress lines; nil for none
}

// Report is the result of a review.
type Report struct {
	Base     BaseInfo
	Dir      string
	Sections map[string]bool
	Duration time.Duration

	NewFiles []*migrationFile
	Edited   []string
	Removed  []string
	Changes  []string // schema changes in words

	AtlasLint atlasLintResult
	Drift     []Check

	Seed  seedStats
	Plans []PlanResult

	Mermaid string

	Findings []Finding
}

// Errors returns the number of findings that fail the review.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.IsError() {
			n++
		}
	}
	return n
}

func (o *Options) defaults() error {
	if o.Repo == "" {
		o.Repo = "."
	}
	abs, err := filepath.Abs(o.Repo)
	if err != nil {
		return err
	}
	o.Repo = abs
	if o.Dir == "" {
		o.Dir = "db/migrations"
	}
	if o.Queries == "" {
		o.Queries = "queries"
	}
	if o.Atlas == "" {
		o.Atlas = filepath.Join(o.Repo, "bin", "atlas")
	}
	if o.Sqlc == "" {
		o.Sqlc = filepath.Join(o.Repo, "bin", "sqlc")
	}
	if len(o.Sections) == 0 {
		o.Sections = AllSections
	}
	for _, s := range o.Sections {
		known := false
		for _, k := range AllSections {
			known = known || s == k
		}
		if !known {
			return fmt.Errorf("unknown section %q (want %s)", s, strings.Join(AllSections, ", "))
		}
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Scale < 0 {
		return fmt.Errorf("scale %v: want a positive number", o.Scale)
	}
	if o.Server == nil {
		return errors.New("review: no Server for scratch databases")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// reviewer carries one review's state.
type reviewer struct {
	o     Options
	r     *Report
	start time.Time
	mu    sync.Mutex // guards r.Findings and logging

	baseFiles, headFiles []sourceFile
	headSum              []byte
	baseMig, newMig      []*migrationFile
	editedMig            []*migrationFile
	headMig              []*migrationFile

	baseSchema, headSchema *schema.Schema
	baseDB, headDB         string // scratch database names (templates)
}

func (rv *reviewer) logf(format string, args ...any) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	fmt.Fprintf(rv.o.Log, "review: %5.1fs  %s\n", time.Since(rv.start).Seconds(), fmt.Sprintf(format, args...))
}

func (rv *reviewer) add(f ...Finding) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.r.Findings = append(rv.r.Findings, f...)
}

// fail records that part of a section could not run.
func (rv *reviewer) fail(section, where string, err error) {
	rv.add(Finding{Section: section, Rule: "review", Where: where, Message: err.Error(),
		Fix: "fix the problem and run make review again.", stmt: -1})
}

// Run reviews the working tree of o.Repo against the base and returns the
// report. Problems found are findings of the report; the error is only for
// a review that cannot start (no git history, bad options).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rv := &reviewer{o: o, start: time.Now(), r: &Report{Dir: o.Dir, Sections: map[string]bool{}}}
	for _, s := range o.Sections {
		rv.r.Sections[s] = true
	}
	base, err := resolveBase(ctx, o.Repo, o.Base)
	if err != nil {
		return nil, err
	}
	rv.r.Base = base
	rv.logf("base %s (%s), head %s%s", base.Ref, base.Short(), shortHash(base.Head), map[bool]string{true: " + working tree changes"}[base.Dirty])
	if err := rv.loadMigrations(ctx); err != nil {
		return nil, err
	}

	sec := rv.r.Sections
	needDB := sec[SectionChanges] || sec[SectionLint] || sec[SectionPlans] || sec[SectionERD] || sec[SectionDrift]
	if needDB {
		defer rv.dropTemplates()
		rv.replayBaseAndHead(ctx)
	}

	var wg sync.WaitGroup
	if sec[SectionPlans] && rv.headSchema != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rv.plans(ctx)
		}()
	}
	if sec[SectionChanges] || sec[SectionLint] {
		rv.changesAndLint(ctx)
	}
	if sec[SectionDrift] {
		rv.drift(ctx)
	}
	if (sec[SectionERD] || sec[SectionDrift]) && rv.headSchema != nil {
		rv.r.Mermaid = Mermaid(rv.headSchema)
	}
	wg.Wait()

	sortFindings(rv.r.Findings)
	rv.r.Duration = time.Since(rv.start)
	rv.logf("done: %d errors", rv.r.Errors())
	return rv.r, nil
}

// loadMigrations reads the migration files at the base and in the working
// tree and sorts them into new, edited and removed.
func (rv *reviewer) loadMigrations(ctx context.Context) error {
	o := rv.o
	var err error
	if rv.baseFiles, err = filesAtCommit(ctx, o.Repo, rv.r.Base.Commit, o.Dir, ".sql"); err != nil {
		return err
	}
	if rv.headFiles, err = filesInTree(o.Repo, o.Dir, ".sql"); err != nil {
		return err
	}
	rv.headSum, _ = os.ReadFile(filepath.Join(o.Repo, filepath.FromSlash(o.Dir), "atlas.sum"))
	base := map[string][]byte{}
	for _, f := range rv.baseFiles {
		base[f.Name] = f.Data
		m, err := parseMigration(f)
		if err != nil {
			return err
		}
		rv.baseMig = append(rv.baseMig, m)
	}
	head := map[string]bool{}
	for _, f := range rv.headFiles {
		head[f.Name] = true
		m, err := parseMigration(f)
		if err != nil {
			return err
		}
		rv.headMig = append(rv.headMig, m)
		data, ok := base[f.Name]
		switch {
		case !ok:
			rv.newMig = append(rv.newMig, m)
		case !bytes.Equal(data, f.Data):
			rv.r.Edited = append(rv.r.Edited, f.Name)
			rv.editedMig = append(rv.editedMig, m)
		}
	}
	for _, f := range rv.baseFiles {
		if !head[f.Name] {
			rv.r.Removed = append(rv.r.Removed, f.Name)
		}
	}
	rv.r.NewFiles = rv.newMig
	rv.logf("%d migration files at the base, %d new, %d edited, %d removed",
		len(rv.baseFiles), len(rv.newMig), len(rv.r.Edited), len(rv.r.Removed))
	return nil
}

// replayBaseAndHead migrates two scratch databases, one with the base's
// files and one with the working tree's, and inspects both schemas.
func (rv *reviewer) replayBaseAndHead(ctx context.Context) {
	var err error
	rv.baseDB, rv.baseSchema, err = rv.migrated(ctx, "base", rv.baseMig)
	if err != nil {
		rv.fail(SectionChanges, "base", fmt.Errorf("replay the base's migrations: %w", err))
	}
	rv.headDB, rv.headSchema, err = rv.migrated(ctx, "head", rv.headMig)
	if err != nil {
		var ae *applyError
		switch {
		case errors.As(err, &ae) && rv.isNew(ae.File):
			// Reported by the statement-by-statement replay of the new files.
		case ae != nil:
			rv.add(Finding{Section: SectionLint, Rule: "apply", Where: rv.o.Dir + "/" + ae.File + ":" + fmt.Sprint(ae.Line),
				Message: "the working tree's migrations fail on an empty database: " + ae.Error(),
				Fix:     mustRule("apply").Fix, file: ae.File, stmt: -1})
		default:
			rv.fail(SectionLint, "head", fmt.Errorf("replay the working tree's migrations: %w", err))
		}
	}
	rv.logf("replayed base and head migrations")
}

func (rv *reviewer) isNew(name string) bool {
	for _, f := range rv.newMig {
		if f.Name == name {
			return true
		}
	}
	return false
}

// migrated creates a scratch database with the files applied and returns
// its name and schema. The database is kept (as a template) until the
// review ends.
func (rv *reviewer) migrated(ctx context.Context, purpose string, files []*migrationFile) (string, *schema.Schema, error) {
	name, url, drop, err := scratch(ctx, rv.o.Server, purpose, "")
	if err != nil {
		return "", nil, err
	}
	db, conn, err := openConn(ctx, url)
	if err != nil {
		drop()
		return "", nil, err
	}
	defer db.Close()
	defer conn.Close()
	if err := replay(ctx, conn, files, nil); err != nil {
		drop()
		return "", nil, err
	}
	s, err := inspectPublic(ctx, conn)
	if err != nil {
		drop()
		return "", nil, err
	}
	return name, s, nil
}

func (rv *reviewer) dropTemplates() {
	for _, n := range []string{rv.baseDB, rv.headDB} {
		if n != "" {
			_ = rv.o.Server.DropDatabase(context.Background(), n)
		}
	}
}

// changesAndLint describes the schema changes (section 1) and lints the new
// files (section 2).
func (rv *reviewer) changesAndLint(ctx context.Context) {
	o := rv.o
	if rv.baseSchema != nil && rv.headSchema != nil {
		_, url, drop, err := scratch(ctx, o.Server, "diff", "")
		if err == nil {
			db, conn, err2 := openConn(ctx, url)
			if err2 == nil {
				changes, err3 := diffSchemas(ctx, conn, rv.baseSchema, rv.headSchema)
				if err3 == nil {
					rv.r.Changes = describeChanges(changes, findRenames(rv.newMig))
				}
				err = err3
				conn.Close()
				db.Close()
			} else {
				err = err2
			}
			drop()
		}
		if err != nil {
			rv.fail(SectionChanges, "schema diff", err)
		}
	}
	if !rv.r.Sections[SectionLint] {
		return
	}

	// Replay the new files statement by statement on a copy of the base.
	var facts []*stmtFacts
	var applyFailures []Finding
	if rv.baseSchema != nil && len(rv.newMig) > 0 {
		facts, applyFailures = rv.analyze(ctx)
	}
	var usage *queryUsage
	if qs, err := filesAtCommit(ctx, o.Repo, rv.r.Base.Commit, o.Queries, ".sql"); err != nil {
		rv.fail(SectionLint, o.Queries, err)
	} else {
		usage = &queryUsage{}
		for _, f := range qs {
			usage.queries = append(usage.queries, parseQueries(f.Name, f.Data)...)
		}
	}
	findings := []Finding(nil)
	if rv.baseSchema != nil {
		findings = lintMigrations(lintInput{dir: o.Dir, base: rv.baseSchema, baseFile: rv.baseFiles,
			edited: rv.r.Edited, removed: rv.r.Removed, newFiles: rv.newMig, facts: facts, usage: usage})
	}
	findings = append(findings, applyFailures...)

	// Atlas's own analyzers, on the same files.
	if len(rv.newMig) > 0 {
		first := len(rv.headFiles)
		for i, f := range rv.headFiles {
			if f.Name == rv.newMig[0].Name {
				first = i
				break
			}
		}
		_, devURL, drop, err := scratch(ctx, o.Server, "lint", "")
		if err != nil {
			rv.fail(SectionLint, "atlas migrate lint", err)
		} else {
			res, err := runAtlasLint(ctx, o.Atlas, o.Repo, o.Dir, rv.headFiles, rv.headSum,
				len(rv.headFiles)-first, withParam(devURL, "search_path=public"))
			drop()
			rv.r.AtlasLint = res
			if err != nil {
				rv.fail(SectionLint, "atlas migrate lint", err)
			}
			analyzed := map[string]map[int]bool{}
			for _, f := range facts {
				if analyzed[f.File.Name] == nil {
					analyzed[f.File.Name] = map[int]bool{}
				}
				analyzed[f.File.Name][f.Index] = true
			}
			findings = mergeAtlas(findings, res, rv.newMig, o.Dir, analyzed)
		}
		rv.logf("atlas migrate lint on %d new files", len(rv.headFiles)-first)
	}
	findings = applyAllows(findings, append(append([]*migrationFile(nil), rv.newMig...), rv.editedMig...), o.Dir)
	rv.add(findings...)
}

// analyze replays the new files on a copy of the base, one statement at a
// time, and returns what each statement did, and the statement that failed
// to apply, if any.
func (rv *reviewer) analyze(ctx context.Context) ([]*stmtFacts, []Finding) {
	_, url, drop, err := scratch(ctx, rv.o.Server, "analyze", rv.baseDB)
	if err != nil {
		rv.fail(SectionLint, "analyze", err)
		return nil, nil
	}
	defer drop()
	db, conn, err := openConn(ctx, url)
	if err != nil {
		rv.fail(SectionLint, "analyze", err)
		return nil, nil
	}
	defer db.Close()
	defer conn.Close()
	// A type change between timestamp and timestamptz rewrites the table
	// unless the session time zone is UTC; replay as a server that is not.
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'America/New_York'"); err != nil {
		rv.fail(SectionLint, "analyze", err)
		return nil, nil
	}
	a := &analysis{base: rv.baseSchema, prev: rv.baseSchema}
	for _, f := range rv.newMig {
		run := f
		if !f.NoTx {
			for _, s := range f.Stmts {
				if concurrentlyRE.MatchString(s.Text) {
					// Reported by concurrent_index; replay it the way it
					// could run, to check the rest of the file.
					c := *f
					c.NoTx = true
					run = &c
					break
				}
			}
		}
		if err := replayFile(ctx, conn, run, a); err != nil {
			var ae *applyError
			if errors.As(err, &ae) {
				failed := Finding{Section: SectionLint, Rule: "apply", Where: fmt.Sprintf("%s/%s:%d", rv.o.Dir, ae.File, ae.Line),
					Message: ae.Error(), Fix: mustRule("apply").Fix, file: ae.File, stmt: -1}
				return a.facts, []Finding{failed}
			}
			rv.fail(SectionLint, f.Name, err)
			break
		}
	}
	rv.logf("analyzed %d statements of %d new files", len(a.facts), len(rv.newMig))
	return a.facts, nil
}

// drift runs the checks of section 3.
func (rv *reviewer) drift(ctx context.Context) {
	o := rv.o
	var checks []Check
	_, devURL, drop, err := scratch(ctx, o.Server, "drift", "")
	if err != nil {
		rv.fail(SectionDrift, "schema.hcl", err)
	} else {
		checks = append(checks, checkSchemaDrift(ctx, o.Atlas, o.Repo, o.Dir, withParam(devURL, "search_path=public")))
		drop()
	}
	checks = append(checks, checkAtlasSum(ctx, o.Atlas, o.Repo, o.Dir))
	checks = append(checks, checkTriggers(o.Repo, o.Dir))
	checks = append(checks, checkSqlc(ctx, o.Sqlc, o.Repo))
	if rv.headSchema != nil {
		checks = append(checks, checkERD(o.Repo, SchemaDoc(rv.headSchema)))
	}
	rv.r.Drift = checks
	for _, c := range checks {
		if !c.OK && c.Skipped == "" {
			msg := "out of sync (details in section 3)."
			if c.Detail != "" && !strings.Contains(c.Detail, "\n") {
				msg = c.Detail
			}
			rv.add(Finding{Section: SectionDrift, Rule: "drift", Where: c.Name, Message: msg, Fix: c.Fix, stmt: -1})
		}
	}
	rv.logf("drift checks done")
}

// plans seeds a copy of the head schema and explains every query
// (section 4).
func (rv *reviewer) plans(ctx context.Context) {
	o := rv.o
	var queries []*Query
	files, err := filesInTree(o.Repo, o.Queries, ".sql")
	if err != nil {
		rv.fail(SectionPlans, o.Queries, err)
		return
	}
	for _, f := range files {
		for _, q := range parseQueries(f.Name, f.Data) {
			if o.QueryFilter == nil || o.QueryFilter(q.Name) {
				queries = append(queries, q)
			}
		}
	}
	_, url, drop, err := scratch(ctx, o.Server, "plans", rv.headDB)
	if err != nil {
		rv.fail(SectionPlans, "seed", err)
		return
	}
	defer drop()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		rv.fail(SectionPlans, "seed", err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rv.logf("seeding the plans database (scale %g)", o.Scale)
	st, err := seed(ctx, conn, o.Scale)
	rv.r.Seed = st
	if err != nil {
		rv.fail(SectionPlans, "seed", err)
		return
	}
	for _, f := range st.Filled {
		rv.add(Finding{Section: SectionPlans, Rule: "seed", Warning: true, Where: "internal/review/seed.go", stmt: -1,
			Message: fmt.Sprintf("column %s.%s (%s, NOT NULL, no default) is new to the seed: every row got %s.",
				f.Table, f.Column, f.Type, f.Value),
			Fix: "add the column to the seed with realistic values, so its plans are representative."})
	}
	rv.logf("seeded in %s: %d apps, %d builds, %d deployments, %d operations", st.Duration.Round(time.Millisecond),
		st.Rows["apps"], st.Rows["builds"], st.Rows["deployments"], st.Rows["deployment_operations"])
	s, err := pickSample(ctx, conn)
	if err != nil {
		rv.fail(SectionPlans, "seed", err)
		return
	}
	results := explainQueries(ctx, conn, s, queries)
	rv.r.Plans = results
	rv.logf("explained %d queries", len(results))
	var fs []Finding
	for _, p := range results {
		q := p.Query
		where := fmt.Sprintf("%s/%s:%d %s", o.Queries, q.File, q.Line, q.Name)
		if p.Err != "" {
			fs = append(fs, Finding{Section: SectionPlans, Rule: "explain", Where: where, Message: p.Err,
				Fix: "the statement fails on the head schema with the values shown in section 4: fix the query " +
					"(it fails the same way in production), or its values in internal/review/params.go.", stmt: -1})
		}
		for _, pr := range p.Problems {
			f := Finding{Section: SectionPlans, Rule: pr.Rule, Where: where, Message: pr.Text, stmt: -1,
				Fix: planFix(pr.Rule), Allowed: q.AllowScan}
			fs = append(fs, f)
		}
		for _, pu := range p.Params {
			if pu.Fallback {
				fs = append(fs, Finding{Section: SectionPlans, Rule: "params", Where: where, Warning: true, stmt: -1,
					Message: fmt.Sprintf("parameter %s has no representative value; the plan used %s.", pu.Name, pu.value),
					Fix:     fmt.Sprintf("add %q to queryValues in internal/review/params.go.", q.Name+"."+pu.Name)})
			}
		}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Where < fs[j].Where })
	rv.add(fs...)
}

func planFix(rule string) string {
	switch rule {
	case "seq_scan":
		return "filter on the columns of an index as they are (no function or cast on the indexed column), or add " +
			"an index (CONCURRENTLY); a query meant to scan says so with `-- " + allowScanDirective + " <reason>`."
	case "sort":
		return "order by the trailing columns of the index the filter uses, so the scan returns rows in order and " +
			"stops at the LIMIT."
	case "buffers":
		return "bound the scan with the index condition (keyset comparison, range) instead of a Filter, and LIMIT it."
	}
	return ""
}
