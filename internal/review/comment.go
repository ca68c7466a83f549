package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// CommentLimit is the longest comment body the review posts: GitHub
// refuses bodies over 65,536 characters; this leaves room for the note
// that says where the full report is.
const CommentLimit = 65_000

// CommentBody returns the pull-request comment for a report. It starts with
// Marker (added if the report lacks it) and is at most limit bytes: a longer
// report is cut at a line boundary, any code fence or <details> block left
// open is closed, and note (e.g. where the full report is) is appended.
func CommentBody(report string, limit int, note string) string {
	body := strings.TrimRight(report, "\n") + "\n"
	if !strings.HasPrefix(body, Marker) {
		body = Marker + "\n" + body
	}
	if len(body) <= limit {
		return body
	}
	tail := "\n---\n⚠️ The report is longer than a comment can be and was cut here. " + note + "\n"
	// Room for the tail and for closing what the cut leaves open.
	budget := limit - len(tail) - 200
	cut := body[:max(budget, 0)]
	if i := strings.LastIndexByte(cut, '\n'); i >= 0 {
		cut = cut[:i+1]
	}
	var closing strings.Builder
	fence := ""
	details := 0
	for _, line := range strings.Split(cut, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case fence != "":
			if strings.HasPrefix(t, fence) && strings.Trim(t, "`") == "" {
				fence = ""
			}
		case strings.HasPrefix(t, "```"):
			fence = t[:len(t)-len(strings.TrimLeft(t, "`"))]
		default:
			details += strings.Count(t, "<details") - strings.Count(t, "</details>")
		}
	}
	if fence != "" {
		closing.WriteString(fence + "\n")
	}
	for ; details > 0; details-- {
		closing.WriteString("\n</details>\n")
	}
	return cut + closing.String() + tail
}

// ghComment is the part of a GitHub issue comment the review reads.
type ghComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// PostComment creates the review comment on pull request pr of repo
// (owner/name), or updates the one an earlier run posted: the first
// comment whose body starts with Marker. It runs gh (the GitHub CLI, which
// reads its token from GH_TOKEN) and returns "created" or "updated" with
// the comment's id.
func PostComment(ctx context.Context, gh, repo string, pr int, body string) (action string, id int64, err error) {
	if !strings.Contains(repo, "/") || pr <= 0 {
		return "", 0, fmt.Errorf("post comment: want a repository owner/name and a pull request number, got %q and %d", repo, pr)
	}
	out, err := runGh(ctx, gh, nil, "api", "--paginate", fmt.Sprintf("repos/%s/issues/%d/comments?per_page=100", repo, pr))
	if err != nil {
		return "", 0, fmt.Errorf("list comments: %w", err)
	}
	existing, err := findReviewComment(out)
	if err != nil {
		return "", 0, err
	}
	payload, err := json.Marshal(map[string]string{"body": body})
	if err != nil {
		return "", 0, err
	}
	if existing != 0 {
		action = "updated"
		out, err = runGh(ctx, gh, payload, "api", "--method", "PATCH",
			fmt.Sprintf("repos/%s/issues/comments/%d", repo, existing), "--input", "-")
	} else {
		action = "created"
		out, err = runGh(ctx, gh, payload, "api", "--method", "POST",
			fmt.Sprintf("repos/%s/issues/%d/comments", repo, pr), "--input", "-")
	}
	if err != nil {
		return "", 0, fmt.Errorf("%s comment: %w", strings.TrimSuffix(action, "d"), err)
	}
	var c ghComment
	if err := json.Unmarshal(out, &c); err != nil {
		return "", 0, fmt.Errorf("decode the comment gh returned: %w", err)
	}
	return action, c.ID, nil
}

// findReviewComment returns the id of the first comment whose body starts
// with Marker in the output of `gh api --paginate`, which is one JSON array
// per page, concatenated.
func findReviewComment(pages []byte) (int64, error) {
	dec := json.NewDecoder(bytes.NewReader(pages))
	for {
		var page []ghComment
		err := dec.Decode(&page)
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("decode comments: %w", err)
		}
		for _, c := range page {
			if strings.HasPrefix(strings.TrimLeft(c.Body, " \r\n"), Marker) {
				return c.ID, nil
			}
		}
	}
}

func runGh(ctx context.Context, gh string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, gh, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
