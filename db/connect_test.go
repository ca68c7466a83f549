package db

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestSetConnectTimeout(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "")
	for _, tc := range []struct {
		url      string
		override time.Duration
		want     time.Duration
	}{
		{"postgres://u@localhost/d", 0, DefaultConnectTimeout},
		{"postgres://u@localhost/d?connect_timeout=5", 0, 5 * time.Second},
		{"postgres://u@localhost/d?sslmode=disable&connect_timeout=7", 0, 7 * time.Second},
		{"postgres://u@localhost/d?connect_timeout=0", 0, 0}, // explicit: pgx's "none"
		{"postgres://u@localhost/d?connect_timeout=5", 250 * time.Millisecond, 250 * time.Millisecond},
		{"postgres://u@localhost/d", 3 * time.Second, 3 * time.Second},
		{"host=localhost user=u connect_timeout = 9", 0, 9 * time.Second},
		{"host=localhost user=u application_name=no_connect_timeout", 0, DefaultConnectTimeout},
	} {
		cfg, err := pgx.ParseConfig(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		setConnectTimeout(&cfg.Config, tc.url, tc.override)
		if cfg.ConnectTimeout != tc.want {
			t.Errorf("%s (override %s): connect timeout %s, want %s", tc.url, tc.override, cfg.ConnectTimeout, tc.want)
		}
	}

	t.Setenv("PGCONNECT_TIMEOUT", "4")
	cfg, err := pgx.ParseConfig("postgres://u@localhost/d")
	if err != nil {
		t.Fatal(err)
	}
	setConnectTimeout(&cfg.Config, "postgres://u@localhost/d", 0)
	if cfg.ConnectTimeout != 4*time.Second {
		t.Errorf("PGCONNECT_TIMEOUT=4: connect timeout %s, want 4s", cfg.ConnectTimeout)
	}
}

// silentServer accepts TCP connections on the loopback interface and never
// answers them, like a server whose process hangs. It returns host:port.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestConnectTimeout points every entry point that connects at a server
// that never answers, with a short connect timeout: each returns
// ErrConnectTimeout naming the timeout, and never the password.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	url := "postgres://migrator:hunter2@" + silentServer(t) + "/app?sslmode=disable"
	opt := WithConnectTimeout(200 * time.Millisecond)
	// A generous deadline so that a regression fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	calls := map[string]func() error{
		"Up":       func() error { _, err := Up(ctx, url, opt); return err },
		"Migrate":  func() error { return Migrate(ctx, url, opt) },
		"Inspect":  func() error { _, err := Inspect(ctx, url, opt); return err },
		"Validate": func() error { _, err := Validate(ctx, url, opt); return err },
		"Down":     func() error { _, err := Down(ctx, url, opt); return err },
		"Baseline": func() error { _, err := Baseline(ctx, url, Versions()[0], opt); return err },
		"EnsureRoles": func() error {
			return EnsureRoles(ctx, url, Roles{Owner: "o_role", App: "a_role"}, opt)
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrConnectTimeout) || !strings.Contains(err.Error(), "200ms") ||
			strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s against a silent server: %v", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the calls ran into the test's own deadline")
	}

	// The URL's connect_timeout applies without the option.
	err := EnsureRoles(ctx, url+"&connect_timeout=1", Roles{Owner: "o_role", App: "a_role"})
	if !errors.Is(err, ErrConnectTimeout) || !strings.Contains(err.Error(), "1s") {
		t.Errorf("connect_timeout=1 in the URL: %v", err)
	}
	// The caller's own deadline is not reported as the connect timeout.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := Inspect(short, url); err == nil || errors.Is(err, ErrConnectTimeout) {
		t.Errorf("caller's deadline: %v", err)
	}
}
