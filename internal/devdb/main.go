// Command devdb runs another command against a throwaway, empty PostgreSQL
// database and removes the database (and any server it started) afterwards.
// The Makefile uses it to give Atlas a dev database for `make migration` and
// `make check` without Docker:
//
//	go run ./internal/devdb -- atlas migrate diff --env local NAME
//
// The database URL is passed in ATLAS_DEV_URL, scoped to the public schema.
// Where the server comes from follows internal/pgtest (TEST_DATABASE_URL,
// Docker, or the local PostgreSQL binaries).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: devdb -- COMMAND [ARG...]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		return 1
	}
	defer srv.Close()
	name := fmt.Sprintf("deploydb_dev_%d", os.Getpid())
	url, err := srv.CreateDatabase(ctx, name, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		return 1
	}
	defer srv.DropDatabase(context.Background(), name)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "ATLAS_DEV_URL="+url+sep+"search_path=public")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "devdb:", err)
		return 1
	}
	return 0
}
