package review

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"

	"github.com/deploydb/deploydb/db"
)

// Rule is one lint rule of section 2. Name is what a reviewed exception
// names: `-- deploydb:allow <name> <reason>` in the migration file.
type Rule struct {
	Name string
	// Atlas lists the codes of atlas migrate lint (v0.12) diagnostics that
	// report the same problem; they are merged into this rule's finding.
	Atlas []string
	// What the rule catches, for the report's rule table.
	What string
	// Fix is the safe alternative, shown with every finding.
	Fix string
	// Own is true for the rules deploydb checks itself (what Atlas v0.12
	// misses or reports without a safe alternative).
	Own bool
	// NoAllow is true for the rules no `-- deploydb:allow` line can accept:
	// the migrator itself refuses what they catch, or there is nothing to
	// accept.
	NoAllow bool
}

// Rules are the lint rules, in report order.
var Rules = []Rule{
	{
		Name: "destructive", Atlas: []string{"DS101", "DS102", "DS103"},
		What: "A schema, table or column is dropped, or a table truncated: its data is gone.",
		Fix: "ship a release that stops reading and writing it first (see drop_in_use), then drop it in a later " +
			"change whose migration says why: `-- deploydb:allow destructive <reason>`.",
	},
	{
		Name: "drop_in_use", Own: true,
		What: "A table or column is dropped that the queries of the base release still use.",
		Fix: "drop in two releases: first stop using it (remove it from queries/, list columns instead of `*`, " +
			"run make generate) and deploy that; drop it in a later change.",
	},
	{
		Name: "concurrent_index", Own: true, Atlas: []string{"PG101", "PG102", "PG103"},
		What: "An index is created or dropped on a table that exists at the base without CONCURRENTLY, " +
			"or CONCURRENTLY is used in a file that runs in a transaction.",
		Fix: "`CREATE INDEX CONCURRENTLY` (or `DROP INDEX CONCURRENTLY`) in a migration file of its own " +
			"whose first line is `-- atlas:txmode none`, one index per file.",
	},
	{
		Name: "not_null", Own: true, Atlas: []string{"MF103", "MF104"},
		What: "A NOT NULL column without a default is added to, or SET NOT NULL applied on, a table that exists at the base.",
		Fix: "add the column with a constant DEFAULT (instant since PostgreSQL 11), or add it nullable, backfill " +
			"in batches, then `ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` in a " +
			"later migration, and only then `SET NOT NULL` (which uses the validated check instead of a scan).",
	},
	{
		Name: "not_valid", Own: true,
		What: "A foreign key or CHECK is added to a table that exists at the base and validated at once.",
		Fix: "`ADD CONSTRAINT … NOT VALID` (new rows are checked at once, no scan), then " +
			"`ALTER TABLE … VALIDATE CONSTRAINT …` in a later migration: it scans without blocking writes.",
	},
	{
		Name: "table_rewrite", Own: true,
		What: "A statement rewrites a table (or rebuilds its indexes) that exists at the base, " +
			"e.g. a column type change or a volatile default.",
		Fix: "add a new column of the new type, write both in the application, backfill in batches, switch " +
			"reads, then drop the old column in a later release; types that need no rewrite (varchar(n) to " +
			"varchar(m > n) or text) are fine.",
	},
	{
		Name: "rename", Own: true, Atlas: []string{"BC101", "BC102"},
		What: "A table or column that exists at the base is renamed: the running release still uses the old name.",
		Fix: "expand and contract: add the new column (or a view with the new table name), write both, " +
			"backfill, move reads, and drop the old name in a later release.",
	},
	{
		Name: "data_depend", Atlas: []string{"MF101", "MF102"},
		What: "A unique index is added on existing columns: it fails if the data has duplicates.",
		Fix: "query for duplicates first and fix them in a release before, then `CREATE UNIQUE INDEX CONCURRENTLY` " +
			"in a `-- atlas:txmode none` file.",
	},
	{
		Name: "condrop", Atlas: []string{"CD101"},
		What: "A foreign key is dropped: the database stops protecting the reference.",
		Fix: "drop the foreign key only with the columns it covers, or say why the reference may break: " +
			"`-- deploydb:allow condrop <reason>`.",
	},
	{
		Name: "naming", Atlas: []string{"NM101", "NM102", "NM103", "NM104", "NM105", "NM106"},
		What: "A new name breaks the naming policy in atlas.hcl.",
		Fix: "snake_case names; indexes end in `_idx` (or `_key` when unique), foreign keys in `_fkey`; " +
			"name indexes and constraints after their table and columns.",
	},
	{
		Name: "transaction_control", Own: true, NoAllow: true,
		What: "A migration file begins, commits, rolls back or nests a transaction (BEGIN, COMMIT, END, ROLLBACK, " +
			"SAVEPOINT, RELEASE, SET TRANSACTION, PREPARE TRANSACTION, …). `deploydb migrate up` and `migrate " +
			"validate` refuse the file (db.CheckFile); no allow line accepts it.",
		Fix: "remove the statement: the migrator runs each file in one transaction of its own and records it there " +
			"(each statement on its own with `-- atlas:txmode none`); work that must commit on its own goes into a " +
			"file of its own.",
	},
	{
		Name: "timeout_off", Own: true, NoAllow: true,
		What: "A migration file switches off the lock_timeout or statement_timeout the migrator sets (SET, SET LOCAL, " +
			"set_config or RESET to 0, DEFAULT or a value that cannot be checked). `deploydb migrate up` and `migrate " +
			"validate` refuse the file (db.CheckFile); no allow line accepts it.",
		Fix: "remove the statement: a DDL statement waiting for its lock without lock_timeout stalls every query " +
			"queued behind it. A statement that needs longer gets a larger positive value (`SET LOCAL lock_timeout = " +
			"'10s'`), or the run gets `--ddl-lock-timeout` / `--statement-timeout`.",
	},
	{
		Name: "migration_edited", Own: true,
		What: "A migration file that exists at the base was changed or removed.",
		Fix:  "never edit a merged migration: restore it and put the change in a new file (make migration NAME=…).",
	},
	{
		Name: "migration_order", Own: true,
		What: "A new migration file sorts before a file that exists at the base.",
		Fix: "regenerate the file so that its version is newer than every merged one " +
			"(delete it, then make migration NAME=…).",
	},
	{
		Name: "allow", Own: true, NoAllow: true,
		What: "A `-- deploydb:allow` line names no known rule or gives no reason.",
		Fix:  "write `-- deploydb:allow <rule> <reason>` with one of the rule names of this table and a reason.",
	},
	{
		Name: "apply", Own: true, NoAllow: true,
		What: "A migration fails on an empty database (or Atlas cannot replay it).",
		Fix:  "fix the SQL; run make migration to have Atlas write it from schema.hcl.",
	},
}

// ruleByName returns the rule with the given name.
func ruleByName(name string) (Rule, bool) {
	for _, r := range Rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

// ruleForAtlasCode returns the rule an Atlas diagnostic code belongs to.
func ruleForAtlasCode(code string) (Rule, bool) {
	for _, r := range Rules {
		for _, c := range r.Atlas {
			if c == code {
				return r, true
			}
		}
	}
	return Rule{}, false
}

// allow is one `-- deploydb:allow <rule> <reason>` line.
type allow struct {
	Rule, Reason string
	Line         int
	used         bool
}

var allowRE = regexp.MustCompile(`^\s*--\s*deploydb:allow\b(.*)$`)

// parseAllows returns the well-formed allow lines of a migration file, and
// a description of each malformed one.
func parseAllows(text string) (allows []allow, bad []string) {
	for i, line := range strings.Split(text, "\n") {
		m := allowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rule, reason, _ := strings.Cut(strings.TrimSpace(m[1]), " ")
		reason = strings.TrimSpace(reason)
		switch r, known := ruleByName(rule); {
		case rule == "":
			bad = append(bad, fmt.Sprintf("line %d names no rule", i+1))
		case !known || r.NoAllow:
			bad = append(bad, fmt.Sprintf("line %d: %q is not a rule that can be allowed", i+1, rule))
		case reason == "":
			bad = append(bad, fmt.Sprintf("line %d allows %s without a reason", i+1, rule))
		default:
			allows = append(allows, allow{Rule: rule, Reason: reason, Line: i + 1})
		}
	}
	return allows, bad
}

// Finding is one problem the review found.
type Finding struct {
	Section string // "lint", "drift", "plans", "changes"
	Rule    string
	Where   string // file:line or query name
	Message string
	Fix     string
	// Codes are the Atlas lint codes that reported the same problem.
	Codes []string
	// Allowed is the reason of the `-- deploydb:allow` line that accepts
	// the finding; such findings are listed but are not errors.
	Allowed string
	// Warning marks findings that are shown but never fail the review.
	Warning bool

	file  string // migration file name, for lint findings
	stmt  int    // statement index in file, -1 for the whole file
	allow bool   // whether an allow line may accept it
}

// IsError reports whether the finding fails the review.
func (f Finding) IsError() bool { return !f.Warning && f.Allowed == "" }

// lintInput is what the migration rules look at.
type lintInput struct {
	dir      string // migration directory, slash-separated, relative to the repository
	base     *schema.Schema
	baseFile []sourceFile // migration files at the base
	edited   []string
	removed  []string
	newFiles []*migrationFile
	facts    []*stmtFacts
	usage    *queryUsage // how the base release's queries use tables and columns
}

var (
	createIndexRE  = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\b`)
	concurrentlyRE = regexp.MustCompile(`(?is)^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+\w+)\s+CONCURRENTLY\b`)
	dropIndexRE    = regexp.MustCompile(`(?is)^\s*DROP\s+INDEX\b`)
	usingIndexRE   = regexp.MustCompile(`(?is)\bUSING\s+INDEX\s+("(?:[^"]|"")+"|\w+)`)
	truncateRE     = regexp.MustCompile(`(?is)^\s*TRUNCATE\b`)
	identRE        = `("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`
	qualIdentRE    = `(?:` + identRE + `\s*\.\s*)?` + identRE
	alterTableRE   = `(?is)^\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?` + qualIdentRE + `\s+`
	renameColRE    = regexp.MustCompile(alterTableRE + `RENAME\s+(?:COLUMN\s+)?` + identRE + `\s+TO\s+` + identRE)
	renameTableRE  = regexp.MustCompile(alterTableRE + `RENAME\s+TO\s+` + identRE)
	validateRE     = regexp.MustCompile(`(?is)\bVALIDATE\s+CONSTRAINT\s+` + identRE)
)

// unquote returns an identifier as PostgreSQL stores it.
func unquote(id string) string {
	if strings.HasPrefix(id, `"`) {
		return strings.ReplaceAll(id[1:len(id)-1], `""`, `"`)
	}
	return strings.ToLower(id)
}

// lintMigrations applies deploydb's own rules to the new migration files.
func lintMigrations(in lintInput) []Finding {
	var out []Finding
	where := func(f *migrationFile, line int) string { return fmt.Sprintf("%s/%s:%d", in.dir, f.Name, line) }
	add := func(rule string, f *migrationFile, stmt int, msg string, fix ...string) {
		r, _ := ruleByName(rule)
		fd := Finding{Section: "lint", Rule: rule, Message: msg, Fix: r.Fix, file: f.Name, stmt: stmt, allow: true}
		if len(fix) > 0 {
			fd.Fix = fix[0]
		}
		line := 1
		if stmt >= 0 {
			line = f.line(f.Stmts[stmt].Pos)
		}
		fd.Where = where(f, line)
		out = append(out, fd)
	}

	for _, name := range in.edited {
		out = append(out, Finding{Section: "lint", Rule: "migration_edited", Where: in.dir + "/" + name,
			Message: name + " exists at the base with other content: databases that applied it will not see the change.",
			Fix:     mustRule("migration_edited").Fix, file: name, stmt: -1, allow: true})
	}
	for _, name := range in.removed {
		out = append(out, Finding{Section: "lint", Rule: "migration_edited", Where: in.dir + "/" + name,
			Message: name + " exists at the base but was removed: databases that applied it keep its changes.",
			Fix:     mustRule("migration_edited").Fix, file: name, stmt: -1})
	}
	lastBase := ""
	if n := len(in.baseFile); n > 0 {
		lastBase = in.baseFile[n-1].Name
	}
	for _, f := range in.newFiles {
		if f.Name < lastBase {
			add("migration_order", f, -1, fmt.Sprintf("%s sorts before %s, which exists at the base: "+
				"databases already past that version never apply it.", f.Name, lastBase))
		}
		for _, b := range f.Bad {
			add("allow", f, -1, "malformed `-- deploydb:allow` line: "+b+".")
		}
		out = append(out, refusals(in.dir, f)...)
		if !f.NoTx {
			for i, s := range f.Stmts {
				if concurrentlyRE.MatchString(s.Text) {
					add("concurrent_index", f, i, "CONCURRENTLY in a file that runs in a transaction: PostgreSQL "+
						"refuses it (\"cannot run inside a transaction block\").")
				}
			}
		}
	}

	// Constraints added NOT VALID, per file, to catch a VALIDATE in the
	// same transaction.
	notValid := map[string]map[string]bool{}
	for _, s := range in.facts {
		f, text := s.File, s.stmt()
		if notValid[f.Name] == nil {
			notValid[f.Name] = map[string]bool{}
		}
		for name, valid := range s.Validated {
			if !valid {
				notValid[f.Name][name] = true
			}
		}
		if m := validateRE.FindStringSubmatch(text); m != nil && !f.NoTx && notValid[f.Name][unquote(m[1])] {
			add("not_valid", f, s.Index, fmt.Sprintf("constraint %s is added NOT VALID and validated in the same "+
				"transaction: the validation scan runs under the lock the ADD took.", unquote(m[1])))
		}

		renamed := false
		if m := renameColRE.FindStringSubmatch(text); m != nil {
			table, col := unquote(m[2]), unquote(m[3])
			if col != "constraint" && in.existingColumn(table, col) {
				renamed = true
				add("rename", f, s.Index, fmt.Sprintf("column %s.%s is renamed to %s: the release at the base still "+
					"reads and writes %s.", table, col, unquote(m[4]), col))
			}
		} else if m := renameTableRE.FindStringSubmatch(text); m != nil {
			table := unquote(m[2])
			if _, ok := in.base.Table(table); ok {
				renamed = true
				add("rename", f, s.Index, fmt.Sprintf("table %s is renamed to %s: the release at the base still "+
					"uses %s.", table, unquote(m[3]), table))
			}
		}

		if truncateRE.MatchString(text) {
			for _, r := range s.Rewritten {
				if r.Kind == "table" {
					add("destructive", f, s.Index, fmt.Sprintf("TRUNCATE deletes every row of %s.", r.Name))
				}
			}
		} else {
			var tables, indexes []string
			rewritten := map[string]bool{}
			for _, r := range s.Rewritten {
				if r.Kind == "table" {
					tables = append(tables, r.Name)
					rewritten[r.Name] = true
				}
			}
			for _, r := range s.Rewritten {
				if r.Kind == "index" && !rewritten[r.Table] {
					indexes = append(indexes, r.Name+" on "+r.Table)
				}
			}
			for _, t := range tables {
				add("table_rewrite", f, s.Index, fmt.Sprintf("rewrites table %s and all its indexes under an ACCESS "+
					"EXCLUSIVE lock: reads and writes wait until it is done.", t))
			}
			if len(indexes) > 0 {
				add("table_rewrite", f, s.Index, fmt.Sprintf("rebuilds index %s under an ACCESS EXCLUSIVE lock.",
					strings.Join(indexes, ", ")))
			}
		}

		for _, c := range s.Changes {
			switch c := c.(type) {
			case *schema.DropTable:
				if _, ok := in.base.Table(c.T.Name); ok {
					if users := in.usage.tableUsers(c.T.Name); len(users) > 0 {
						add("drop_in_use", f, s.Index, fmt.Sprintf("table %s is dropped, but the base release's queries "+
							"still use it: %s.", c.T.Name, strings.Join(users, ", ")))
					}
				}
			case *schema.ModifyTable:
				if _, ok := in.base.Table(c.T.Name); !ok {
					continue // created by this change: empty, nobody uses it yet
				}
				in.modifyTable(s, c, renamed, add)
			}
		}
	}
	return out
}

// refusals reports the statements of a new migration file that the
// migrator refuses to run, found by the migrator's own check.
func refusals(dir string, f *migrationFile) []Finding {
	rs, err := db.CheckFile(migrate.NewLocalFile(f.Name, f.Data))
	if err != nil {
		return nil // the file does not split: the apply rule reports it
	}
	var out []Finding
	for _, r := range rs {
		out = append(out, Finding{Section: "lint", Rule: r.Kind, Where: fmt.Sprintf("%s/%s:%d", dir, f.Name, r.Line),
			Message: fmt.Sprintf("`%s` (statement %d): %s. The migrator refuses the file: `deploydb migrate up` runs "+
				"no pending file while it is pending, `migrate validate` fails.", oneLine(r.SQL), r.Statement, r.Summary),
			Fix: mustRule(r.Kind).Fix, file: f.Name, stmt: f.stmtAt(r.Pos)})
	}
	return out
}

// oneLine shortens a statement to one line of at most 160 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func mustRule(name string) Rule {
	r, ok := ruleByName(name)
	if !ok {
		panic("review: unknown rule " + name)
	}
	return r
}

func (in lintInput) existingColumn(table, col string) bool {
	t, ok := in.base.Table(table)
	if !ok {
		return false
	}
	_, ok = t.Column(col)
	return ok
}

// modifyTable checks the changes one statement made to a table that exists
// at the base, and reports findings through add.
func (in lintInput) modifyTable(s *stmtFacts, m *schema.ModifyTable, renamed bool,
	add func(rule string, f *migrationFile, stmt int, msg string, fix ...string)) {
	f, text, t := s.File, s.stmt(), m.T.Name
	for _, c := range m.Changes {
		switch c := c.(type) {
		case *schema.AddIndex:
			if !s.Built[c.I.Name] {
				continue // renamed or attached, not built
			}
			switch {
			case createIndexRE.MatchString(text):
				if !concurrentlyRE.MatchString(text) {
					add("concurrent_index", f, s.Index, fmt.Sprintf("CREATE INDEX %s on %s without CONCURRENTLY "+
						"blocks every write to %s until the index is built.", c.I.Name, t, t))
				}
			case !usingIndexRE.MatchString(text):
				add("concurrent_index", f, s.Index, fmt.Sprintf("the statement builds index %s on %s under a lock "+
					"that blocks every write to %s.", c.I.Name, t, t),
					"`CREATE UNIQUE INDEX CONCURRENTLY` in a `-- atlas:txmode none` file, then in a later file "+
						"`ALTER TABLE … ADD CONSTRAINT … UNIQUE USING INDEX …` (instant).")
			}
		case *schema.DropIndex:
			if dropIndexRE.MatchString(text) && !concurrentlyRE.MatchString(text) {
				add("concurrent_index", f, s.Index, fmt.Sprintf("DROP INDEX %s without CONCURRENTLY takes an ACCESS "+
					"EXCLUSIVE lock on %s.", c.I.Name, t))
			}
		case *schema.AddColumn:
			if renamed || c.C.Type == nil || c.C.Type.Null || c.C.Default != nil {
				continue
			}
			if hasAttr[*postgres.Identity](c.C.Attrs) || hasAttr[*schema.GeneratedExpr](c.C.Attrs) {
				continue // fills every row: a rewrite, reported as table_rewrite
			}
			add("not_null", f, s.Index, fmt.Sprintf("column %s.%s is added NOT NULL without a default: the "+
				"statement fails on a table with rows, and the base release does not write the column.", t, c.C.Name))
		case *schema.ModifyColumn:
			if c.Change.Is(schema.ChangeNull) && c.From.Type != nil && c.To.Type != nil &&
				c.From.Type.Null && !c.To.Type.Null && in.existingColumn(t, c.From.Name) {
				add("not_null", f, s.Index, fmt.Sprintf("SET NOT NULL on %s.%s scans the whole table under an "+
					"ACCESS EXCLUSIVE lock.", t, c.To.Name),
					"`ADD CONSTRAINT <t>_<col>_not_null CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` "+
						"in a later migration, then `SET NOT NULL` (PostgreSQL 12+ skips the scan) and drop the check.")
			}
		case *schema.AddForeignKey:
			if s.Validated[c.F.Symbol] {
				add("not_valid", f, s.Index, fmt.Sprintf("foreign key %s is added to %s and validated at once: the "+
					"scan of %s holds a lock that blocks writes to %s and %s.", c.F.Symbol, t, t, t, refTable(c.F)))
			}
		case *schema.AddCheck:
			if s.Validated[c.C.Name] {
				add("not_valid", f, s.Index, fmt.Sprintf("check %s is added to %s and validated at once: the scan "+
					"of %s holds an ACCESS EXCLUSIVE lock.", c.C.Name, t, t))
			}
		case *schema.DropColumn:
			if renamed || !in.existingColumn(t, c.C.Name) {
				continue
			}
			if users := in.usage.columnUsers(t, c.C.Name); len(users) > 0 {
				add("drop_in_use", f, s.Index, fmt.Sprintf("column %s.%s is dropped, but the base release's queries "+
					"still read or write it: %s.", t, c.C.Name, strings.Join(users, ", ")))
			}
		}
	}
}

func refTable(fk *schema.ForeignKey) string {
	if fk.RefTable != nil {
		return fk.RefTable.Name
	}
	return "the referenced table"
}

func hasAttr[T schema.Attr](attrs []schema.Attr) bool {
	for _, a := range attrs {
		if _, ok := a.(T); ok {
			return true
		}
	}
	return false
}

// applyAllows marks the lint findings that an allow line of their file
// accepts, and warns about allow lines that accept nothing.
func applyAllows(findings []Finding, files []*migrationFile, dir string) []Finding {
	byName := map[string]*migrationFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	for i := range findings {
		fd := &findings[i]
		f := byName[fd.file]
		if f == nil || !fd.allow {
			continue
		}
		for j := range f.Allows {
			a := &f.Allows[j]
			if a.Rule == fd.Rule {
				fd.Allowed = a.Reason
				a.used = true
				break
			}
		}
	}
	for _, f := range files {
		for _, a := range f.Allows {
			if !a.used {
				findings = append(findings, Finding{Section: "lint", Rule: "allow", Warning: true,
					Where:   fmt.Sprintf("%s/%s:%d", dir, f.Name, a.Line),
					Message: fmt.Sprintf("`-- deploydb:allow %s` accepts no finding of this file.", a.Rule),
					Fix:     "remove the line."})
			}
		}
	}
	return findings
}

// sortFindings orders findings by section, file position and rule.
func sortFindings(fs []Finding) {
	order := map[string]int{"changes": 0, "lint": 1, "drift": 2, "plans": 3, "erd": 4}
	rank := map[string]int{}
	for i, r := range Rules {
		rank[r.Name] = i
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if order[a.Section] != order[b.Section] {
			return order[a.Section] < order[b.Section]
		}
		if a.file != b.file {
			return a.file < b.file
		}
		if a.stmt != b.stmt {
			return a.stmt < b.stmt
		}
		return rank[a.Rule] < rank[b.Rule]
	})
}
