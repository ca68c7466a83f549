// Package review builds deploydb's schema review, the report `make review`
// prints and CI posts on pull requests. It compares the working tree with a
// base commit (by default the merge base with main) and writes one Markdown
// report in five sections:
//
//  1. Schema changes: the migrations at the base and in the working tree
//     are replayed on scratch databases, both schemas inspected with the
//     Atlas library, and their difference said in words, with the SQL of
//     every new migration file. Functions and triggers are outside the
//     inspection: the report names the new files that carry
//     schema_triggers.sql (internal/schematriggers), where they are edited.
//  2. Lint: `atlas migrate lint` (the pinned v0.12 CLI, analyzers from the
//     lint block of atlas.hcl) on the new files, and deploydb's own rules
//     (Rules), checked on a replay of every new statement against a copy of
//     the base schema: what it changed, which tables PostgreSQL rewrote, which
//     constraints it validated. A reviewed exception is a line
//     `-- deploydb:allow <rule> <reason>` in the migration file. The
//     statements the migrator refuses to run (db.CheckFile: transaction
//     control, a timeout switched off) fail the review under the rules
//     transaction_control and timeout_off, which no allow line accepts.
//  3. Drift: schema.hcl re-diffs to no new migration, atlas.sum is valid,
//     the newest migration carrying schema_triggers.sql holds it as it is
//     (internal/schematriggers), internal/dbsqlc is what sqlc generates
//     (sqlc diff), docs/schema.md is current.
//  4. Query plans: every query of queries/ under EXPLAIN (ANALYZE, BUFFERS)
//     with representative parameters (params.go) on a deterministic seeded
//     data set (seed.go); sequential scans of the big tables, sorts of more
//     rows than the page and buffer counts far beyond the page are errors
//     unless the query says `-- deploydb:review-allow-scan <reason>`.
//  5. ER diagram: a Mermaid erDiagram of the schema; `make erd` writes it
//     with the table's indexes and constraints to docs/schema.md.
//
// Scratch databases come from a Server (internal/pgtest in the command) and
// are dropped when the review ends. The command is cmd/review (`make
// review`, `make erd`); it also posts the report on a pull request
// (CommentBody, PostComment; scripts/post-review-comment.sh). The rules are
// proven by the fixtures in testdata/fixtures/<rule>/: every bad*.sql fails
// the review with its rule, every good*.sql passes.
package review
