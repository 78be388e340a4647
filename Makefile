# Handoff — the two commands a newcomer needs:  `make run`  and  `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SIM_RATE ?= 6
DEMO_PASSWORD ?= demo
# make run and make test install the demo bank (demo/); HANDOFF_DEMO=0 leaves it out.
HANDOFF_DEMO ?= 1
export PORT SIM_RATE DEMO_PASSWORD HANDOFF_DEMO

# The suite runs against real services; point these elsewhere to use other servers.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/handoff
TEST_BROKER_URL ?= redis://127.0.0.1:6379/5
TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672//
# The suite and the benchmarks are throwaway installs: the demo's keys are fine there (outside
# the demo, a missing SECRET_KEY or AUDIT_SIGNING_KEY stops Handoff at start-up).
TEST_ENV := HANDOFF_DEMO="$${HANDOFF_DEMO:-true}"
# The suite runs in two pytest-xdist processes, each with its own test database (the name gets
# _gw0, _gw1), Celery queue, live server and browser; most slow tests wait on workers, servers
# and the browser, so two overlap well even on two cores. TEST_PROCESSES=0 runs it in one.
TEST_PROCESSES ?= 2

.PHONY: run test test-app-role setup lint bench clean

$(VENV)/.installed: pyproject.toml
	@PYBIN=$$(scripts/find-python) && echo "Using $$PYBIN" && "$$PYBIN" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

setup: $(VENV)/.installed

run: setup
	@mkdir -p var staticfiles
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py seed_demo
	@echo
	@echo "  Handoff is starting at http://127.0.0.1:$(PORT)/"
	@echo "  Log in as supervisor, cards2, supervisor2, servicing2, compliance, admin, admin2 or lead — password: $(DEMO_PASSWORD)"
	@echo "  The automated demo-desk approves routine actions and settles routine desk items after 90 s (DEMO_DESK=off make run turns it off)."
	@echo "  Ctrl-C stops the web server, worker, beat, simulator and desk."
	@echo
	@# Ctrl-C reaches every process; honcho stops them and says so. The trap keeps this shell
	@# alive until honcho is done, and a stop by Ctrl-C is a normal end, not "Error 130".
	@trap 'true' INT TERM; \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" HANDOFF_CORE_FAILURE_RATE=$${HANDOFF_CORE_FAILURE_RATE:-0.03} \
	  $(VENV)/bin/honcho start -f Procfile; status=$$?; \
	  if [ $$status -eq 130 ] || [ $$status -eq 143 ]; then echo "Handoff stopped."; exit 0; fi; exit $$status

test: setup
	@DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	  AMQP_URL="$${AMQP_URL:-$(TEST_AMQP_URL)}" $(TEST_ENV) $(PY) scripts/check_services.py
	$(VENV)/bin/ruff check --quiet .
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	  AMQP_URL="$${AMQP_URL:-$(TEST_AMQP_URL)}" $(TEST_ENV) $(PY) -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

# The audit tests again, every connection switched to the restricted application role that
# production uses (`manage.py database_roles`): SELECT and INSERT only on the audit tables.
AUDIT_TESTS := tests/review/test_audit_chain.py tests/review/test_audit_pages.py \
  tests/review/test_audit_exports.py tests/review/test_audit_integrity.py tests/review/test_audit_parallel.py
test-app-role: setup
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	  $(TEST_ENV) HANDOFF_TEST_DB_ROLE=app $(PY) -m pytest $(AUDIT_TESTS) $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Each benchmark prints the product's figure, a baseline measured in the same run and the ratio.
# BENCH_SCALE=0.01 make bench checks they all run, quickly; docs/performance.md has the figures.
BENCHES ?= runtime board pollers audit metrics
bench: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	@for name in $(BENCHES); do echo "== bench/$$name.py"; \
	  DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	  $(TEST_ENV) $(PY) bench/$$name.py || exit 1; done

clean:
	rm -rf var staticfiles .pytest_cache
