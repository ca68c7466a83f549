package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydb/deploydb/db"
)

// silentServer accepts TCP connections on the loopback interface and never
// answers them, like a PostgreSQL whose process hangs. It returns
// host:port.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		conns    []net.Conn
		accepted int
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			accepted++
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
		if accepted == 0 && !t.Failed() {
			t.Errorf("nothing connected to the silent server %s", ln.Addr())
		}
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address where nothing listens: connecting
// fails at once.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runCmdDeadline runs the command line under a generous deadline, so that
// a command that hangs fails the test instead of hanging it.
func runCmdDeadline(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	if ctx.Err() != nil {
		t.Fatalf("%v: still running at the test's deadline", args)
	}
	return code, out.String(), errOut.String()
}

type report struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
	Error    *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeReport parses the JSON report a command printed on stdout.
func decodeReport(t *testing.T, args []string, out string) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: stdout is not a JSON report (%v):\n%s", args, err, out)
	}
	if rep.Error == nil {
		t.Fatalf("%v: JSON report without an error:\n%s", args, out)
	}
	return rep
}

// connectingCommands are the command lines of every subcommand that
// connects to a database, without --url.
var connectingCommands = [][]string{
	{"migrate", "up"},
	{"migrate", "status"},
	{"migrate", "validate"},
	{"migrate", "down"},
	{"migrate", "baseline", "20000101000000"},
	{"roles"},
	{"seed", "--apps", "2", "--builds", "10", "--deployments", "5", "--operations", "3"},
}

// TestConnectTimeout points every connecting subcommand at a server that
// accepts the connection and never answers: each exits 1 and names the
// connect timeout, never the password, with and without --json, whether
// the timeout comes from --connect-timeout or from the URL.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	url := "postgres://deployer:hunter2@" + silentServer(t) + "/app?sslmode=disable"
	for _, cmd := range connectingCommands {
		args := append(append([]string{}, cmd...), "--url", url, "--connect-timeout", "300ms")
		code, out, errOut := runCmdDeadline(t, args...)
		if code != exitFailed || !strings.Contains(errOut, "connect timeout (300ms)") || strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}

		args = append(args, "--json")
		code, out, errOut = runCmdDeadline(t, args...)
		rep := decodeReport(t, args, out)
		if code != exitFailed || rep.ExitCode != exitFailed || rep.Error.Kind != "failed" ||
			!strings.Contains(rep.Error.Message, "connect timeout (300ms)") || strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: exit %d, report %+v\nstderr: %s", args, code, rep, errOut)
		}
	}

	// Without the flag the URL's connect_timeout applies.
	for _, cmd := range connectingCommands {
		args := append(append([]string{}, cmd...), "--url", url+"&connect_timeout=1")
		code, out, errOut := runCmdDeadline(t, args...)
		if code != exitFailed || !strings.Contains(errOut, "connect timeout (1s)") || strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

// TestConnectTimeoutDatabaseURL checks that a URL from DATABASE_URL gets
// the connect timeout too.
func TestConnectTimeoutDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://deployer:hunter2@"+silentServer(t)+"/app")
	for _, cmd := range connectingCommands {
		args := append(append([]string{}, cmd...), "--connect-timeout", "200ms")
		code, out, errOut := runCmdDeadline(t, args...)
		if code != exitFailed || !strings.Contains(errOut, "connect timeout (200ms)") || strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v with DATABASE_URL: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

// TestConnectTimeoutBinary runs the built binary against a silent server,
// as the fault drill did: the process exits 1 by itself.
func TestConnectTimeoutBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	url := "postgres://deployer:hunter2@" + silentServer(t) + "/app"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "migrate", "status", "--url", url, "--connect-timeout", "500ms", "--json")
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	if ctx.Err() != nil {
		t.Fatal("deploydb migrate status was still running at the test's deadline")
	}
	rep := decodeReport(t, cmd.Args, stdout.String())
	if code := cmd.ProcessState.ExitCode(); code != exitFailed || rep.ExitCode != exitFailed ||
		!strings.Contains(rep.Error.Message, "connect timeout (500ms)") || strings.Contains(stdout.String()+stderr.String(), "hunter2") {
		t.Fatalf("exit %d, report %+v\nstderr: %s", code, rep, stderr.String())
	}
}

// TestSeedPoolConnectTimeout checks that the pool seed loads through obeys
// --connect-timeout and names it.
func TestSeedPoolConnectTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &connFlags{connectTimeout: 250 * time.Millisecond, connectTimeoutSet: true}
	pool, err := openSeedPool(ctx, "postgres://deployer:hunter2@"+silentServer(t)+"/app", 3, c)
	if err == nil {
		pool.Close()
		t.Fatal("a pool connected to a silent server")
	}
	if ctx.Err() != nil || !errors.Is(err, db.ErrConnectTimeout) || !strings.Contains(err.Error(), "(250ms)") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("pool against a silent server: %v", err)
	}
}

// TestJSONUsageErrors checks that with --json every kind of usage error
// prints the JSON report on stdout, nothing on stderr, and exits 2; and
// that without --json the message goes to stderr.
func TestJSONUsageErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	url := "postgres://u@" + closedPort(t) + "/x"
	for _, tc := range []struct {
		args    []string
		command string // the report's command
		want    string // in the message
	}{
		{[]string{"migrate", "up", "--bogus"}, "migrate up", "-bogus"},
		{[]string{"migrate", "status", "--url", url, "--bogus"}, "migrate status", "-bogus"},
		{[]string{"migrate", "up", "--url", url, "--lock-timeout", "soon"}, "migrate up", "-lock-timeout"},
		{[]string{"migrate", "down", "--url", url, "--statement-timeout", "10"}, "migrate down", "-statement-timeout"},
		{[]string{"migrate", "validate", "--connect-timeout", "x"}, "migrate validate", "-connect-timeout"},
		{[]string{"migrate", "up", "--url", url, "--lock-retries", "many"}, "migrate up", "-lock-retries"},
		{[]string{"migrate", "down", "two", "--url", url}, "migrate down", `"two"`},
		{[]string{"migrate", "frobnicate"}, "migrate frobnicate", "unknown command"},
		{[]string{"migrate"}, "migrate", "missing command"},
		{[]string{"frobnicate"}, "frobnicate", "unknown command"},
		{[]string{"demo"}, "demo", "unknown command"},
		{[]string{"migrate", "baseline", "--url", url}, "migrate baseline", "exactly one VERSION"},
		{[]string{"migrate", "up"}, "migrate up", "DATABASE_URL"},
		{[]string{"migrate", "status", "extra", "--url", url}, "migrate status", `"extra"`},
		{[]string{"roles", "--bogus"}, "roles", "-bogus"},
		{[]string{"roles", "--connect-timeout", "1x"}, "roles", "-connect-timeout"},
		{[]string{"roles"}, "roles", "DATABASE_URL"},
		{[]string{"roles", "extra", "--url", url}, "roles", `"extra"`},
		{[]string{"seed", "--apps", "ten", "--url", url}, "seed", "-apps"},
		{[]string{"seed", "--seed", "-1", "--url", url}, "seed", "-seed"},
		{[]string{"seed", "--bogus"}, "seed", "-bogus"},
		{[]string{"seed"}, "seed", "DATABASE_URL"},
	} {
		args := append(append([]string{}, tc.args...), "--json")
		code, out, errOut := runCmdDeadline(t, args...)
		rep := decodeReport(t, args, out)
		if code != exitUsage || rep.ExitCode != exitUsage || rep.Command != tc.command || rep.Error.Kind != "usage" ||
			!strings.Contains(rep.Error.Message, tc.want) || errOut != "" {
			t.Errorf("%v: exit %d, report %+v (want command %q, message naming %s), stderr %q", args, code, rep, tc.command, tc.want, errOut)
		}

		code, out, errOut = runCmdDeadline(t, tc.args...)
		if code != exitUsage || strings.Contains(out, `"exit_code"`) || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v without --json: exit %d\nstdout: %s\nstderr: %s", tc.args, code, out, errOut)
		}
	}

	// --json=false asks for the text report; --json=true for JSON.
	if code, out, errOut := runCmdDeadline(t, "migrate", "up", "--bogus", "--json=false"); code != exitUsage || out != "" || !strings.Contains(errOut, "-bogus") {
		t.Errorf("--json=false: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCmdDeadline(t, "migrate", "up", "--bogus", "--json=true"); code != exitUsage || decodeReport(t, nil, out).ExitCode != exitUsage {
		t.Errorf("--json=true: exit %d\n%s", code, out)
	}
}

// TestNegativeValues checks that a negative duration or count is a usage
// error (exit 2) for every flag that takes one, with and without --json.
// The URL points at a closed port: a command that accepted the value would
// try to connect and exit 1.
func TestNegativeValues(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	url := "postgres://u@" + closedPort(t) + "/x"
	type tc struct {
		args []string
		want string // in the message
	}
	var cases []tc
	for _, sub := range [][]string{{"up"}, {"down"}, {"baseline", "20000101000000"}} {
		for _, f := range []struct{ flag, value string }{
			{"--lock-timeout", "-1s"}, {"--ddl-lock-timeout", "-2s"}, {"--statement-timeout", "-1m"},
			{"--lock-retries", "-1"}, {"--connect-timeout", "-1s"}, {"--connect-timeout", "0"},
		} {
			args := append([]string{"migrate"}, sub...)
			cases = append(cases, tc{append(args, "--url", url, f.flag, f.value), f.flag})
		}
	}
	cases = append(cases,
		tc{[]string{"migrate", "status", "--url", url, "--connect-timeout", "-1s"}, "--connect-timeout"},
		tc{[]string{"migrate", "validate", "--url", url, "--connect-timeout", "-1s"}, "--connect-timeout"},
		tc{[]string{"migrate", "down", "0", "--url", url}, `"0"`},
		tc{[]string{"migrate", "down", "--url", url, "--", "-1"}, `"-1"`},
		tc{[]string{"migrate", "down", "-3", "--url", url}, "-3"},
		tc{[]string{"roles", "--url", url, "--connect-timeout", "-5s"}, "--connect-timeout"},
	)
	for _, f := range []string{"--apps", "--builds", "--deployments", "--operations", "--streams"} {
		cases = append(cases, tc{[]string{"seed", "--url", url, f, "-1"}, f})
	}
	cases = append(cases,
		tc{[]string{"seed", "--url", url, "--connect-timeout", "-1s"}, "--connect-timeout"},
		tc{[]string{"seed", "--url", url, "--connect-timeout", "0s"}, "--connect-timeout"})

	for _, c := range cases {
		code, out, errOut := runCmdDeadline(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want %d naming %s)\nstdout: %s\nstderr: %s", c.args, code, exitUsage, c.want, out, errOut)
		}
		// --json before --url: after a "--" it would be an argument.
		var args []string
		for _, a := range c.args {
			if a == "--url" {
				args = append(args, "--json")
			}
			args = append(args, a)
		}
		code, out, _ = runCmdDeadline(t, args...)
		rep := decodeReport(t, args, out)
		if code != exitUsage || rep.ExitCode != exitUsage || rep.Error.Kind != "usage" || !strings.Contains(rep.Error.Message, c.want) {
			t.Errorf("%v: exit %d, report %+v", args, code, rep)
		}
	}

	// Zero stays valid where it has a meaning: no lock wait, no lock_timeout,
	// no statement_timeout, no retries. The command then runs and fails to
	// connect to the closed port (exit 1), which shows the flags were
	// accepted.
	args := []string{"migrate", "up", "--url", url, "--lock-timeout", "0", "--ddl-lock-timeout", "0",
		"--statement-timeout", "0", "--lock-retries", "0"}
	if code, _, errOut := runCmdDeadline(t, args...); code != exitFailed || !strings.Contains(errOut, "connect") {
		t.Errorf("%v: exit %d, %q", args, code, errOut)
	}
}
