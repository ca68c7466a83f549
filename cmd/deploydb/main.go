// Command deploydb applies deploydb's embedded migrations and runs a demo
// walkthrough of the data layer.
//
// Usage:
//
//	deploydb migrate up     [--url URL]   apply pending migrations
//	deploydb migrate status [--url URL]   show which migrations are applied
//	deploydb demo           [--url URL]   seed sample data and walk through the API
//
// The database URL comes from --url or DATABASE_URL. demo without either
// starts a throwaway local PostgreSQL and removes it afterwards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/deploydb/deploydb/db"
)

const usage = `deploydb - the PostgreSQL data layer of a deployment platform

Usage:
  deploydb migrate up     [--url URL]   apply pending migrations (takes the migration lock)
  deploydb migrate status [--url URL]   show every migration file and whether it is applied
  deploydb demo           [--url URL]   seed sample data and print a walkthrough of the API

The database URL is read from --url, else from DATABASE_URL. "demo" without
either starts a throwaway local PostgreSQL and removes it afterwards.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch {
	case args[0] == "migrate" && len(args) > 1 && args[1] == "up":
		err = migrateUp(ctx, args[2:], stdout, stderr)
	case args[0] == "migrate" && len(args) > 1 && args[1] == "status":
		err = migrateStatus(ctx, args[2:], stdout, stderr)
	case args[0] == "demo":
		err = demo(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "deploydb: unknown command %q\n\n%s", joinArgs(args), usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "deploydb:") {
			msg = "deploydb: " + msg
		}
		fmt.Fprintln(stderr, msg)
		return 1
	}
	return 0
}

func joinArgs(args []string) string {
	if len(args) > 2 {
		args = args[:2]
	}
	return strings.Join(args, " ")
}

// urlFlag registers --url on fs and returns a function that resolves it
// against DATABASE_URL.
func urlFlag(fs *flag.FlagSet) func() (string, error) {
	u := fs.String("url", "", "database URL (default: $DATABASE_URL)")
	return func() (string, error) {
		if *u != "" {
			return *u, nil
		}
		if env := os.Getenv("DATABASE_URL"); env != "" {
			return env, nil
		}
		return "", errors.New("no database: pass --url or set DATABASE_URL")
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func migrateUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("deploydb migrate up", stderr)
	url := urlFlag(fs)
	lockWait := fs.Duration("lock-timeout", time.Minute, "how long to wait for another migration run to finish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url()
	if err != nil {
		return err
	}
	applied := 0
	err = db.Migrate(ctx, u, db.WithLockWait(*lockWait), db.WithLog(func(format string, a ...any) {
		applied++
		fmt.Fprintf(stdout, format+"\n", a...)
	}))
	if err != nil {
		return err
	}
	if applied == 0 {
		fmt.Fprintln(stdout, "nothing to do: the database is up to date")
	}
	return nil
}

func migrateStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("deploydb migrate status", stderr)
	url := urlFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url()
	if err != nil {
		return err
	}
	files, err := db.Status(ctx, u)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDESCRIPTION\tSTATE\tSTATEMENTS\tEXECUTED AT")
	pending := 0
	for _, f := range files {
		at := "-"
		if !f.ExecutedAt.IsZero() {
			at = f.ExecutedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", f.Version, f.Description, f.State, f.Applied, f.Total, at)
		if f.State == db.StatePending || f.State == db.StatePartial {
			pending++
		}
		if f.Error != "" {
			fmt.Fprintf(tw, "\t  error: %s\t\t\t\n", f.Error)
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d file(s), %d pending\n", len(files), pending)
	return nil
}
