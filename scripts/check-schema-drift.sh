#!/usr/bin/env bash
# Fails when schema.hcl has changes that no migration in db/migrations holds:
# Atlas re-diffs schema.hcl against a copy of the migration directory and
# must write nothing. Needs ATLAS_DEV_URL (run it through internal/devdb).
set -euo pipefail
atlas=${1:?usage: check-schema-drift.sh PATH_TO_ATLAS}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R db/migrations "$tmp/migrations"
"$atlas" migrate diff drift_check \
	--dir "file://$tmp/migrations" --to file://schema.hcl --dev-url "$ATLAS_DEV_URL" >/dev/null
if [ "$(ls "$tmp/migrations" | wc -l)" != "$(ls db/migrations | wc -l)" ]; then
	echo "schema.hcl has changes without a migration: run make migration NAME=..." >&2
	echo "the missing migration would be:" >&2
	cat "$tmp"/migrations/*drift_check.sql >&2
	exit 1
fi
echo "ok: re-diffing schema.hcl adds no migration"
