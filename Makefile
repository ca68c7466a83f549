# deploydb developer tasks. `make help` lists them.
#
# Tools are pinned in tools/<name>/go.mod (the only place their versions are
# written) and built into ./bin on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN   := $(CURDIR)/bin
SQLC  := $(BIN)/sqlc
ATLAS := $(BIN)/atlas
GO    ?= go
# Runs a command against a throwaway empty database (URL in ATLAS_DEV_URL).
DEVDB := $(GO) run ./internal/devdb --
# The schema review (internal/review); BASE is a git ref, empty for the
# merge base with main.
REVIEW := $(GO) run ./internal/review/cmd/review
BASE   ?=

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: $(SQLC) $(ATLAS) ## Build the pinned sqlc and Atlas CLIs into ./bin.

$(SQLC): tools/sqlc/go.mod tools/sqlc/go.sum
	@echo "building sqlc (first use; takes a couple of minutes)..."
	cd tools/sqlc && CGO_ENABLED=1 $(GO) build -o $(SQLC) github.com/sqlc-dev/sqlc/cmd/sqlc

$(ATLAS): tools/atlas/go.mod tools/atlas/go.sum
	@echo "building atlas (first use; takes a couple of minutes)..."
	cd tools/atlas && $(GO) build -o $(ATLAS) ariga.io/atlas/cmd/atlas

.PHONY: run
run: ## Run the demo walkthrough (starts a throwaway PostgreSQL unless DATABASE_URL is set).
	$(GO) run ./cmd/deploydb-demo

.PHONY: test
test: $(ATLAS) ## Run all tests against a real PostgreSQL (see README: where tests get PostgreSQL).
	$(GO) test -count=1 ./...

.PHONY: migrate-proofs
migrate-proofs: $(ATLAS) ## Run the migration proof tests verbosely and show their figures.
	$(GO) test -count=1 -v -run 'TestConcurrentProcesses|TestDDLBehindLongReader|TestDownRoundTrip|TestDownRefusesDataLoss|TestAtlasCLIInterop|TestMigrationsPreserveData|TestExitCodes|TestOpenWithAutoMigrate$$' \
		. ./db ./cmd/deploydb | grep -E '^\s+\S+_test\.go:[0-9]+: |^ {8}|^(ok|FAIL|--- FAIL)'

.PHONY: reliability
reliability: ## Run the reliability and security proofs at full length; writes docs/reliability.md.
	./scripts/reliability-report.sh

.PHONY: generate
generate: $(SQLC) ## Regenerate internal/dbsqlc from queries/ with sqlc.
	$(SQLC) generate

.PHONY: migration
migration: $(ATLAS) ## Write a migration for the schema.hcl changes: make migration NAME=add_x.
	@test -n "$(NAME)" || { echo "usage: make migration NAME=short_description" >&2; exit 2; }
	$(DEVDB) $(ATLAS) migrate diff --env local $(NAME)

.PHONY: build
build: ## Build the deploydb binary into ./bin.
	$(GO) build -o $(BIN)/deploydb ./cmd/deploydb

.PHONY: check
check: $(SQLC) $(ATLAS) ## gofmt, go vet, sqlc diff, atlas migrate validate, and "schema.hcl needs no new migration".
	@echo "== gofmt"; out=$$(gofmt -l .); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@echo "== go vet"; $(GO) vet ./...
	@echo "== sqlc diff (internal/dbsqlc matches queries/)"; $(SQLC) diff || { echo "internal/dbsqlc is stale: run make generate" >&2; exit 1; }
	@echo "== atlas migrate validate (atlas.sum)"; $(ATLAS) migrate validate --dir file://db/migrations
	@echo "== schema.hcl matches db/migrations"; $(DEVDB) ./scripts/check-schema-drift.sh $(ATLAS)

.PHONY: review
review: $(SQLC) $(ATLAS) ## Review the change since BASE (default: merge base with main) into out/review.md; REVIEW_SCALE=4 seeds more.
	$(REVIEW) -base "$(BASE)" -out out/review.md

.PHONY: erd
erd: ## Regenerate docs/schema.md (Mermaid ER diagram) from db/migrations.
	$(REVIEW) erd

.PHONY: migration-hash
migration-hash: $(ATLAS) ## Rehash atlas.sum after adding a `-- deploydb:allow` line to a new migration.
	$(ATLAS) migrate hash --dir file://db/migrations

.PHONY: bench
bench: ## Benchmark deploydb against pgx, pgbench, database/sql, sqlx and GORM on a seeded throwaway PostgreSQL (about half an hour); writes docs/benchmarks.{md,png}.
	mkdir -p bench/results
	cd bench && $(GO) run . $(BENCH_FLAGS) -md ../docs/benchmarks.md -png ../docs/benchmarks.png -txt results/benchstat.txt

.PHONY: bench-smoke
bench-smoke: ## Cross-check every benchmark implementation on a tiny data set (a short round runs; no timing claims).
	cd bench && $(GO) run . -smoke
