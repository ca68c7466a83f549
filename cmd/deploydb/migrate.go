package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db"
)

// migrateCommand is one `deploydb migrate` subcommand.
type migrateCommand struct {
	synopsis string // usage line after "deploydb migrate "
	help     string // what it does, printed by --help
	timeouts bool   // takes the lock and session timeout flags
	run      func(ctx context.Context, c *cmdline) (result any, code int, err error)
	flags    func(fs *flag.FlagSet, c *cmdline)
}

var migrateCommands = map[string]*migrateCommand{
	"up": {
		synopsis: "up [--to VERSION] [--dry-run] [flags]",
		help: `Applies the pending migrations in order, under the migration advisory lock
(the lock the Atlas CLI takes, so concurrent runs and the Atlas CLI wait for
each other). Each file runs in one transaction, or statement by statement
when it starts with "-- atlas:txmode none", with lock_timeout and
statement_timeout set; a file that hits lock_timeout is retried with
backoff. A run that finds nothing to do exits 0. With --dry-run it prints
the statements it would run and changes nothing.`,
		timeouts: true,
		flags: func(fs *flag.FlagSet, c *cmdline) {
			fs.StringVar(&c.to, "to", "", "apply files up to and including this `VERSION` only")
			fs.BoolVar(&c.dryRun, "dry-run", false, "print what would run; change nothing")
		},
		run: runUp,
	},
	"status": {
		synopsis: "status [flags]",
		help: `Shows every migration file's state (applied, pending, partial, failed,
baseline, modified), the invalid indexes a failed concurrent index build
left, and who holds the migration lock. It changes nothing and does not wait
for the lock. Exit code: 0 all applied, 3 pending, 1 partial/failed file or
invalid index, 4 an applied file was edited, 5 a migration is running.`,
		run: runStatus,
	},
	"validate": {
		synopsis: "validate [flags]",
		help: `Checks the migration files without running them: atlas.sum matches, every
statement parses, txmode directives are valid, and statements that cannot
run in a transaction (CREATE INDEX CONCURRENTLY, ...) are in txmode none
files. With --url (or DATABASE_URL) it also checks that no file the database
applied was edited since. Exit code: 0 valid, 4 checksum mismatch, 1
invalid files.`,
		run: runValidate,
	},
	"down": {
		synopsis: "down [N | --to VERSION] [--allow-data-loss] [--dry-run] [flags]",
		help: `Rolls back the last N applied files (default 1), or every file after
VERSION. The plan is computed, not written by hand: the files up to the
target are replayed on a scratch database on the same server (the user needs
CREATEDB) and the live schema is diffed against it. The plan is printed; a
plan that drops tables with rows or columns with values is refused (exit 6)
unless --allow-data-loss is given. It then runs in one transaction with the
revision rows' removal. Data changes of the rolled-back files are not
undone.`,
		timeouts: true,
		flags: func(fs *flag.FlagSet, c *cmdline) {
			fs.StringVar(&c.to, "to", "", "roll back every file after this `VERSION` (it stays applied)")
			fs.BoolVar(&c.dryRun, "dry-run", false, "print the plan; change nothing")
			fs.BoolVar(&c.allowDataLoss, "allow-data-loss", false, "apply a plan that drops data")
		},
		run: runDown,
	},
	"baseline": {
		synopsis: "baseline VERSION [--force] [flags]",
		help: `Adopts a database whose schema was created without deploydb (by hand, from a
dump, by another tool): records VERSION as the baseline, so the files up to
and including it count as applied and "migrate up" starts after it. It
refuses a database that already has revisions, and, unless --force is
given, one whose schema differs from what the files up to VERSION create
(checked by replaying them on a scratch database).`,
		timeouts: true,
		flags: func(fs *flag.FlagSet, c *cmdline) {
			fs.BoolVar(&c.force, "force", false, "baseline even when the schema differs from the files")
		},
		run: runBaseline,
	},
}

// cmdline holds the parsed flags of a migrate subcommand.
type cmdline struct {
	connFlags
	name             string
	args             []string // positional arguments
	dir              string
	lockWait         time.Duration
	ddlLockTimeout   time.Duration
	statementTimeout time.Duration
	retries          int
	timeouts         bool // the timeout flags were registered
	to               string
	dryRun           bool
	allowDataLoss    bool
	force            bool
	stdout, stderr   io.Writer
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	asJSON := wantsJSON(args)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		err := usageError{"missing command: migrate up, status, validate, down or baseline"}
		if asJSON {
			return finish(stdout, stderr, true, "migrate", 0, nil, err, "")
		}
		fmt.Fprintf(stderr, "deploydb: %s\n\n%s", err, migrateUsage())
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, migrateUsage())
		return exitOK
	}
	cmd, ok := migrateCommands[args[0]]
	if !ok {
		if asJSON {
			return finish(stdout, stderr, true, "migrate "+args[0], 0, nil,
				usageError{fmt.Sprintf("unknown command \"migrate %s\"", args[0])}, "")
		}
		fmt.Fprintf(stderr, "deploydb: unknown command \"migrate %s\"\n\n%s", args[0], migrateUsage())
		return exitUsage
	}
	c := &cmdline{name: args[0], stdout: stdout, stderr: stderr, timeouts: cmd.timeouts}
	fs := newFlagSet("deploydb migrate "+args[0], stderr)
	c.register(fs, "database `URL` (default: $DATABASE_URL)")
	fs.StringVar(&c.dir, "dir", "", "migrate from this migration `directory` (with atlas.sum) instead of the embedded migrations")
	if cmd.timeouts {
		fs.DurationVar(&c.lockWait, "lock-timeout", db.DefaultLockWait, "how long to wait for another migration run to release the migration lock")
		fs.DurationVar(&c.ddlLockTimeout, "ddl-lock-timeout", db.DefaultDDLLockTimeout, "PostgreSQL lock_timeout of migration sessions (0: wait forever)")
		fs.DurationVar(&c.statementTimeout, "statement-timeout", db.DefaultStatementTimeout, "PostgreSQL statement_timeout of migration sessions (0: none)")
		fs.IntVar(&c.retries, "lock-retries", db.DefaultLockRetries, "how often to retry a file that hit lock_timeout (SQLSTATE 55P03)")
	}
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: deploydb migrate %s\n\n%s\n\nFlags:\n", cmd.synopsis, cmd.help)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nNegative durations and counts are usage errors (exit 2).\n"+
			"Exit codes: 0 ok, 1 failed, 2 usage, 3 pending, 4 checksum mismatch, 5 locked, 6 data loss refused.\n")
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
	}
	command := "migrate " + c.name
	hint := fmt.Sprintf("usage: deploydb migrate %s (see --help)", cmd.synopsis)
	pos, err := parseInterspersed(fs, args[1:], asJSON)
	if err == nil {
		err = c.check(fs)
	}
	if err != nil {
		return finish(stdout, stderr, asJSON, command, 0, nil, err, hint)
	}
	c.args = pos
	result, code, err := cmd.run(ctx, c)
	return finish(stdout, stderr, c.json, command, code, result, err, hint)
}

func migrateUsage() string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, name := range []string{"up", "status", "validate", "down", "baseline"} {
		fmt.Fprintf(&b, "  deploydb migrate %s\n", migrateCommands[name].synopsis)
	}
	b.WriteString("\nRun \"deploydb migrate COMMAND --help\" for a command's flags.\n")
	return b.String()
}

// parseInterspersed parses flags that may come before or after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string, asJSON bool) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args, asJSON); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, db.ErrInvalidURL), errors.Is(err, db.ErrBadTarget):
		return exitUsage
	case errors.Is(err, db.ErrChecksum):
		return exitChecksum
	case errors.Is(err, db.ErrLocked):
		return exitLocked
	case errors.Is(err, db.ErrDataLoss):
		return exitDataLoss
	}
	return exitFailed
}

// databaseURL resolves --url against DATABASE_URL.
func (c *cmdline) databaseURL() (string, error) {
	if c.url != "" {
		return c.url, nil
	}
	if env := os.Getenv("DATABASE_URL"); env != "" {
		return env, nil
	}
	return "", usageError{"no database: pass --url or set DATABASE_URL"}
}

// options turns the flags into migrator options.
func (c *cmdline) options() ([]db.MigrateOption, error) {
	opts := append(c.migrateOptions(),
		db.WithProgress(func(format string, args ...any) {
			fmt.Fprintf(c.stderr, "deploydb: "+format+"\n", args...)
		}))
	if c.dir != "" {
		dir, err := migrate.NewLocalDir(c.dir)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--dir %s: %v", c.dir, err)}
		}
		opts = append(opts, db.WithDir(dir))
	}
	if c.timeouts {
		opts = append(opts,
			db.WithLockWait(c.lockWait),
			db.WithDDLLockTimeout(c.ddlLockTimeout),
			db.WithStatementTimeout(c.statementTimeout),
			db.WithLockRetries(c.retries))
	}
	return opts, nil
}

func (c *cmdline) noArgs() error {
	if len(c.args) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", c.args[0])}
	}
	return nil
}

func (c *cmdline) text() io.Writer {
	if c.json {
		return io.Discard
	}
	return c.stdout
}

func runUp(ctx context.Context, c *cmdline) (any, int, error) {
	if err := c.noArgs(); err != nil {
		return nil, 0, err
	}
	url, err := c.databaseURL()
	if err != nil {
		return nil, 0, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, 0, err
	}
	out := c.text()
	opts = append(opts, db.WithLog(func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }))
	if c.to != "" {
		opts = append(opts, db.WithTarget(c.to))
	}
	if c.dryRun {
		opts = append(opts, db.WithDryRun())
	}
	rep, err := db.Up(ctx, url, opts...)
	if err != nil {
		return rep, 0, err
	}
	switch {
	case c.dryRun && len(rep.Planned) == 0:
		fmt.Fprintf(out, "nothing to do: the database is up to date%s (dry run)\n", atVersion(rep.From))
	case c.dryRun:
		fmt.Fprintf(out, "dry run: would apply %d file(s) to the database%s:\n", len(rep.Planned), atVersion(rep.From))
		for _, f := range rep.Planned {
			note := ""
			if f.Skipped > 0 {
				note = fmt.Sprintf(", resuming after %d applied statement(s)", f.Skipped)
			}
			fmt.Fprintf(out, "\n-- %s (txmode %s, %d statement(s)%s)\n", f.Name, f.TxMode, f.Total, note)
			for _, ix := range f.DroppedIndexes {
				fmt.Fprintf(out, "-- first drops invalid index %s left by a failed concurrent build\n", ix)
			}
			for _, st := range f.Statements {
				fmt.Fprintf(out, "%s;\n", strings.TrimSuffix(strings.TrimSpace(st), ";"))
			}
		}
	case len(rep.Applied) == 0:
		fmt.Fprintf(out, "nothing to do: the database is up to date%s\n", atVersion(rep.To))
	default:
		fmt.Fprintf(out, "the database is at version %s\n", rep.To)
	}
	return rep, exitOK, nil
}

func atVersion(v string) string {
	if v == "" {
		return ""
	}
	return " (version " + v + ")"
}

func runStatus(ctx context.Context, c *cmdline) (any, int, error) {
	if err := c.noArgs(); err != nil {
		return nil, 0, err
	}
	url, err := c.databaseURL()
	if err != nil {
		return nil, 0, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, 0, err
	}
	rep, err := db.Inspect(ctx, url, opts...)
	if err != nil {
		return nil, 0, err
	}
	code := map[db.Verdict]int{
		db.VerdictOK: exitOK, db.VerdictPending: exitPending, db.VerdictFailed: exitFailed,
		db.VerdictChecksum: exitChecksum, db.VerdictLocked: exitLocked,
	}[rep.Verdict]
	if c.json {
		return rep, code, nil
	}
	printStatus(c.stdout, rep)
	return rep, code, nil
}

func printStatus(w io.Writer, rep *db.StatusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDESCRIPTION\tSTATE\tSTATEMENTS\tEXECUTED AT\tBY")
	for _, f := range rep.Files {
		at, by := "-", f.Operator
		if !f.ExecutedAt.IsZero() {
			at = f.ExecutedAt.UTC().Format(time.RFC3339)
		}
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", f.Version, f.Description, f.State, f.Applied, f.Total, at, by)
	}
	tw.Flush()
	for _, f := range rep.Files {
		switch f.State {
		case db.StatePartial:
			fmt.Fprintf(w, "\n%s is PARTIALLY APPLIED: %d of %d statements are in effect.\n", f.Version, f.Applied, f.Total)
		case db.StateFailed:
			fmt.Fprintf(w, "\n%s FAILED before any of its statements took effect.\n", f.Version)
		case db.StateModified:
			fmt.Fprintf(w, "\n%s was EDITED after it was applied: its hash differs from the one recorded.\n", f.Version)
		case db.StateUnknown:
			fmt.Fprintf(w, "\n%s is applied but has no file here: a newer build of deploydb applied it.\n", f.Version)
		}
		if f.Error != "" && (f.State == db.StatePartial || f.State == db.StateFailed) {
			fmt.Fprintf(w, "  error:     %s\n", f.Error)
			if f.ErrorStatement != "" {
				fmt.Fprintf(w, "  statement: %s\n", oneLine(f.ErrorStatement))
			}
		}
	}
	if len(rep.InvalidIndexes) > 0 {
		fmt.Fprintf(w, "\nINVALID INDEXES (a concurrent index build failed or was interrupted; queries do not use them):\n")
		for _, ix := range rep.InvalidIndexes {
			from := ""
			switch {
			case ix.BuildingPID != 0:
				from = fmt.Sprintf(" (being built right now by backend pid %d)", ix.BuildingPID)
			case ix.File != "":
				from = " (built by " + ix.File + "; the next migrate up drops and rebuilds it)"
			}
			fmt.Fprintf(w, "  %s.%s on %s%s\n", ix.Schema, ix.Name, ix.Table, from)
		}
	}
	if rep.Lock != nil {
		fmt.Fprintf(w, "\nA MIGRATION IS RUNNING: the migration lock is held by %s.\n", rep.Lock)
	}
	fmt.Fprintf(w, "\n%d file(s), %d pending, %d partial or failed; current version %s\n",
		len(rep.Files), rep.Pending, rep.Partial, orNone(rep.Current))
	switch rep.Verdict {
	case db.VerdictOK:
		fmt.Fprintln(w, "status: ok, the database is up to date")
	case db.VerdictPending:
		fmt.Fprintln(w, "status: pending; run `deploydb migrate up`")
	case db.VerdictFailed:
		fmt.Fprintln(w, "status: failed; fix the file (and re-hash the directory) or the data the statement tripped on, then run `deploydb migrate up`: it resumes after the statements in effect and rebuilds invalid indexes")
	case db.VerdictChecksum:
		fmt.Fprintln(w, "status: checksum mismatch; restore the applied file from version control and put the change in a new migration")
	case db.VerdictLocked:
		fmt.Fprintln(w, "status: locked; wait for that run to finish. A crashed run's lock goes away with its session; terminate a stuck one with SELECT pg_terminate_backend(pid)")
	}
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func runValidate(ctx context.Context, c *cmdline) (any, int, error) {
	if err := c.noArgs(); err != nil {
		return nil, 0, err
	}
	url := c.url
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	opts, err := c.options()
	if err != nil {
		return nil, 0, err
	}
	rep, err := db.Validate(ctx, url, opts...)
	if err != nil {
		return rep, 0, err
	}
	out := c.text()
	fmt.Fprintf(out, "%d migration file(s): atlas.sum matches, statements parse, txmode directives are valid\n", rep.Files)
	if rep.Database {
		fmt.Fprintln(out, "database: no applied file was edited")
		if len(rep.Unknown) > 0 {
			fmt.Fprintf(out, "database: also has versions this build does not know: %s\n", strings.Join(rep.Unknown, ", "))
		}
	}
	return rep, exitOK, nil
}

func runDown(ctx context.Context, c *cmdline) (any, int, error) {
	var opts []db.MigrateOption
	switch {
	case len(c.args) > 1:
		return nil, 0, usageError{fmt.Sprintf("unexpected argument %q", c.args[1])}
	case len(c.args) == 1 && c.to != "":
		return nil, 0, usageError{"give N or --to VERSION, not both"}
	case len(c.args) == 1:
		n, err := strconv.Atoi(c.args[0])
		if err != nil || n < 1 {
			return nil, 0, usageError{fmt.Sprintf("N must be a positive number of files, not %q", c.args[0])}
		}
		opts = append(opts, db.WithSteps(n))
	case c.to != "":
		opts = append(opts, db.WithTarget(c.to))
	}
	url, err := c.databaseURL()
	if err != nil {
		return nil, 0, err
	}
	common, err := c.options()
	if err != nil {
		return nil, 0, err
	}
	opts = append(common, opts...)
	if c.dryRun {
		opts = append(opts, db.WithDryRun())
	}
	if c.allowDataLoss {
		opts = append(opts, db.WithAllowDataLoss())
	}
	rep, err := db.Down(ctx, url, opts...)
	out := c.text()
	if len(rep.Files) > 0 {
		fmt.Fprintf(out, "rolling back %d file(s) to version %s: %s\n", len(rep.Files), orNone(rep.To), strings.Join(rep.Files, ", "))
		fmt.Fprintln(out, "plan:")
		if len(rep.Plan) == 0 {
			fmt.Fprintln(out, "  (no schema change; only the revision rows are removed)")
		}
		for _, st := range rep.Plan {
			if st.Comment != "" {
				fmt.Fprintf(out, "  -- %s\n", st.Comment)
			}
			fmt.Fprintf(out, "  %s;\n", st.SQL)
		}
		for _, l := range rep.DataLoss {
			fmt.Fprintf(out, "DATA LOSS: %s\n", l)
		}
	}
	if err != nil {
		return rep, 0, err
	}
	switch {
	case rep.DryRun:
		fmt.Fprintln(out, "dry run: nothing was changed")
	case rep.Applied:
		fmt.Fprintf(out, "rolled back: the database is at version %s\n", orNone(rep.To))
	}
	return rep, exitOK, nil
}

func runBaseline(ctx context.Context, c *cmdline) (any, int, error) {
	if len(c.args) != 1 {
		return nil, 0, usageError{"baseline takes exactly one VERSION"}
	}
	url, err := c.databaseURL()
	if err != nil {
		return nil, 0, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, 0, err
	}
	if c.force {
		opts = append(opts, db.WithForce())
	}
	rep, err := db.Baseline(ctx, url, c.args[0], opts...)
	if err != nil {
		return rep, 0, err
	}
	fmt.Fprintf(c.text(), "baselined at version %s (%s): the files up to it count as applied; migrate up starts after it\n", rep.Version, rep.File)
	return rep, exitOK, nil
}
