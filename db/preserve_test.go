package db_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// seedSQL fills apps, builds and deployments with rows in every lifecycle
// state, as the first migration defines them.
const seedSQL = `
INSERT INTO apps (name) VALUES ('checkout'), ('search'), ('billing');
INSERT INTO builds (app_id, source_version, status, started_at, finished_at)
SELECT a.id, v.sv || a.id, v.st, v.sa, v.fa
FROM apps a, (VALUES
	('3f2a9c1', 'succeeded',   now() - interval '3 hours', now() - interval '2 hours'),
	('9b1c2d3', 'failed',      now() - interval '5 hours', now() - interval '4 hours'),
	('7e6f5a4', 'in_progress', now() - interval '1 minute', NULL),
	('1a2b3c4', 'pending',     NULL, NULL),
	('5d6e7f8', 'canceled',    NULL, now() - interval '6 hours')
) AS v(sv, st, sa, fa);
INSERT INTO deployments (app_id, build_id, environment, status, started_at, finished_at)
SELECT b.app_id, b.id, e.env, e.st, e.sa, e.fa
FROM builds b, (VALUES
	('production', 'deployed',    now() - interval '2 hours', now() - interval '1 hour'),
	('staging',    'in_progress', now() - interval '5 minutes', NULL),
	('canary',     'failed',      now() - interval '3 hours', now() - interval '2 hours'),
	('qa',         'pending',     NULL, NULL)
) AS e(env, st, sa, fa)
WHERE b.status = 'succeeded';`

// rowsByTable reads every row of every table in the schema (the revisions
// table aside) as JSON objects keyed by id.
func rowsByTable(t *testing.T, url string) map[string]map[string]map[string]any {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, url)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> $1`, db.RevisionsTable)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]any{}
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT to_jsonb(t)::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = map[string]map[string]any{}
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				t.Fatal(err)
			}
			var row map[string]any
			if err := json.Unmarshal([]byte(doc), &row); err != nil {
				t.Fatal(err)
			}
			id, _ := json.Marshal(row["id"])
			out[table][string(id)] = row
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestMigrationsPreserveData seeds apps, builds and deployments at every
// version but the last (pgtest.MigrateTo), migrates to the head and checks
// that every row is still there with every value it had. The last step is
// the newest migration (today: the rollouts migration, which adds
// deployment_operations); once the head moves on, the test covers each new
// migration the same way.
func TestMigrationsPreserveData(t *testing.T) {
	t.Parallel()
	vs := db.Versions()
	if len(vs) < 2 {
		t.Fatalf("need at least two migrations, have %d", len(vs))
	}
	for i := 0; i < len(vs)-1; i++ {
		from := vs[i]
		t.Run("from "+from, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.MigrateTo(t, from)
			if _, err := connect(t, url).Exec(ctx, seedSQL); err != nil {
				t.Fatalf("seed at %s: %v", from, err)
			}
			before := rowsByTable(t, url)
			rep, err := db.Up(ctx, url)
			if err != nil {
				t.Fatalf("migrate %s -> head: %v", from, err)
			}
			after := rowsByTable(t, url)
			total := 0
			for table, rows := range before {
				if len(after[table]) != len(rows) {
					t.Fatalf("%s: %d rows before, %d after", table, len(rows), len(after[table]))
				}
				for id, old := range rows {
					now := after[table][id]
					for col, v := range old {
						if !reflect.DeepEqual(now[col], v) {
							t.Fatalf("%s id %s: %s was %v, is %v", table, id, col, v, now[col])
						}
					}
				}
				total += len(rows)
			}
			if total < 30 { // 3 apps, 15 builds, 12 deployments
				t.Fatalf("seeded only %d rows", total)
			}
			// New tables work with the old rows.
			var ops int
			err = connect(t, url).QueryRow(ctx, `SELECT CASE WHEN to_regclass('deployment_operations') IS NULL THEN -1 ELSE 0 END`).Scan(&ops)
			if err != nil {
				t.Fatal(err)
			}
			if ops == 0 {
				tag, err := connect(t, url).Exec(ctx, `INSERT INTO deployment_operations (deployment_id, target)
					SELECT id, 'eu-west-1' FROM deployments`)
				if err != nil {
					t.Fatalf("deployment_operations for seeded deployments: %v", err)
				}
				ops = int(tag.RowsAffected())
			}
			t.Logf("seeded at %s, migrated through %d file(s) to %s: %d rows in %d tables unchanged; %d deployment operations attached to the old deployments",
				from, len(rep.Applied), rep.To, total, len(before), max(ops, 0))
		})
	}
}
