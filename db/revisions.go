package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

// RevisionsTable is the name of the table that records applied migrations.
// Its layout is the one the Atlas CLI v0.12 creates, so that both tools can
// read each other's bookkeeping.
const RevisionsTable = "atlas_schema_revisions"

// cloudIdentifier is a bookkeeping row the Atlas CLI may write into the
// revisions table; it is not a migration.
const cloudIdentifier = ".atlas_cloud_identifier"

const createRevisionsTable = `CREATE TABLE IF NOT EXISTS atlas_schema_revisions (
	version character varying NOT NULL,
	description character varying NOT NULL,
	type bigint NOT NULL DEFAULT 2,
	applied bigint NOT NULL DEFAULT 0,
	total bigint NOT NULL DEFAULT 0,
	executed_at timestamp with time zone NOT NULL,
	execution_time bigint NOT NULL,
	error text NULL,
	error_stmt text NULL,
	hash character varying NOT NULL,
	partial_hashes jsonb NULL,
	operator_version character varying NOT NULL,
	PRIMARY KEY (version)
)`

const revisionColumns = `version, description, type, applied, total, executed_at, execution_time,
	error, error_stmt, hash, partial_hashes, operator_version`

// revisions implements migrate.RevisionReadWriter on the revisions table in
// the connection's current schema.
type revisions struct {
	q      schema.ExecQuerier
	schema string
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

func (r *revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: RevisionsTable, Schema: r.schema}
}

func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+revisionColumns+` FROM atlas_schema_revisions
		WHERE version <> $1 ORDER BY version`, cloudIdentifier)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RevisionsTable, err)
	}
	defer rows.Close()
	var revs []*migrate.Revision
	for rows.Next() {
		rev, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		revs = append(revs, rev)
	}
	return revs, rows.Err()
}

func (r *revisions) ReadRevision(ctx context.Context, version string) (*migrate.Revision, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+revisionColumns+` FROM atlas_schema_revisions
		WHERE version = $1`, version)
	if err != nil {
		return nil, fmt.Errorf("read revision %s: %w", version, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, migrate.ErrRevisionNotExist
	}
	return scanRevision(rows)
}

func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	if rev.Version == cloudIdentifier {
		return errors.New("db: refusing to write the revisions table identifier row")
	}
	var partial any
	if len(rev.PartialHashes) > 0 {
		b, err := json.Marshal(rev.PartialHashes)
		if err != nil {
			return err
		}
		partial = string(b)
	}
	// description and executed_at are immutable once written, as in the
	// Atlas CLI.
	_, err := r.q.ExecContext(ctx, `INSERT INTO atlas_schema_revisions (`+revisionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (version) DO UPDATE SET
			type = EXCLUDED.type, applied = EXCLUDED.applied, total = EXCLUDED.total,
			execution_time = EXCLUDED.execution_time, error = EXCLUDED.error,
			error_stmt = EXCLUDED.error_stmt, hash = EXCLUDED.hash,
			partial_hashes = EXCLUDED.partial_hashes, operator_version = EXCLUDED.operator_version`,
		rev.Version, rev.Description, int64(rev.Type), rev.Applied, rev.Total, rev.ExecutedAt,
		int64(rev.ExecutionTime), nullString(rev.Error), nullString(rev.ErrorStmt), rev.Hash, partial,
		rev.OperatorVersion)
	if err != nil {
		return fmt.Errorf("write revision %s: %w", rev.Version, err)
	}
	return nil
}

func (r *revisions) DeleteRevision(ctx context.Context, version string) error {
	if _, err := r.q.ExecContext(ctx, `DELETE FROM atlas_schema_revisions WHERE version = $1`, version); err != nil {
		return fmt.Errorf("delete revision %s: %w", version, err)
	}
	return nil
}

func scanRevision(rows *sql.Rows) (*migrate.Revision, error) {
	var (
		rev              migrate.Revision
		typ, execNanos   int64
		errText, errStmt sql.NullString
		partial          []byte
	)
	if err := rows.Scan(&rev.Version, &rev.Description, &typ, &rev.Applied, &rev.Total, &rev.ExecutedAt,
		&execNanos, &errText, &errStmt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
		return nil, fmt.Errorf("scan %s: %w", RevisionsTable, err)
	}
	rev.Type = migrate.RevisionType(typ)
	rev.ExecutionTime = time.Duration(execNanos)
	rev.Error, rev.ErrorStmt = errText.String, errStmt.String
	if len(partial) > 0 {
		if err := json.Unmarshal(partial, &rev.PartialHashes); err != nil {
			return nil, fmt.Errorf("decode partial_hashes of %s: %w", rev.Version, err)
		}
	}
	return &rev, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
