// Package db owns deploydb's physical database: the versioned migrations
// embedded from db/migrations (written by `make migration` from schema.hcl,
// never edited after merge), the migrator that applies them, and the
// construction of pgx connection pools.
//
// It holds no business rules; the root package deploydb builds the service on
// top of it and of the sqlc-generated package gen.
//
// # Migrator
//
// Up (and Migrate, which drops the report) applies pending files under a
// PostgreSQL advisory lock shared with the Atlas CLI, each file in its own
// transaction or, for `-- atlas:txmode none` files, statement by statement,
// on sessions with lock_timeout and statement_timeout set; a file that hits
// the lock timeout is retried with backoff. Inspect reports each file's
// state, invalid indexes and the lock holder; Validate checks the files and
// the applied ones' checksums; Down computes and applies a rollback plan by
// replaying the files on a scratch database and diffing; Baseline adopts an
// existing database. Errors match ErrLocked, ErrChecksum, ErrDataLoss or
// ErrInvalidMigrations, or are a *MigrationError naming the file, statement
// and SQLSTATE. WithDir runs another migration directory than the embedded
// one (tests use it).
//
// Migrations are recorded in a table named atlas_schema_revisions in the
// migrated schema (public unless the connection's search_path says
// otherwise), in the same format the Atlas CLI v0.12 uses for a
// schema-scoped URL (…?search_path=public). Either tool can therefore apply
// deploydb's migrations and report the other's work, partially applied
// files included.
package db
