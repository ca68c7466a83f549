// Package pgconf holds deploydb's connection-pool defaults and the one
// place that parses a database URL into a pgxpool configuration with them.
// The root package (deploydb.Open) and the migrator (package db) both use
// it, so the service and the CD binary connect the same way. It depends on
// pgx only.
package pgconf

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool defaults applied by PoolConfig unless the URL (or, for the connect
// timeout, the PGCONNECT_TIMEOUT environment variable) sets them.
const (
	DefaultMaxConns        = 10
	DefaultConnectTimeout  = 30 * time.Second
	DefaultMaxConnIdleTime = 10 * time.Minute
)

// ErrInvalidURL reports a database URL that cannot be parsed. The error
// deliberately carries neither the URL nor the parser's message, which can
// quote the URL and its password.
var ErrInvalidURL = errors.New("database URL cannot be parsed (expected postgres://user:password@host:port/dbname?sslmode=... or key=value pairs)")

// PoolConfig parses databaseURL into a pgxpool configuration with deploydb's
// defaults: at most DefaultMaxConns connections, DefaultConnectTimeout to
// connect and DefaultMaxConnIdleTime before an idle connection is closed.
// Settings given in the URL itself (pool_max_conns, connect_timeout,
// pool_max_conn_idle_time) win over the defaults, and so does the
// PGCONNECT_TIMEOUT environment variable for the connect timeout. A parse
// failure returns ErrInvalidURL.
func PoolConfig(databaseURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, ErrInvalidURL
	}
	if !hasParam(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	DefaultConnect(&cfg.ConnConfig.Config, databaseURL)
	if !hasParam(databaseURL, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	return cfg, nil
}

// connectTimeoutParam matches a connect_timeout setting in a URL or in a
// keyword/value connection string.
var connectTimeoutParam = regexp.MustCompile(`(^|[?&\s])connect_timeout\s*=`)

// DefaultConnect gives a configuration parsed from databaseURL the default
// connect timeout, DefaultConnectTimeout, unless the URL or
// PGCONNECT_TIMEOUT set one. An explicit connect_timeout=0 keeps pgx's
// meaning, no timeout. Every connection deploydb makes (Open's pool and
// the migrator's sessions) goes through it.
func DefaultConnect(cfg *pgconn.Config, databaseURL string) {
	if cfg.ConnectTimeout == 0 && !connectTimeoutParam.MatchString(databaseURL) {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
}

// NewPool connects a pool built by PoolConfig and checks that the server
// answers. The error names the host, never the password.
func NewPool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// hasParam reports whether a URL or keyword/value connection string sets
// the named parameter.
func hasParam(conn, name string) bool {
	return strings.Contains(conn, name+"=")
}
