package db

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/internal/pgconf"
)

// Pool defaults used by PoolConfig: the same as deploydb.Open's. Every one
// can be overridden on the returned config or in the URL.
const (
	DefaultMaxConns        = pgconf.DefaultMaxConns
	DefaultConnectTimeout  = pgconf.DefaultConnectTimeout
	DefaultMaxConnIdleTime = pgconf.DefaultMaxConnIdleTime
)

// PoolConfig parses databaseURL into a pgxpool configuration with deploydb's
// defaults: at most DefaultMaxConns connections, DefaultConnectTimeout to
// connect and DefaultMaxConnIdleTime before an idle connection is closed.
// Settings given in the URL itself (pool_max_conns, connect_timeout,
// pool_max_conn_idle_time) win over the defaults, and so does
// PGCONNECT_TIMEOUT for the connect timeout. It is the same parser
// deploydb.Open uses; a URL that does not parse returns ErrInvalidURL.
func PoolConfig(databaseURL string) (*pgxpool.Config, error) {
	return pgconf.PoolConfig(databaseURL)
}

// NewPool connects a pool built by PoolConfig and checks that the server
// answers.
func NewPool(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	return pgconf.NewPool(ctx, cfg)
}

// ErrInvalidURL reports a database URL that cannot be parsed. The error
// deliberately carries neither the URL nor the parser's message, which can
// quote the URL and its password.
var ErrInvalidURL = pgconf.ErrInvalidURL

func urlError(error) error { return ErrInvalidURL }
