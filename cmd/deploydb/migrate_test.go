package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploydb/deploydb/db"
	"github.com/deploydb/deploydb/internal/pgtest"
)

// migrationLockKey is the Atlas CLI's advisory-lock key, which deploydb
// shares: FNV-1 32-bit of "atlas_migrate_execute".
func migrationLockKey() int64 {
	h := fnv.New32()
	h.Write([]byte("atlas_migrate_execute"))
	return int64(h.Sum32())
}

// holdMigrationLock takes the migration lock on its own connection, as a
// running migration would, and returns the function that releases it.
func holdMigrationLock(t *testing.T, url string) func() {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "test lock holder"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// buildBinary builds cmd/deploydb into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "deploydb")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type procResult struct {
	code           int
	stdout, stderr string
	lockWait       time.Duration // parsed from "took the migration lock after ..."
}

var tookLock = regexp.MustCompile(`took the migration lock after (\S+)`)

// TestConcurrentProcesses starts 8 `deploydb migrate up` processes of the
// built binary against one empty database while the migration lock is
// held, releases it once all 8 are waiting, and checks that exactly one
// applies the migrations and the other 7 wait for it and find nothing to
// do.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	const procs = 8
	bin := buildBinary(t)
	url := pgtest.EmptyURL(t)
	release := holdMigrationLock(t, url)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg      sync.WaitGroup
		waiting sync.WaitGroup
		results = make([]procResult, procs)
	)
	waiting.Add(procs)
	for i := range procs {
		cmd := exec.CommandContext(ctx, bin, "migrate", "up", "--url", url, "--lock-timeout", "1m")
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var errBuf strings.Builder
			sc := bufio.NewScanner(stderr)
			announced := false
			for sc.Scan() {
				line := sc.Text()
				errBuf.WriteString(line + "\n")
				if !announced && strings.Contains(line, "waiting up to") {
					announced = true
					waiting.Done()
				}
			}
			_, _ = io.Copy(io.Discard, stderr)
			err := cmd.Wait()
			if !announced {
				waiting.Done()
			}
			r := procResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: errBuf.String()}
			if err != nil && r.code == 0 {
				r.code = -1
			}
			if m := tookLock.FindStringSubmatch(r.stderr); m != nil {
				r.lockWait, _ = time.ParseDuration(m[1])
			}
			results[i] = r
		}()
	}
	allWaiting := make(chan struct{})
	go func() { waiting.Wait(); close(allWaiting) }()
	select {
	case <-allWaiting:
	case <-time.After(time.Minute):
		t.Fatal("the processes did not all report waiting for the lock")
	}
	released := time.Now()
	release()
	wg.Wait()
	finished := time.Since(released)

	appliers, idle, errs := 0, 0, 0
	var maxWait time.Duration
	files := len(db.Versions())
	for i, r := range results {
		switch {
		case r.code != 0:
			errs++
			t.Errorf("process %d exited %d:\n%s%s", i, r.code, r.stdout, r.stderr)
		case strings.Count(r.stdout, "applied ") == files:
			appliers++
		case strings.Contains(r.stdout, "nothing to do") && !strings.Contains(r.stdout, "applied "):
			idle++
		default:
			t.Errorf("process %d: unexpected output:\n%s%s", i, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "waiting up to") {
			t.Errorf("process %d never waited for the lock:\n%s", i, r.stderr)
		}
		maxWait = max(maxWait, r.lockWait)
	}
	rows := pgtest.RevisionRows(t, url)
	single := pgtest.URL(t) // migrated once by a single db.Migrate
	diff := pgtest.SchemaDiff(t, url, single)
	same := pgtest.SchemaFingerprint(t, url) == pgtest.SchemaFingerprint(t, single)
	t.Logf("%d processes: %d applied, %d waited then found nothing to do, %d errors; revision rows %d (files %d); "+
		"schema diff vs a single runner: %d statements, catalogs identical: %v; all done %s after the lock was released, longest lock wait %s",
		procs, appliers, idle, errs, rows, files, len(diff), same, finished.Round(time.Millisecond), maxWait.Round(time.Millisecond))
	if appliers != 1 || idle != procs-1 || errs != 0 {
		t.Fatalf("want 1 applier, %d idle, 0 errors", procs-1)
	}
	if rows != files {
		t.Fatalf("revision rows %d, want %d", rows, files)
	}
	if len(diff) > 0 || !same {
		t.Fatalf("schema differs from a single-runner apply: %v", diff)
	}
}

func writeMigration(t *testing.T, path, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(path, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExitCodes drives every documented exit code through the command line.
func TestExitCodes(t *testing.T) {
	t.Parallel()

	t.Run("pending and ok", func(t *testing.T) {
		t.Parallel()
		url := pgtest.EmptyURL(t)
		if code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--to", "19990101000000"); code != exitUsage || !strings.Contains(errOut, "no migration file has version") {
			t.Fatalf("up --to an unknown version: %d %s", code, errOut)
		}
		if code, _, _ := runCmd(t, "migrate", "status", "--url", url); code != exitPending {
			t.Fatalf("status of an empty database: %d, want %d", code, exitPending)
		}
		if code, _, errOut := runCmd(t, "migrate", "up", "--url", url); code != exitOK {
			t.Fatalf("up: %d %s", code, errOut)
		}
		if code, out, _ := runCmd(t, "migrate", "status", "--url", url); code != exitOK || !strings.Contains(out, "status: ok") {
			t.Fatalf("status after up: %d\n%s", code, out)
		}
	})

	t.Run("locked", func(t *testing.T) {
		t.Parallel()
		url := pgtest.EmptyURL(t)
		holdMigrationLock(t, url)
		code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--lock-timeout", "300ms")
		if code != exitLocked || !strings.Contains(errOut, "another migration is running") || !strings.Contains(errOut, "test lock holder") {
			t.Fatalf("up while locked: %d %s", code, errOut)
		}
		code, out, _ := runCmd(t, "migrate", "status", "--url", url)
		if code != exitLocked || !strings.Contains(out, "A MIGRATION IS RUNNING") {
			t.Fatalf("status while locked: %d\n%s", code, out)
		}
		t.Logf("exit %d: %s", exitLocked, strings.TrimSpace(errOut))
	})

	t.Run("checksum", func(t *testing.T) {
		t.Parallel()
		_, path := pgtest.MigrationDir(t,
			pgtest.MigrationFile{Name: "20260501000001_a.sql", SQL: "CREATE TABLE a (id int);\n"},
			pgtest.MigrationFile{Name: "20260501000002_b.sql", SQL: "CREATE TABLE b (id int);\n"})
		url := pgtest.EmptyURL(t)
		if code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--dir", path); code != exitOK {
			t.Fatalf("up: %d %s", code, errOut)
		}
		writeMigration(t, path, "20260501000001_a.sql", "CREATE TABLE a (id bigint);\n")
		// Not re-hashed: atlas.sum does not match.
		code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--dir", path)
		if code != exitChecksum || !strings.Contains(errOut, "20260501000001_a.sql") {
			t.Fatalf("edited without re-hash: %d %s", code, errOut)
		}
		if code, _, _ := runCmd(t, "migrate", "validate", "--dir", path); code != exitChecksum {
			t.Fatalf("validate: %d", code)
		}
		// Re-hashed: the database recorded another hash.
		pgtest.Rehash(t, path)
		code, _, errOut = runCmd(t, "migrate", "up", "--url", url, "--dir", path)
		if code != exitChecksum || !strings.Contains(errOut, "20260501000001_a.sql (edited after it was applied)") {
			t.Fatalf("edited and re-hashed: %d %s", code, errOut)
		}
		code, out, _ := runCmd(t, "migrate", "status", "--url", url, "--dir", path)
		if code != exitChecksum || !strings.Contains(out, "modified") {
			t.Fatalf("status: %d\n%s", code, out)
		}
		t.Logf("exit %d: %s", exitChecksum, strings.TrimSpace(errOut))
	})

	t.Run("failing statement", func(t *testing.T) {
		t.Parallel()
		const name = "20260501000002_b.sql"
		_, path := pgtest.MigrationDir(t,
			pgtest.MigrationFile{Name: "20260501000001_a.sql", SQL: "CREATE TABLE a (id int);\n"},
			pgtest.MigrationFile{Name: name, SQL: "ALTER TABLE a ADD COLUMN n int NOT NULL;\nINSERT INTO a (id) VALUES (1);\n"})
		url := pgtest.EmptyURL(t)
		code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--dir", path)
		if code != exitFailed || !strings.Contains(errOut, name) || !strings.Contains(errOut, "23502") ||
			!strings.Contains(errOut, "INSERT INTO a (id) VALUES (1)") {
			t.Fatalf("failing statement: %d %s", code, errOut)
		}
		code, out, _ := runCmd(t, "migrate", "up", "--url", url, "--dir", path, "--json")
		var rep struct {
			ExitCode int `json:"exit_code"`
			Error    struct{ Kind, File, Statement, SQLState string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("--json output: %v\n%s", err, out)
		}
		if code != exitFailed || rep.ExitCode != exitFailed || rep.Error.Kind != "failed" || rep.Error.File != name || rep.Error.SQLState != "23502" {
			t.Fatalf("--json: %d %+v", code, rep)
		}
		writeMigration(t, path, name, "ALTER TABLE a ADD COLUMN n int NOT NULL DEFAULT 0;\nINSERT INTO a (id) VALUES (1);\n")
		pgtest.Rehash(t, path)
		if code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--dir", path); code != exitOK {
			t.Fatalf("up after the fix: %d %s", code, errOut)
		}
		t.Logf("exit %d: %s", exitFailed, strings.TrimSpace(errOut))
	})

	t.Run("invalid concurrent index", func(t *testing.T) {
		t.Parallel()
		_, path := pgtest.MigrationDir(t,
			pgtest.MigrationFile{Name: "20260501000001_u.sql", SQL: "CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL);\nINSERT INTO u VALUES (1, 'a'), (2, 'a');\n"},
			pgtest.MigrationFile{Name: "20260501000002_u_email_key.sql", SQL: "-- atlas:txmode none\n\nCREATE UNIQUE INDEX CONCURRENTLY u_email_key ON u (email);\n"})
		url := pgtest.EmptyURL(t)
		code, _, errOut := runCmd(t, "migrate", "up", "--url", url, "--dir", path)
		if code != exitFailed || !strings.Contains(errOut, "23505") {
			t.Fatalf("unique index over duplicates: %d %s", code, errOut)
		}
		code, out, _ := runCmd(t, "migrate", "status", "--url", url, "--dir", path)
		if code != exitFailed || !strings.Contains(out, "INVALID INDEXES") || !strings.Contains(out, "public.u_email_key on u") ||
			!strings.Contains(out, "FAILED") {
			t.Fatalf("status with an invalid index: %d\n%s", code, out)
		}
		t.Logf("status, exit %d:\n%s", code, out)
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DELETE FROM u WHERE id = 2`); err != nil {
			t.Fatal(err)
		}
		code, _, errOut = runCmd(t, "migrate", "up", "--url", url, "--dir", path)
		if code != exitOK || !strings.Contains(errOut, "dropping invalid index u_email_key") {
			t.Fatalf("up after the data fix: %d %s", code, errOut)
		}
		var valid bool
		if err := conn.QueryRow(context.Background(), `SELECT indisvalid FROM pg_index WHERE indexrelid = 'u_email_key'::regclass`).Scan(&valid); err != nil || !valid {
			t.Fatalf("u_email_key valid: %v %v", valid, err)
		}
		if code, _, _ := runCmd(t, "migrate", "status", "--url", url, "--dir", path); code != exitOK {
			t.Fatalf("status after the fix: %d", code)
		}
	})

	t.Run("data loss", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		vs := db.Versions()
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `INSERT INTO apps (name) VALUES ('keep-me')`); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, "migrate", "down", fmtInt(len(vs)), "--url", url)
		if code != exitDataLoss || !strings.Contains(out, "DROP TABLE") || !strings.Contains(out, "DATA LOSS: drop table apps (1 row)") {
			t.Fatalf("destructive down: %d\n%s%s", code, out, errOut)
		}
		if n := pgtest.RevisionRows(t, url); n != len(vs) {
			t.Fatalf("a refused down removed revisions: %d", n)
		}
		code, out, errOut = runCmd(t, "migrate", "down", "--url", url, "--to", vs[0], "--dry-run")
		if code != exitOK || !strings.Contains(out, "dry run") {
			t.Fatalf("down --dry-run: %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = runCmd(t, "migrate", "down", fmtInt(len(vs)), "--allow-data-loss", "--url", url)
		if code != exitOK || pgtest.RevisionRows(t, url) != 0 {
			t.Fatalf("down --allow-data-loss: %d\n%s%s", code, out, errOut)
		}
		t.Logf("down %d with data, exit %d; with --allow-data-loss exit 0", len(vs), exitDataLoss)
	})

	t.Run("usage and help", func(t *testing.T) {
		t.Parallel()
		for _, sub := range []string{"up", "status", "validate", "down", "baseline"} {
			code, out, _ := runCmd(t, "migrate", sub, "--help")
			if code != exitOK || !strings.Contains(out, "Usage: deploydb migrate "+sub) || !strings.Contains(out, "-url") {
				t.Errorf("migrate %s --help: %d\n%s", sub, code, out)
			}
		}
		for _, args := range [][]string{
			{"migrate", "up", "--bogus"},
			{"migrate", "down", "x", "--url", "postgres://localhost/x"},
			{"migrate", "down", "1", "--to", "1", "--url", "postgres://localhost/x"},
			{"migrate", "baseline", "--url", "postgres://localhost/x"},
			{"migrate", "frobnicate"},
		} {
			if code, _, _ := runCmd(t, args...); code != exitUsage {
				t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
			}
		}
	})
}

func fmtInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
