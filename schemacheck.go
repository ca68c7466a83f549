package deploydb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db/migrations"
)

// SchemaCheck says how Open compares the migrations the database has
// applied with the ones this binary embeds (package db/migrations). The
// zero value is SchemaExact.
//
// A binary runs safely against a schema newer than its own only when every
// migration it does not know is additive. Schema changes therefore follow
// expand/contract:
//
//   - Expand: a migration that binaries already running may meet only adds
//     what they can ignore: new tables, new nullable columns (or NOT NULL
//     ones with a default), new indexes, new constraints that the old
//     binaries' writes satisfy. It drops, renames and retypes nothing, and
//     adds no NOT NULL column without a default. Migrate first, then roll
//     the new binary out; until the rollout ends, the old replicas open
//     with SchemaAllowNewer.
//   - Contract: a migration that removes or changes what the old binary
//     uses (drop the column it reads, add NOT NULL to a column it leaves
//     empty) ships in a later release, once no binary that needs the old
//     shape runs anywhere.
type SchemaCheck int

// Schema checks for WithSchemaCheck.
const (
	// SchemaExact, the default, accepts only a database that has applied
	// every embedded migration and no other.
	SchemaExact SchemaCheck = iota
	// SchemaAllowNewer also accepts a database that has applied, besides
	// every embedded migration, migrations this binary does not know: an
	// older binary during a rolling upgrade, after the newer binary's
	// migrations ran. It is safe only when those migrations are additive
	// (see SchemaCheck). A database that lacks an embedded migration is
	// still refused.
	SchemaAllowNewer
	// SchemaSkip turns the check off: Open reads nothing of the schema.
	SchemaSkip
)

// String returns the constant's name without its package, e.g.
// "SchemaExact".
func (c SchemaCheck) String() string {
	switch c {
	case SchemaExact:
		return "SchemaExact"
	case SchemaAllowNewer:
		return "SchemaAllowNewer"
	case SchemaSkip:
		return "SchemaSkip"
	}
	return fmt.Sprintf("SchemaCheck(%d)", int(c))
}

// validate refuses a value that is none of the constants.
func (c SchemaCheck) validate(op string) error {
	switch c {
	case SchemaExact, SchemaAllowNewer, SchemaSkip:
		return nil
	}
	return invalidArg(op, "unknown schema check %s (want SchemaExact, SchemaAllowNewer or SchemaSkip)", c)
}

// WithSchemaCheck sets how Open checks the database's applied migrations
// against the ones this binary embeds (default SchemaExact). A value that
// is none of the SchemaCheck constants makes Open fail with
// ErrInvalidArgument before it connects. Only Open uses it: New, and the
// Service an InTx callback gets, check nothing (see CheckSchema).
func WithSchemaCheck(c SchemaCheck) Option {
	return func(o *options) { o.schemaCheck = c }
}

// SchemaError reports that the migrations the database has applied do not
// match the ones this binary embeds. It matches ErrSchemaMismatch with
// errors.Is, and no other sentinel. Every list is in ascending order.
type SchemaError struct {
	// Check is the check that refused the database.
	Check SchemaCheck
	// Schema is the schema whose revisions table was read: the
	// connection's current schema, the first existing one of its
	// search_path ("" when the search_path names none).
	Schema string
	// Migrated is false when that schema has no revisions table
	// (atlas_schema_revisions): the database was never migrated.
	Migrated bool
	// Applied lists the embedded migration versions the database has
	// applied.
	Applied []string
	// Missing lists the embedded versions it has not applied, including
	// files that stopped part way: the database is behind this binary.
	Missing []string
	// Unknown lists the versions the database records that this binary
	// does not embed: a newer binary migrated it.
	Unknown []string
}

// Error names the versions and says what to do.
func (e *SchemaError) Error() string {
	var parts []string
	if !e.Migrated {
		where := "on the connection's search_path"
		if e.Schema != "" {
			where = fmt.Sprintf("in schema %q", e.Schema)
		}
		parts = append(parts, fmt.Sprintf("the database was never migrated (no %s table %s); this binary needs migrations %s: run them first (deploydb migrate up, db.Migrate, or Open with WithAutoMigrate)",
			revisionsTable, where, strings.Join(e.Missing, ", ")))
	} else if len(e.Missing) > 0 {
		applied := "none"
		if len(e.Applied) > 0 {
			applied = strings.Join(e.Applied, ", ")
		}
		parts = append(parts, fmt.Sprintf("the database is behind this binary: migrations %s are not applied (applied: %s); run them first (deploydb migrate up, db.Migrate, or Open with WithAutoMigrate)",
			strings.Join(e.Missing, ", "), applied))
	}
	if len(e.Unknown) > 0 {
		msg := fmt.Sprintf("the database has applied migrations this binary does not know: %s (a newer binary's)", strings.Join(e.Unknown, ", "))
		if e.Check == SchemaExact && len(e.Missing) == 0 {
			msg += "; run the newer binary, or, while a rolling upgrade whose new migrations are additive is under way, open with WithSchemaCheck(SchemaAllowNewer)"
		}
		parts = append(parts, msg)
	}
	return "deploydb: " + ErrSchemaMismatch.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaMismatch }

// revisionsTable is where the migrator records applied migrations (package
// db's RevisionsTable; the root package does not import db).
const revisionsTable = "atlas_schema_revisions"

// schemaQuery reads the revisions of the connection's current schema, the
// table package db migrates and reads, in one statement. The unqualified
// name finds the first such table on the search_path (as
// to_regclass('atlas_schema_revisions') does); its rows count only when
// that table is the current schema's, as db would read it. The LEFT JOIN
// returns one row even when the table is empty, naming the schema and
// whether the table exists there. The Atlas CLI's bookkeeping row is not a
// migration. It reads only the columns db.EnsureRoles lets the app role
// read.
const schemaQuery = `SELECT s.name, s.tbl IS NOT NULL, r.version, r.type, r.applied, r.total
FROM (SELECT coalesce(current_schema(), '') AS name,
		to_regclass(quote_ident(current_schema()) || '.atlas_schema_revisions') AS tbl) s
LEFT JOIN atlas_schema_revisions r ON s.tbl = to_regclass('atlas_schema_revisions')
	AND r.version <> '.atlas_cloud_identifier'
ORDER BY r.version`

// CheckSchema compares the migrations that the database behind pool has
// applied with the ones this binary embeds, as Open does with
// WithSchemaCheck(check), in one query (two for a database without a
// revisions table anywhere on its search_path). It returns nil when check accepts
// the database, a *SchemaError (ErrSchemaMismatch) when it does not, an
// error matching ErrSchemaMismatch when the role may not read the
// revisions table, and ErrInvalidArgument for a check that is none of the
// constants. Open runs
// it before it returns a Service; call it yourself before New, which does
// not.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, check SchemaCheck) error {
	if err := check.validate("check schema"); err != nil {
		return err
	}
	return checkSchema(ctx, pool, check)
}

// checkOpenSchema runs Open's schema check, bounded by the connect
// timeout (none when it is 0).
func checkOpenSchema(ctx context.Context, pool *pgxpool.Pool, check SchemaCheck, timeout time.Duration) error {
	if check == SchemaSkip {
		return nil
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return checkSchema(ctx, pool, check)
}

// checkSchema reads the revisions with schemaQuery and applies check.
func checkSchema(ctx context.Context, q Querier, check SchemaCheck) error {
	if check == SchemaSkip {
		return nil
	}
	e := &SchemaError{Check: check}
	var revs []migrations.Revision
	rows, err := q.Query(ctx, schemaQuery)
	if err == nil {
		var (
			version             *string
			typ, applied, total *int64
		)
		_, err = pgx.ForEachRow(rows, []any{&e.Schema, &e.Migrated, &version, &typ, &applied, &total}, func() error {
			if version != nil {
				revs = append(revs, migrations.Revision{Version: *version, Type: *typ, Applied: *applied, Total: *total})
			}
			return nil
		})
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01":
		// undefined_table: there is none on the whole search_path. Only
		// then does a second query name the schema for the message.
		e.Migrated = false
		if err := q.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&e.Schema); err != nil {
			return mapError(ctx, opRead, "check schema", err)
		}
	case errors.As(err, &pgErr) && pgErr.Code == "42501": // insufficient_privilege
		return &Error{Kind: ErrSchemaMismatch, Op: "check schema", Err: err,
			Msg: "the role may not read " + revisionsTable + ", so the schema cannot be checked: let it read the table's version, type, applied and total columns (deploydb roles does), or open with WithSchemaCheck(SchemaSkip)"}
	case err != nil:
		return mapError(ctx, opRead, "check schema", err)
	}
	cmp := migrations.Compare(migrations.Versions(), revs)
	e.Applied, e.Missing, e.Unknown = cmp.Applied, cmp.Missing, cmp.Unknown
	if len(e.Missing) == 0 && (len(e.Unknown) == 0 || check == SchemaAllowNewer) {
		return nil
	}
	return e
}
