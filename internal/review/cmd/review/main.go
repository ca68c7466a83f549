// Command review writes deploydb's schema review: one Markdown report of
// the schema changes since a base commit, lint findings on the new
// migrations, drift between the sources and their generated files, query
// plans on a seeded database, and the ER diagram. `make review` runs it:
//
//	go run ./internal/review/cmd/review -base main -out out/review.md
//
// It prints the report, writes it to -out, and exits 1 when the report has
// errors (2 when the review could not run). PostgreSQL comes from
// internal/pgtest (TEST_DATABASE_URL, Docker or the local server binaries).
//
// Two subcommands serve the same report:
//
//	review erd [-check]                                   write (or check) docs/schema.md
//	review comment -repo OWNER/NAME -pr N [-dry-run] FILE post FILE on the pull request, or update the earlier comment
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb/internal/pgtest"
	"github.com/deploydb/deploydb/internal/review"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "erd":
			return erd(args[1:])
		case "comment":
			return comment(args[1:])
		}
	}
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	var (
		base     = fs.String("base", "", "git ref to compare with (default: the merge base of HEAD and main)")
		out      = fs.String("out", "out/review.md", "file to write the report to (\"\" for none)")
		repo     = fs.String("repo", ".", "repository root")
		sections = fs.String("sections", strings.Join(review.AllSections, ","), "sections to run")
		scale    = fs.Float64("scale", envScale(), "size of the plans data set (1 = 40k apps, 300k builds; env REVIEW_SCALE)")
		only     = fs.String("queries", "", "explain only the queries whose names match this regexp")
		atlas    = fs.String("atlas", "", "atlas CLI (default <repo>/bin/atlas)")
		sqlc     = fs.String("sqlc", "", "sqlc CLI (default <repo>/bin/sqlc)")
		quiet    = fs.Bool("q", false, "do not print the report (the file is still written)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := review.Options{Repo: *repo, Base: *base, Atlas: *atlas, Sqlc: *sqlc, Scale: *scale, Log: os.Stderr}
	for _, s := range strings.Split(*sections, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Sections = append(o.Sections, s)
		}
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "review: -queries:", err)
			return 2
		}
		o.QueryFilter = re.MatchString
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review:", err)
		return 2
	}
	defer srv.Close()
	o.Server = srv

	rep, err := review.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review:", err)
		return 2
	}
	md := rep.Markdown()
	if !*quiet {
		fmt.Print(md)
	}
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "review:", err)
			return 2
		}
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "review:", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "review: report written to %s\n", *out)
	}
	if n := rep.Errors(); n > 0 {
		fmt.Fprintf(os.Stderr, "review: %d errors\n", n)
		return 1
	}
	return 0
}

func envScale() float64 {
	if v := os.Getenv("REVIEW_SCALE"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			return f
		}
	}
	return 1
}

// erd writes docs/schema.md from the working tree's migrations.
func erd(args []string) int {
	fs := flag.NewFlagSet("review erd", flag.ContinueOnError)
	repo := fs.String("repo", ".", "repository root")
	check := fs.Bool("check", false, "only report whether the file is up to date")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review erd:", err)
		return 2
	}
	defer srv.Close()
	doc, err := review.GenerateSchemaDoc(ctx, srv, *repo, "db/migrations")
	if err != nil {
		fmt.Fprintln(os.Stderr, "review erd:", err)
		return 2
	}
	path := filepath.Join(*repo, review.ERDPath)
	if *check {
		old, _ := os.ReadFile(path)
		if string(old) != doc {
			fmt.Fprintf(os.Stderr, "review erd: %s is stale: run make generate\n", review.ERDPath)
			return 1
		}
		fmt.Fprintf(os.Stderr, "review erd: %s is up to date\n", review.ERDPath)
		return 0
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "review erd:", err)
		return 2
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "review erd:", err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "review erd: wrote %s\n", review.ERDPath)
	return 0
}

// comment posts a report as a pull-request comment with gh.
func comment(args []string) int {
	fs := flag.NewFlagSet("review comment", flag.ContinueOnError)
	repo := fs.String("repo", os.Getenv("GITHUB_REPOSITORY"), "repository, owner/name")
	pr := fs.Int("pr", 0, "pull request number")
	gh := fs.String("gh", "gh", "GitHub CLI")
	note := fs.String("note", "The full report is the schema-review artifact of the workflow run.", "what to say when the report is cut")
	dry := fs.Bool("dry-run", false, "print the comment body instead of posting it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := "out/review.md"
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	report, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review comment:", err)
		return 2
	}
	body := review.CommentBody(string(report), review.CommentLimit, *note)
	if *dry {
		fmt.Print(body)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	action, id, err := review.PostComment(ctx, *gh, *repo, *pr, body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "review comment:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "review comment: %s comment %d on %s#%d (%d bytes)\n", action, id, *repo, *pr, len(body))
	return 0
}
