package review

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/internal/schematriggers"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// projectRoot is the repository the tests run in.
func projectRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tool returns the path of a pinned CLI built by `make tools`.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(projectRoot(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run make tools first (%v)", p, err)
	}
	return p
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustRun(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gitEnv keeps the tests' git independent of the machine's configuration.
var gitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_AUTHOR_NAME=review test", "GIT_AUTHOR_EMAIL=review@example.invalid",
	"GIT_COMMITTER_NAME=review test", "GIT_COMMITTER_EMAIL=review@example.invalid",
}

func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return mustRun(t, dir, gitEnv, "git", args...)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyGlob(t testing.TB, srcDir, pattern, dstDir string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(srcDir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		copyFile(t, m, filepath.Join(dstDir, filepath.Base(m)))
	}
}

// fixtureAuditFile is the base migration only the fixture repositories
// have (testdata/base_audit_events.sql): a table no query uses.
const fixtureAuditFile = "20261122999999_fixture_audit_events.sql"

// fixtureRepo returns a new git repository whose one commit, on branch
// main, holds the project's schema, migrations plus the fixture table
// audit_events, queries and generated code: the base of a rule fixture.
func fixtureRepo(t *testing.T) string { return newRepo(t, true) }

// projectRepo is fixtureRepo without the fixture table, with the schema
// document: a copy of the project as it is.
func projectRepo(t *testing.T) string { return newRepo(t, false) }

func newRepo(t *testing.T, audit bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	root := projectRoot(t)
	for _, f := range []string{"atlas.hcl", "schema.hcl", "sqlc.yaml", ERDPath} {
		copyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
	}
	if _, err := os.Stat(filepath.Join(root, schematriggers.FileName)); err == nil {
		copyFile(t, filepath.Join(root, schematriggers.FileName), filepath.Join(dir, schematriggers.FileName))
	}
	copyGlob(t, filepath.Join(root, "db", "migrations"), "*.sql", filepath.Join(dir, "db", "migrations"))
	if audit {
		copyFile(t, filepath.Join("testdata", "base_audit_events.sql"), filepath.Join(dir, "db", "migrations", fixtureAuditFile))
	}
	copyGlob(t, filepath.Join(root, "queries"), "*.sql", filepath.Join(dir, "queries"))
	copyGlob(t, filepath.Join(root, "internal", "dbsqlc"), "*.go", filepath.Join(dir, "internal", "dbsqlc"))
	rehash(t, dir)
	gitRun(t, dir, "init", "-q", "-b", "main")
	gitRun(t, dir, "add", "-A")
	gitRun(t, dir, "commit", "-q", "-m", "base")
	return dir
}

// rehash rewrites atlas.sum of the repository's migration directory.
func rehash(t testing.TB, repo string) {
	t.Helper()
	mustRun(t, repo, []string{"ATLAS_NO_UPDATE_NOTIFIER=1"}, tool(t, "atlas"), "migrate", "hash", "--dir", "file://db/migrations")
}

// reviewRepo runs the review of the repository's working tree against
// main.
func reviewRepo(t *testing.T, repo string, o Options) *Report {
	t.Helper()
	o.Repo, o.Base = repo, "main"
	if o.Atlas == "" {
		o.Atlas = tool(t, "atlas")
	}
	if o.Sqlc == "" {
		o.Sqlc = tool(t, "sqlc")
	}
	o.Server = pgtest.SharedServer(t)
	rep, err := Run(ctxT(t, 5*time.Minute), o)
	if err != nil {
		t.Fatalf("review: %v", err)
	}
	return rep
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + findingLine(f))
		if f.Allowed != "" {
			b.WriteString(" [allowed: " + f.Allowed + "]")
		}
		if f.Warning {
			b.WriteString(" [warning]")
		}
		b.WriteString("\n")
	}
	return b.String()
}
