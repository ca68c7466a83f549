package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// atlasFileReport is the part of `atlas migrate lint --format '{{ json .Files }}'`
// (v0.12) the review reads.
type atlasFileReport struct {
	Name    string `json:"Name"`
	Error   string `json:"Error"`
	Reports []struct {
		Text        string `json:"Text"`
		Diagnostics []struct {
			Pos  int    `json:"Pos"`
			Text string `json:"Text"`
			Code string `json:"Code"`
		} `json:"Diagnostics"`
	} `json:"Reports"`
}

// atlasLintResult is what running Atlas's linter produced.
type atlasLintResult struct {
	Command string // the command line, for the report
	Ran     bool
	Files   []atlasFileReport
}

// runAtlasLint runs `atlas migrate lint` on a copy of the working tree's
// migration directory, treating the last n files as new (--latest n). The
// analyzers and which of them are errors come from the `lint` block of the
// repository's atlas.hcl. devURL is an empty database.
//
// --latest rather than --git-base: v0.12's git detection diffs the base
// with the HEAD commit, so it misses files not yet committed, which a
// review before pushing must see; the review finds the new files itself.
func runAtlasLint(ctx context.Context, atlas, repo, dir string, files []sourceFile, sum []byte, n int, devURL string) (atlasLintResult, error) {
	tmp, err := os.MkdirTemp("", "deploydb-review-lint-")
	if err != nil {
		return atlasLintResult{}, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Data, 0o644); err != nil {
			return atlasLintResult{}, err
		}
	}
	if sum != nil {
		if err := os.WriteFile(filepath.Join(tmp, "atlas.sum"), sum, 0o644); err != nil {
			return atlasLintResult{}, err
		}
	}
	args := []string{"migrate", "lint"}
	if _, err := os.Stat(filepath.Join(repo, "atlas.hcl")); err == nil {
		args = append(args, "--config", "file://atlas.hcl")
	}
	args = append(args, "--dir", "file://"+filepath.ToSlash(tmp), "--dev-url", devURL,
		"--latest", strconv.Itoa(n), "--format", "{{ json .Files }}")
	cmd := exec.CommandContext(ctx, atlas, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	res := atlasLintResult{
		Command: fmt.Sprintf("atlas migrate lint --dir file://%s --dev-url <empty database> --latest %d", dir, n),
		Ran:     true,
	}
	out := bytes.TrimSpace(stdout.Bytes())
	if len(out) == 0 || out[0] != '[' {
		if runErr == nil {
			return res, nil // nothing to report
		}
		return res, fmt.Errorf("atlas migrate lint: %v: %s%s", runErr, strings.TrimSpace(stderr.String()), out)
	}
	if err := json.Unmarshal(out, &res.Files); err != nil {
		return res, fmt.Errorf("atlas migrate lint: decode output: %w", err)
	}
	return res, nil
}

// mergeAtlas turns Atlas diagnostics into findings. A diagnostic on the same
// statement as one of deploydb's findings of the same rule is attached to
// it (Codes) instead of being listed twice. For the rules deploydb checks
// itself, a diagnostic on a statement that deploydb's replay examined and
// found fine is a warning: Atlas v0.12 misreads some statements (it sees no
// CONCURRENTLY on an index with a quoted mixed-case name) and judges
// "existing" tables per file rather than against the base. analyzed maps
// file names to the statements the replay examined.
func mergeAtlas(findings []Finding, res atlasLintResult, files []*migrationFile, dir string, analyzed map[string]map[int]bool) []Finding {
	byName := map[string]*migrationFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	for _, fr := range res.Files {
		f := byName[fr.Name]
		if fr.Name == "atlas.sum" && fr.Error != "" {
			findings = append(findings, Finding{Section: "lint", Rule: "atlas", Where: dir + "/atlas.sum",
				Message: "atlas migrate lint did not run: " + fr.Error + " (see section 3).",
				Fix:     "run `make migration-hash` after editing a new migration file.", stmt: -1})
			continue
		}
		if fr.Error != "" && len(fr.Reports) == 0 {
			dup := false
			for _, fd := range findings {
				dup = dup || (fd.Rule == "apply" && fd.file == fr.Name)
			}
			if dup {
				continue
			}
			findings = append(findings, Finding{Section: "lint", Rule: "apply", Where: dir + "/" + fr.Name,
				Message: "atlas migrate lint: " + fr.Error, Fix: mustRule("apply").Fix, file: fr.Name, stmt: -1})
			continue
		}
		for _, r := range fr.Reports {
			for _, d := range r.Diagnostics {
				rule, ok := ruleForAtlasCode(d.Code)
				if !ok {
					rule = Rule{Name: "atlas", Fix: "see the Atlas documentation for " + d.Code + "."}
				}
				stmt, where := -1, dir+"/"+fr.Name
				if f != nil && len(f.Stmts) > 0 && !(d.Code == "PG103" && d.Pos == 0) {
					stmt = f.stmtAt(d.Pos)
					where = fmt.Sprintf("%s/%s:%d", dir, fr.Name, f.line(f.Stmts[stmt].Pos))
				}
				merged := false
				for i := range findings {
					fd := &findings[i]
					if fd.Section == "lint" && fd.file == fr.Name && fd.Rule == rule.Name &&
						(fd.stmt == stmt || d.Code == "PG103") {
						fd.Codes = appendUnique(fd.Codes, d.Code)
						merged = true
						if d.Code != "PG103" {
							break
						}
					}
				}
				if merged {
					continue
				}
				fd := Finding{Section: "lint", Rule: rule.Name, Where: where,
					Message: strings.TrimSuffix(d.Text, ".") + ".", Fix: rule.Fix, Codes: []string{d.Code},
					file: fr.Name, stmt: stmt, allow: true}
				if rule.Own && stmt >= 0 && analyzed[fr.Name][stmt] {
					fd.Warning = true
					fd.Message += " deploydb's replay of this statement found no such problem."
				}
				findings = append(findings, fd)
			}
		}
	}
	return findings
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
