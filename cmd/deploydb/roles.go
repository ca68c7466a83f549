package main

import (
	"context"
	"errors"
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

Flags:
`

// runRoles implements `deploydb roles`.
func runRoles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("deploydb roles", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rolesHelp); fs.PrintDefaults() }
	url := fs.String("url", "", "admin database `URL` (default: $DATABASE_URL)")
	owner := fs.String("owner", "deploydb_owner", "owner role `name`")
	app := fs.String("app", "deploydb_app", "app role `name`")
	printSQL := fs.Bool("print", false, "print the SQL instead of running it")
	database := fs.String("database", "deploydb", "database `name` for --print")
	schema := fs.String("schema", "public", "schema `name` for --print")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("roles: unexpected argument %q", fs.Arg(0))
	}
	roles := db.Roles{
		Owner: *owner, OwnerPassword: os.Getenv("DEPLOYDB_OWNER_PASSWORD"),
		App: *app, AppPassword: os.Getenv("DEPLOYDB_APP_PASSWORD"),
	}
	if *printSQL {
		stmts, err := db.RolesSQL(roles, *database, *schema)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, strings.Join(stmts, ";\n\n")+";")
		return nil
	}
	u := *url
	if u == "" {
		u = os.Getenv("DATABASE_URL")
	}
	if u == "" {
		return errors.New("roles: no database: pass --url or set DATABASE_URL (an admin connection)")
	}
	if err := db.EnsureRoles(ctx, u, roles); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "roles ready:\n  %s  owns the tables; run `deploydb migrate up` as this role\n  %s  DML only; give this role's URL to the service\n", roles.Owner, roles.App)
	return nil
}
