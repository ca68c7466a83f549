package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestSeedCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t) // seed migrates it first
	args := []string{"seed", "--url", url, "--apps", "10", "--builds", "3000", "--deployments", "2000", "--operations", "300", "--seed", "42"}
	code, out, errOut := runCmd(t, args...)
	if code != exitOK {
		t.Fatalf("seed: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "seeded 10 apps, 3,000 builds, 2,000 deployments, 300 operations (seed 42)") ||
		!strings.Contains(out, "rows/s") {
		t.Fatalf("summary:\n%s", out)
	}
	// Not a terminal: plain progress lines, no carriage returns.
	if !strings.Contains(errOut, "deploydb: seed: done") || strings.Contains(errOut, "\r") {
		t.Fatalf("progress:\n%q", errOut)
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
	if code, _, errOut := runCmd(t, args...); code != exitFailed || !strings.Contains(errOut, "--reset") {
		t.Fatalf("second seed: exit %d, %q", code, errOut)
	}
	// --json: the report on stdout, with the counts.
	code, out, errOut = runCmd(t, append(args, "--reset", "--json")...)
	var rep struct {
		Command  string `json:"command"`
		ExitCode int    `json:"exit_code"`
		Result   struct {
			Apps, Builds, Deployments, Operations, Rows int64
			Seed                                        uint64
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("seed --reset --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if code != exitOK || rep.Command != "seed" || rep.ExitCode != exitOK || rep.Result.Rows != 5310 ||
		rep.Result.Builds != 3000 || rep.Result.Seed != 42 {
		t.Fatalf("seed --reset --json: exit %d, %+v", code, rep)
	}
	if n := count(); n != 5310 {
		t.Fatalf("after --reset: %d rows, want 5310", n)
	}
}

func TestSeedUsage(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	if code, out, _ := runCmd(t, "seed", "--help"); code != exitOK || !strings.Contains(out, "-deployments") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"seed"}, "DATABASE_URL"},
		{[]string{"seed", "--apps", "x", "--url", "postgres://localhost/x"}, "-apps"},
		{[]string{"seed", "--url", "postgres://localhost/x", "extra"}, `"extra"`},
		{[]string{"seed", "--apps", "0", "--url", "postgres://localhost/x"}, "--apps must be at least 1"},
		{[]string{"seed", "--streams", "0", "--url", "postgres://localhost/x"}, "--streams must be at least 1"},
	} {
		if code, _, errOut := runCmd(t, tc.args...); code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q (want exit %d naming %s)", tc.args, code, errOut, exitUsage, tc.want)
		}
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Fatalf("thousands = %q", got)
	}
}
