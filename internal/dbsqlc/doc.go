// Package dbsqlc is sqlc's output for queries/*.sql, compiled against the
// migrations in db/migrations: the row structs, parameter structs, the SQL
// text of every query (exported, so the root package can scan list pages
// itself) and one method per query. Every file but this one is generated:
// edit queries/ or sqlc.yaml and run `make generate`; `make check` fails
// when this directory is stale. Only deploydb's own packages import it; the
// public types and their documentation live in the root package.
package dbsqlc
