# cityhealth — `make demo` runs the platform with the Nanjing demo data; `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export CITYHEALTH_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: install browser-deps lint test test-sqlite test-postgres test-slow serve demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cityhealth needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests migrations benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

browser-deps:
	scripts/browser-deps

test-sqlite: install browser-deps
	CITYHEALTH_TEST_DATABASE=sqlite $(BIN)/python -m pytest -m "not slow"

test-postgres: install
	scripts/with-postgres $(BIN)/python -m pytest -m "not slow"

test-slow: install
	CITYHEALTH_TEST_DATABASE=sqlite $(BIN)/python -m pytest -m slow

test: lint test-sqlite test-postgres test-slow

serve: install
	$(BIN)/cityhealth db upgrade
	$(BIN)/cityhealth serve

demo: install
	scripts/demo

bench: install
	scripts/with-postgres scripts/bench

clean:
	rm -rf $(VENV) var build *.egg-info src/*.egg-info
