package review

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"ariga.io/atlas/sql/schema"
)

// stmtFacts is what replaying one statement of a new migration file showed.
type stmtFacts struct {
	File  *migrationFile
	Index int // in File.Stmts
	// Changes is the schema difference the statement made, from Atlas
	// inspections of the scratch database before and after it.
	Changes []schema.Change
	// Rewritten lists the tables and indexes that existed at the base and
	// got new storage (a new relfilenode) from the statement: PostgreSQL
	// rewrote or rebuilt them under an ACCESS EXCLUSIVE lock.
	Rewritten []rewrite
	// Built lists the indexes the statement created (new relations, not
	// renamed ones).
	Built map[string]bool
	// Validated maps each foreign key or check constraint the statement
	// added to a table that existed at the base to whether PostgreSQL
	// validated it at once (false: NOT VALID).
	Validated map[string]bool
}

// rewrite is one table or index whose storage a statement replaced.
type rewrite struct {
	Kind  string // "table" or "index"
	Name  string
	Table string // the table, for an index
}

func (s *stmtFacts) stmt() string { return s.File.Stmts[s.Index].Text }
func (s *stmtFacts) line() int    { return s.File.line(s.File.Stmts[s.Index].Pos) }

// analysis replays new migration files on a copy of the base schema and
// records stmtFacts for every statement. It is a stmtHook.
type analysis struct {
	base  *schema.Schema // the schema at the base commit
	prev  *schema.Schema // the schema before the current statement
	files map[uint32]relfile
	facts []*stmtFacts
}

// relfile is a relation's storage before a statement.
type relfile struct {
	name, kind, table string
	node              uint32
}

const relfilesSQL = `
SELECT c.oid, c.relname, c.relkind::text, c.relfilenode, coalesce(t.relname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE c.relkind IN ('r', 'p', 'i', 'm')`

func readRelfiles(ctx context.Context, q execQuerier) (map[uint32]relfile, error) {
	rows, err := q.QueryContext(ctx, relfilesSQL)
	if err != nil {
		return nil, fmt.Errorf("read relfilenodes: %w", err)
	}
	defer rows.Close()
	out := map[uint32]relfile{}
	for rows.Next() {
		var oid uint32
		var r relfile
		if err := rows.Scan(&oid, &r.name, &r.kind, &r.node, &r.table); err != nil {
			return nil, err
		}
		out[oid] = r
	}
	return out, rows.Err()
}

func (a *analysis) existing(table string) bool {
	_, ok := a.base.Table(table)
	return ok
}

func (a *analysis) before(ctx context.Context, q execQuerier, _ *migrationFile, _ int) (err error) {
	a.files, err = readRelfiles(ctx, q)
	return err
}

func (a *analysis) after(ctx context.Context, q execQuerier, f *migrationFile, i int) error {
	cur, err := inspectPublic(ctx, q)
	if err != nil {
		return err
	}
	changes, err := diffSchemas(ctx, q, a.prev, cur)
	if err != nil {
		return err
	}
	a.prev = cur
	facts := &stmtFacts{File: f, Index: i, Changes: changes, Validated: map[string]bool{}, Built: map[string]bool{}}

	now, err := readRelfiles(ctx, q)
	if err != nil {
		return err
	}
	for oid, r := range now {
		if _, ok := a.files[oid]; !ok && r.kind == "i" {
			facts.Built[r.name] = true
		}
	}
	for oid, old := range a.files {
		r, ok := now[oid]
		if !ok || r.node == old.node || !a.existing(old.table) {
			continue
		}
		kind := "table"
		if old.kind == "i" {
			kind = "index"
		}
		facts.Rewritten = append(facts.Rewritten, rewrite{Kind: kind, Name: old.name, Table: old.table})
	}
	sort.Slice(facts.Rewritten, func(i, j int) bool {
		x, y := facts.Rewritten[i], facts.Rewritten[j]
		if x.Kind != y.Kind {
			return x.Kind > y.Kind // tables first
		}
		return x.Name < y.Name
	})

	for _, c := range changes {
		m, ok := c.(*schema.ModifyTable)
		if !ok || !a.existing(m.T.Name) {
			continue
		}
		for _, mc := range m.Changes {
			var name string
			switch mc := mc.(type) {
			case *schema.AddForeignKey:
				name = mc.F.Symbol
			case *schema.AddCheck:
				name = mc.C.Name
			default:
				continue
			}
			var valid bool
			err := q.QueryRowContext(ctx, `
				SELECT convalidated FROM pg_constraint
				WHERE conrelid = to_regclass(quote_ident($1)) AND conname = $2`, m.T.Name, name).Scan(&valid)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return fmt.Errorf("read constraint %s: %w", name, err)
			}
			facts.Validated[name] = valid
		}
	}
	a.facts = append(a.facts, facts)
	return nil
}
