package main

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// TestRefusedMigrationBinary runs the built binary on a directory whose
// second file holds transaction control and whose third switches the lock
// timeout off: migrate up (text and --json, with and without --dry-run) and
// migrate validate (text and --json) exit 1 naming the file and the
// statement, and nothing of any pending file ran.
func TestRefusedMigrationBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	_, path := pgtest.MigrationDir(t,
		pgtest.MigrationFile{Name: "20260701000001_a.sql", SQL: "CREATE TABLE a (id int PRIMARY KEY);\n"},
		pgtest.MigrationFile{Name: "20260701000002_b.sql", SQL: "BEGIN;\nALTER TABLE a ADD COLUMN c int;\n"},
		pgtest.MigrationFile{Name: "20260701000003_c.sql", SQL: "SET lock_timeout = 0;\nALTER TABLE a ADD COLUMN d int;\n"},
	)
	url := pgtest.EmptyURL(t)
	exe := func(args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	wantNamed := func(what, text string) {
		t.Helper()
		for _, s := range []string{"20260701000002_b.sql", "BEGIN;", "20260701000003_c.sql", "SET lock_timeout = 0;"} {
			if !strings.Contains(text, s) {
				t.Errorf("%s does not name %q:\n%s", what, s, text)
			}
		}
	}
	type refusal struct{ File, SQL, Kind string }
	decode := func(what, out string) (code int, msg string, refused []refusal) {
		t.Helper()
		var rep struct {
			ExitCode int `json:"exit_code"`
			Result   struct {
				Refused []refusal `json:"refused"`
			} `json:"result"`
			Error struct{ Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return rep.ExitCode, rep.Error.Message, rep.Result.Refused
	}
	wantRefusals := func(what string, rs []refusal) {
		t.Helper()
		if len(rs) != 2 || rs[0].File != "20260701000002_b.sql" || rs[0].SQL != "BEGIN;" || rs[0].Kind != "transaction_control" ||
			rs[1].File != "20260701000003_c.sql" || rs[1].SQL != "SET lock_timeout = 0;" || rs[1].Kind != "timeout_off" {
			t.Errorf("%s: refusals %+v", what, rs)
		}
	}

	for _, args := range [][]string{{"migrate", "up"}, {"migrate", "up", "--dry-run"}} {
		what := strings.Join(args, " ")
		args = append(args, "--url", url, "--dir", path)
		code, out, errOut := exe(args...)
		if code != exitFailed {
			t.Fatalf("%s: exit %d, want %d\n%s%s", what, code, exitFailed, out, errOut)
		}
		wantNamed(what, errOut)
		t.Logf("%s: exit %d\n%s", what, code, errOut)

		code, out, _ = exe(append(args, "--json")...)
		jcode, msg, rs := decode(what+" --json", out)
		if code != exitFailed || jcode != exitFailed {
			t.Fatalf("%s --json: exit %d, report %d", what, code, jcode)
		}
		wantNamed(what+" --json message", msg)
		wantRefusals(what+" --json", rs)
	}
	if n := pgtest.RevisionRows(t, url); n != 0 {
		t.Fatalf("%d revisions recorded although nothing may run", n)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var a bool
	if err := conn.QueryRow(context.Background(), `SELECT to_regclass('a') IS NOT NULL OR to_regclass('atlas_schema_revisions') IS NOT NULL`).Scan(&a); err != nil || a {
		t.Fatalf("something ran: %v %v", a, err)
	}

	code, out, errOut := exe("migrate", "validate", "--dir", path)
	if code != exitFailed {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	wantNamed("validate", errOut)
	code, out, _ = exe("migrate", "validate", "--dir", path, "--json")
	jcode, msg, rs := decode("validate --json", out)
	if code != exitFailed || jcode != exitFailed {
		t.Fatalf("validate --json: exit %d, report %d", code, jcode)
	}
	wantNamed("validate --json message", msg)
	wantRefusals("validate --json", rs)
}
