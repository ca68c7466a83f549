package review

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fixtureNameRE reads the file-name directive of a fixture:
// "-- fixture: name=<file>" names the new migration file; "-- fixture: edit"
// appends the fixture to the last migration of the base instead.
var fixtureNameRE = regexp.MustCompile(`(?m)^-- fixture: (name=(\S+)|edit)\s*$`)

// TestRuleFixtures runs the review over a throwaway git history for every
// fixture in testdata/fixtures/<rule>/: the base commit holds the project's
// migrations and queries, the working tree adds the fixture as a new
// migration. Every bad*.sql must fail the review with an error of its rule,
// carrying the rule's safe alternative; every good*.sql must pass with no
// error at all.
func TestRuleFixtures(t *testing.T) {
	t.Parallel()
	dirs, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, d := range dirs {
		rule := d.Name()
		if _, ok := ruleByName(rule); !ok {
			t.Errorf("testdata/fixtures/%s: no such rule", rule)
			continue
		}
		files, err := filepath.Glob(filepath.Join("testdata", "fixtures", rule, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		var bad, good int
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".sql")
			switch {
			case strings.HasPrefix(name, "bad"):
				bad++
			case strings.HasPrefix(name, "good"):
				good++
			default:
				t.Errorf("%s: fixture names start with bad or good", f)
				continue
			}
			t.Run(rule+"/"+name, func(t *testing.T) {
				t.Parallel()
				runFixture(t, rule, f, strings.HasPrefix(name, "bad"))
			})
		}
		if bad == 0 || good == 0 {
			t.Errorf("testdata/fixtures/%s: want at least one bad and one good fixture, have %d and %d", rule, bad, good)
		}
		covered[rule] = true
	}
	for _, r := range Rules {
		if !covered[r.Name] {
			t.Errorf("rule %s has no fixtures in testdata/fixtures/%s", r.Name, r.Name)
		}
	}
}

func runFixture(t *testing.T, rule, path string, bad bool) {
	sql, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	repo := fixtureRepo(t)
	migrations := filepath.Join(repo, "db", "migrations")
	name := "20300101000000_" + rule + "_" + strings.TrimSuffix(filepath.Base(path), ".sql") + ".sql"
	switch m := fixtureNameRE.FindSubmatch(sql); {
	case m == nil:
	case string(m[1]) == "edit":
		name = fixtureAuditFile
		old, err := os.ReadFile(filepath.Join(migrations, name))
		if err != nil {
			t.Fatal(err)
		}
		sql = append(old, sql...)
	default:
		name = string(m[2])
	}
	if err := os.WriteFile(filepath.Join(migrations, name), sql, 0o644); err != nil {
		t.Fatal(err)
	}
	rehash(t, repo)

	rep := reviewRepo(t, repo, Options{Sections: []string{SectionChanges, SectionLint}})
	md := rep.Markdown()
	if !bad {
		if n := rep.Errors(); n != 0 {
			t.Fatalf("the good fixture fails the review with %d errors:\n%s", n, findingsText(rep.Findings))
		}
		if strings.Contains(md, "❌") {
			t.Errorf("the report of a good fixture shows an error mark:\n%s", md)
		}
		return
	}
	var hit *Finding
	for i, f := range rep.Findings {
		if f.Rule == rule && f.IsError() {
			hit = &rep.Findings[i]
			break
		}
	}
	if hit == nil {
		t.Fatalf("the bad fixture did not fail with rule %s; findings:\n%s", rule, findingsText(rep.Findings))
	}
	if hit.Fix == "" {
		t.Errorf("the %s finding has no safe alternative", rule)
	}
	if !strings.Contains(md, "**"+rule+"**") || !strings.Contains(md, hit.Fix) {
		t.Errorf("the report's error list does not name %s with its safe alternative:\n%s", rule, md)
	}
	t.Logf("findings:\n%s", findingsText(rep.Findings))
}

// TestRulesDocumented keeps the rule table complete: every rule says what
// it catches and what to do instead, and the names are unique.
func TestRulesDocumented(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var codes []string
	for _, r := range Rules {
		if seen[r.Name] {
			t.Errorf("rule %s is listed twice", r.Name)
		}
		seen[r.Name] = true
		if r.What == "" || r.Fix == "" {
			t.Errorf("rule %s needs What and Fix", r.Name)
		}
		codes = append(codes, r.Atlas...)
	}
	sort.Strings(codes)
	for i := 1; i < len(codes); i++ {
		if codes[i] == codes[i-1] {
			t.Errorf("atlas code %s belongs to two rules", codes[i])
		}
	}
}
