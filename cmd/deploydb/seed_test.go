package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestSeedCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t) // seed migrates it first
	args := []string{"--url", url, "--apps", "10", "--builds", "3000", "--deployments", "2000", "--operations", "300", "--seed", "42"}
	var out, errOut bytes.Buffer
	if err := runSeed(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("seed: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "seeded 10 apps, 3,000 builds, 2,000 deployments, 300 operations (seed 42)") ||
		!strings.Contains(out.String(), "rows/s") {
		t.Fatalf("summary:\n%s", out.String())
	}
	// Not a terminal: plain progress lines, no carriage returns.
	if !strings.Contains(errOut.String(), "deploydb: seed: done") || strings.Contains(errOut.String(), "\r") {
		t.Fatalf("progress:\n%q", errOut.String())
	}

	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func() (n int64) {
		t.Helper()
		if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM apps) + (SELECT count(*) FROM builds)
			+ (SELECT count(*) FROM deployments) + (SELECT count(*) FROM deployment_operations)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 5310 {
		t.Fatalf("%d rows, want 5310", n)
	}

	// A second run refuses the filled database unless --reset.
	err = runSeed(context.Background(), args, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--reset") {
		t.Fatalf("second seed: %v", err)
	}
	if err := runSeed(context.Background(), append(args, "--reset"), &out, &errOut); err != nil {
		t.Fatalf("seed --reset: %v", err)
	}
	if n := count(); n != 5310 {
		t.Fatalf("after --reset: %d rows, want 5310", n)
	}
}

func TestSeedUsage(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	var out, errOut bytes.Buffer
	if err := runSeed(context.Background(), []string{"--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(out.String(), "--deployments") && !strings.Contains(out.String(), "-deployments") {
		t.Fatalf("--help: %v\n%s", err, out.String())
	}
	var ue usageError
	if err := runSeed(context.Background(), nil, &out, &errOut); !errors.As(err, &ue) || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("no URL: %v", err)
	}
	if err := runSeed(context.Background(), []string{"--apps", "x", "--url", "postgres://localhost/x"}, &out, &errOut); !errors.As(err, &ue) {
		t.Fatalf("bad flag: %v", err)
	}
	if err := runSeed(context.Background(), []string{"--url", "postgres://localhost/x", "extra"}, &out, &errOut); !errors.As(err, &ue) {
		t.Fatalf("extra argument: %v", err)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Fatalf("thousands = %q", got)
	}
}
