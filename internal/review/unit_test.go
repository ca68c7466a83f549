package review

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestParseQueries(t *testing.T) {
	t.Parallel()
	src := `-- name: ListThings :many
-- ListThings lists things.
-- deploydb:review-allow-scan admin export reads every row
SELECT t.*, sqlc.embed(apps) FROM things t JOIN apps ON apps.id = t.app_id
WHERE t.app_id = @app_id AND t.kind = sqlc.narg('kind')::text
  AND t.note <> '@not_a_param' AND (t.created_at, t.id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)
  AND t.app_id = @app_id
ORDER BY t.created_at DESC
LIMIT @page_size;

-- name: CountThings :one
SELECT count(*) FROM (SELECT id FROM things LIMIT 10) s;
`
	qs := parseQueries("things.sql", []byte(src))
	if len(qs) != 2 {
		t.Fatalf("parsed %d queries, want 2", len(qs))
	}
	q := qs[0]
	if q.Name != "ListThings" || q.Kind != ":many" || q.Table != "things" || q.Line != 1 {
		t.Errorf("header: %+v", q)
	}
	if want := []string{"app_id", "kind", "cursor_created_at", "cursor_id", "page_size"}; !reflect.DeepEqual(q.Params, want) {
		t.Errorf("params %q, want %q", q.Params, want)
	}
	for _, want := range []string{"apps.*", "t.app_id = $1", "t.kind = $2::text", "'@not_a_param'", "($3::timestamptz, $4::bigint)", "LIMIT $5"} {
		if !strings.Contains(q.Text, want) {
			t.Errorf("translated SQL lacks %q:\n%s", want, q.Text)
		}
	}
	if q.Limit != "page_size" || q.AllowScan != "admin export reads every row" || q.Err != nil {
		t.Errorf("limit %q, allow-scan %q, err %v", q.Limit, q.AllowScan, q.Err)
	}
	if !q.tables["things"] || !q.tables["apps"] || !q.star {
		t.Errorf("usage: tables %v, star %v", q.tables, q.star)
	}
	c := qs[1]
	if c.Limit != "" || c.star || len(c.Params) != 0 {
		t.Errorf("CountThings: limit %q (the LIMIT is inside a subquery), star %v (count(*) reads no column), params %q",
			c.Limit, c.star, c.Params)
	}
	u := &queryUsage{queries: qs}
	if got := u.columnUsers("things", "note"); !reflect.DeepEqual(got, []string{"ListThings"}) {
		t.Errorf("columnUsers(things, note) = %q", got)
	}
	if got := u.columnUsers("apps", "name"); !reflect.DeepEqual(got, []string{"ListThings (*)"}) {
		t.Errorf("columnUsers(apps, name) = %q", got)
	}
	if got := u.columnUsers("things", "size"); !reflect.DeepEqual(got, []string{"ListThings (*)"}) {
		t.Errorf("columnUsers(things, size) = %q", got)
	}
}

// TestEveryQueryHasValues checks that every parameter of every query in
// queries/ has a representative value chosen by query or name, not only by
// type: a new query whose parameters the review cannot place shows up here
// (and as a warning in the report) rather than as a meaningless plan.
func TestEveryQueryHasValues(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(projectRoot(t), "queries", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries: %v", err)
	}
	s := &sample{HotApp: 1, Target: "cluster-1"}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range parseQueries(filepath.Base(f), data) {
			if q.Err != nil {
				t.Errorf("%s: %v", q.Name, q.Err)
			}
			for _, p := range q.Params {
				n++
				v, err := paramValue(s, q, p, 0)
				if err != nil || v.Fallback {
					t.Errorf("%s.%s: no representative value (%v)", q.Name, p, err)
				}
			}
		}
	}
	t.Logf("%d parameters", n)
	if _, err := paramValue(s, &Query{Name: "X"}, "mystery", 0); err == nil || !strings.Contains(err.Error(), "internal/review/params.go") {
		t.Errorf("an unknown parameter of unknown type: err %v, want one that says where to add a value", err)
	}
	if v, err := paramValue(s, &Query{Name: "X"}, "mystery", 20); err != nil || !v.Fallback {
		t.Errorf("an unknown bigint parameter: %+v, %v; want a fallback value", v, err)
	}
}

func TestCursorValues(t *testing.T) {
	t.Parallel()
	desc := &Query{SQL: "WHERE (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::bigint)",
		Params: []string{"cursor_created_at", "cursor_id"}}
	asc := &Query{SQL: "WHERE (created_at, id) > (@cursor_created_at::timestamptz, @cursor_id::bigint)",
		Params: []string{"cursor_created_at", "cursor_id"}}
	ranged := &Query{SQL: "WHERE updated_at >= @updated_after AND updated_at < @updated_before AND (updated_at, id) < (@cursor_updated_at, @cursor_id)",
		Params: []string{"updated_after", "updated_before", "cursor_updated_at", "cursor_id"}}
	s := &sample{}
	for _, c := range []struct {
		q    *Query
		p    string
		want any
	}{
		{desc, "cursor_created_at", firstPageDesc},
		{desc, "cursor_id", int64(1<<63 - 1)},
		{asc, "cursor_created_at", firstPageAsc},
		{asc, "cursor_id", int64(0)},
		{ranged, "cursor_updated_at", rangeBefore},
		{ranged, "cursor_id", int64(-1 << 63)},
		{ranged, "updated_after", rangeAfter},
	} {
		v, err := paramValue(s, c.q, c.p, 0)
		if err != nil || !reflect.DeepEqual(v.V, c.want) {
			t.Errorf("%s in %q = %v (%v), want %v", c.p, c.q.SQL, v.V, err, c.want)
		}
	}
}

func TestParseAllows(t *testing.T) {
	t.Parallel()
	allows, bad := parseAllows(strings.Join([]string{
		"-- deploydb:allow destructive the column moved to audit_notes",
		"--deploydb:allow condrop   checked by hand  ",
		"-- deploydb:allow not_null",
		"-- deploydb:allow everything at once",
		"-- deploydb:allow apply it works on my machine",
		"-- deploydb:allow",
		"SELECT 1; -- deploydb:allow destructive not a directive: not at the start of the line",
	}, "\n"))
	want := []allow{
		{Rule: "destructive", Reason: "the column moved to audit_notes", Line: 1},
		{Rule: "condrop", Reason: "checked by hand", Line: 2},
	}
	if !reflect.DeepEqual(allows, want) {
		t.Errorf("allows %+v, want %+v", allows, want)
	}
	if len(bad) != 4 {
		t.Errorf("bad lines %q, want 4", bad)
	}
}

func TestApplyAllows(t *testing.T) {
	t.Parallel()
	f := &migrationFile{Name: "x.sql", Allows: []allow{{Rule: "destructive", Reason: "ok", Line: 1}, {Rule: "condrop", Reason: "r", Line: 2}}}
	fs := applyAllows([]Finding{
		{Section: "lint", Rule: "destructive", file: "x.sql", allow: true},
		{Section: "lint", Rule: "apply", file: "x.sql"},
	}, []*migrationFile{f}, "db/migrations")
	if fs[0].Allowed != "ok" || !fs[1].IsError() {
		t.Errorf("findings %+v", fs)
	}
	if len(fs) != 3 || fs[2].Rule != "allow" || !fs[2].Warning || !strings.Contains(fs[2].Where, "x.sql:2") {
		t.Errorf("an unused allow line should be a warning: %+v", fs)
	}
}

// planJSON is an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of a query whose
// index is defeated: a sequential scan of builds feeding a top-N sort.
const planJSON = `[{"Plan": {"Node Type": "Limit", "Actual Rows": 50, "Actual Loops": 1,
  "Shared Hit Blocks": 2275, "Shared Read Blocks": 0,
  "Plans": [{"Node Type": "Sort", "Actual Rows": 50, "Actual Loops": 1, "Sort Key": ["created_at DESC", "id DESC"],
    "Sort Method": "top-N heapsort", "Sort Space Used": 39,
    "Plans": [{"Node Type": "Seq Scan", "Relation Name": "builds", "Alias": "builds", "Actual Rows": 29845,
      "Actual Loops": 1, "Rows Removed by Filter": 120155, "Filter": "(abs(app_id) = 1)",
      "Shared Hit Blocks": 2269}]}]},
  "Planning Time": 0.05, "Execution Time": 28.8}]`

func TestPlanProblems(t *testing.T) {
	t.Parallel()
	var e []explainJSON
	if err := json.Unmarshal([]byte(planJSON), &e); err != nil {
		t.Fatal(err)
	}
	r := PlanResult{Page: 50, Hit: e[0].Plan.SharedHit}
	got := problems(e[0].Plan, r)
	var rules []string
	for _, p := range got {
		rules = append(rules, p.Rule)
	}
	if !reflect.DeepEqual(rules, []string{"sort", "seq_scan", "buffers"}) {
		t.Fatalf("problems %+v", got)
	}
	if !strings.Contains(got[1].Text, "Seq Scan on builds (150,000 rows read, 120,155 filtered out)") ||
		!strings.Contains(got[0].Text, "Sort of 29,845 rows") || !strings.Contains(got[2].Text, "2275 buffers for a page of 50 (budget 600)") {
		t.Errorf("texts: %+v", got)
	}
	if s := shape(e[0].Plan); s != "Limit → Seq Scan on builds" {
		t.Errorf("shape %q", s)
	}
	var b strings.Builder
	writeTree(&b, e[0].Plan, 0)
	if !strings.Contains(b.String(), "    -> Seq Scan on builds  (rows=29,845 loops=1") || !strings.Contains(b.String(), "Filter: (abs(app_id) = 1)") {
		t.Errorf("tree:\n%s", b.String())
	}
	// The same scan of apps is not an error; a bounded sort is not either.
	e[0].Plan.Plans[0].Plans[0].Relation = "apps"
	e[0].Plan.Plans[0].Plans[0].ActualRows = 40
	if got := problems(e[0].Plan, PlanResult{Page: 50, Hit: 3}); len(got) != 0 {
		t.Errorf("problems %+v, want none", got)
	}
}

func TestPageOf(t *testing.T) {
	t.Parallel()
	r := PlanResult{Rows: 7, Params: []paramUse{{Name: "page_size", value: value{V: int64(51)}}}}
	for _, c := range []struct {
		q    Query
		want int64
	}{
		{Query{Limit: "page_size", Kind: ":many"}, 51},
		{Query{Limit: "1", Kind: ":one"}, 1},
		{Query{Kind: ":one"}, 1},
		{Query{Kind: ":many"}, 7},
	} {
		if got := pageOf(&c.q, r); got != c.want {
			t.Errorf("pageOf(%+v) = %d, want %d", c.q, got, c.want)
		}
	}
}

func TestCommentBody(t *testing.T) {
	t.Parallel()
	short := CommentBody("## report\n", CommentLimit, "see artifact")
	if !strings.HasPrefix(short, Marker+"\n## report") {
		t.Errorf("short body %q", short)
	}
	if again := CommentBody(short, CommentLimit, "x"); again != short {
		t.Errorf("the marker was added twice: %q", again)
	}

	var b strings.Builder
	b.WriteString(Marker + "\n## report\n\n<details><summary>plans</summary>\n\n```\n")
	for b.Len() < 3*CommentLimit {
		b.WriteString("Index Scan using builds_app_id_created_at_id_idx on builds  (rows=51 loops=1)\n")
	}
	b.WriteString("```\n</details>\n")
	body := CommentBody(b.String(), CommentLimit, "The full report is the workflow artifact.")
	if len(body) > CommentLimit {
		t.Errorf("body of %d bytes, limit %d", len(body), CommentLimit)
	}
	if strings.Count(body, "```")%2 != 0 {
		t.Error("the cut left a code fence open")
	}
	if strings.Count(body, "<details>") != strings.Count(body, "</details>") {
		t.Error("the cut left a <details> open")
	}
	if !strings.HasSuffix(body, "The full report is the workflow artifact.\n") || !strings.HasPrefix(body, Marker) {
		t.Errorf("body ends with %q", body[len(body)-200:])
	}
}

// TestSchemaDoc checks the generated schema document on the project's
// migrations (whether docs/schema.md is current is make review's drift
// check).
func TestSchemaDoc(t *testing.T) {
	t.Parallel()
	doc, err := GenerateSchemaDoc(ctxT(t, time.Minute), pgtest.SharedServer(t), projectRoot(t), "db/migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"```mermaid\nerDiagram\n", "apps ||--o{ builds : \"app_id\"",
		"builds ||--o{ deployments : \"build_id, app_id\"", "deployments ||--o{ deployment_operations : \"deployment_id\"",
		"        bigint id PK\n", "        text name UK \"Lowercase DNS label", "        bigint app_id FK\n",
		"| index | deployments_one_in_progress_key | unique (app_id, environment) WHERE (status = 'in_progress'::text) |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the schema document lacks %q", want)
		}
	}
	if c := checkERD(t.TempDir(), doc); c.OK || !strings.Contains(c.Detail, "does not exist") {
		t.Errorf("checkERD without the file: %+v", c)
	}
	stale := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(filepath.Join(stale, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ERDPath), []byte(strings.Replace(doc, "bigint app_id FK", "bigint app_id", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := checkERD(stale, doc); c.OK || !strings.Contains(c.Detail, "bigint app_id FK") {
		t.Errorf("checkERD on a stale file: %+v", c)
	}
}

func TestMergeAtlas(t *testing.T) {
	t.Parallel()
	sql := "CREATE INDEX \"a_idx\" ON \"t\" (\"a\");\nALTER TABLE \"t\" DROP COLUMN \"b\";\n"
	f, err := parseMigration(sourceFile{Name: "1_x.sql", Data: []byte(sql)})
	if err != nil {
		t.Fatal(err)
	}
	ours := []Finding{{Section: "lint", Rule: "concurrent_index", file: "1_x.sql", stmt: 0, allow: true}}
	var res atlasLintResult
	if err := json.Unmarshal([]byte(`[{"Name": "1_x.sql", "Reports": [
		{"Text": "concurrent index violations detected", "Diagnostics": [{"Pos": 0, "Code": "PG101", "Text": "Creating index \"a_idx\" non-concurrently"}]},
		{"Text": "destructive changes detected", "Diagnostics": [{"Pos": 36, "Code": "DS103", "Text": "Dropping non-virtual column \"b\""}]}]},
		{"Name": "atlas.sum", "Error": "checksum mismatch"}]`), &res.Files); err != nil {
		t.Fatal(err)
	}
	got := mergeAtlas(ours, res, []*migrationFile{f}, "db/migrations", nil)
	if len(got) != 3 {
		t.Fatalf("findings:\n%s", findingsText(got))
	}
	if !reflect.DeepEqual(got[0].Codes, []string{"PG101"}) {
		t.Errorf("PG101 was not merged into deploydb's finding: %+v", got[0])
	}
	if d := got[1]; d.Rule != "destructive" || d.Where != "db/migrations/1_x.sql:2" || d.Fix != mustRule("destructive").Fix || !d.allow {
		t.Errorf("DS103: %+v", d)
	}
	if s := got[2]; s.Rule != "atlas" || !strings.Contains(s.Message, "checksum mismatch") || !s.IsError() {
		t.Errorf("atlas.sum: %+v", s)
	}
}

func TestMergeAtlasDefersToTheReplay(t *testing.T) {
	t.Parallel()
	f, err := parseMigration(sourceFile{Name: "1_x.sql", Data: []byte("CREATE INDEX CONCURRENTLY \"X\" ON \"t\" (\"a\");\n")})
	if err != nil {
		t.Fatal(err)
	}
	var res atlasLintResult
	if err := json.Unmarshal([]byte(`[{"Name": "1_x.sql", "Reports": [{"Diagnostics": [{"Pos": 0, "Code": "PG101", "Text": "Creating index"}]}]}]`), &res.Files); err != nil {
		t.Fatal(err)
	}
	got := mergeAtlas(nil, res, []*migrationFile{f}, "db/migrations", map[string]map[int]bool{"1_x.sql": {0: true}})
	if len(got) != 1 || got[0].IsError() || !got[0].Warning {
		t.Errorf("an Atlas diagnostic the replay contradicts should be a warning: %+v", got)
	}
	got = mergeAtlas(nil, res, []*migrationFile{f}, "db/migrations", nil)
	if len(got) != 1 || !got[0].IsError() {
		t.Errorf("an Atlas diagnostic on a statement the replay did not reach should be an error: %+v", got)
	}
}
