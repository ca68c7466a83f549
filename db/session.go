package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// applicationName is set on the migrator's connections unless the URL sets
// one, so that `migrate status` and pg_stat_activity can name the holder of
// the migration lock.
const applicationName = "deploydb migrate"

// session is the connection and directory state one migration command
// works with.
type session struct {
	cfg     migrateConfig
	connCfg *pgx.ConnConfig
	db      *sql.DB
	schema  string // the connection's current_schema(), where migrations go
	files   []migrate.File
	sums    migrate.HashFile
}

// openSession validates the migration directory and connects. The caller
// closes the session.
func openSession(ctx context.Context, databaseURL string, cfg migrateConfig) (*session, error) {
	files, sums, err := loadDir(cfg.dir)
	if err != nil {
		return nil, err
	}
	connCfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, urlError(err)
	}
	// pgxpool settings in the URL (pool_max_conns, ...) are not server
	// parameters; the application's URL can be used as it is.
	for k := range connCfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(connCfg.RuntimeParams, k)
		}
	}
	if _, ok := connCfg.RuntimeParams["application_name"]; !ok {
		connCfg.RuntimeParams["application_name"] = applicationName
	}
	setConnectTimeout(&connCfg.Config, databaseURL, cfg.connectTimeout)
	s := &session{cfg: cfg, connCfg: connCfg, db: openDB(connCfg), files: files, sums: sums}
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&s.schema); err != nil {
		s.db.Close()
		return nil, connectError(ctx, &connCfg.Config, err)
	}
	if s.schema == "" {
		s.db.Close()
		return nil, errors.New("db: the connection's search_path names no existing schema to migrate")
	}
	return s, nil
}

func openDB(cfg *pgx.ConnConfig) *sql.DB {
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(3)
	return sqlDB
}

func (s *session) close() { s.db.Close() }

// loadDir checks the directory against its atlas.sum and returns its files
// and sums.
func loadDir(dir migrate.Dir) ([]migrate.File, migrate.HashFile, error) {
	if err := migrate.Validate(dir); err != nil {
		var ce *migrate.ChecksumError
		switch {
		case errors.As(err, &ce):
			return nil, nil, &ChecksumError{Dir: true, Files: []string{fmt.Sprintf("%s (%s)", ce.File, ce.Reason)}}
		case errors.Is(err, migrate.ErrChecksumMismatch), errors.Is(err, migrate.ErrChecksumNotFound),
			errors.Is(err, migrate.ErrChecksumFormat):
			return nil, nil, &ChecksumError{Dir: true, Files: []string{"atlas.sum: " + err.Error()}}
		}
		return nil, nil, fmt.Errorf("db: read migration directory: %w", err)
	}
	files, err := dir.Files()
	if err != nil {
		return nil, nil, fmt.Errorf("db: read migration directory: %w", err)
	}
	sums, err := dir.Checksum()
	if err != nil {
		return nil, nil, fmt.Errorf("db: hash migration directory: %w", err)
	}
	return files, sums, nil
}

// file returns the directory's file with the given version.
func (s *session) file(version string) (migrate.File, bool) {
	for _, f := range s.files {
		if f.Version() == version {
			return f, true
		}
	}
	return nil, false
}

// checkVersion fails with a clear message when version names no file of
// the directory.
func (s *session) checkVersion(version string) error {
	if _, ok := s.file(version); ok {
		return nil
	}
	vs := make([]string, len(s.files))
	for i, f := range s.files {
		vs[i] = f.Version()
	}
	return fmt.Errorf("%w: no migration file has version %q (versions: %s)", ErrBadTarget, version, strings.Join(vs, ", "))
}

// revisionsExist reports whether the revisions table exists in the current
// schema.
func (s *session) revisionsExist(ctx context.Context, q queryer) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.atlas_schema_revisions') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("db: look for %s: %w", RevisionsTable, err)
	}
	return ok, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readRevisions returns the recorded revisions, none when the table does not
// exist.
func (s *session) readRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	ok, err := s.revisionsExist(ctx, s.db)
	if err != nil || !ok {
		return nil, err
	}
	revs, err := (&revisions{q: s.db, schema: s.schema}).ReadRevisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	return revs, nil
}

// checkApplied refuses a file that the database applied completely and
// whose content changed since. atlas.sum hashes are chained (each file's
// hash covers the files before it), so an edit changes the recorded hash of
// the edited file and of every later one: the first applied file whose hash
// differs is the one that changed. Partially applied files may change
// (that is how a failed file is fixed); the executor checks that their
// applied statements did not.
func (s *session) checkApplied(revs []*migrate.Revision) error {
	if name := s.firstModified(revs); name != "" {
		return &ChecksumError{Files: []string{name + " (edited after it was applied)"}}
	}
	return nil
}

// firstModified returns the name of the first completely applied file whose
// recorded hash differs from atlas.sum, "" when there is none.
func (s *session) firstModified(revs []*migrate.Revision) string {
	for _, r := range revs {
		f, ok := s.file(r.Version)
		if !ok || r.Hash == "" || r.Applied < r.Total || r.Type.Has(migrate.RevisionTypeBaseline) {
			continue
		}
		if h, err := s.sums.SumByName(f.Name()); err == nil && h != r.Hash {
			return f.Name()
		}
	}
	return ""
}

// pending returns the files Up would run, in order: the Atlas executor's
// notion of pending (files after the last revision, or the last revision's
// file when it is partially applied), cut at the target version.
func (s *session) pending(ctx context.Context, haveTable bool) ([]migrate.File, error) {
	drv, err := postgres.Open(s.db)
	if err != nil {
		return nil, fmt.Errorf("db: open migration driver: %w", err)
	}
	var rrw migrate.RevisionReadWriter = &revisions{q: s.db, schema: s.schema}
	if !haveTable {
		rrw = emptyRevisions{ident: &migrate.TableIdent{Name: RevisionsTable, Schema: s.schema}}
	}
	ex, err := migrate.NewExecutor(drv, s.cfg.dir, rrw, migrate.WithAllowDirty(true))
	if err != nil {
		return nil, err
	}
	files, err := ex.Pending(ctx)
	if errors.Is(err, migrate.ErrNoPendingFiles) {
		return nil, nil
	}
	var nl *migrate.HistoryNonLinearError
	if errors.As(err, &nl) {
		return nil, fmt.Errorf("db: %w: apply them in order, or give them versions after the last applied one", err)
	}
	if err != nil {
		return nil, fmt.Errorf("db: compute pending migrations: %w", err)
	}
	if s.cfg.target != "" {
		n := 0
		for _, f := range files {
			if f.Version() <= s.cfg.target {
				files[n] = f
				n++
			}
		}
		files = files[:n]
	}
	return files, nil
}

// emptyRevisions stands in for a revisions table that does not exist yet
// (dry runs do not create it).
type emptyRevisions struct {
	migrate.NopRevisionReadWriter
	ident *migrate.TableIdent
}

func (e emptyRevisions) Ident() *migrate.TableIdent { return e.ident }

// txMode returns the file's `-- atlas:txmode` directive: "file" (the
// default: one transaction for the file) or "none".
func txMode(f migrate.File) (string, error) {
	lf, ok := f.(*migrate.LocalFile)
	if !ok {
		return txModeFile, nil
	}
	ds := lf.Directive("txmode")
	switch {
	case len(ds) == 0:
		return txModeFile, nil
	case len(ds) > 1:
		return "", fmt.Errorf("db: %s: more than one atlas:txmode directive", f.Name())
	case ds[0] == txModeFile, ds[0] == txModeNone:
		return ds[0], nil
	default:
		return "", fmt.Errorf("db: %s: atlas:txmode %q is not supported (use none or file)", f.Name(), ds[0])
	}
}

const (
	txModeFile = "file"
	txModeNone = "none"
)

// statements returns the file's statements as the executor splits them
// (with PostgreSQL's rules: dollar quoting, BEGIN ATOMIC bodies).
func statements(f migrate.File) ([]string, error) {
	stmts, err := migrate.FileStmts(&postgres.Driver{}, f)
	if err != nil {
		return nil, fmt.Errorf("db: parse %s: %w", f.Name(), err)
	}
	return stmts, nil
}

// checkHistory fails, as the executor would, when a statement of a
// partially applied file that is already in effect has changed since: the
// revision keeps a running hash of the applied statements.
func checkHistory(f migrate.File, stmts []string, r *migrate.Revision) error {
	h := sha256.New()
	for i := 0; i < r.Applied; i++ {
		if i >= len(stmts) || i >= len(r.PartialHashes) {
			return migrate.HistoryChangedError{File: f.Name(), Stmt: i + 1}
		}
		h.Write([]byte(stmts[i]))
		if strings.TrimPrefix(r.PartialHashes[i], "h1:") != base64.StdEncoding.EncodeToString(h.Sum(nil)) {
			return migrate.HistoryChangedError{File: f.Name(), Stmt: i + 1}
		}
	}
	return nil
}

func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }
