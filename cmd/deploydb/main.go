// Command deploydb applies deploydb's embedded migrations, safely from CD
// pipelines and from many replicas at once, creates the least-privilege
// roles and loads the benchmark data set. It links no test infrastructure:
// the demo walkthrough, which may start a throwaway PostgreSQL, is the
// separate command deploydb-demo.
//
// Usage:
//
//	deploydb migrate up [--to VERSION] [--dry-run]     apply pending migrations
//	deploydb migrate status                            show each migration file's state
//	deploydb migrate validate                          check the files (and the applied ones)
//	deploydb migrate down [N | --to VERSION]           roll back the last N files (default 1)
//	deploydb migrate baseline VERSION                  adopt a database created without deploydb
//	deploydb roles [--url ADMIN_URL]                   create the owner and app roles (least privilege)
//	deploydb seed [--apps N --builds N ...]            load the deterministic benchmark data set
//
// The database URL comes from --url or DATABASE_URL. Every command takes
// --help for its flags and --json for a machine-readable report on stdout
// (command, exit_code, result, error), usage errors included.
//
// No command waits forever for a server: every connection it makes (pools,
// the migrator's sessions, scratch databases, admin connections) gives up
// after --connect-timeout, else the URL's connect_timeout, else 30 seconds,
// the default of deploydb.Open, and the command exits 1 naming the timeout.
// Negative durations and counts are usage errors.
//
// Exit codes: 0 ok, 1 failed, 2 usage, 3 pending, 4 checksum mismatch,
// 5 locked, 6 data loss refused (see exitUsage and the README).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes. Pipelines branch on them; they are part of the interface.
const (
	exitOK       = 0 // success; status: every file applied
	exitFailed   = 1 // a migration or the command failed; status: a partial/failed file or an invalid index
	exitUsage    = 2 // bad flags or arguments (an unknown version too), no or unparsable database URL
	exitPending  = 3 // status: files are waiting to be applied
	exitChecksum = 4 // files do not match atlas.sum, or an applied file was edited
	exitLocked   = 5 // another migration run held the lock past --lock-timeout; status: a run is in progress
	exitDataLoss = 6 // migrate down refused a plan that drops data (rerun with --allow-data-loss)
)

const usage = `deploydb - the PostgreSQL data layer of a deployment platform

Usage:
  deploydb migrate up [--to VERSION] [--dry-run]   apply pending migrations under the migration lock
  deploydb migrate status                          show each migration file's state, invalid indexes, the lock holder
  deploydb migrate validate                        check the migration files (with a URL: and the applied ones)
  deploydb migrate down [N | --to VERSION]         roll back the last N applied files (default 1)
  deploydb migrate baseline VERSION                adopt a database whose schema was created without deploydb
  deploydb roles [--owner NAME] [--app NAME]       create the migration owner and the DML-only app role
  deploydb seed [--apps N] [--builds N] ...        load a deterministic data set with COPY (benchmarks)

The database URL is read from --url, else from DATABASE_URL. Every command
takes --help, and --json for a JSON report on stdout (command, exit_code,
result, error), usage errors included. Connecting gives up after
--connect-timeout, else the URL's connect_timeout, else 30s. Negative
durations and counts are usage errors.

Exit codes:
  0  ok (status: every file applied)
  1  failed: a statement failed (file, statement and SQLSTATE are printed),
     or the server did not answer within the connect timeout;
     status: a file is partial or failed, or an invalid index is left over
  2  usage: bad flags or arguments (an unknown command or version, a bad or
     negative duration or number, a missing argument), no or unparsable
     database URL
  3  pending: status found files that are not applied yet
  4  checksum mismatch: the files do not match atlas.sum, or an applied
     file was edited; nothing was executed
  5  locked: another migration run held the lock past --lock-timeout
     (status: a migration is running right now)
  6  data loss: migrate down refused a plan that drops data
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "roles":
		return runRoles(ctx, args[1:], stdout, stderr)
	case "seed":
		return runSeed(ctx, args[1:], stdout, stderr)
	}
	if wantsJSON(args) {
		err := usageError{fmt.Sprintf("unknown command %q: use migrate, roles or seed", args[0])}
		if strings.HasPrefix(args[0], "-") {
			err = usageError{"missing command: use migrate, roles or seed"}
			args[0] = ""
		}
		return finish(stdout, stderr, true, args[0], 0, nil, err, "")
	}
	fmt.Fprintf(stderr, "deploydb: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// helpRequested reports whether args ask for help with -h, -help or --help
// before any "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			return true
		}
	}
	return false
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func prefixed(err error) string {
	msg := err.Error()
	if !strings.HasPrefix(msg, "deploydb:") {
		msg = "deploydb: " + strings.TrimPrefix(msg, "db: ")
	}
	return msg
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
