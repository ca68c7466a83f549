package review

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/deploydb/deploydb/internal/schematriggers"
)

// Check is one drift check of section 3.
type Check struct {
	Name    string // what is compared
	OK      bool
	Skipped string // why the check did not run
	Detail  string // what differs, or the tool's output
	Fix     string
}

// runTool runs a command in dir and returns its combined output.
func runTool(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkSchemaDrift re-diffs schema.hcl against a copy of the migration
// directory: Atlas must write no new migration. devURL is an empty
// database.
func checkSchemaDrift(ctx context.Context, atlas, repo, dir, devURL string) Check {
	c := Check{Name: "schema.hcl ⇔ " + dir + " (re-diffing schema.hcl adds no migration)",
		Fix: "run `make migration NAME=<what changed>` and commit the new file."}
	if !exists(filepath.Join(repo, "schema.hcl")) {
		c.Skipped = "no schema.hcl"
		return c
	}
	tmp, err := os.MkdirTemp("", "deploydb-review-drift-")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(repo, filepath.FromSlash(dir))
	entries, err := os.ReadDir(src)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	before := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			c.Detail = err.Error()
			return c
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			c.Detail = err.Error()
			return c
		}
		before++
	}
	out, err := runTool(ctx, repo, atlas, "migrate", "diff", "drift_check",
		"--dir", "file://"+filepath.ToSlash(tmp), "--to", "file://schema.hcl", "--dev-url", devURL)
	if err != nil {
		c.Detail = "atlas migrate diff failed: " + out
		return c
	}
	after, err := os.ReadDir(tmp)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	if len(after) == before {
		c.OK = true
		return c
	}
	for _, e := range after {
		if strings.HasSuffix(e.Name(), "_drift_check.sql") {
			data, _ := os.ReadFile(filepath.Join(tmp, e.Name()))
			c.Detail = "schema.hcl has changes that no migration holds; the missing migration would be:\n\n" +
				fence("sql", string(data))
		}
	}
	return c
}

// checkAtlasSum runs atlas migrate validate on the migration directory.
func checkAtlasSum(ctx context.Context, atlas, repo, dir string) Check {
	c := Check{Name: "atlas.sum matches " + dir + " (atlas migrate validate)",
		Fix: "never edit migration files by hand; if you added a `-- deploydb:allow` line, run `make migration-hash`."}
	out, err := runTool(ctx, repo, atlas, "migrate", "validate", "--dir", "file://"+dir)
	if err != nil {
		c.Detail = out
		return c
	}
	c.OK = true
	return c
}

// checkTriggers checks that the newest migration carrying
// schema_triggers.sql holds the file as it is (internal/schematriggers, the
// check make check runs).
func checkTriggers(repo, dir string) Check {
	c := Check{Name: schematriggers.FileName + " ⇔ " + dir + " (the newest migration carrying it holds it as it is)",
		Fix: "run `make migration NAME=<what changed>` and commit the new file."}
	st, err := schematriggers.Carrier{Root: repo, Dir: dir}.Status()
	switch {
	case err != nil:
		c.Detail = err.Error()
	case !st.Exists && st.Newest == nil:
		c.Skipped = "no " + schematriggers.FileName
	case !st.Current():
		c.Detail = st.Problem
	default:
		c.OK = true
	}
	return c
}

// checkSqlc runs sqlc diff: internal/dbsqlc must be what sqlc generates from queries/.
func checkSqlc(ctx context.Context, sqlc, repo string) Check {
	c := Check{Name: "internal/dbsqlc ⇔ queries/ (sqlc diff)", Fix: "run `make generate` and commit internal/dbsqlc."}
	if !exists(filepath.Join(repo, "sqlc.yaml")) {
		c.Skipped = "no sqlc.yaml"
		return c
	}
	out, err := runTool(ctx, repo, sqlc, "diff")
	if err != nil {
		c.Detail = out
		if c.Detail == "" {
			c.Detail = err.Error()
		}
		return c
	}
	c.OK = true
	return c
}

// checkERD compares docs/schema.md with the document generated from the
// migrated schema.
func checkERD(repo, want string) Check {
	c := Check{Name: ERDPath + " ⇔ schema (ER diagram)", Fix: "run `make erd` and commit " + ERDPath + "."}
	got, err := os.ReadFile(filepath.Join(repo, ERDPath))
	if os.IsNotExist(err) {
		c.Detail = ERDPath + " does not exist."
		return c
	}
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	if string(got) == want {
		c.OK = true
		return c
	}
	c.Detail = firstDifference(string(got), want)
	return c
}

// firstDifference describes the first line where two texts differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("first difference at line %d:\n\n%s", i+1,
				fence("diff", "- "+gl+"\n+ "+wl))
		}
	}
	return "the files differ"
}

// fence wraps text in a Markdown code fence long enough for its content.
func fence(lang, text string) string {
	f := "```"
	for strings.Contains(text, f) {
		f += "`"
	}
	return f + lang + "\n" + strings.TrimRight(text, "\n") + "\n" + f + "\n"
}
