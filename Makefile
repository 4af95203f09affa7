# Two commands on a fresh clone: `make run` and `make test`. Both build .venv themselves.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install run test test-fast test-sqlite test-pg lint fmt check clean bench screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The OpenID provider the identity tests run (npm's oidc-provider, pinned by its package-lock.json).
OIDC_PROVIDER := tests/identity/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/identity/oidc/package-lock.json
	cd tests/identity/oidc && npm ci --no-audit --no-fund --loglevel=error

run: $(STAMP)  ## serve on 127.0.0.1:8080, SQLite under ./var
	$(BIN)/grantflow serve

PYTEST := $(BIN)/pytest -n 2  # two worker processes, one per core of the development machines

test: $(STAMP) $(OIDC_PROVIDER)  ## the whole suite, SQLite and PostgreSQL
	$(PYTEST)

test-fast: $(STAMP) $(OIDC_PROVIDER)  ## the edit loop: SQLite only, without the tests that spawn processes
	GRANTFLOW_TEST_BACKENDS=sqlite $(PYTEST) -q -m "not slow"

test-sqlite: $(STAMP) $(OIDC_PROVIDER)
	GRANTFLOW_TEST_BACKENDS=sqlite $(PYTEST)

test-pg: $(STAMP) $(OIDC_PROVIDER)
	GRANTFLOW_TEST_BACKENDS=postgresql $(PYTEST)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/check_docs.py

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

check: lint test

bench: $(STAMP)  ## the benchmark suite (minutes; needs PostgreSQL and installs wrk from Debian if missing)
	command -v wrk >/dev/null || (apt-get install -y wrk || sudo apt-get install -y wrk)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/plot.py "$$(ls -t bench/results/*.json | head -1)" docs/perf

screenshots: $(STAMP)  ## the web UI pages as PNGs in docs/ui/ (needs Debian's chromium)
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
