#!/usr/bin/env bash
# Posts the schema review (out/review.md, written by `make review`) as a
# comment on a pull request, or updates the comment an earlier run posted:
# the one whose first line is <!-- deploydb-review -->. A report too long
# for a comment is cut, with a note pointing at the workflow artifact.
# Needs the GitHub CLI (gh), authenticated by GH_TOKEN.
#
#   scripts/post-review-comment.sh -repo OWNER/NAME -pr NUMBER [-gh PATH] [-dry-run] [REPORT]
#
# REPORT is relative to the repository root (default out/review.md).
# .github/workflows/schema-review.yml calls it; the tests in internal/review
# run it against a fake gh.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/review/cmd/review comment "$@"
