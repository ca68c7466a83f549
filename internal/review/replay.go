package review

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the Atlas inspector

	"github.com/deploydb/deploydb/internal/schematriggers"
)

// Server is where the review creates its scratch databases.
// *pgtest.Server implements it.
type Server interface {
	CreateDatabase(ctx context.Context, name, template string) (url string, err error)
	DropDatabase(ctx context.Context, name string) error
}

var scratchCounter atomic.Int64

// scratch creates an empty database (or a copy of template) and returns its
// name, URL and a function that drops it.
func scratch(ctx context.Context, srv Server, purpose, template string) (name, url string, drop func(), err error) {
	name = fmt.Sprintf("deploydb_review_%d_%d_%s", os.Getpid(), scratchCounter.Add(1), purpose)
	url, err = srv.CreateDatabase(ctx, name, template)
	if err != nil {
		return "", "", nil, err
	}
	return name, url, func() { _ = srv.DropDatabase(context.WithoutCancel(ctx), name) }, nil
}

// withParam adds a query parameter to a database URL.
func withParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return url + "&" + kv
	}
	return url + "?" + kv
}

// migrationFile is one parsed migration file.
type migrationFile struct {
	Name   string
	Data   []byte
	Stmts  []*migrate.Stmt
	NoTx   bool     // -- atlas:txmode none
	Allows []allow  // -- deploydb:allow lines
	Bad    []string // malformed directives
	// Triggers is the copy of schema_triggers.sql the file carries, nil
	// for none (or a malformed marker, which the drift check reports).
	Triggers *schematriggers.Carried
}

func parseMigration(f sourceFile) (*migrationFile, error) {
	lf := migrate.NewLocalFile(f.Name, f.Data)
	stmts, err := lf.StmtDecls()
	if err != nil {
		return nil, fmt.Errorf("%s: split statements: %w", f.Name, err)
	}
	m := &migrationFile{Name: f.Name, Data: f.Data, Stmts: stmts}
	mode := lf.Directive("txmode")
	m.NoTx = len(mode) == 1 && mode[0] == "none"
	m.Allows, m.Bad = parseAllows(string(f.Data))
	m.Triggers, _ = schematriggers.Parse(f.Name, f.Data)
	return m, nil
}

// line returns the 1-based line of a byte offset in the file.
func (m *migrationFile) line(pos int) int {
	if pos > len(m.Data) {
		pos = len(m.Data)
	}
	return strings.Count(string(m.Data[:pos]), "\n") + 1
}

// stmtAt returns the index of the statement that covers byte offset pos
// (the first statement that ends after it).
func (m *migrationFile) stmtAt(pos int) int {
	for i, s := range m.Stmts {
		if s.Pos+len(s.Text) > pos {
			return i
		}
	}
	return len(m.Stmts) - 1
}

// applyError is a statement that failed to apply.
type applyError struct {
	File string
	Line int
	Stmt string
	Err  error
}

func (e *applyError) Error() string {
	msg := e.Err.Error()
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		msg = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
}

func (e *applyError) Unwrap() error { return e.Err }

// stmtHook runs before and after each statement of a replayed file, on the
// connection or transaction the statement runs on.
type stmtHook interface {
	before(ctx context.Context, q execQuerier, f *migrationFile, i int) error
	after(ctx context.Context, q execQuerier, f *migrationFile, i int) error
}

// execQuerier is what both *sql.Conn and *sql.Tx offer.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// replay applies the files in order on conn as deploydb's migrator does:
// each file in one transaction, or statement by statement when it says
// `-- atlas:txmode none`. hook may be nil.
func replay(ctx context.Context, conn *sql.Conn, files []*migrationFile, hook stmtHook) error {
	for _, f := range files {
		if err := replayFile(ctx, conn, f, hook); err != nil {
			return err
		}
	}
	return nil
}

func replayFile(ctx context.Context, conn *sql.Conn, f *migrationFile, hook stmtHook) error {
	var q execQuerier = conn
	var tx *sql.Tx
	if !f.NoTx {
		var err error
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return err
		}
		q = tx
	}
	fail := func(err error) error {
		if tx != nil {
			_ = tx.Rollback()
		}
		return err
	}
	for i, s := range f.Stmts {
		if hook != nil {
			if err := hook.before(ctx, q, f, i); err != nil {
				return fail(err)
			}
		}
		if _, err := q.ExecContext(ctx, s.Text); err != nil {
			return fail(&applyError{File: f.Name, Line: f.line(s.Pos), Stmt: s.Text, Err: err})
		}
		if hook != nil {
			if err := hook.after(ctx, q, f, i); err != nil {
				return fail(err)
			}
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return &applyError{File: f.Name, Line: 1, Stmt: "COMMIT", Err: err}
		}
	}
	return nil
}

// inspectPublic returns the public schema as Atlas sees it.
func inspectPublic(ctx context.Context, q execQuerier) (*schema.Schema, error) {
	drv, err := postgres.Open(q)
	if err != nil {
		return nil, fmt.Errorf("atlas driver: %w", err)
	}
	s, err := drv.InspectSchema(ctx, "public", nil)
	if err != nil {
		return nil, fmt.Errorf("inspect schema: %w", err)
	}
	return s, nil
}

// diffSchemas returns the changes from one inspected schema to another.
func diffSchemas(ctx context.Context, q execQuerier, from, to *schema.Schema) ([]schema.Change, error) {
	drv, err := postgres.Open(q)
	if err != nil {
		return nil, fmt.Errorf("atlas driver: %w", err)
	}
	changes, err := drv.SchemaDiff(from, to)
	if err != nil {
		return nil, fmt.Errorf("diff schemas: %w", err)
	}
	return changes, nil
}

// openConn opens one database/sql connection to url.
func openConn(ctx context.Context, url string) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, conn, nil
}
