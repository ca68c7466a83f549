package review

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// scanTables are the tables on which a sequential scan fails the review:
// the ones that grow with every build and deployment.
var scanTables = map[string]bool{"builds": true, "deployments": true, "deployment_operations": true}

// Buffer budget of one execution: bufferBase plus bufferPerRow for every
// row of the page. An index range scan of a page reads a few index pages
// and at most one heap page per row; a scan that walks an app's history, or
// a table, reads far more.
const (
	bufferBase   = 100
	bufferPerRow = 10
)

// planNode is the part of an EXPLAIN (FORMAT JSON) node the review reads.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	Operation    string     `json:"Operation"`
	Relation     string     `json:"Relation Name"`
	Alias        string     `json:"Alias"`
	IndexName    string     `json:"Index Name"`
	ScanDir      string     `json:"Scan Direction"`
	IndexCond    string     `json:"Index Cond"`
	RecheckCond  string     `json:"Recheck Cond"`
	Filter       string     `json:"Filter"`
	JoinFilter   string     `json:"Join Filter"`
	SortKey      []string   `json:"Sort Key"`
	ParentRel    string     `json:"Parent Relationship"`
	SubplanName  string     `json:"Subplan Name"`
	ParallelAw   bool       `json:"Parallel Aware"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	RemovedByF   float64    `json:"Rows Removed by Filter"`
	SharedHit    int64      `json:"Shared Hit Blocks"`
	SharedRead   int64      `json:"Shared Read Blocks"`
	SharedDirty  int64      `json:"Shared Dirtied Blocks"`
	TempRead     int64      `json:"Temp Read Blocks"`
	TotalTime    float64    `json:"Actual Total Time"`
	Plans        []planNode `json:"Plans"`
	SortMethod   string     `json:"Sort Method"`
	SortSpaceKB  int64      `json:"Sort Space Used"`
	CTEName      string     `json:"CTE Name"`
	FunctionName string     `json:"Function Name"`
}

type explainJSON struct {
	Plan          planNode  `json:"Plan"`
	PlanningTime  float64   `json:"Planning Time"`
	ExecutionTime float64   `json:"Execution Time"`
	Triggers      []trigger `json:"Triggers"`
}

type trigger struct {
	Name       string  `json:"Trigger Name"`
	Constraint string  `json:"Constraint Name"`
	Relation   string  `json:"Relation"`
	Time       float64 `json:"Time"`
	Calls      float64 `json:"Calls"`
}

// paramUse is one parameter value of an explained query.
type paramUse struct {
	Name string
	value
}

// PlanResult is one query of section 4.
type PlanResult struct {
	Query   *Query
	Params  []paramUse
	Skipped string // why the query was not explained
	Err     string // why explaining failed

	Shape        string // the plan in one line
	Tree         string // the plan, indented
	Rows         int64  // rows returned (or changed, for a statement without RETURNING)
	Page         int64  // the page the flags compare with
	Hit, Read    int64
	ExecMS       float64
	PlanMS       float64
	Problems     []planProblem
	IndexesUsed  []string
	ScannedTable []string
}

type planProblem struct {
	Rule, Text string
}

// Buffers returns the shared buffers the execution touched.
func (r PlanResult) Buffers() int64 { return r.Hit + r.Read }

// Budget returns the buffer budget of the query's page.
func (r PlanResult) Budget() int64 { return bufferBase + bufferPerRow*r.Page }

// explainQueries explains every query on the seeded database.
func explainQueries(ctx context.Context, conn *pgx.Conn, s *sample, queries []*Query) []PlanResult {
	var out []PlanResult
	for _, q := range queries {
		out = append(out, explainQuery(ctx, conn, s, q))
	}
	return out
}

func explainQuery(ctx context.Context, conn *pgx.Conn, s *sample, q *Query) PlanResult {
	r := PlanResult{Query: q}
	if q.Kind == ":copyfrom" {
		r.Skipped = "`:copyfrom` runs as COPY FROM STDIN, which EXPLAIN cannot show; its rows go through the same " +
			"CHECKs and indexes as an INSERT"
		return r
	}
	if strings.HasPrefix(q.Kind, ":batch") {
		r.Skipped = "batch queries are sent in a pipeline; explain the statement by hand"
		return r
	}
	if q.Err != nil {
		r.Err = q.Err.Error()
		return r
	}
	desc, err := conn.PgConn().Prepare(ctx, "", q.Text, nil)
	if err != nil {
		r.Err = "prepare: " + pgMessage(err)
		return r
	}
	args := make([]any, len(q.Params))
	for i, p := range q.Params {
		var oid uint32
		if i < len(desc.ParamOIDs) {
			oid = desc.ParamOIDs[i]
		}
		v, err := paramValue(s, q, p, oid)
		if err != nil {
			r.Err = err.Error()
			return r
		}
		r.Params = append(r.Params, paramUse{Name: p, value: v})
		args[i] = v.V
	}

	raw, err := explainInTx(ctx, conn, q.Text, args)
	if err != nil {
		r.Err = "explain: " + pgMessage(err)
		return r
	}
	var res []explainJSON
	if err := json.Unmarshal(raw, &res); err != nil || len(res) != 1 {
		r.Err = fmt.Sprintf("decode plan: %v", err)
		return r
	}
	e := res[0]
	r.ExecMS, r.PlanMS = e.ExecutionTime, e.PlanningTime
	r.Hit, r.Read = e.Plan.SharedHit, e.Plan.SharedRead
	r.Rows = int64(e.Plan.ActualRows)
	if e.Plan.NodeType == "ModifyTable" && r.Rows == 0 && len(e.Plan.Plans) > 0 {
		r.Rows = int64(e.Plan.Plans[0].ActualRows)
	}
	r.Page = pageOf(q, r)
	r.Shape = shape(e.Plan)
	var tree strings.Builder
	writeTree(&tree, e.Plan, 0)
	for _, t := range e.Triggers {
		name := t.Name
		if t.Constraint != "" {
			name = "for constraint " + t.Constraint
		}
		fmt.Fprintf(&tree, "Trigger %s on %s: %d calls, %.3f ms\n", name, t.Relation, int64(t.Calls), t.Time)
	}
	r.Tree = tree.String()
	r.Problems = problems(e.Plan, r)
	walk(e.Plan, func(n planNode) {
		if n.IndexName != "" {
			r.IndexesUsed = appendUnique(r.IndexesUsed, n.IndexName)
		}
	})
	return r
}

// explainInTx runs EXPLAIN (ANALYZE, BUFFERS) of the statement with its
// arguments bound (the plan PostgreSQL makes for these values) in a
// transaction that is rolled back, so mutating queries change nothing.
func explainInTx(ctx context.Context, conn *pgx.Conn, sql string, args []any) (raw []byte, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '60s'"); err != nil {
		return nil, err
	}
	err = tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)\n"+sql, args...).Scan(&raw)
	return raw, err
}

func pgMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "ERROR: ")
}

// pageOf returns the page size the flags compare with: the LIMIT (its
// parameter's value), else 1 for :one queries, else the rows returned.
func pageOf(q *Query, r PlanResult) int64 {
	if q.Limit != "" {
		if n, err := strconv.ParseInt(q.Limit, 10, 64); err == nil {
			return max(n, 1)
		}
		for _, p := range r.Params {
			if p.Name == q.Limit {
				if n, ok := p.V.(int64); ok {
					return max(n, 1)
				}
			}
		}
	}
	if q.Kind == ":one" {
		return 1
	}
	return max(r.Rows, 1)
}

func walk(n planNode, f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		walk(c, f)
	}
}

// problems lists what fails a plan: a sequential scan of a big table, a
// sort of more rows than the page (or than the statement locks: a write
// that locks rows in a fixed order, to keep one lock order, sorts what it
// must lock anyway), more buffers than the page's budget.
func problems(root planNode, r PlanResult) []planProblem {
	var out []planProblem
	var locked float64
	walk(root, func(n planNode) {
		if n.NodeType == "LockRows" {
			locked = max(locked, n.ActualRows*loops(n))
		}
	})
	walk(root, func(n planNode) {
		switch n.NodeType {
		case "Seq Scan":
			if scanTables[n.Relation] {
				out = append(out, planProblem{"seq_scan", fmt.Sprintf("Seq Scan on %s (%s rows read, %s filtered out)",
					n.Relation, num(n.ActualRows*loops(n)+n.RemovedByF*loops(n)), num(n.RemovedByF*loops(n)))})
			}
		case "Sort", "Incremental Sort":
			var in float64
			for _, c := range n.Plans {
				in += c.ActualRows * loops(c)
			}
			if int64(in) > max(r.Page, int64(locked)) {
				out = append(out, planProblem{"sort", fmt.Sprintf("%s of %s rows (key %s) for a page of %d",
					n.NodeType, num(in), strings.Join(n.SortKey, ", "), r.Page)})
			}
		}
	})
	if b := r.Buffers(); b > r.Budget() {
		out = append(out, planProblem{"buffers", fmt.Sprintf("%d buffers for a page of %d (budget %d)", b, r.Page, r.Budget())})
	}
	return out
}

func loops(n planNode) float64 { return max(n.ActualLoops, 1) }

// num formats a row count.
func num(f float64) string {
	n := int64(f)
	s := strconv.FormatInt(n, 10)
	if n < 10_000 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// label names a plan node the way EXPLAIN's text format does.
func label(n planNode) string {
	s := n.NodeType
	if n.ParallelAw {
		s = "Parallel " + s
	}
	if n.NodeType == "ModifyTable" && n.Operation != "" {
		s = n.Operation
	}
	if n.ScanDir == "Backward" {
		s += " Backward"
	}
	if n.IndexName != "" {
		s += " using " + n.IndexName
	}
	if n.Relation != "" {
		s += " on " + n.Relation
		if n.Alias != "" && n.Alias != n.Relation {
			s += " " + n.Alias
		}
	}
	if n.FunctionName != "" {
		s += " on " + n.FunctionName
	}
	if n.CTEName != "" {
		s += " on " + n.CTEName
	}
	return s
}

// shape is the plan in one line: the nodes that read tables, in order,
// under the top node.
func shape(root planNode) string {
	var scans []string
	walk(root, func(n planNode) {
		if n.Relation != "" && n.NodeType != "ModifyTable" {
			scans = append(scans, label(n))
		}
	})
	top := label(root)
	if len(scans) == 0 {
		return top
	}
	if len(scans) == 1 && scans[0] == top {
		return top
	}
	return top + " → " + strings.Join(scans, ", ")
}

// writeTree writes the plan as indented text with actual rows, loops and
// buffers.
func writeTree(b *strings.Builder, n planNode, depth int) {
	ind := strings.Repeat("  ", depth)
	arrow := ""
	if depth > 0 {
		arrow = "-> "
	}
	name := label(n)
	if n.SubplanName != "" {
		name = n.SubplanName + ": " + name
	}
	fmt.Fprintf(b, "%s%s%s  (rows=%s loops=%d, %.3f ms, buffers hit=%d read=%d)\n", ind, arrow, name,
		num(n.ActualRows), int64(loops(n)), n.TotalTime, n.SharedHit, n.SharedRead)
	detail := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "%s     %s: %s\n", ind, k, v)
		}
	}
	detail("Index Cond", n.IndexCond)
	detail("Recheck Cond", n.RecheckCond)
	detail("Filter", n.Filter)
	detail("Join Filter", n.JoinFilter)
	if n.RemovedByF > 0 {
		detail("Rows Removed by Filter", num(n.RemovedByF))
	}
	if len(n.SortKey) > 0 {
		detail("Sort Key", strings.Join(n.SortKey, ", "))
	}
	if n.SortMethod != "" {
		detail("Sort Method", fmt.Sprintf("%s, %d kB", n.SortMethod, n.SortSpaceKB))
	}
	for _, c := range n.Plans {
		writeTree(b, c, depth+1)
	}
}
