package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploydb/deploydb/internal/pgconf"
)

// ErrConnectTimeout is wrapped by the error of a call whose server did not
// complete the connection handshake within the connect timeout: a server
// that accepts the TCP connection and never answers, or a dropped SYN. The
// error also wraps pgx's connect error and names the host and the timeout,
// never the password.
var ErrConnectTimeout = errors.New("no answer within the connect timeout")

// WithConnectTimeout bounds every connection the migrator and EnsureRoles
// make (the migration session, the migration lock's connection, scratch
// databases, admin connections) to d per server address, overriding the
// URL's connect_timeout. Without it a connection gets the URL's
// connect_timeout (or PGCONNECT_TIMEOUT's), else DefaultConnectTimeout, the
// default of deploydb.Open. d must be positive.
func WithConnectTimeout(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.connectTimeout = d }
}

// setConnectTimeout applies the connect timeout to a configuration parsed
// from databaseURL: override when it is positive, else the URL's own
// setting, else DefaultConnectTimeout. An explicit connect_timeout=0 in the
// URL keeps pgx's meaning, no timeout.
func setConnectTimeout(cfg *pgconn.Config, databaseURL string, override time.Duration) {
	if override > 0 {
		cfg.ConnectTimeout = override
		return
	}
	pgconf.DefaultConnect(cfg, databaseURL)
}

// connectError wraps the error of a connection attempt to cfg's server. A
// handshake that ran out of the connect timeout (and not out of the
// caller's context) wraps ErrConnectTimeout as well.
func connectError(ctx context.Context, cfg *pgconn.Config, err error) error {
	if ctx.Err() == nil && cfg.ConnectTimeout > 0 && pgconn.Timeout(err) {
		return fmt.Errorf("db: connect to %s: %w (%s): %w", cfg.Host, ErrConnectTimeout, cfg.ConnectTimeout, err)
	}
	return fmt.Errorf("db: connect to %s: %w", cfg.Host, err)
}
