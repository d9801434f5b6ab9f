# The whole set-up on a fresh machine is `make run` (the app, on SQLite with the local gateway)
# and `make test` (every test, on SQLite and then on PostgreSQL).
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PYTHON ?= python3
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=
# pytest-xdist: tests on every core (each worker its own SQLite file or PostgreSQL database).
PYTEST_XDIST ?= -n auto

.PHONY: install run worker test test-quick lint typecheck audit browser bench bench-tools clean screenshots

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

install: $(VENV)/.installed

run: install
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) run --host 127.0.0.1 --port 5000

# The worker as its own process (production runs it so; `make run` has it in a thread already).
worker: install
	WORKER_IN_APP=false $(FLASK) worker

# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser), and
# poppler-utils' pdftoppm, which renders the funder packet's cover sheet in tests/grants.
browser:
	@{ command -v chromium && command -v pdftoppm; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; \
	  else echo "Install Debian's chromium and poppler-utils (sudo apt-get install chromium poppler-utils) for the browser and PDF tests"; exit 1; fi; }

# ruff, and the import contract (pyproject.toml): a package never imports one above it.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# mypy over donations/ (settings in pyproject.toml).
typecheck: install
	$(VENV)/bin/mypy

# Security: bandit finds no medium or high issue in donations/ (an accepted one is marked
# `# nosec` with its reason), and pip-audit finds no known vulnerability in requirements.lock.
# Where pip-audit cannot reach a vulnerability service, PyPI's latest-release data checks the pins
# that are latest releases (a finding fails); with no service at all `make audit` fails saying
# so, and `make test` prints the same warning and goes on (AUDIT_OFFLINE=warn): never a silent pass.
audit: install
	$(VENV)/bin/bandit -q -r donations -ll
	$(PY) .ci/audit_dependencies.py

test: install browser bench-tools lint typecheck
	$(MAKE) audit AUDIT_OFFLINE=warn
	TEST_DATABASE_URL= $(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)
	TEST_DATABASE_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# The edit-test loop: SQLite only, no browser tests, in parallel; `make test` is what CI runs.
test-quick: install
	TEST_DATABASE_URL= $(PY) -m pytest $(PYTEST_XDIST) -m "not browser" $(PYTEST_ARGS)

# The README's screenshots (gift page, its second step, the embed box, at 375x667 and 1280x800; the 429 page), taken by their browser tests.
screenshots: install browser
	TEST_DATABASE_URL= SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -p no:cacheprovider -m browser tests/browser/test_gift_page_layout.py tests/browser/test_gift_steps.py tests/browser/test_embed_journey.py

# Debian's wrk, GNU time and the sqlite3 shell: the benchmarks' load generator and meters.
bench-tools:
	@{ command -v wrk && command -v sqlite3 && test -x /usr/bin/time; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk time sqlite3; \
	  else echo "Install wrk, time and sqlite3 (sudo apt-get install wrk time sqlite3) for the benchmarks"; exit 1; fi; }

# Every benchmark, full size (about 20 minutes on 2 cores); writes bench/RESULTS.md.
# BENCH_ARGS=--quick for a tiny run, or e.g. BENCH_ARGS="--parts webhooks --runs 5".
bench: install bench-tools
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
