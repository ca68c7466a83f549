// Command schematriggers keeps schema_triggers.sql and db/migrations in
// step (package internal/schematriggers says how a migration carries the
// file). The Makefile runs it:
//
//	schematriggers carry -name NAME -atlas bin/atlas -- bin/atlas migrate diff --env local NAME
//	schematriggers check
//
// carry lists the migration files, runs the command after "--" (the Atlas
// diff of make migration), then carries schema_triggers.sql into the file
// that command wrote, or into a new file when it wrote none, and rehashes
// atlas.sum; it does nothing when the migrations carry the file as it is,
// or when there is no schema_triggers.sql. check exits 1 when the newest
// carried copy is not the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/deploydb/deploydb/internal/schematriggers"
)

const usage = `usage:
  schematriggers carry -name NAME -atlas PATH [-root DIR] [-dir DIR] [-- COMMAND [ARG...]]
  schematriggers check [-root DIR] [-dir DIR]
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "carry" && args[0] != "check") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fl := flag.NewFlagSet("schematriggers "+args[0], flag.ContinueOnError)
	fl.SetOutput(stderr)
	root := fl.String("root", ".", "repository root (where "+schematriggers.FileName+" is)")
	dir := fl.String("dir", "db/migrations", "migration directory, relative to the root")
	name := fl.String("name", "", "migration name, for a new file (carry)")
	atlas := fl.String("atlas", "", "path of the pinned Atlas CLI (carry)")
	if err := fl.Parse(args[1:]); err != nil {
		return 2
	}
	c := schematriggers.Carrier{Root: *root, Dir: filepath.ToSlash(*dir), Name: *name}
	where := c.Dir + "/"

	if args[0] == "check" {
		if fl.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		st, err := c.Status()
		switch {
		case err != nil:
			fmt.Fprintln(stderr, "schematriggers:", err)
			return 1
		case !st.Current():
			fmt.Fprintln(stderr, st.Problem)
			return 1
		case !st.Exists:
			fmt.Fprintf(stdout, "ok: no %s, and no migration carries one\n", schematriggers.FileName)
		default:
			fmt.Fprintf(stdout, "ok: %s%s carries %s as it is (sha256 %s)\n", where, st.Newest.File,
				schematriggers.FileName, st.Newest.Short())
		}
		return 0
	}

	if *name == "" || *atlas == "" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	c.Atlas = func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, *atlas, args...)
		cmd.Dir = *root
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
		return cmd.Run()
	}
	before, err := schematriggers.SQLFiles(os.DirFS(filepath.Join(*root, filepath.FromSlash(c.Dir))))
	if err != nil {
		fmt.Fprintln(stderr, "schematriggers:", err)
		return 1
	}
	if cmdArgs := fl.Args(); len(cmdArgs) > 0 {
		cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			fmt.Fprintln(stderr, "schematriggers:", err)
			return 1
		}
	}
	res, err := c.Carry(ctx, before)
	if err != nil {
		fmt.Fprintln(stderr, "schematriggers:", err)
		return 1
	}
	switch st := res.Status; {
	case res.File != "" && res.Created:
		fmt.Fprintf(stdout, "%s changed (sha256 %s): carried in the new migration %s%s\n",
			schematriggers.FileName, st.SHA256[:12], where, res.File)
	case res.File != "":
		fmt.Fprintf(stdout, "%s changed (sha256 %s): carried at the end of %s%s\n",
			schematriggers.FileName, st.SHA256[:12], where, res.File)
	case st.Exists:
		fmt.Fprintf(stdout, "%s is unchanged: %s%s carries it\n", schematriggers.FileName, where, st.Newest.File)
	}
	return 0
}
