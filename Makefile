# keel developer commands. `make run` and `make test` are all a newcomer needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The PostgreSQL + Redis pass: a server and a Redis keel may create databases on.
SCALED_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
SCALED_REDIS_URL    ?= redis://127.0.0.1:6379/0

.PHONY: run test test-scaled test-lowest fuzz lock lint format audit bench bench-webhooks bench-realtime check clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	touch $@

# Installs come from the committed lock files (the versions CI tested); keel itself is editable.
$(VENV)/.installed-run: requirements/run.lock pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet -r requirements/run.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements/dev.lock pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed-run

## Install and start keel on the embedded default (SQLite file, 127.0.0.1:8000).
run: $(VENV)/.installed-run
	$(BIN)/keel serve

## Install and run the whole test suite (SQLite; PostgreSQL + Redis when
## KEEL_TEST_DATABASE_URL / KEEL_TEST_REDIS_URL are set).
test: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## The SQLite suite on the lowest versions pyproject.toml allows for each
## direct dependency: the declared lower bounds are the tested ones.
test-lowest: $(VENV)/.installed-dev
	rm -rf .venv-lowest
	$(PYTHON) -m venv .venv-lowest
	$(BIN)/uv pip install --quiet --python .venv-lowest/bin/python --resolution lowest-direct -e '.[dev]'
	.venv-lowest/bin/pytest $(PYTEST_ARGS)

## schemathesis against a live keel: every check, every phase; fails on any finding.
fuzz: $(VENV)/.installed-dev
	.ci/fuzz/run

## Refresh the lock files from pyproject.toml (newest versions its bounds allow).
lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml -o requirements/run.lock
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --extra dev pyproject.toml -o requirements/dev.lock

## The same suite on PostgreSQL + Redis.
test-scaled:
	KEEL_TEST_DATABASE_URL=$(SCALED_DATABASE_URL) KEEL_TEST_REDIS_URL=$(SCALED_REDIS_URL) $(MAKE) test

## ruff, mypy (src, tests, bench), import-linter, and no private name of a library in src/.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python .ci/private_names.py src

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

audit: $(VENV)/.installed-dev
	$(BIN)/python .ci/audit.py

## Load benchmark against same-run baselines; writes docs/benchmarks.md.
bench: $(VENV)/.installed-dev
	command -v wrk >/dev/null || apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Webhook delivery benchmark (throughput, latency, cost to the API); writes docs/benchmarks-webhooks.md.
bench-webhooks: $(VENV)/.installed-dev
	command -v wrk >/dev/null || apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

bench-realtime: $(VENV)/.installed-dev
	command -v wrk >/dev/null || apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)
	$(BIN)/python -m bench.realtime $(BENCH_ARGS)

check: lint test fuzz test-lowest test-scaled audit

clean:
	rm -rf $(VENV) .venv-lowest .pytest_cache .mypy_cache .ruff_cache
