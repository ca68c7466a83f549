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

func TestDemo(t *testing.T) {
	url := pgtest.EmptyURL(t)
	code, out, errOut := runCmd(t, "--url", url)
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
	if code, out, errOut := runCmd(t, "--url", url); code != 0 || strings.Contains(out, "UNEXPECTED") {
		t.Fatalf("second demo run (%d): %s\n%s", code, errOut, out)
	}
}

// TestDemoDatabaseURL checks that DATABASE_URL is used when --url is not
// given, so that no throwaway server is started.
func TestDemoDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.EmptyURL(t))
	code, out, errOut := runCmd(t)
	if code != 0 || strings.Contains(out, "throwaway") || !strings.Contains(out, "Demo finished.") {
		t.Fatalf("demo with DATABASE_URL (%d): %s\n%s", code, errOut, out)
	}
}

// TestDemoThrowaway runs the demo without a URL: it starts its own server,
// runs to the end and removes the server.
func TestDemoThrowaway(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	code, out, errOut := runCmd(t)
	if code != 0 || strings.Contains(out, "UNEXPECTED") {
		t.Fatalf("throwaway demo (%d): %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"starting a throwaway PostgreSQL", "Demo finished.", "Throwaway PostgreSQL removed."} {
		if !strings.Contains(out, want) {
			t.Errorf("throwaway demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoUsage(t *testing.T) {
	if code, _, errOut := runCmd(t, "--bogus"); code != 2 || !strings.Contains(errOut, "-bogus") {
		t.Fatalf("unknown flag: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "--url", "postgres://localhost/x", "extra"); code != 2 || !strings.Contains(errOut, `"extra"`) {
		t.Fatalf("extra argument: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "--help"); code != 0 || !strings.Contains(errOut, "Usage: deploydb-demo") {
		t.Fatalf("--help: %d %q", code, errOut)
	}
}
