#!/usr/bin/env bash
# Every godoc Example must have an "// Output:" line, so that go test runs it
# (an Example without one is only compiled). Lists the offenders.
set -euo pipefail
bad=$(git ls-files '*_test.go' | xargs awk '
	FNR == 1 { if (name != "" && !out) print file ": " name; name = ""; file = FILENAME }
	/^func Example[A-Za-z0-9_]*\(\) \{/ { if (name != "" && !out) print file ": " name; name = $2; out = 0; next }
	/^func / { if (name != "" && !out) print file ": " name; name = ""; next }
	name != "" && /^[[:space:]]*\/\/ (Unordered output|Output):/ { out = 1 }
	END { if (name != "" && !out) print file ": " name }
')
if [ -n "$bad" ]; then
	echo "$bad"
	echo "these Examples have no // Output: line, so go test never runs them: add one" >&2
	exit 1
fi
echo "ok: every Example has an Output line"
