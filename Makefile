# cityhealth — `make demo` runs the platform with the Nanjing demo data; `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The exact versions the suite was last run with; `make lock` re-resolves them from pyproject.toml.
LOCK := requirements.lock
export CITYHEALTH_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
# The suite runs in this many processes (pytest-xdist): each test has its own database, files and ports, and a
# test spends much of its time waiting on the database, so two share a two-core machine well. 0: one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS)

.PHONY: install lock browser-deps orthanc-deps office-deps fuse-deps lint test test-sqlite test-postgres test-sqlite-then-postgres test-slow drills drills-short serve demo bench clean

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cityhealth needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# pip-tools runs in a virtualenv of its own under var/, so that it is not among the project's dependencies.
# Pins already in the lock are kept; `make lock LOCK_FLAGS=--upgrade` moves every package to its newest release.
lock:
	test -x var/lock-env/bin/pip-compile || ($(PYTHON) -m venv var/lock-env && var/lock-env/bin/pip install --quiet pip-tools)
	var/lock-env/bin/pip-compile --quiet $(LOCK_FLAGS) --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --output-file $(LOCK) pyproject.toml

lint: install
	$(BIN)/ruff check src tests migrations benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

browser-deps:
	scripts/browser-deps

orthanc-deps:
	scripts/orthanc-deps

# LibreOffice, CJK fonts and poppler: the bulletin's PDF edition and the tests that look at its pages.
office-deps:
	scripts/office-deps

# libfuse3 (Debian's fuse3, a few seconds to install): the slow-disk drill's filesystem.
fuse-deps:
	scripts/fuse-deps

test-sqlite: install browser-deps orthanc-deps office-deps
	CITYHEALTH_TEST_DATABASE=sqlite $(PYTEST) -m "not slow"

test-postgres: install orthanc-deps office-deps
	scripts/with-postgres $(PYTEST) -m "not slow"

test-slow: install orthanc-deps
	CITYHEALTH_TEST_DATABASE=sqlite $(PYTEST) -m slow

# Reliability drills (docs/reliability.md): crashes, a database restart, a point-in-time restore, a full disk, a
# slow disk and a soak, on throwaway PostgreSQL clusters of their own. `drills` is the full run (20 SIGKILLs per
# crash drill, a 20-minute soak: about 35 minutes, 6.5 more for the slow disk on both databases, and a few for the
# booking drill on PostgreSQL); `drills-short`, the same drills smaller, on SQLite where a drill runs on both
# (308-317 s on a quiet 2-core machine with the PostgreSQL booking drill, which it now leaves to `drills`; 7-8.5
# minutes on a busy one). The full-disk drill mounts a
# tmpfs, the slow-disk drill a FUSE filesystem: as root only (each says so and is skipped otherwise).
drills: install fuse-deps
	$(BIN)/python benchmarks/drills.py

drills-short: install fuse-deps
	$(BIN)/python benchmarks/drills.py --short

# The slow stage (one long round trip that keeps one core busy) runs beside the SQLite stage, whose two processes
# leave about a third of the two cores idle (measured with vmstat: 30-57 % idle through that stage, 1-10 % through
# the PostgreSQL one), and the PostgreSQL stage starts as soon as the SQLite one ends rather than after the slow
# one too (which outlasts it by minutes); the drills wait on their processes and time their answers, so they run
# after the rest.
test: lint browser-deps orthanc-deps office-deps
	$(MAKE) -j2 --output-sync=target test-slow test-sqlite-then-postgres
	$(MAKE) drills-short

test-sqlite-then-postgres:
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

serve: install
	$(BIN)/cityhealth db upgrade
	$(BIN)/cityhealth serve

demo: install office-deps
	scripts/demo

bench: install
	scripts/with-postgres scripts/bench

clean:
	rm -rf $(VENV) var build *.egg-info src/*.egg-info
