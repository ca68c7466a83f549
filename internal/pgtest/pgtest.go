package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/db"
)

// Environment variables read by Start.
const (
	// EnvProvider selects the provider: "auto" (the default), "url",
	// "docker" or "local".
	EnvProvider = "DEPLOYDB_PG_PROVIDER"
	// EnvURL is the URL of an existing server on which the user may create
	// databases. It selects the url provider in auto mode.
	EnvURL = "TEST_DATABASE_URL"
	// EnvImage overrides the Docker image the docker provider runs.
	EnvImage = "DEPLOYDB_PG_IMAGE"
)

// DefaultImage is the Docker image the docker provider runs unless EnvImage
// names another one.
const DefaultImage = "postgres:15-alpine"

// Provider names, as returned by Server.Provider.
const (
	ProviderURL    = "url"
	ProviderDocker = "docker"
	ProviderLocal  = "local"
)

// maxIdentifierLen is PostgreSQL's NAMEDATALEN-1: longer names are silently
// truncated by the server, which would make the returned URLs wrong.
const maxIdentifierLen = 63

// sqlstateObjectInUse is "source database is being accessed by other users"
// and its relatives (object_in_use).
const sqlstateObjectInUse = "55006"

// localBinGlob is where the local provider looks for PostgreSQL when PATH
// lacks it (Debian and Ubuntu's layout). Tests point it elsewhere.
var localBinGlob = "/usr/lib/postgresql/*/bin"

// dockerAnswers reports whether a Docker engine answers; tests replace it.
var dockerAnswers = pingDocker

// ErrNoProvider is wrapped by the error Start returns when no provider can
// start a server. Its text says how to get one.
var ErrNoProvider = errors.New("pgtest: no PostgreSQL available for tests: " +
	"set " + EnvURL + " to a server where the user may CREATE DATABASE " +
	"(e.g. postgres://postgres:secret@localhost:5432/postgres), " +
	"or start a Docker engine, " +
	"or install the PostgreSQL server binaries (initdb, pg_ctl, postgres; Debian/Ubuntu: apt-get install postgresql)")

// Server is a running PostgreSQL server that tests and dev commands create
// databases on. Start returns one; its methods are safe for concurrent use.
type Server struct {
	provider string
	admin    string // URL of the maintenance database, with credentials
	desc     string // human-readable origin, no credentials
	pool     *pgxpool.Pool
	stop     func() error                                        // tears down what Start started; nil for url
	restart  func(ctx context.Context, down time.Duration) error // local provider only

	// migrate and checksum default to package db's; tests replace them.
	migrate  func(ctx context.Context, databaseURL string) error
	checksum func() string

	tplMu   sync.Mutex
	tplName string

	cloneMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Start starts (or, for the url provider, connects to) a PostgreSQL server
// and returns it. The provider is chosen by the DEPLOYDB_PG_PROVIDER
// environment variable: "url" uses TEST_DATABASE_URL, "docker" runs a
// container, "local" runs the installed PostgreSQL binaries, and "auto" (the
// default, also used when the variable is empty) tries url when
// TEST_DATABASE_URL is set, then docker when a Docker engine answers a quick
// ping, then local. The error wraps ErrNoProvider when nothing works.
//
// Start prints one line to standard error, once per process, naming the
// provider and address it started (never a password). The caller must Close
// the server.
func Start(ctx context.Context) (*Server, error) {
	mode := strings.ToLower(strings.TrimSpace(os.Getenv(EnvProvider)))
	var (
		s   *Server
		err error
	)
	switch mode {
	case ProviderURL:
		s, err = startURL(ctx)
	case ProviderDocker:
		s, err = startDocker(ctx)
	case ProviderLocal:
		s, err = startLocal(ctx)
	case "", "auto":
		s, err = startAuto(ctx)
	default:
		return nil, fmt.Errorf("pgtest: %s=%q: want auto, url, docker or local", EnvProvider, mode)
	}
	if err != nil {
		return nil, err
	}
	noteOnce.Do(func() { fmt.Fprintf(os.Stderr, "pgtest: using %s\n", s.desc) })
	return s, nil
}

var noteOnce sync.Once

// startAuto tries the providers in order and reports every failure when
// none works.
func startAuto(ctx context.Context) (*Server, error) {
	if os.Getenv(EnvURL) != "" {
		return startURL(ctx)
	}
	var errs []error
	if err := dockerAnswers(ctx); err == nil {
		s, err := startDocker(ctx)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		first, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintf(os.Stderr, "pgtest: auto: Docker answers but %s; trying local binaries\n",
			strings.TrimPrefix(first, "pgtest: docker provider: "))
	}
	if _, err := findLocalBins(); err == nil {
		s, err := startLocal(ctx)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, ErrNoProvider
	}
	return nil, fmt.Errorf("%w\nproviders that were tried:\n%w", ErrNoProvider, errors.Join(errs...))
}

// startURL connects to the server named by TEST_DATABASE_URL and checks
// that its user may create databases.
func startURL(ctx context.Context) (*Server, error) {
	raw := os.Getenv(EnvURL)
	if raw == "" {
		return nil, fmt.Errorf("%w (%s=url but %s is empty)", ErrNoProvider, EnvProvider, EnvURL)
	}
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		// The parse error may quote the URL; do not echo it.
		return nil, fmt.Errorf("pgtest: %s does not parse as a PostgreSQL URL or connection string", EnvURL)
	}
	s := newServer(ProviderURL, raw,
		fmt.Sprintf("%s (%s:%d, database %s)", EnvURL, cfg.Host, cfg.Port, cfg.Database), nil)
	if err := s.connect(ctx); err != nil {
		return nil, fmt.Errorf("pgtest: url provider: %w", err)
	}
	var may bool
	err = s.pool.QueryRow(ctx,
		`SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user`).Scan(&may)
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("pgtest: url provider: check privileges on %s: %w", s, err)
	}
	if !may {
		s.pool.Close()
		return nil, fmt.Errorf("pgtest: url provider: the user of %s may not CREATE DATABASE; "+
			"grant it with ALTER ROLE ... CREATEDB", s)
	}
	return s, nil
}

// newServer fills in a Server's fields; the caller connects it.
func newServer(provider, admin, desc string, stop func() error) *Server {
	return &Server{
		provider: provider,
		admin:    admin,
		desc:     desc,
		stop:     stop,
		migrate: func(ctx context.Context, databaseURL string) error {
			return db.Migrate(ctx, databaseURL)
		},
		checksum: db.Checksum,
	}
}

// connect opens the small pool on the maintenance database that all admin
// statements run on.
func (s *Server) connect(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(s.admin)
	if err != nil {
		return fmt.Errorf("parse admin URL of %s: %w", s, err)
	}
	cfg.MaxConns = 4
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("connect to %s: %w", s, err)
	}
	s.pool = pool
	return nil
}

// Provider returns the name of the provider that started the server:
// "url", "docker" or "local".
func (s *Server) Provider() string { return s.provider }

// AdminURL returns the URL of the server's maintenance database, including
// any password. Do not print it; String is the printable form.
func (s *Server) AdminURL() string { return s.admin }

// String describes the server with its admin URL's password redacted.
func (s *Server) String() string {
	return s.provider + " PostgreSQL at " + Redact(s.admin)
}

// Close tears down what Start started: the container for docker, the
// server process and its data directory for local, and only the admin
// connections for url. Databases created on a url server by clones that
// were not dropped stay there. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.pool != nil {
			s.pool.Close()
		}
		if s.stop != nil {
			s.closeErr = s.stop()
		}
	})
	return s.closeErr
}

// DatabaseURL returns the URL of the named database on the server, with the
// same user, password and options as the admin URL.
func (s *Server) DatabaseURL(name string) string {
	return withDatabase(s.admin, name)
}

// CreateDatabase creates the database name, copied from the database
// template when template is not empty (CREATE DATABASE ... TEMPLATE), and
// returns its URL. Copies from the same process are serialized, and a copy
// that finds the template in use by another session (SQLSTATE 55006) is
// retried for a few seconds.
func (s *Server) CreateDatabase(ctx context.Context, name, template string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template == "" {
		if _, err := s.pool.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
		}
		return s.DatabaseURL(name), nil
	}
	if err := checkName(template); err != nil {
		return "", err
	}
	stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()

	s.cloneMu.Lock()
	defer s.cloneMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	backoff := 20 * time.Millisecond
	for {
		_, err := s.pool.Exec(ctx, stmt)
		if err == nil {
			return s.DatabaseURL(name), nil
		}
		if !isSQLState(err, sqlstateObjectInUse) || time.Now().After(deadline) {
			return "", fmt.Errorf("pgtest: create database %s from template %s: %w", name, template, err)
		}
		if err := sleep(ctx, backoff); err != nil {
			return "", fmt.Errorf("pgtest: create database %s from template %s: %w", name, template, err)
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// DropDatabase drops the named database if it exists, disconnecting any
// sessions still using it (DROP DATABASE ... WITH (FORCE), PostgreSQL 13+).
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	stmt := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if _, err := s.pool.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// databaseExists reports whether the server has a database of that name.
func (s *Server) databaseExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok)
	return ok, err
}

func checkName(name string) error {
	if name == "" || len(name) > maxIdentifierLen {
		return fmt.Errorf("pgtest: database name %q must be 1 to %d bytes", name, maxIdentifierLen)
	}
	return nil
}

// cloneCounter makes clone names unique within a process; the PID and a
// random suffix make them unique across processes sharing a server.
var cloneCounter atomic.Uint64

// newDatabaseName returns a fresh database name with the given prefix.
func newDatabaseName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d_%s", prefix, os.Getpid(), cloneCounter.Add(1), randomHex(3))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}

func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withDatabase returns connString with its database replaced by name. Both
// URLs and keyword/value strings are understood.
func withDatabase(connString, name string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		u.RawPath = ""
		return u.String()
	}
	// In a keyword/value string the last setting of a keyword wins.
	quoted := strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `'`, `\'`)
	return strings.TrimSpace(connString) + " dbname='" + quoted + "'"
}

var passwordKV = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns connString with any password replaced by "xxxxx", for
// logs and error messages.
func Redact(connString string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	if strings.Contains(connString, "://") {
		// Not a URL that parses: show nothing that could be a secret.
		return "(unparsable URL)"
	}
	return passwordKV.ReplaceAllString(connString, "${1}xxxxx")
}
