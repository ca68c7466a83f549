package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool defaults used by PoolConfig. Every one can be overridden on the
// returned config (the root package exposes options for them).
const (
	DefaultMaxConns        = 10
	DefaultConnectTimeout  = 30 * time.Second
	DefaultMaxConnIdleTime = 10 * time.Minute
)

// PoolConfig parses databaseURL into a pgxpool configuration with deploydb's
// defaults: at most DefaultMaxConns connections, DefaultConnectTimeout to
// connect and DefaultMaxConnIdleTime before an idle connection is closed.
// Settings given in the URL itself (pool_max_conns, connect_timeout,
// pool_max_conn_idle_time) win over the defaults.
func PoolConfig(databaseURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, urlError(err)
	}
	if !hasParam(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if !hasParam(databaseURL, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if !hasParam(databaseURL, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	return cfg, nil
}

// NewPool connects a pool built by PoolConfig and checks that the server
// answers.
func NewPool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: connect to %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// hasParam reports whether a URL or keyword/value connection string sets
// the named parameter.
func hasParam(conn, name string) bool {
	return strings.Contains(conn, name+"=")
}

// ErrInvalidURL reports a database URL that cannot be parsed. The error
// deliberately carries neither the URL nor the parser's message, which can
// quote the URL and its password.
var ErrInvalidURL = errors.New("db: database URL cannot be parsed (expected postgres://user:password@host:port/dbname?sslmode=... or key=value pairs)")

func urlError(error) error { return ErrInvalidURL }
