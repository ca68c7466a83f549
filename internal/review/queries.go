package review

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Query is one sqlc query of queries/*.sql.
type Query struct {
	Name string // GetApp
	Kind string // :one, :many, :exec, :execrows, :copyfrom, …
	File string // apps.sql
	// Table is the table the file is named after (one file per table).
	Table string
	Line  int
	SQL   string // as written, without the -- name: line and the final semicolon
	// AllowScan is the reason given by a `-- deploydb:review-allow-scan`
	// comment: the query is meant to scan, and its plan is not flagged.
	AllowScan string
	// Params are the parameter names, in the order of $1, $2, …
	Params []string
	// Text is SQL with sqlc's macros and named parameters replaced by
	// PostgreSQL placeholders, ready to PREPARE or EXPLAIN.
	Text string
	// Limit is the LIMIT of the outermost statement: a parameter name or a
	// number ("" when there is none).
	Limit string
	// Err is set when the query could not be translated.
	Err error

	tables map[string]bool // tables after FROM, JOIN, UPDATE, INTO
	star   bool            // reads every column (SELECT *, RETURNING *, sqlc.embed)
	words  map[string]bool // identifiers
}

var nameLineRE = regexp.MustCompile(`^--\s*name:\s*(\S+)\s+(:\S+)`)

const allowScanDirective = "deploydb:review-allow-scan"

// ParseQueries splits one queries/<table>.sql file into its queries, each
// translated for PREPARE (Text and Params). The benchmark runs the project's
// statements through it.
func ParseQueries(file string, data []byte) []*Query { return parseQueries(file, data) }

// parseQueries splits one queries/<table>.sql file into its queries.
func parseQueries(file string, data []byte) []*Query {
	var out []*Query
	var cur *Query
	var body []string
	flush := func() {
		if cur == nil {
			return
		}
		sql := strings.TrimSpace(strings.Join(body, "\n"))
		sql = strings.TrimSpace(strings.TrimSuffix(sql, ";"))
		cur.SQL = sql
		cur.translate()
		out = append(out, cur)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if m := nameLineRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			flush()
			cur = &Query{Name: m[1], Kind: m[2], File: file, Table: strings.TrimSuffix(file, ".sql"), Line: i + 1}
			body = nil
			continue
		}
		if cur == nil {
			continue
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "--") {
			c := strings.TrimSpace(strings.TrimPrefix(t, "--"))
			if rest, ok := strings.CutPrefix(c, allowScanDirective); ok {
				cur.AllowScan = strings.TrimSpace(rest)
				if cur.AllowScan == "" {
					cur.Err = fmt.Errorf("`-- %s` needs a reason", allowScanDirective)
				}
			}
		}
		body = append(body, line)
	}
	flush()
	return out
}

// token is one lexical token of a query.
type token struct {
	kind       byte // 'i' identifier, 'q' quoted identifier, 's' string, 'n' number, 'p' @param, 'o' operator/punctuation, 'c' comment
	text       string
	start, end int
}

// lex splits SQL into tokens; whitespace is dropped.
func lex(sql string) []token {
	var toks []token
	i := 0
	for i < len(sql) {
		c := sql[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			toks = append(toks, token{'c', sql[start:i], start, i})
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += end + 4
			}
			toks = append(toks, token{'c', sql[start:i], start, i})
		case c == '\'':
			i++
			for i < len(sql) {
				if sql[i] == '\'' {
					if i+1 < len(sql) && sql[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			toks = append(toks, token{'s', sql[start:i], start, i})
		case c == '"':
			i++
			for i < len(sql) {
				if sql[i] == '"' {
					if i+1 < len(sql) && sql[i+1] == '"' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			toks = append(toks, token{'q', sql[start:i], start, i})
		case c == '$' && i+1 < len(sql) && (isIdentStart(sql[i+1]) || sql[i+1] == '$'):
			// Dollar-quoted string.
			j := strings.IndexByte(sql[i+1:], '$')
			if j < 0 {
				i = len(sql)
				toks = append(toks, token{'o', sql[start:i], start, i})
				continue
			}
			tag := sql[i : i+j+2]
			end := strings.Index(sql[i+len(tag):], tag)
			if end < 0 {
				i = len(sql)
			} else {
				i += len(tag) + end + len(tag)
			}
			toks = append(toks, token{'s', sql[start:i], start, i})
		case c == '@' && i+1 < len(sql) && isIdentStart(sql[i+1]):
			i++
			for i < len(sql) && isIdentPart(sql[i]) {
				i++
			}
			toks = append(toks, token{'p', sql[start+1 : i], start, i})
		case isIdentStart(c):
			for i < len(sql) && isIdentPart(sql[i]) {
				i++
			}
			toks = append(toks, token{'i', sql[start:i], start, i})
		case c >= '0' && c <= '9':
			for i < len(sql) && (sql[i] >= '0' && sql[i] <= '9' || sql[i] == '.') {
				i++
			}
			toks = append(toks, token{'n', sql[start:i], start, i})
		case c == ':' && i+1 < len(sql) && sql[i+1] == ':':
			i += 2
			toks = append(toks, token{'o', "::", start, i})
		default:
			i++
			toks = append(toks, token{'o', sql[start:i], start, i})
		}
	}
	return toks
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// identName returns an identifier token as PostgreSQL stores it.
func identName(t token) string {
	if t.kind == 'q' {
		return unquote(t.text)
	}
	return strings.ToLower(t.text)
}

// translate fills Params, Text, Limit and the usage fields from SQL.
func (q *Query) translate() {
	all := lex(q.SQL)
	var toks []token // without comments
	for _, t := range all {
		if t.kind != 'c' {
			toks = append(toks, t)
		}
	}
	index := map[string]int{}
	param := func(name string) string {
		n, ok := index[name]
		if !ok {
			q.Params = append(q.Params, name)
			n = len(q.Params)
			index[name] = n
		}
		return "$" + strconv.Itoa(n)
	}
	var b strings.Builder
	last := 0
	emit := func(t token, repl string) {
		b.WriteString(q.SQL[last:t.start])
		b.WriteString(repl)
		last = t.end
	}
	q.tables, q.words = map[string]bool{}, map[string]bool{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == 'p':
			emit(t, param(t.text))
			continue
		case t.kind == 'i' && strings.EqualFold(t.text, "sqlc") && i+5 < len(toks) && toks[i+1].text == "." &&
			toks[i+3].text == "(" && toks[i+5].text == ")":
			arg := toks[i+4].text
			if toks[i+4].kind == 's' {
				arg = strings.Trim(arg, "'")
			} else {
				arg = identName(toks[i+4])
			}
			end := toks[i+5]
			var repl string
			switch fn := strings.ToLower(toks[i+2].text); fn {
			case "arg", "narg":
				repl = param(arg)
			case "embed":
				repl = pgQuoteIdent(arg) + ".*"
				q.star = true
			default:
				if q.Err == nil {
					q.Err = fmt.Errorf("sqlc.%s is not supported by the review", fn)
				}
				repl = "NULL"
			}
			b.WriteString(q.SQL[last:t.start])
			b.WriteString(repl)
			last = end.end
			i += 5
			continue
		}
		if t.kind == 'i' || t.kind == 'q' {
			q.words[identName(t)] = true
		}
		if t.kind == 'o' && t.text == "*" && i > 0 {
			switch p := toks[i-1]; {
			case p.text == "," || p.text == ".",
				p.kind == 'i' && (strings.EqualFold(p.text, "select") || strings.EqualFold(p.text, "returning") ||
					strings.EqualFold(p.text, "distinct")):
				q.star = true
			}
		}
		if t.kind == 'i' {
			switch strings.ToUpper(t.text) {
			case "FROM", "JOIN", "UPDATE", "INTO":
				j := i + 1
				if j < len(toks) && strings.EqualFold(toks[j].text, "only") {
					j++
				}
				if j < len(toks) && (toks[j].kind == 'i' || toks[j].kind == 'q') {
					name := identName(toks[j])
					if j+2 < len(toks) && toks[j+1].text == "." {
						name = identName(toks[j+2])
						j += 2
					}
					if j+1 >= len(toks) || toks[j+1].text != "(" {
						q.tables[name] = true
					}
				}
			}
		}
	}
	b.WriteString(q.SQL[last:])
	q.Text = b.String()
	q.Limit = outerLimit(toks)
}

// outerLimit returns the argument of the LIMIT at parenthesis depth 0.
func outerLimit(toks []token) string {
	depth, limit := 0, ""
	for i, t := range toks {
		switch {
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
		case depth == 0 && t.kind == 'i' && strings.EqualFold(t.text, "limit") && i+1 < len(toks):
			switch n := toks[i+1]; n.kind {
			case 'p', 'n':
				limit = n.text
			case 'i':
				if strings.EqualFold(n.text, "sqlc") && i+5 < len(toks) {
					limit = strings.Trim(toks[i+5].text, "'")
				}
			}
		}
	}
	return limit
}

var plainIdentRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func pgQuoteIdent(s string) string {
	if plainIdentRE.MatchString(s) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// queryUsage answers which queries of a release use a table or column.
type queryUsage struct{ queries []*Query }

func (u *queryUsage) tableUsers(table string) []string {
	if u == nil {
		return nil
	}
	var names []string
	for _, q := range u.queries {
		if q.tables[table] {
			names = append(names, q.Name)
		}
	}
	return names
}

// columnUsers returns the queries that reference the table and either
// name the column or read every column (*, sqlc.embed).
func (u *queryUsage) columnUsers(table, column string) []string {
	if u == nil {
		return nil
	}
	var names []string
	for _, q := range u.queries {
		if !q.tables[table] {
			continue
		}
		switch {
		case q.words[column]:
			names = append(names, q.Name)
		case q.star:
			names = append(names, q.Name+" (*)")
		}
	}
	return names
}
