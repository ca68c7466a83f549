// Package db owns deploydb's physical database: the versioned migrations
// embedded from db/migrations (written by `make migration` from schema.hcl,
// never edited after merge), the migrator that applies them, and the
// construction of pgx connection pools.
//
// It holds no business rules; the root package deploydb builds the service on
// top of it and of the sqlc-generated package gen.
//
// Migrations are recorded in a table named atlas_schema_revisions in the
// migrated schema (public unless the connection's search_path says
// otherwise), in the same format the Atlas CLI v0.12 uses for a
// schema-scoped URL (…?search_path=public). Either tool can therefore apply
// deploydb's migrations and report the other's work.
package db
