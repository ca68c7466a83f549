package review

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGh is a stand-in for the GitHub CLI: it logs each call's arguments
// to calls, answers `gh api --paginate …/comments` with the pages in
// pages.json, and answers PATCH and POST by saving the JSON sent on stdin
// to sent.json and returning a comment with id 900 (or the id in the path
// for PATCH). A file named fail next to it makes it fail as gh does.
const fakeGh = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
if [ -f "$dir/fail" ]; then
	echo "HTTP 401: Bad credentials" >&2
	exit 1
fi
case "$*" in
*"--method PATCH"*)
	cat > "$dir/sent.json"
	id=$(echo "$*" | sed 's|.*issues/comments/\([0-9]*\).*|\1|')
	echo "{\"id\": $id}" ;;
*"--method POST"*)
	cat > "$dir/sent.json"
	echo '{"id": 900}' ;;
*)
	cat "$dir/pages.json" ;;
esac
`

// newFakeGh writes the fake into a temp dir with the given comment pages
// and returns its path.
func newFakeGh(t *testing.T, pages ...[]ghComment) string {
	t.Helper()
	dir := t.TempDir()
	gh := filepath.Join(dir, "gh")
	if err := os.WriteFile(gh, []byte(fakeGh), 0o755); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, p := range pages {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, "pages.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return gh
}

func fakeCalls(t *testing.T, gh string) []string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(gh), "calls"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func fakeSent(t *testing.T, gh string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(gh), "sent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("sent %s: %v", b, err)
	}
	return m["body"]
}

func TestPostCommentCreates(t *testing.T) {
	t.Parallel()
	gh := newFakeGh(t,
		[]ghComment{{ID: 1, Body: "LGTM"}, {ID: 2, Body: "quoting: " + Marker}},
		[]ghComment{})
	body := CommentBody("## ✅ report\n", CommentLimit, "")
	action, id, err := PostComment(context.Background(), gh, "acme/deploydb", 42, body)
	if err != nil || action != "created" || id != 900 {
		t.Fatalf("PostComment: %q %d %v", action, id, err)
	}
	calls := fakeCalls(t, gh)
	want := []string{
		"api --paginate repos/acme/deploydb/issues/42/comments?per_page=100",
		"api --method POST repos/acme/deploydb/issues/42/comments --input -",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if got := fakeSent(t, gh); got != body {
		t.Errorf("sent body %q, want %q", got, body)
	}
}

func TestPostCommentUpdatesInPlace(t *testing.T) {
	t.Parallel()
	// The earlier report is on the second page of comments.
	gh := newFakeGh(t,
		[]ghComment{{ID: 1, Body: "first"}, {ID: 2, Body: "second"}},
		[]ghComment{{ID: 77, Body: Marker + "\n## ❌ old report"}, {ID: 78, Body: Marker + "\n## newer duplicate"}})
	action, id, err := PostComment(context.Background(), gh, "acme/deploydb", 42, Marker+"\n## ✅ new report\n")
	if err != nil || action != "updated" || id != 77 {
		t.Fatalf("PostComment: %q %d %v", action, id, err)
	}
	calls := fakeCalls(t, gh)
	if len(calls) != 2 || calls[1] != "api --method PATCH repos/acme/deploydb/issues/comments/77 --input -" {
		t.Errorf("calls %q", calls)
	}
	if got := fakeSent(t, gh); !strings.Contains(got, "new report") {
		t.Errorf("sent %q", got)
	}
}

func TestPostCommentErrors(t *testing.T) {
	t.Parallel()
	gh := newFakeGh(t, []ghComment{})
	if _, _, err := PostComment(context.Background(), gh, "deploydb", 42, "x"); err == nil {
		t.Error("a repository without owner was accepted")
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(gh), "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := PostComment(context.Background(), gh, "acme/deploydb", 42, "x")
	if err == nil || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("gh failure: %v", err)
	}
	if calls := fakeCalls(t, gh); len(calls) != 1 {
		t.Errorf("after a failed listing nothing may be posted; calls %q", calls)
	}
	if _, err := findReviewComment([]byte(`[{"id": 1, "body": "x"}] not json`)); err == nil {
		t.Error("garbage in gh's output was accepted")
	}
}

// TestPostReviewCommentScript runs scripts/post-review-comment.sh as the
// workflow does, against the fake gh: first run creates the comment, and a
// dry run prints the body it would post.
func TestPostReviewCommentScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the review command")
	}
	root := projectRoot(t)
	gh := newFakeGh(t, []ghComment{{ID: 5, Body: Marker + "\nold"}})
	report := filepath.Join(t.TempDir(), "review.md")
	if err := os.WriteFile(report, []byte("## ✅ deploydb schema review: no errors\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := filepath.Join(root, "scripts", "post-review-comment.sh")
	out, err := exec.CommandContext(ctx, script, "-repo", "acme/deploydb", "-pr", "7", "-gh", gh, report).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if !strings.Contains(string(out), "updated comment 5 on acme/deploydb#7") {
		t.Errorf("output %q", out)
	}
	if got := fakeSent(t, gh); !strings.HasPrefix(got, Marker+"\n## ✅ deploydb schema review") {
		t.Errorf("sent %q", got)
	}
	out, err = exec.CommandContext(ctx, script, "-dry-run", report).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), Marker) {
		t.Errorf("dry run: %v\n%s", err, out)
	}
}
