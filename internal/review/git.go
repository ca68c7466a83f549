package review

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// git runs git in the repository and returns its standard output.
func git(ctx context.Context, repo string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// BaseInfo says what the review compares the working tree with.
type BaseInfo struct {
	Ref     string // as given, or the default branch it was derived from
	Commit  string // full hash of the merge base of Ref and HEAD
	Subject string // first line of its commit message
	Head    string // full hash of HEAD
	Dirty   bool   // the working tree has changes that HEAD does not
}

// Short returns the abbreviated base commit.
func (b BaseInfo) Short() string { return shortHash(b.Commit) }

func shortHash(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}

// defaultBases are tried in order when no base is given.
var defaultBases = []string{"main", "origin/main"}

// resolveBase finds the merge base of ref (or of the first default branch
// that exists) and HEAD.
func resolveBase(ctx context.Context, repo, ref string) (BaseInfo, error) {
	head, err := git(ctx, repo, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return BaseInfo{}, fmt.Errorf("the review needs a git repository with at least one commit: %w", err)
	}
	b := BaseInfo{Ref: ref, Head: strings.TrimSpace(head)}
	if ref == "" {
		for _, cand := range defaultBases {
			if _, err := git(ctx, repo, "rev-parse", "--verify", "--quiet", cand+"^{commit}"); err == nil {
				b.Ref = cand
				break
			}
		}
		if b.Ref == "" {
			return BaseInfo{}, fmt.Errorf("no base given and no branch %s: run with BASE=<git ref>",
				strings.Join(defaultBases, " or "))
		}
	}
	mb, err := git(ctx, repo, "merge-base", b.Ref, "HEAD")
	if err != nil {
		return BaseInfo{}, fmt.Errorf("base %q: %w", b.Ref, err)
	}
	b.Commit = strings.TrimSpace(mb)
	subj, err := git(ctx, repo, "log", "-1", "--format=%s", b.Commit)
	if err != nil {
		return BaseInfo{}, err
	}
	b.Subject = strings.TrimSpace(subj)
	status, err := git(ctx, repo, "status", "--porcelain", "--untracked-files=normal")
	if err != nil {
		return BaseInfo{}, err
	}
	b.Dirty = strings.TrimSpace(status) != ""
	return b, nil
}

// sourceFile is one file of a directory, at the base commit or in the
// working tree.
type sourceFile struct {
	Name string // base name, e.g. 20261122003720_init.sql
	Data []byte
}

// filesAtCommit returns the files directly inside dir (slash-separated,
// relative to the repository root) at commit whose names end in ext, sorted
// by name. A directory that does not exist at the commit has no files.
func filesAtCommit(ctx context.Context, repo, commit, dir, ext string) ([]sourceFile, error) {
	out, err := git(ctx, repo, "ls-tree", "--name-only", commit, dir+"/")
	if err != nil {
		return nil, err
	}
	var files []sourceFile
	for _, p := range strings.Split(strings.TrimSpace(out), "\n") {
		if p == "" || !strings.HasSuffix(p, ext) {
			continue
		}
		data, err := showFile(ctx, repo, commit, p)
		if err != nil {
			return nil, err
		}
		files = append(files, sourceFile{Name: path.Base(p), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// showFile returns the content of the file at path (slash-separated,
// relative to the repository root) at commit.
func showFile(ctx context.Context, repo, commit, p string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "show", commit+":"+p)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git show %s:%s: %w: %s", shortHash(commit), p, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// filesInTree returns the files directly inside dir of the working tree
// whose names end in ext, sorted by name.
func filesInTree(repo, dir, ext string) ([]sourceFile, error) {
	entries, err := os.ReadDir(filepath.Join(repo, filepath.FromSlash(dir)))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []sourceFile
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(dir), e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, sourceFile{Name: e.Name(), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}
