package review

import (
	"fmt"
	"strings"
	"time"

	"github.com/deploydb/deploydb/internal/schematriggers"
)

// Marker is the first line of every report; the PR-comment script finds
// its earlier comment by it.
const Marker = "<!-- deploydb-review -->"

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sectionStatus summarizes a section's findings.
func (r *Report) sectionStatus(section string) (errs, allowed, warnings int) {
	for _, f := range r.Findings {
		if f.Section != section {
			continue
		}
		switch {
		case f.Allowed != "":
			allowed++
		case f.Warning:
			warnings++
		default:
			errs++
		}
	}
	return
}

func statusIcon(errs int) string {
	if errs > 0 {
		return "❌"
	}
	return "✅"
}

func (r *Report) statusLine(section, ok string) string {
	errs, allowed, warnings := r.sectionStatus(section)
	var parts []string
	if errs > 0 {
		parts = append(parts, plural(errs, "error", "errors"))
	}
	if allowed > 0 {
		parts = append(parts, fmt.Sprintf("%d allowed", allowed))
	}
	if warnings > 0 {
		parts = append(parts, plural(warnings, "warning", "warnings"))
	}
	if errs == 0 {
		parts = append([]string{ok}, parts...)
	}
	return statusIcon(errs) + " " + strings.Join(parts, ", ")
}

// Markdown renders the report for a terminal, a file and a PR comment.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	errs := r.Errors()
	w("%s\n", Marker)
	if errs == 0 {
		w("## ✅ deploydb schema review: no errors\n\n")
	} else {
		w("## ❌ deploydb schema review: %s\n\n", plural(errs, "error", "errors"))
	}
	head := "`" + shortHash(r.Base.Head) + "`"
	if r.Base.Dirty {
		head += " with uncommitted changes"
	}
	w("Base `%s` (merge base `%s`, %s); head %s. %s, %s edited, %s removed. Reviewed in %s.\n\n",
		r.Base.Ref, r.Base.Short(), mdInline(r.Base.Subject), head,
		plural(len(r.NewFiles), "new migration file", "new migration files"),
		fmt.Sprint(len(r.Edited)), fmt.Sprint(len(r.Removed)), r.Duration.Round(time.Second))

	w("| section | result |\n|---|---|\n")
	if r.Sections[SectionChanges] {
		w("| 1. Schema changes | %s |\n", r.statusLine(SectionChanges, changeSummary(r)))
	}
	if r.Sections[SectionLint] {
		w("| 2. Lint | %s |\n", r.statusLine(SectionLint, "no findings"))
	}
	if r.Sections[SectionDrift] {
		w("| 3. Drift | %s |\n", r.statusLine(SectionDrift, "in sync"))
	}
	if r.Sections[SectionPlans] {
		skipped, allowed := 0, 0
		for _, p := range r.Plans {
			if p.Skipped != "" {
				skipped++
			}
			if p.Query.AllowScan != "" {
				allowed++
			}
		}
		ok := fmt.Sprintf("%d queries explained, %d skipped, %d opted out of scan checks", len(r.Plans)-skipped, skipped, allowed)
		w("| 4. Query plans | %s |\n", r.statusLine(SectionPlans, ok))
	}
	if r.Sections[SectionERD] {
		w("| 5. ER diagram | ✅ below and in %s |\n", ERDPath)
	}
	w("\n")

	if errs > 0 {
		w("### Errors\n\n")
		i := 0
		for _, f := range r.Findings {
			if !f.IsError() {
				continue
			}
			i++
			w("%d. %s\n", i, findingLine(f))
		}
		w("\n")
	}

	if r.Sections[SectionChanges] {
		r.writeChanges(&b)
	}
	if r.Sections[SectionLint] {
		r.writeLint(&b)
	}
	if r.Sections[SectionDrift] {
		r.writeDrift(&b)
	}
	if r.Sections[SectionPlans] {
		r.writePlans(&b)
	}
	if r.Sections[SectionERD] && r.Mermaid != "" {
		w("### 5. ER diagram\n\n")
		w("Generated from the migrations of the head (`make erd` writes %s).\n\n", ERDPath)
		w("<details%s><summary>Mermaid diagram</summary>\n\n", map[bool]string{true: " open"}[len(r.Changes) > 0])
		w("%s\n</details>\n", fence("mermaid", r.Mermaid))
	}
	return b.String()
}

func changeSummary(r *Report) string {
	carried := ""
	if len(r.triggerCarriers()) > 0 {
		carried = ", " + schematriggers.FileName + " carried"
	}
	if len(r.Changes) == 0 {
		return "no schema change" + carried
	}
	n := 0
	for _, c := range r.Changes {
		if !strings.HasPrefix(c, "  ") {
			n++
		}
	}
	return plural(n, "change", "changes") + carried
}

// triggerCarriers returns the new migration files that carry
// schema_triggers.sql.
func (r *Report) triggerCarriers() []*migrationFile {
	var out []*migrationFile
	for _, f := range r.NewFiles {
		if f.Triggers != nil {
			out = append(out, f)
		}
	}
	return out
}

// findingLine renders one finding as a Markdown list item body.
func findingLine(f Finding) string {
	rule := "**" + f.Rule + "**"
	if len(f.Codes) > 0 {
		rule += " (atlas " + strings.Join(f.Codes, ", ") + ")"
	}
	s := fmt.Sprintf("%s `%s`: %s", rule, f.Where, mdInline(f.Message))
	switch {
	case f.Fix == "":
	case f.Section == SectionLint:
		s += " Safe alternative: " + f.Fix
	default:
		s += " Fix: " + f.Fix
	}
	return s
}

// mdInline keeps a message on one Markdown line.
func mdInline(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}

func (r *Report) writeChanges(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### 1. Schema changes since the base\n\n")
	if len(r.Changes) == 0 {
		w("The migrated schema is the same as at the base.\n\n")
	} else {
		for _, c := range r.Changes {
			if strings.HasPrefix(c, "  ") {
				w("%s\n", c) // a detail of the change above
				continue
			}
			w("- %s\n", c)
		}
		w("\n")
	}
	for _, e := range r.Edited {
		w("- ❌ `%s/%s` was **edited** after it was merged.\n", r.Dir, e)
	}
	for _, e := range r.Removed {
		w("- ❌ `%s/%s` was **removed** after it was merged.\n", r.Dir, e)
	}
	if len(r.NewFiles) == 0 {
		w("No new migration files.\n\n")
		return
	}
	for _, f := range r.triggerCarriers() {
		w("`%s/%s` carries %s (sha256 %s, marker on line %d): the functions and triggers it creates are "+
			"outside the comparison above; their SQL is in the file below.\n\n", r.Dir, f.Name, schematriggers.FileName,
			f.Triggers.Short(), f.Triggers.Line)
	}
	w("New migration files:\n\n")
	for _, f := range r.NewFiles {
		mode := "one transaction"
		if f.NoTx {
			mode = "no transaction (`atlas:txmode none`)"
		}
		if f.Triggers != nil {
			mode += ", carries " + schematriggers.FileName + " (sha256 " + f.Triggers.Short() + ")"
		}
		w("<details><summary><code>%s/%s</code>: %s, %s</summary>\n\n", r.Dir, f.Name,
			plural(len(f.Stmts), "statement", "statements"), mode)
		w("%s\n</details>\n\n", fence("sql", string(f.Data)))
	}
}

func (r *Report) writeLint(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### 2. Lint\n\n")
	if len(r.NewFiles) == 0 && len(r.Edited) == 0 && len(r.Removed) == 0 {
		w("No new migration files: nothing to lint.\n\n")
	} else if r.AtlasLint.Ran {
		w("`%s` with the analyzers configured in `atlas.hcl`, then deploydb's own rules on a replay of each "+
			"statement against a copy of the base schema.\n\n", r.AtlasLint.Command)
	}
	var lint []Finding
	for _, f := range r.Findings {
		if f.Section == SectionLint {
			lint = append(lint, f)
		}
	}
	if len(lint) > 0 {
		w("| | rule | where | finding | safe alternative |\n|---|---|---|---|---|\n")
		for _, f := range lint {
			icon := "❌"
			switch {
			case f.Allowed != "":
				icon = "☑️ allowed: " + mdCell(f.Allowed)
			case f.Warning:
				icon = "⚠️"
			}
			rule := f.Rule
			if len(f.Codes) > 0 {
				rule += " (" + strings.Join(f.Codes, ", ") + ")"
			}
			w("| %s | %s | `%s` | %s | %s |\n", icon, rule, f.Where, mdCell(mdInline(f.Message)), mdCell(f.Fix))
		}
		w("\n")
	}
	w("<details><summary>Rules</summary>\n\n")
	var noAllow []string
	for _, rl := range Rules {
		if rl.NoAllow {
			noAllow = append(noAllow, rl.Name)
		}
	}
	w("A reviewed exception is a line `-- deploydb:allow <rule> <reason>` in the migration file (then `make migration-hash`); "+
		"%s take none.\n\n", strings.Join(noAllow, ", "))
	w("| rule | catches | atlas codes |\n|---|---|---|\n")
	for _, rl := range Rules {
		codes := strings.Join(rl.Atlas, ", ")
		if rl.Own {
			if codes == "" {
				codes = "deploydb"
			} else {
				codes = "deploydb + " + codes
			}
		}
		w("| %s | %s | %s |\n", rl.Name, mdCell(rl.What), codes)
	}
	w("\n</details>\n\n")
}

func (r *Report) writeDrift(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### 3. Drift\n\n")
	for _, c := range r.Drift {
		switch {
		case c.Skipped != "":
			w("- ⏭️ %s: skipped (%s)\n", c.Name, c.Skipped)
		case c.OK:
			w("- ✅ %s\n", c.Name)
		default:
			w("- ❌ %s. Fix: %s\n", c.Name, c.Fix)
			if c.Detail != "" {
				w("\n%s\n", indent(detailBlock(c.Detail), "  "))
			}
		}
	}
	w("\n")
}

// detailBlock fences tool output unless it already holds Markdown.
func detailBlock(s string) string {
	if strings.Contains(s, "```") {
		return s
	}
	return fence("", s)
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pre + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func (r *Report) writePlans(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### 4. Query plans\n\n")
	st := r.Seed
	if st.Rows == nil {
		w("The plans database could not be seeded.\n\n")
		return
	}
	w("Every query of `queries/` under `EXPLAIN (ANALYZE, BUFFERS)` in a rolled-back transaction, on a deterministic "+
		"data set (scale %g: %s apps, %s builds, %s deployments, %s operations; hot-app holds %.0f%% of the builds; "+
		"seeded in %s%s). Plans are the ones PostgreSQL makes for the values shown. Errors: a Seq Scan on %s; a Sort of "+
		"more rows than the page; more than %d + %d × page shared buffers.\n\n",
		st.Scale, num(float64(st.Rows["apps"])), num(float64(st.Rows["builds"])), num(float64(st.Rows["deployments"])),
		num(float64(st.Rows["deployment_operations"])), 100*st.HotAppShare, st.Duration.Round(100*time.Millisecond),
		map[bool]string{true: "; statistics from every row, so the plans repeat from run to run"}[st.ExactSamples],
		"builds, deployments or deployment_operations", bufferBase, bufferPerRow)
	w("| | query | plan | rows | page | buffers | ms |\n|---|---|---|--:|--:|--:|--:|\n")
	for _, p := range r.Plans {
		q := p.Query
		icon := "✅"
		switch {
		case p.Skipped != "":
			icon = "⏭️"
		case p.Err != "":
			icon = "❌"
		case len(p.Problems) > 0 && q.AllowScan != "":
			icon = "☑️"
		case len(p.Problems) > 0:
			icon = "❌"
		}
		if p.Skipped != "" {
			w("| %s | %s | skipped: %s | | | | |\n", icon, q.Name, mdCell(p.Skipped))
			continue
		}
		if p.Err != "" {
			w("| %s | %s | %s | | | | |\n", icon, q.Name, mdCell(p.Err))
			continue
		}
		plan := mdCell(p.Shape)
		for _, pr := range p.Problems {
			plan += "<br>**" + pr.Rule + "**: " + mdCell(pr.Text)
		}
		w("| %s | %s | %s | %d | %d | %d | %.2f |\n", icon, q.Name, plan, p.Rows, p.Page, p.Buffers(), p.ExecMS)
	}
	w("\n")
	warned := false
	for _, f := range r.Findings {
		if f.Section == SectionPlans && f.Warning {
			w("- ⚠️ %s\n", findingLine(f))
			warned = true
		}
	}
	if warned {
		w("\n")
	}
	var allowed []string
	for _, p := range r.Plans {
		if p.Query.AllowScan != "" {
			allowed = append(allowed, fmt.Sprintf("- %s: %s", p.Query.Name, mdInline(p.Query.AllowScan)))
		}
	}
	if len(allowed) > 0 {
		w("Queries that opt out of the scan checks (`-- %s <reason>`):\n\n%s\n\n", allowScanDirective, strings.Join(allowed, "\n"))
	} else {
		w("No query opts out of the scan checks (`-- %s <reason>`).\n\n", allowScanDirective)
	}
	w("<details><summary>Parameter values and plans</summary>\n\n")
	for _, p := range r.Plans {
		if p.Skipped != "" || p.Tree == "" {
			continue
		}
		var params []string
		for _, pu := range p.Params {
			params = append(params, fmt.Sprintf("`%s` = %s (%s)", pu.Name, mdCell(pu.value.String()), pu.Note))
		}
		if len(params) == 0 {
			params = append(params, "none")
		}
		w("**%s** (%s:%d): %s\n\n", p.Query.Name, p.Query.File, p.Query.Line, strings.Join(params, ", "))
		w("%s\n", fence("", p.Tree))
	}
	w("</details>\n\n")
}
