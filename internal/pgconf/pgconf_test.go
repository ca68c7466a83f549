package pgconf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPoolConfigDefaults(t *testing.T) {
	cases := []struct {
		name, url, env string
		conns          int32
		connect, idle  time.Duration
	}{
		{"defaults", "postgres://u@localhost/db", "", DefaultMaxConns, DefaultConnectTimeout, DefaultMaxConnIdleTime},
		{"url wins", "postgres://u@localhost/db?pool_max_conns=3&connect_timeout=7&pool_max_conn_idle_time=1m", "", 3, 7 * time.Second, time.Minute},
		{"keyword/value", "host=localhost user=u connect_timeout=4 pool_max_conns=2", "", 2, 4 * time.Second, DefaultMaxConnIdleTime},
		// PGCONNECT_TIMEOUT is the libpq way to set the connect timeout;
		// the default must not replace it.
		{"PGCONNECT_TIMEOUT", "postgres://u@localhost/db", "5", DefaultMaxConns, 5 * time.Second, DefaultMaxConnIdleTime},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", tc.env)
			cfg, err := PoolConfig(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxConns != tc.conns || cfg.ConnConfig.ConnectTimeout != tc.connect || cfg.MaxConnIdleTime != tc.idle {
				t.Errorf("got conns %d connect %v idle %v, want %d %v %v",
					cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, cfg.MaxConnIdleTime, tc.conns, tc.connect, tc.idle)
			}
		})
	}
}

func TestPoolConfigBadURLHidesPassword(t *testing.T) {
	_, err := PoolConfig("postgres://u:s3cret@[bad/db")
	if !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("err = %v, want ErrInvalidURL", err)
	}
	if got := err.Error(); len(got) == 0 || strings.Contains(got, "s3cret") {
		t.Errorf("error %q leaks the password", got)
	}
}
