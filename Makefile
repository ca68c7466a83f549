# deploydb developer tasks. `make help` lists them.
#
# Tools are pinned in tools/<name>/go.mod (the only place their versions are
# written) and built into ./bin on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN   := $(CURDIR)/bin
SQLC  := $(BIN)/sqlc
ATLAS := $(BIN)/atlas
ACTIONLINT := $(BIN)/actionlint
GO    ?= go
# Runs a command against a throwaway empty database (URL in ATLAS_DEV_URL).
DEVDB := $(GO) run ./internal/devdb --
# The schema review (internal/review); BASE is a git ref, empty for the
# merge base with main.
REVIEW := $(GO) run ./internal/review/cmd/review
BASE   ?=
# Carries schema_triggers.sql (functions and triggers) into db/migrations
# (internal/schematriggers).
TRIGGERS := $(GO) run ./internal/schematriggers/cmd/schematriggers

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every Go module of the repository (go mod tidy and its check run in each).
MODULES := . bench internal/pgtest/pgcontainer tools/sqlc tools/atlas tools/actionlint
# CODE_MODULES are the modules with packages to vet (the tools modules only pin).
CODE_MODULES := . bench internal/pgtest/pgcontainer

.PHONY: tools
tools: $(SQLC) $(ATLAS) $(ACTIONLINT) ## Build the pinned sqlc, Atlas and actionlint into ./bin.

# A tool is rebuilt when its go.sum changes: bin/.<tool>.sum is a copy of it,
# rewritten (and so newer) only when the content differs, which also keeps a
# ./bin restored from a CI cache valid after a fresh checkout.
$(BIN)/.%.sum: FORCE
	@mkdir -p $(BIN)
	@cmp -s tools/$*/go.sum $@ || cp tools/$*/go.sum $@

$(SQLC): $(BIN)/.sqlc.sum
	@echo "building sqlc (first use; takes a couple of minutes)..."
	cd tools/sqlc && CGO_ENABLED=1 $(GO) build -o $(SQLC) github.com/sqlc-dev/sqlc/cmd/sqlc

$(ATLAS): $(BIN)/.atlas.sum
	@echo "building atlas (first use; takes a couple of minutes)..."
	cd tools/atlas && $(GO) build -o $(ATLAS) ariga.io/atlas/cmd/atlas

$(ACTIONLINT): $(BIN)/.actionlint.sum
	@echo "building actionlint (first use)..."
	cd tools/actionlint && $(GO) build -o $(ACTIONLINT) github.com/rhysd/actionlint/cmd/actionlint

.PHONY: FORCE
FORCE:

.PHONY: run
run: ## Run the demo walkthrough (starts a throwaway PostgreSQL unless DATABASE_URL is set).
	$(GO) run ./cmd/deploydb-demo

.PHONY: test
test: $(SQLC) $(ATLAS) ## Run all tests against a real PostgreSQL (see README: where tests get PostgreSQL).
	$(GO) test -count=1 ./...

.PHONY: migrate-proofs
migrate-proofs: $(ATLAS) ## Run the migration proof tests verbosely and show their figures.
	$(GO) test -count=1 -v -run 'TestConcurrentProcesses|TestDDLBehindLongReader|TestDownRoundTrip|TestDownRefusesDataLoss|TestAtlasCLIInterop|TestMigrationsPreserveData|TestExitCodes|TestOpenWithAutoMigrate$$' \
		. ./db ./cmd/deploydb | grep -E '^\s+\S+_test\.go:[0-9]+: |^ {8}|^(ok|FAIL|--- FAIL)'

.PHONY: reliability
reliability: ## Run the reliability and security proofs at full length; writes docs/reliability.md.
	./scripts/reliability-report.sh

.PHONY: generate
generate: $(SQLC) ## Regenerate every derived file: internal/dbsqlc (sqlc) and docs/schema.md (ER diagram).
	$(SQLC) generate
	$(REVIEW) erd

.PHONY: migration
migration: $(ATLAS) $(SQLC) ## Write a migration for the schema.hcl and schema_triggers.sql changes, then make generate: make migration NAME=add_x.
	@test -n "$(NAME)" || { echo "usage: make migration NAME=short_description" >&2; exit 2; }
	$(TRIGGERS) carry -name $(NAME) -atlas $(ATLAS) -- $(DEVDB) $(ATLAS) migrate diff --env local $(NAME)
	$(MAKE) --no-print-directory generate

.PHONY: build
build: ## Build the deploydb binary into ./bin.
	$(GO) build -o $(BIN)/deploydb ./cmd/deploydb

.PHONY: check
check: $(SQLC) $(ATLAS) $(ACTIONLINT) ## Fail on anything stale or unclean, naming the command that fixes it.
	@echo "== gofmt"; out=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$out" ]; then echo "$$out"; echo "gofmt needed: run gofmt -w on the files above" >&2; exit 1; fi
	@echo "== go vet (every module with code)"; for m in $(CODE_MODULES); do \
		(cd $$m && $(GO) vet ./...) || { echo "$$m: go vet failed (or the module does not build)" >&2; exit 1; }; done
	@echo "== go mod tidy -diff (every module)"; for m in $(MODULES); do \
		(cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run (cd $$m && go mod tidy)" >&2; exit 1; }; done
	@echo "== GOOS=darwin and GOOS=windows builds"; for os in darwin windows; do \
		GOOS=$$os $(GO) build ./... || { echo "the root module does not build for $$os" >&2; exit 1; }; done
	@echo "== import weight"; ./scripts/check-deps.sh
	@echo "== every Example has an Output line"; ./scripts/check-examples.sh
	@echo "== actionlint"; $(ACTIONLINT) .github/workflows/*.yml
	@echo "== sqlc diff (internal/dbsqlc matches queries/)"; $(SQLC) diff || { echo "internal/dbsqlc is stale: run make generate" >&2; exit 1; }
	@echo "== docs/schema.md matches db/migrations"; $(REVIEW) erd -check
	@echo "== atlas migrate validate (atlas.sum)"; $(ATLAS) migrate validate --dir file://db/migrations || \
		{ echo "db/migrations does not match atlas.sum: run make migration-hash after an allowed edit" >&2; exit 1; }
	@echo "== schema_triggers.sql matches db/migrations"; $(TRIGGERS) check
	@echo "== schema.hcl matches db/migrations"; $(DEVDB) ./scripts/check-schema-drift.sh $(ATLAS)

.PHONY: lint-workflows
lint-workflows: $(ACTIONLINT) ## Check .github/workflows with the pinned actionlint.
	$(ACTIONLINT) .github/workflows/*.yml

.PHONY: tidy
tidy: ## Run go mod tidy in every module of the repository.
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

.PHONY: review
review: $(SQLC) $(ATLAS) ## Review the change since BASE (default: merge base with main) into out/review.md; REVIEW_SCALE=4 seeds more.
	$(REVIEW) -base "$(BASE)" -out out/review.md

.PHONY: erd
erd: ## Regenerate only docs/schema.md (Mermaid ER diagram) from db/migrations (make generate does this too).
	$(REVIEW) erd

.PHONY: migration-hash
migration-hash: $(ATLAS) ## Rehash atlas.sum after adding a `-- deploydb:allow` line to a new migration.
	$(ATLAS) migrate hash --dir file://db/migrations

.PHONY: bench
bench: ## Benchmark deploydb against pgx, pgbench, database/sql, sqlx and GORM on a seeded throwaway PostgreSQL (about half an hour); writes docs/benchmarks.{md,png}.
	mkdir -p bench/results
	cd bench && $(GO) run . $(BENCH_FLAGS) -md ../docs/benchmarks.md -png ../docs/benchmarks.png -txt results/benchstat.txt

.PHONY: bench-rollouts
bench-rollouts: ## Benchmark rollouts (claim + complete per target; the service, pgx and pgbench on the same statements; about ten minutes); writes docs/rollouts-benchmarks.md.
	cd bench && $(GO) run . -rollouts $(ROLLOUT_FLAGS) -md ../docs/rollouts-benchmarks.md

.PHONY: bench-smoke
bench-smoke: ## Cross-check every benchmark implementation on a tiny data set, and the rollout benchmark at tiny sizes (a short round runs; no timing claims).
	cd bench && $(GO) run . -smoke
	cd bench && $(GO) run . -rollouts -smoke
