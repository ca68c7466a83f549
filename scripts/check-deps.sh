#!/usr/bin/env bash
# Import weight: what a consumer of deploydb links, and what the CD binary
# links. Fails when
#   - the root package pulls in a module other than pgx/v5 and what pgx itself
#     needs (no Atlas, HCL, cty or yaml),
#   - the CD binary (cmd/deploydb) links test infrastructure (testcontainers,
#     the Docker client, internal/pgtest),
#   - the root module's go.mod requires testcontainers, Docker or
#     OpenTelemetry (which would raise a consumer's versions of them).
set -euo pipefail
go=${GO:-go}
fail=0

# Modules providing the root package's non-standard dependencies.
allowed='^(github.com/deploydb/deploydb|github.com/jackc/pgx/v5|github.com/jackc/pgpassfile|github.com/jackc/pgservicefile|github.com/jackc/puddle/v2|golang.org/x/text|golang.org/x/sync|golang.org/x/crypto)$'
mods=$($go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u)
echo "root package: modules $(echo $mods | tr '\n' ' ')"
bad=$(echo "$mods" | grep -Ev "$allowed" || true)
if [ -n "$bad" ]; then
	echo "the root package pulls in modules beyond pgx: $bad" >&2
	fail=1
fi
heavy=$($go list -deps . | grep -E 'ariga.io|hashicorp|zclconf|yaml' || true)
if [ -n "$heavy" ]; then
	echo "the root package imports: $heavy" >&2
	fail=1
fi

cd_bad=$($go list -deps ./cmd/deploydb | grep -E 'testcontainers|moby|docker|internal/pgtest' || true)
echo "cmd/deploydb: $($go list -deps ./cmd/deploydb | grep -c '\.') non-standard packages"
if [ -n "$cd_bad" ]; then
	echo "the CD binary cmd/deploydb links test infrastructure: $cd_bad" >&2
	fail=1
fi

if grep -E 'testcontainers|moby|docker|opentelemetry' go.mod >/dev/null; then
	echo "the root module's go.mod requires test infrastructure (move it to internal/pgtest/pgcontainer):" >&2
	grep -E 'testcontainers|moby|docker|opentelemetry' go.mod >&2
	fail=1
fi
[ "$fail" = 0 ] && echo "ok: the root package needs only pgx; the CD binary links no test infrastructure"
exit "$fail"
