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
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "migrate up") {
		t.Fatalf("--help: code %d", code)
	}
	if code, _, errOut := runCmd(t, "migrate", "up", "--url", "postgres://u:hunter2@[::1/x"); code != exitUsage || strings.Contains(errOut, "hunter2") {
		t.Fatalf("bad URL: code %d, %q", code, errOut)
	}
}

func TestDemo(t *testing.T) {
	url := pgtest.EmptyURL(t)
	code, out, errOut := runCmd(t, "demo", "--url", url)
	if code != 0 {
		t.Fatalf("demo failed (%d): %s\n%s", code, errOut, out)
	}
	if strings.Contains(out, "UNEXPECTED") {
		t.Fatalf("demo saw unexpected results:\n%s", out)
	}
	for _, want := range []string{"refused as expected", "GetDeploymentWithBuild", "page 3:",
		"waiting_for_cutover", "attempt 2, claimed by worker-ap-south-2", "deployment: deployed", "Demo finished."} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Running it again on the same database works (run-unique names).
	if code, out, errOut := runCmd(t, "demo", "--url", url); code != 0 || strings.Contains(out, "UNEXPECTED") {
		t.Fatalf("second demo run (%d): %s\n%s", code, errOut, out)
	}
}
