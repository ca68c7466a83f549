package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/deploydb/deploydb/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMigrateUpAndStatus(t *testing.T) {
	url := pgtest.EmptyURL(t)
	code, out, errOut := runCmd(t, "migrate", "status", "--url", url)
	if code != exitPending || !strings.Contains(out, "pending") || strings.Contains(out, ", 0 pending") {
		t.Fatalf("status before: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "migrate", "up", "--url", url)
	if code != 0 || !strings.Contains(out, "applied ") {
		t.Fatalf("up: code %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "migrate", "up", "--url", url)
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second up: code %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "migrate", "status", "--url", url)
	if code != 0 || !strings.Contains(out, "applied") || !strings.Contains(out, ", 0 pending") {
		t.Fatalf("status after: code %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	if code, _, errOut := runCmd(t, "migrate", "up"); code != exitUsage || !strings.Contains(errOut, "DATABASE_URL") {
		t.Fatalf("migrate up without a URL: code %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: code %d, %q", code, errOut)
	}
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "migrate up") ||
		!strings.Contains(out, "--connect-timeout") || strings.Contains(out, "demo") {
		t.Fatalf("--help: code %d\n%s", code, out)
	}
	// The demo is a command of its own (deploydb-demo).
	if code, _, errOut := runCmd(t, "demo"); code != exitUsage || !strings.Contains(errOut, `unknown command "demo"`) {
		t.Fatalf("demo: code %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "migrate", "up", "--url", "postgres://u:hunter2@[::1/x"); code != exitUsage || strings.Contains(errOut, "hunter2") {
		t.Fatalf("bad URL: code %d, %q", code, errOut)
	}
}
