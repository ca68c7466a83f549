package deploydb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestOpenDefaultsAndOptions(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	url := pgtest.URL(t)

	svc, err := deploydb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	cfg := svc.Pool().Config()
	if cfg.MaxConns != db.DefaultMaxConns || cfg.ConnConfig.ConnectTimeout != db.DefaultConnectTimeout || cfg.MaxConnIdleTime != db.DefaultMaxConnIdleTime {
		t.Errorf("defaults: max %d, connect %s, idle %s", cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, cfg.MaxConnIdleTime)
	}
	if _, err := svc.CreateApp(ctx, deploydb.CreateAppParams{Name: "opened"}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	if _, err := svc.GetAppByName(ctx, "opened"); err == nil {
		t.Error("Close did not close the pool Open created")
	}

	hooked := false
	svc, err = deploydb.Open(ctx, url, deploydb.WithMaxConns(3), deploydb.WithConnectTimeout(5*time.Second),
		deploydb.WithMaxConnIdleTime(time.Minute), deploydb.WithPoolConfig(func(c *pgxpool.Config) { hooked = true }))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	cfg = svc.Pool().Config()
	if cfg.MaxConns != 3 || cfg.ConnConfig.ConnectTimeout != 5*time.Second || cfg.MaxConnIdleTime != time.Minute || !hooked {
		t.Errorf("options not applied: max %d, connect %s, idle %s, hook %v", cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, cfg.MaxConnIdleTime, hooked)
	}

	// Settings in the URL win over the defaults.
	fromURL, err := db.PoolConfig(url + "&pool_max_conns=4")
	if err != nil || fromURL.MaxConns != 4 {
		t.Errorf("pool_max_conns in the URL: %v, %v", fromURL, err)
	}

	// New wraps a pool it does not own: Close leaves it open.
	pool := pgtest.Pool(t)
	wrapped := deploydb.New(pool)
	wrapped.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("New+Close closed the caller's pool: %v", err)
	}

	if _, err := deploydb.Open(ctx, "postgres://u:p@[::1/x"); !errors.Is(err, deploydb.ErrInvalidArgument) {
		t.Errorf("malformed URL: %v, want ErrInvalidArgument", err)
	}
}
