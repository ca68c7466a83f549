package db

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
)

// InvalidIndex is an index PostgreSQL marks invalid (pg_index.indisvalid is
// false): what a failed or interrupted CREATE INDEX CONCURRENTLY leaves
// behind. It is maintained on every write but never used by queries. Up
// drops and rebuilds the ones its pending txmode none files create.
type InvalidIndex struct {
	Schema     string `json:"schema"`
	Name       string `json:"name"`
	Table      string `json:"table"`
	Definition string `json:"definition"`
	// BuildingPID is the backend building the index right now (a build in
	// progress is invalid until it finishes), 0 when none is.
	BuildingPID int `json:"building_pid,omitempty"`
	// File is the pending migration file that creates the index, if any.
	File string `json:"file,omitempty"`
}

// concurrentIndex matches CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT
// EXISTS] name and captures the name.
var concurrentIndex = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[^\s"(]+)\s`)

// concurrentIndexName returns the index a CREATE INDEX CONCURRENTLY
// statement builds, as PostgreSQL stores the name.
func concurrentIndexName(stmt string) (string, bool) {
	m := concurrentIndex.FindStringSubmatch(stripLeadingComments(stmt))
	if m == nil || strings.EqualFold(m[1], "ON") {
		return "", false
	}
	name := m[1]
	if strings.HasPrefix(name, `"`) {
		return strings.ReplaceAll(name[1:len(name)-1], `""`, `"`), true
	}
	return strings.ToLower(name), true
}

func stripLeadingComments(stmt string) string {
	for {
		stmt = strings.TrimLeft(stmt, " \t\r\n")
		if !strings.HasPrefix(stmt, "--") {
			return stmt
		}
		i := strings.IndexByte(stmt, '\n')
		if i < 0 {
			return ""
		}
		stmt = stmt[i+1:]
	}
}

// invalidIndexes lists the invalid indexes in the current schema.
func invalidIndexes(ctx context.Context, q revisionQuerier) ([]InvalidIndex, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT n.nspname, c.relname, t.relname, pg_get_indexdef(c.oid),
		       coalesce((SELECT p.pid FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid LIMIT 1), 0)
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT i.indisvalid AND n.nspname = current_schema()
		ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("db: list invalid indexes: %w", err)
	}
	defer rows.Close()
	var out []InvalidIndex
	for rows.Next() {
		var ix InvalidIndex
		var pid sql.NullInt64
		if err := rows.Scan(&ix.Schema, &ix.Name, &ix.Table, &ix.Definition, &pid); err != nil {
			return nil, fmt.Errorf("db: list invalid indexes: %w", err)
		}
		ix.BuildingPID = int(pid.Int64)
		out = append(out, ix)
	}
	return out, rows.Err()
}

// invalidIndexesFor returns the invalid indexes that stmts build with
// CREATE INDEX CONCURRENTLY.
func invalidIndexesFor(ctx context.Context, q revisionQuerier, stmts []string) ([]InvalidIndex, error) {
	names := map[string]bool{}
	for _, st := range stmts {
		if n, ok := concurrentIndexName(st); ok {
			names[n] = true
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	all, err := invalidIndexes(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []InvalidIndex
	for _, ix := range all {
		if names[ix.Name] {
			out = append(out, ix)
		}
	}
	return out, nil
}
