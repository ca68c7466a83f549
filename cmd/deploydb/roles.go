package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deploydb/deploydb/db"
)

const rolesHelp = `Usage: deploydb roles [--url ADMIN_URL] [--owner NAME] [--app NAME] [--print]

Creates (or updates) the two roles of a least-privilege setup on the database
at --url (default $DATABASE_URL), connecting as a role that may create roles:

  owner  owns deploydb's tables and runs the migrations (deploydb migrate up)
  app    what the service connects as: SELECT, INSERT, UPDATE, DELETE on
         deploydb's tables and on every table the owner creates later;
         no DDL, no TRUNCATE, no GRANT, no access to the revisions table

Passwords are read from DEPLOYDB_OWNER_PASSWORD and DEPLOYDB_APP_PASSWORD
(never from flags, which other users can see); unset leaves a role's password
as it is. Running it again is harmless. --print writes the SQL instead of
running it (without passwords; --database and --schema name the target).
--json prints a JSON report on stdout instead (command, exit_code, result
with the role names and the statements of --print, error). Exit codes: 0 ok,
1 failed, 2 usage (bad flags or arguments, no database URL).

Flags:
`

// rolesResult is the result of `deploydb roles --json`.
type rolesResult struct {
	Owner string `json:"owner"`
	App   string `json:"app"`
	// Statements is the SQL of --print.
	Statements []string `json:"statements,omitempty"`
}

// runRoles implements `deploydb roles` and returns its exit code.
func runRoles(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	asJSON := wantsJSON(args)
	var result any
	res, err := roles(ctx, args, asJSON, stdout, stderr)
	if res != nil {
		result = res
	}
	return finish(stdout, stderr, asJSON, "roles", exitOK, result, err,
		"usage: deploydb roles [--url ADMIN_URL] [--owner NAME] [--app NAME] [--print] (see --help)")
}

func roles(ctx context.Context, args []string, asJSON bool, stdout, stderr io.Writer) (*rolesResult, error) {
	var c connFlags
	fs := newFlagSet("deploydb roles", stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), rolesHelp); fs.PrintDefaults() }
	c.register(fs, "admin database `URL` (default: $DATABASE_URL)")
	owner := fs.String("owner", "deploydb_owner", "owner role `name`")
	app := fs.String("app", "deploydb_app", "app role `name`")
	printSQL := fs.Bool("print", false, "print the SQL instead of running it")
	database := fs.String("database", "deploydb", "database `name` for --print")
	schema := fs.String("schema", "public", "schema `name` for --print")
	if helpRequested(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil, flag.ErrHelp
	}
	if err := parseFlags(fs, args, asJSON); err != nil {
		return nil, err
	}
	if err := c.check(fs); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("roles takes no arguments, got %q", fs.Arg(0))}
	}
	r := db.Roles{
		Owner: *owner, OwnerPassword: os.Getenv("DEPLOYDB_OWNER_PASSWORD"),
		App: *app, AppPassword: os.Getenv("DEPLOYDB_APP_PASSWORD"),
	}
	res := &rolesResult{Owner: r.Owner, App: r.App}
	if *printSQL {
		stmts, err := db.RolesSQL(r, *database, *schema)
		if err != nil {
			return nil, err
		}
		res.Statements = stmts
		if !asJSON {
			fmt.Fprintln(stdout, strings.Join(stmts, ";\n\n")+";")
		}
		return res, nil
	}
	u := c.url
	if u == "" {
		u = os.Getenv("DATABASE_URL")
	}
	if u == "" {
		return nil, usageError{"roles: no database: pass --url or set DATABASE_URL (an admin connection)"}
	}
	if err := db.EnsureRoles(ctx, u, r, c.migrateOptions()...); err != nil {
		return nil, err
	}
	if !asJSON {
		fmt.Fprintf(stdout, "roles ready:\n  %s  owns the tables; run `deploydb migrate up` as this role\n  %s  DML only; give this role's URL to the service\n", r.Owner, r.App)
	}
	return res, nil
}
