// Command deploydb-demo walks through deploydb's API on sample data: it
// applies the embedded migrations, creates apps, builds and deployments,
// runs a three-target rollout, and prints every call with its result,
// including the errors the data layer refuses bad requests with.
//
// Usage:
//
//	deploydb-demo [--url URL]
//
// The database URL comes from --url, else from DATABASE_URL. Without
// either, deploydb-demo starts a throwaway PostgreSQL (Docker, or the local
// PostgreSQL server binaries; see internal/pgtest) and removes it
// afterwards. Every run uses fresh names, so it can be repeated against the
// same database. `make run` runs it.
//
// This command links the test infrastructure that starts throwaway
// servers; the CD binary, cmd/deploydb, does not.
//
// Exit codes: 0 ok, 1 the demo failed, 2 usage (bad flags or arguments).
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
)

const usage = `Usage: deploydb-demo [--url URL]

Seeds sample apps, builds and deployments and prints a walkthrough of
deploydb's API. The database URL is read from --url, else from DATABASE_URL;
without either, a throwaway PostgreSQL is started and removed afterwards.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the command line, runs the demo and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deploydb-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := fs.String("url", "", "database `URL` (default: $DATABASE_URL, else a throwaway local PostgreSQL)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deploydb-demo: unexpected argument %q\n\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	url := *u
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if err := demo(ctx, url, stdout); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "deploydb") {
			msg = "deploydb-demo: " + msg
		}
		fmt.Fprintln(stderr, msg)
		return 1
	}
	return 0
}
