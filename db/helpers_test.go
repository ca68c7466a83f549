package db_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// connect opens a connection to url, closed when the test ends.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// atlasBin returns the pinned Atlas CLI that `make tools` builds. Without it
// the test fails: the interoperability proof must not be skipped.
func atlasBin(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "bin", "atlas"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the pinned Atlas CLI is missing (%s): run `make tools` (make test does it first)", p)
	}
	return p
}

// atlasURL makes a deploydb test URL schema-scoped for the Atlas CLI, so it
// keeps its revisions in the migrated schema as deploydb does.
func atlasURL(url string) string {
	if strings.Contains(url, "?") {
		return url + "&search_path=public"
	}
	return url + "?search_path=public"
}

// runAtlas runs the Atlas CLI and returns its combined output.
func runAtlas(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, atlasBin(t), args...)
	cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// atlasStatus is the part of `atlas migrate status --format '{{ json . }}'`
// the tests read.
type atlasStatus struct {
	Current, Next, Status string
	Count, Total          int
	Error                 string
	Pending               []struct{ Version string }
	Applied               []struct {
		Version         string
		Applied, Total  int
		OperatorVersion string
	}
}

func runAtlasStatus(t *testing.T, dirPath, url string) atlasStatus {
	t.Helper()
	out, err := runAtlas(t, "migrate", "status", "--dir", "file://"+dirPath, "--url", atlasURL(url), "--format", "{{ json . }}")
	if err != nil {
		t.Fatalf("atlas migrate status: %v\n%s", err, out)
	}
	var st atlasStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("atlas migrate status output: %v\n%s", err, out)
	}
	return st
}

// revisionsTableDef describes the revisions table's columns and primary key
// from the catalogs.
func revisionsTableDef(t *testing.T, url string) string {
	t.Helper()
	var def string
	err := connect(t, url).QueryRow(context.Background(), `
		SELECT string_agg(format('%s %s null=%s default=%s', column_name, data_type, is_nullable, coalesce(column_default, '')),
		                  E'\n' ORDER BY ordinal_position)
		       || E'\n' || (SELECT pg_get_constraintdef(oid) FROM pg_constraint
		                    WHERE conrelid = 'atlas_schema_revisions'::regclass AND contype = 'p')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'atlas_schema_revisions'`).Scan(&def)
	if err != nil {
		t.Fatal(err)
	}
	return def
}
