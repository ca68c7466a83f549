package db

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
)

// Kinds of statements the migrator refuses to run (Refusal.Kind). The
// schema review reports them under rules of the same names.
const (
	// RefusedTransactionControl is a statement that begins, ends or nests a
	// transaction, or changes the transaction's characteristics: BEGIN,
	// START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE,
	// ROLLBACK TO, SET TRANSACTION, SET SESSION CHARACTERISTICS, PREPARE
	// TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED, and SET or
	// set_config of transaction_isolation, transaction_read_only,
	// transaction_deferrable and their default_ forms.
	RefusedTransactionControl = "transaction_control"
	// RefusedTimeoutOff is a statement that switches off the lock_timeout
	// or statement_timeout a migration session runs with: SET, SET LOCAL,
	// SET SESSION or set_config of either to 0, to a value that rounds to
	// 0, to DEFAULT or to a value that cannot be checked; RESET of either,
	// RESET ALL, DISCARD ALL, an UPDATE of pg_settings naming either, and
	// the same inside a DO block (including EXECUTE of a string constant).
	RefusedTimeoutOff = "timeout_off"
)

// Refusal is a statement of a migration file that the migrator refuses to
// run. Up refuses every pending file before anything runs when one of them
// has a refusal; Validate reports the refusals of every file; the schema
// review fails on them.
type Refusal struct {
	File string `json:"file"`
	// Statement is the 1-based number of the statement in the file, as
	// the migrator splits it; Line is where it starts and Pos its byte
	// offset.
	Statement int    `json:"statement"`
	Line      int    `json:"line"`
	Pos       int    `json:"pos"`
	SQL       string `json:"sql"`
	// Kind is RefusedTransactionControl or RefusedTimeoutOff.
	Kind string `json:"kind"`
	// Summary says in a few words what the statement does ("BEGIN is
	// transaction control"); Reason adds why the migrator refuses it.
	Summary string `json:"summary"`
	Reason  string `json:"reason"`
}

// String says where the statement is, why it is refused and what it is.
func (r Refusal) String() string {
	return fmt.Sprintf("%s:%d: statement %d is refused: %s\n\t\tstatement: %s",
		r.File, r.Line, r.Statement, r.Reason, flatten(r.SQL))
}

// CheckFile returns the statements of a migration file that the migrator
// refuses to run, in file order, none when the file is fine. The file is
// split as the migrator splits it (Atlas's PostgreSQL statement scanner);
// each statement is then read token by token, so that comments, string
// literals, dollar-quoted bodies and quoted identifiers never match, and a
// multi-statement text the scanner kept together (a BEGIN … END group) is
// looked at statement by statement with psql's rule for routine bodies.
// It returns an error only when the file cannot be split.
func CheckFile(f migrate.File) ([]Refusal, error) {
	stmts, err := migrate.FileStmtDecls(&postgres.Driver{}, f)
	if err != nil {
		return nil, fmt.Errorf("db: parse %s: %w", f.Name(), err)
	}
	data := f.Bytes()
	var out []Refusal
	for i, st := range stmts {
		whats := map[string][]string{}
		for _, p := range checkSQL(st.Text, true) {
			whats[p.kind] = append(whats[p.kind], p.what)
		}
		for _, kind := range []string{RefusedTransactionControl, RefusedTimeoutOff} {
			if len(whats[kind]) == 0 {
				continue
			}
			pos := min(max(st.Pos, 0), len(data))
			out = append(out, Refusal{
				File: f.Name(), Statement: i + 1, Line: strings.Count(string(data[:pos]), "\n") + 1, Pos: st.Pos,
				SQL: strings.TrimSpace(st.Text), Kind: kind,
				Summary: summary(kind, dedupe(whats[kind])), Reason: reason(kind, dedupe(whats[kind])),
			})
		}
	}
	return out, nil
}

// checkFiles checks files as Up does before it runs any of them.
func checkFiles(files []migrate.File) ([]Refusal, error) {
	var out []Refusal
	for _, f := range files {
		rs, err := CheckFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func flatten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// problem is one thing a statement does that the migrator refuses: what
// it does, in a few words, and the kind.
type problem struct{ kind, what string }

// summary says what a statement with the given problems of one kind does.
func summary(kind string, whats []string) string {
	if kind == RefusedTransactionControl {
		verb := "is"
		if len(whats) > 1 {
			verb = "are"
		}
		return strings.Join(whats, ", ") + " " + verb + " transaction control"
	}
	return strings.Join(whats, "; ")
}

// reason says why a statement with the given problems of one kind is
// refused.
func reason(kind string, whats []string) string {
	if kind == RefusedTransactionControl {
		return summary(kind, whats) + ": the migrator runs each file in a transaction of its own (each " +
			"statement on its own with `-- atlas:txmode none`) and records the file there, so a file must not " +
			"begin, commit, roll back or nest a transaction, nor change its characteristics"
	}
	return summary(kind, whats) + ": migration sessions keep the migrator's lock_timeout and " +
		"statement_timeout, which stop a DDL statement that waits for its lock from stalling live traffic " +
		"(a larger positive value, e.g. SET LOCAL lock_timeout = '10s', is fine)"
}

// Settings the checks know. timeoutSettings are the ones every migration
// session sets (setTimeouts); txSettings are the setting forms of SET
// TRANSACTION and SET SESSION CHARACTERISTICS.
var (
	timeoutSettings = map[string]bool{"lock_timeout": true, "statement_timeout": true}
	txSettings      = map[string]bool{
		"transaction_isolation": true, "transaction_read_only": true, "transaction_deferrable": true,
		"default_transaction_isolation": true, "default_transaction_read_only": true,
		"default_transaction_deferrable": true,
	}
)

// checkSQL checks a statement text. With txControl false (what a DO block
// runs) only the timeouts are checked: PostgreSQL refuses transaction
// control there inside the migrator's transaction, and outside one (txmode
// none) it commits nothing of the migrator's.
func checkSQL(text string, txControl bool) []problem {
	var out []problem
	for _, st := range splitTokens(lexSQL(text)) {
		for _, p := range checkStmt(st) {
			if txControl || p.kind != RefusedTransactionControl {
				out = append(out, p)
			}
		}
	}
	return out
}

// checkStmt checks one statement's tokens.
func checkStmt(st []token) []problem {
	c := &checker{}
	w := func(i int) string { return wordAt(st, i) }
	switch w(0) {
	case "begin":
		c.txc("BEGIN")
	case "start":
		if w(1) == "transaction" {
			c.txc("START TRANSACTION")
		}
	case "commit", "end", "rollback", "abort", "savepoint", "release":
		what := strings.ToUpper(w(0))
		if w(1) == "prepared" || w(1) == "to" {
			what += " " + strings.ToUpper(w(1))
		}
		c.txc(what)
	case "prepare":
		if w(1) == "transaction" && len(st) > 2 && (st[2].kind == tokString || st[2].kind == tokDollar) {
			c.txc("PREPARE TRANSACTION")
		}
	case "set":
		c.set(st)
	case "reset":
		switch name := settingName(st, 1); {
		case name == "all" && st[1].kind == tokWord:
			c.off("RESET ALL resets lock_timeout and statement_timeout to the server's defaults (usually 0: no timeout)")
		case timeoutSettings[name]:
			c.off(fmt.Sprintf("RESET %s replaces the migrator's %s with the server's default (usually 0: no timeout)", name, name))
		case txSettings[name]:
			c.txc("RESET " + name)
		}
	case "discard":
		if w(1) == "all" {
			c.off("DISCARD ALL resets lock_timeout and statement_timeout to the server's defaults (usually 0: no timeout)")
		}
	case "do":
		c.out = append(c.out, checkDo(st)...)
	case "update":
		i := 1
		if w(i) == "only" {
			i++
		}
		if w(i) == "pg_catalog" && punctAt(st, i+1) == "." {
			i += 2
		}
		if w(i) == "pg_settings" {
			for _, t := range st {
				if name := strings.ToLower(strings.TrimSpace(t.text)); t.kind == tokString && timeoutSettings[name] {
					c.off(fmt.Sprintf("UPDATE pg_settings sets %s as SET does, to a value the migrator cannot check", name))
					break
				}
			}
		}
	}
	c.setConfig(st)
	return c.out
}

// checker collects the problems of one statement.
type checker struct{ out []problem }

func (c *checker) txc(what string) { c.out = append(c.out, problem{RefusedTransactionControl, what}) }
func (c *checker) off(what string) { c.out = append(c.out, problem{RefusedTimeoutOff, what}) }

// set checks a SET statement.
func (c *checker) set(st []token) {
	i := 1
	if w := wordAt(st, i); w == "local" || w == "session" {
		if w == "session" && wordAt(st, i+1) == "characteristics" {
			c.txc("SET SESSION CHARACTERISTICS")
			return
		}
		i++
	}
	if wordAt(st, i) == "transaction" {
		c.txc("SET TRANSACTION")
		return
	}
	name := settingName(st, i)
	switch {
	case txSettings[name]:
		c.txc("SET " + name)
		return
	case !timeoutSettings[name]:
		return
	}
	i++
	if w := wordAt(st, i); w == "to" || punctAt(st, i) == "=" {
		i++
	} else if w == "from" && wordAt(st, i+1) == "current" {
		return // keeps the value in effect
	}
	val := st[min(i, len(st)):]
	if len(val) == 1 && val[0].kind == tokWord && val[0].text == "default" {
		c.off(fmt.Sprintf("SET %s = DEFAULT replaces the migrator's %s with the server's default (usually 0: no timeout)", name, name))
		return
	}
	if why := disablesTimeout(constant(val)); why != "" {
		c.off(fmt.Sprintf("SET %s %s", name, why))
	}
}

// setConfig checks every set_config(...) call of a statement.
func (c *checker) setConfig(st []token) {
	for i, t := range st {
		if (t.kind != tokWord && t.kind != tokQuoted) || t.text != "set_config" || punctAt(st, i+1) != "(" {
			continue
		}
		args := callArgs(st, i+1)
		if len(args) < 1 || len(args[0]) != 1 || args[0][0].kind != tokString {
			continue // a name the check cannot see; the session check after each statement covers it
		}
		name := strings.ToLower(strings.TrimSpace(args[0][0].text))
		switch {
		case txSettings[name]:
			c.txc("set_config of " + name)
		case timeoutSettings[name]:
			var val []token
			if len(args) > 1 {
				val = args[1]
			}
			if why := disablesTimeout(constant(val)); why != "" {
				c.off(fmt.Sprintf("set_config of %s %s", name, why))
			}
		}
	}
}

// checkDo checks the body of a DO block written in PL/pgSQL for settings
// that switch the timeouts off: SET and RESET statements, set_config calls
// and EXECUTE of a string constant.
func checkDo(st []token) []problem {
	var body *token
	lang := "plpgsql"
	for i := 1; i < len(st); i++ {
		switch t := st[i]; {
		case t.kind == tokWord && t.text == "language" && i+1 < len(st):
			lang = strings.ToLower(st[i+1].text)
			i++
		case (t.kind == tokString || t.kind == tokDollar) && body == nil:
			body = &st[i]
		}
	}
	if body == nil || lang != "plpgsql" {
		return nil
	}
	return checkPLpgSQL(body.text)
}

// plStmtStart holds the tokens after which a PL/pgSQL statement starts.
var plStmtStart = map[string]bool{";": true, "begin": true, "then": true, "else": true, "loop": true}

func checkPLpgSQL(body string) []problem {
	toks := lexSQL(body)
	var out []problem
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		start := i == 0 || plStmtStart[toks[i-1].text] && toks[i-1].kind != tokString && toks[i-1].kind != tokDollar &&
			toks[i-1].kind != tokQuoted
		switch {
		case start && t.kind == tokWord && (t.text == "set" || t.text == "reset" || t.text == "discard"):
			j := i
			for j < len(toks) && !(toks[j].kind == tokPunct && toks[j].text == ";") {
				j++
			}
			for _, p := range checkStmt(toks[i:j]) {
				if p.kind == RefusedTimeoutOff {
					out = append(out, p)
				}
			}
		case t.kind == tokWord && t.text == "execute" && i+1 < len(toks) &&
			(toks[i+1].kind == tokString || toks[i+1].kind == tokDollar):
			out = append(out, checkSQL(toks[i+1].text, false)...)
		case t.kind == tokWord && t.text == "set_config":
			end := i + 1
			if punctAt(toks, end) == "(" {
				for depth := 0; end < len(toks); end++ {
					if p := punctAt(toks, end); p == "(" {
						depth++
					} else if p == ")" {
						if depth--; depth == 0 {
							break
						}
					}
				}
			}
			for _, p := range checkStmt(toks[i:min(end+1, len(toks))]) {
				if p.kind == RefusedTimeoutOff {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// callArgs returns the top-level arguments of the call whose opening
// parenthesis is at st[open].
func callArgs(st []token, open int) [][]token {
	var args [][]token
	start, depth := open+1, 0
	for i := open; i < len(st); i++ {
		switch punctAt(st, i) {
		case "(", "[":
			depth++
		case ")", "]":
			depth--
			if depth == 0 {
				return append(args, st[start:i])
			}
		case ",":
			if depth == 1 {
				args = append(args, st[start:i])
				start = i + 1
			}
		}
	}
	return append(args, st[min(start, len(st)):])
}

// constant returns the text of a value that is one constant (a number, a
// signed number or a string literal), or ok=false.
func constant(val []token) (text string, ok bool) {
	switch {
	case len(val) == 1 && (val[0].kind == tokNumber || val[0].kind == tokString || val[0].kind == tokDollar):
		return val[0].text, true
	case len(val) == 2 && val[0].kind == tokPunct && (val[0].text == "-" || val[0].text == "+") && val[1].kind == tokNumber:
		return val[0].text + val[1].text, true
	}
	return "", false
}

// durationRE is a value of an integer setting in milliseconds, as
// PostgreSQL reads it: a number, optionally fractional, and an optional
// unit.
var durationRE = regexp.MustCompile(`^\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-z]*)\s*$`)

var msPerUnit = map[string]float64{"": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}

// disablesTimeout says why a lock_timeout or statement_timeout value
// switches the timeout off, "" when it is a positive duration. PostgreSQL
// rounds a fractional number of milliseconds to the nearest integer (half
// to even), and 0 means no timeout.
func disablesTimeout(text string, ok bool) string {
	if !ok {
		return "to a value that is not a constant the migrator can check"
	}
	m := durationRE.FindStringSubmatch(text)
	if m == nil {
		return fmt.Sprintf("to %q, which is not a duration the migrator can check", text)
	}
	factor, known := msPerUnit[m[2]]
	if !known {
		return fmt.Sprintf("to %q, whose unit PostgreSQL does not accept", text)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return fmt.Sprintf("to %q, which is not a duration the migrator can check", text)
	}
	switch ms := math.RoundToEven(n * factor); {
	case ms == 0 && n == 0:
		return fmt.Sprintf("to %s, which switches it off", strings.TrimSpace(text))
	case ms == 0:
		return fmt.Sprintf("to %q, which rounds to 0 ms and switches it off", text)
	case ms < 0:
		return fmt.Sprintf("to %q, a negative duration", text)
	}
	return ""
}

// settingName returns the lower-cased setting name at st[i] (a word or a
// quoted identifier: PostgreSQL matches setting names case-insensitively),
// "" when there is none.
func settingName(st []token, i int) string {
	if i >= len(st) || (st[i].kind != tokWord && st[i].kind != tokQuoted) {
		return ""
	}
	if punctAt(st, i+1) == "." {
		return "" // a custom setting such as app.name
	}
	return strings.ToLower(st[i].text)
}

// wordAt returns the keyword or unquoted identifier at st[i] (lower-cased),
// "" when st[i] is anything else.
func wordAt(st []token, i int) string {
	if i < 0 || i >= len(st) || st[i].kind != tokWord {
		return ""
	}
	return st[i].text
}

func punctAt(st []token, i int) string {
	if i < 0 || i >= len(st) || st[i].kind != tokPunct {
		return ""
	}
	return st[i].text
}

// splitTokens splits a statement text's tokens into the statements
// PostgreSQL would run, at semicolons outside parentheses. Inside CREATE
// [OR REPLACE] FUNCTION or PROCEDURE, BEGIN (and CASE within it) opens and
// END closes a body whose semicolons do not end the statement: the rule
// psql applies to SQL-standard routine bodies (BEGIN ATOMIC … END), except
// that a qualified name (x.begin) is not a keyword.
func splitTokens(toks []token) [][]token {
	var out [][]token
	start, parens, depth := 0, 0, 0
	for i, t := range toks {
		st := toks[start:i]
		routine := wordAt(st, 0) == "create" && (wordAt(st, 1) == "function" || wordAt(st, 1) == "procedure" ||
			wordAt(st, 1) == "or" && wordAt(st, 2) == "replace" && (wordAt(st, 3) == "function" || wordAt(st, 3) == "procedure"))
		switch {
		case t.kind == tokPunct && t.text == "(":
			parens++
		case t.kind == tokPunct && t.text == ")":
			parens = max(parens-1, 0)
		case t.kind == tokWord && routine && parens == 0 && punctAt(toks, i-1) != ".":
			switch t.text {
			case "begin":
				depth++
			case "case":
				if depth > 0 {
					depth++
				}
			case "end":
				depth = max(depth-1, 0)
			}
		case t.kind == tokPunct && t.text == ";" && parens == 0 && depth == 0:
			if i > start {
				out = append(out, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

// Token kinds of lexSQL.
type tokKind int

const (
	tokWord   tokKind = iota // keyword or unquoted identifier, lower-cased
	tokQuoted                // "quoted identifier", unquoted
	tokString                // string constant, its value
	tokDollar                // dollar-quoted string constant, its body
	tokNumber                // numeric constant
	tokPunct                 // any other character, one per token
)

type token struct {
	kind tokKind
	text string
}

// lexSQL splits PostgreSQL SQL text into tokens, dropping whitespace and
// comments (-- to the end of the line, nested /* */). It never fails: what
// it cannot read (an unclosed quote) becomes the rest of the text as one
// constant, which PostgreSQL refuses anyway.
func lexSQL(s string) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlockComment(s, i)
		case c == '\'':
			v, n := quoted(s[i:], '\'', false)
			out = append(out, token{tokString, v})
			i += n
		case c == '"':
			v, n := quoted(s[i:], '"', false)
			out = append(out, token{tokQuoted, v})
			i += n
		case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			out = append(out, token{tokPunct, s[i:j]}) // a parameter, $1
			i = j
		case c == '$':
			if tag := dollarTag(s[i:]); tag != "" {
				body := s[i+len(tag):]
				end := strings.Index(body, tag)
				if end < 0 {
					end = len(body)
				}
				out = append(out, token{tokDollar, body[:end]})
				i += len(tag) + min(end+len(tag), len(body))
				continue
			}
			out = append(out, token{tokPunct, "$"})
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (isIdentByte(s[j]) || s[j] == '.' ||
				(s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			out = append(out, token{tokNumber, s[i:j]})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentByte(s[j]) || s[j] == '$') {
				j++
			}
			word := strings.ToLower(s[i:j])
			switch {
			case j < len(s) && s[j] == '\'' && (word == "e" || word == "b" || word == "x" || word == "n"):
				v, n := quoted(s[j:], '\'', word == "e")
				out = append(out, token{tokString, v})
				i = j + n
			case word == "u" && j+1 < len(s) && s[j] == '&' && (s[j+1] == '\'' || s[j+1] == '"'):
				kind := tokString
				if s[j+1] == '"' {
					kind = tokQuoted
				}
				v, n := quoted(s[j+1:], s[j+1], false)
				out = append(out, token{kind, v})
				i = j + 1 + n
			default:
				out = append(out, token{tokWord, word})
				i = j
			}
		default:
			out = append(out, token{tokPunct, string(c)})
			i++
		}
	}
	return out
}

// quoted reads a quoted string or identifier at the start of s (doubled
// quotes stand for one; with backslash, \ escapes the next byte) and
// returns its value and length.
func quoted(s string, q byte, backslash bool) (string, int) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case backslash && s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case s[i] == q:
			return b.String(), i + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), len(s)
}

func skipBlockComment(s string, i int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// dollarTag returns the opening tag ($$ or $name$) at the start of s, ""
// when s does not start with one.
func dollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1]
		case isIdentByte(c) && !(j == 1 && c >= '0' && c <= '9'):
		default:
			return ""
		}
	}
	return ""
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
