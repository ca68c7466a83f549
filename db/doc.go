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
// # What a migration file must not do
//
// The migrator owns the transaction and the session a file runs in, so a
// file must not:
//
//   - control transactions: BEGIN, START TRANSACTION, COMMIT, END,
//     ROLLBACK, ABORT, SAVEPOINT, RELEASE, ROLLBACK TO, SET TRANSACTION, SET
//     SESSION CHARACTERISTICS, PREPARE TRANSACTION, COMMIT PREPARED,
//     ROLLBACK PREPARED, or set transaction_isolation, transaction_read_only,
//     transaction_deferrable or their default_ forms. In a transactional
//     file a COMMIT would end the migrator's transaction early and leave the
//     file half applied; in a txmode none file a BEGIN would hold the
//     statements after it, and the file's revision rows, in a transaction
//     that never commits.
//   - switch off lock_timeout or statement_timeout, which every migration
//     session sets (WithDDLLockTimeout, WithStatementTimeout): SET, SET
//     LOCAL, SET SESSION or set_config(...) of either to 0, to a value that
//     rounds to 0 ms, to DEFAULT or to anything but a constant; RESET of
//     either, RESET ALL, DISCARD ALL, an UPDATE of pg_settings naming either,
//     and the same in a DO block. A larger positive value (SET LOCAL
//     lock_timeout = '10s') is fine.
//
// CheckFile finds such statements: it splits the file with Atlas's
// PostgreSQL scanner, as the migrator does, and reads each statement token
// by token, so keywords in comments, string constants, dollar-quoted bodies
// and quoted identifiers (a column named "begin", a function body with
// BEGIN … END) never match. Validate reports them for every file, Up
// refuses to run any pending file while one of them has one (nothing runs,
// ErrInvalidMigrations), and the schema review (internal/review) fails on
// them under the rules transaction_control and timeout_off. Behind that
// check, Up verifies the session after every statement on the server's
// word (its transaction status and the two settings): a statement that
// ended or opened a transaction, or switched a timeout off, fails the file,
// so that no file is ever reported as applied that did not commit as one.
//
// Migrations are recorded in a table named atlas_schema_revisions in the
// migrated schema (public unless the connection's search_path says
// otherwise), in the same format the Atlas CLI v0.12 uses for a
// schema-scoped URL (…?search_path=public). Either tool can therefore apply
// deploydb's migrations and report the other's work, partially applied
// files included.
package db
