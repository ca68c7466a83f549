package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roles names the two roles of a least-privilege setup:
//
//   - Owner owns deploydb's tables and runs the migrations (DDL).
//   - App is what the service connects as: SELECT, INSERT, UPDATE and DELETE
//     on deploydb's tables and nothing else. It cannot create, alter, drop or
//     truncate tables, grant privileges, or change the revisions table; of
//     that table it may read only the version, type, applied and total
//     columns, which deploydb.Open's schema check reads.
//
// Passwords are optional: empty leaves a role's password as it is (a new
// role then has none and can only log in where the server trusts it).
type Roles struct {
	Owner, OwnerPassword string
	App, AppPassword     string
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (r Roles) validate() error {
	for _, n := range []string{r.Owner, r.App} {
		if !roleName.MatchString(n) {
			return fmt.Errorf("db: role name %q: use 1-63 characters of a-z, 0-9 and _, not starting with a digit", n)
		}
	}
	if r.Owner == r.App {
		return errors.New("db: the owner and app roles must differ")
	}
	for _, p := range []string{r.OwnerPassword, r.AppPassword} {
		if strings.ContainsRune(p, 0) {
			return errors.New("db: a role password contains a NUL byte")
		}
	}
	return nil
}

// Tables returns the names of the tables deploydb's migrations create, in
// name order.
func Tables() []string {
	re := regexp.MustCompile(`(?m)^CREATE TABLE "([a-z_0-9]+)"`)
	seen := map[string]bool{}
	files, _ := fs.Glob(Dir(), "*.sql")
	for _, f := range files {
		b, err := fs.ReadFile(Dir(), f)
		if err != nil {
			panic(fmt.Sprintf("db: read embedded migration %s: %v", f, err))
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// RolesSQL returns the statements EnsureRoles runs, for a DBA who prefers to
// apply them by hand. Passwords are not included; set them with ALTER ROLE …
// PASSWORD. database and schema are the database and schema deploydb lives
// in.
func RolesSQL(r Roles, database, schema string) ([]string, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	r.OwnerPassword, r.AppPassword = "", ""
	return rolesSQL(r, database, schema), nil
}

func rolesSQL(r Roles, database, schema string) []string {
	owner, app := roleIdent(r.Owner), roleIdent(r.App)
	sch, dbname := roleIdent(schema), roleIdent(database)
	var out []string
	for _, role := range []struct{ name, password string }{{r.Owner, r.OwnerPassword}, {r.App, r.AppPassword}} {
		out = append(out, fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN
    CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
END $$`, roleLiteral(role.name), roleIdent(role.name)))
		if role.password != "" {
			out = append(out, fmt.Sprintf("ALTER ROLE %s WITH LOGIN PASSWORD %s", roleIdent(role.name), roleLiteral(role.password)))
		}
	}
	out = append(out,
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s, %s", dbname, owner, app),
		fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA %s TO %s", sch, owner),
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", sch, app),
		// The revisions table exists before the default privileges below,
		// so the app role gets no table-wide rights on it.
		createRevisionsTable,
		fmt.Sprintf("ALTER TABLE %s.atlas_schema_revisions OWNER TO %s", sch, owner),
		// What deploydb.Open's schema check reads, and nothing else: not
		// the errors, statements or hashes the migrator records.
		fmt.Sprintf("GRANT SELECT (version, type, applied, total) ON %s.atlas_schema_revisions TO %s", sch, app),
	)
	for _, t := range Tables() {
		out = append(out, fmt.Sprintf(`DO $$ BEGIN
  IF to_regclass(%s) IS NOT NULL THEN
    ALTER TABLE %s.%s OWNER TO %s;
    GRANT SELECT, INSERT, UPDATE, DELETE ON %s.%s TO %s;
  END IF;
END $$`, roleLiteral(schema+"."+t), sch, roleIdent(t), owner, sch, roleIdent(t), app))
	}
	out = append(out,
		fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %s", owner, sch, app),
		fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT USAGE, SELECT ON SEQUENCES TO %s", owner, sch, app),
	)
	return out
}

// EnsureRoles creates or updates the owner and app roles on the database at
// adminURL (a role allowed to create roles, such as the database's owner or
// a superuser), hands deploydb's existing tables to the owner, and grants the
// app role DML on them and on every table the owner creates later. It is
// idempotent. Run the migrations as the owner and the service as the app
// role afterwards. Of the options only WithConnectTimeout applies.
func EnsureRoles(ctx context.Context, adminURL string, r Roles, opts ...MigrateOption) error {
	if err := r.validate(); err != nil {
		return err
	}
	conn, err := connectAdmin(ctx, adminURL, newConfig(opts).connectTimeout)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var database, schema, scs string
	if err := conn.QueryRow(ctx, "SELECT current_database(), current_schema(), current_setting('standard_conforming_strings')").
		Scan(&database, &schema, &scs); err != nil {
		return fmt.Errorf("db: roles: %w", err)
	}
	if scs != "on" {
		return errors.New("db: roles: standard_conforming_strings must be on")
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("db: roles: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, stmt := range rolesSQL(r, database, schema) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			// The statement may hold a password: name it by its first words.
			return fmt.Errorf("db: roles: %s…: %w", roleFirstWords(stmt, 3), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("db: roles: %w", err)
	}
	return nil
}

// connectAdmin opens one connection without ever echoing the URL.
func connectAdmin(ctx context.Context, databaseURL string, connectTimeout time.Duration) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, urlError(err)
	}
	setConnectTimeout(&cfg.Config, databaseURL, connectTimeout)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(ctx, &cfg.Config, err)
	}
	return conn, nil
}

func roleIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func roleLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func roleFirstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}
