# PayBridge — every developer and CI entry point. A fresh machine needs only Node.js and npm:
# Bun is installed into .tools/ on first use when the right version is not on PATH.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BUN_VERSION := 1.4.4
BUN_LOCAL := .tools/node_modules/.bin/bun
BUN := $(shell if command -v bun >/dev/null 2>&1 && [ "$$(bun --version 2>/dev/null)" = "$(BUN_VERSION)" ]; then command -v bun; else echo $(BUN_LOCAL); fi)
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/paybridge
export DATABASE_URL
PG_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILD_TIME := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
SOURCES := $(shell find src migrations -type f 2>/dev/null) package.json bun.lock

.PHONY: help deps build run dev test test-unit lint typecheck ci bench chaos fuzz soak image-check \
	migrate-up migrate-down migrate-version migrate-status migrate-create migrate-force \
	db-up db-reset db-shell docker-build tools clean

help: ## this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BUN_LOCAL):
	@echo "installing bun $(BUN_VERSION) into .tools/ (npm)"
	@npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION) >/dev/null
	@$(BUN_LOCAL) --version >/dev/null

node_modules/.installed: package.json bun.lock | $(if $(filter $(BUN_LOCAL),$(BUN)),$(BUN_LOCAL))
	$(BUN) install --frozen-lockfile
	@touch $@

deps: node_modules/.installed ## install Bun (if needed) and the dependencies

tools: ## Debian tools the tests use (promtool, wrk, pgbench, jq)
	@command -v promtool >/dev/null && command -v wrk >/dev/null && command -v pgbench >/dev/null && command -v jq >/dev/null || { \
	  echo "installing prometheus (promtool), wrk, postgresql-contrib (pgbench), jq"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus wrk postgresql-contrib jq >/dev/null; }

dist/paybridge: node_modules/.installed $(SOURCES)
	@mkdir -p dist
	$(BUN) build --compile --minify-whitespace --minify-syntax --sourcemap --bytecode --format=esm \
	  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
	  --define 'PAYBRIDGE_REVISION="$(REVISION)"' --define 'PAYBRIDGE_BUILD_TIME="$(BUILD_TIME)"' \
	  src/main.ts --outfile dist/paybridge

build: dist/paybridge ## compile the single executable dist/paybridge

run: build db-up ## create the database if missing, migrate, serve (http://localhost:8080)
	@psql "$(PG_ADMIN_URL)" -tAc "SELECT 1 FROM pg_database WHERE datname = 'paybridge'" | grep -q 1 || createdb -h 127.0.0.1 -U postgres paybridge
	./dist/paybridge migrate up
	./dist/paybridge serve

dev: deps db-up ## serve from source with reload
	$(BUN) src/main.ts migrate up
	LOG_FORMAT=pretty $(BUN) --watch src/main.ts serve

test: deps db-up tools build ## typecheck, unit, integration and end-to-end tests (fresh database per run)
	$(BUN) run typecheck
	$(BUN) test --timeout 60000

lint: deps ## biome lint + format check
	$(BUN) run lint

typecheck: deps
	$(BUN) run typecheck

ci: lint test ## what .ci/run runs

bench: deps db-up tools build ## transfer throughput vs. the pgbench reference
	$(BUN) scripts/bench.ts

chaos: deps db-up build ## fault-injection bank test (long)
	$(BUN) scripts/chaos.ts

fuzz: deps db-up build ## property-based request fuzzing (long)
	$(BUN) scripts/fuzz.ts

soak: deps db-up build ## mixed load, 10 minutes by default (SOAK_SECONDS)
	$(BUN) scripts/soak.ts

image-check: build ## run the binary as the distroless runtime stage would
	bash scripts/image-check.sh dist/paybridge

migrate-up: build ## apply pending migrations
	./dist/paybridge migrate up
migrate-down: build ## roll back the last migration
	./dist/paybridge migrate down
migrate-version: build ## print the schema version
	./dist/paybridge migrate version
migrate-status: build ## list migrations and their state
	./dist/paybridge migrate status
migrate-create: deps ## new migration: make migrate-create NAME=add_thing
	@test -n "$(NAME)" || { echo "usage: make migrate-create NAME=add_thing" >&2; exit 2; }
	$(BUN) src/main.ts migrate create $(NAME)
migrate-force: build ## record version V without running SQL: make migrate-force V=3
	@test -n "$(V)" || { echo "usage: make migrate-force V=3" >&2; exit 2; }
	./dist/paybridge migrate force $(V)

db-up: ## start the local PostgreSQL if it does not answer
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -h 127.0.0.1 -p 5432

db-reset: db-up ## drop and recreate the development database
	dropdb -h 127.0.0.1 -U postgres --if-exists --force paybridge
	createdb -h 127.0.0.1 -U postgres paybridge

db-shell: db-up ## psql on the development database
	psql "$(DATABASE_URL)"

docker-build: ## build the container image (needs a Docker engine)
	docker build -t paybridge:$(REVISION) .

clean:
	rm -rf dist .tools node_modules
