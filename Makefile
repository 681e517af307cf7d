# Two commands do all set-up: `make run` (demo on SQLite, inline jobs) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs against real PostgreSQL and Redis (tests/machine/services.sh installs
# and starts them, and chromium, when missing); override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hitl
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

# Reproducible installs: every dependency (runtime, dev and the build backend) pinned
# with its hashes in requirements.lock, compiled by uv from the pyproject.toml files.
LOCK := requirements.lock
LOCAL_PACKAGES := . $(patsubst %/pyproject.toml,%,$(wildcard clients/*/pyproject.toml))
LOCK_SOURCES := $(patsubst ./%,%,$(addsuffix /pyproject.toml,$(LOCAL_PACKAGES)))
BUILD_REQUIREMENTS := setuptools>=68,<81
# gunicorn and the RQ workers of one machine share this directory for /metrics
# (README, "Metrics"); empty it when the machine boots, never while workers run.
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.prometheus

.PHONY: install lock lock-upgrade run serve worker cron migrate demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet "pip>=24"

# The lock first, hash-checked (pip refuses anything unpinned or with another hash),
# then the local packages themselves, editable, without touching their dependencies.
$(VENV)/.installed: $(LOCK) $(LOCK_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(LOCAL_PACKAGES))
	$(BIN)/pip check
	touch $@

install: $(VENV)/.installed

# `make lock` after editing a pyproject.toml: adds and drops what changed, keeps
# every other pin. `make lock-upgrade`: every package to its newest allowed version.
# Commit requirements.lock with the pyproject.toml change.
lock: | $(BIN)/python
	$(BIN)/uv --version >/dev/null 2>&1 || $(BIN)/pip install --quiet "uv>=0.5,<1"
	printf '%s\n' "$(BUILD_REQUIREMENTS)" | $(BIN)/uv pip compile $(LOCK_SOURCES) - \
		--all-extras --universal --python-version 3.11 --generate-hashes $(UPGRADE) \
		--custom-compile-command "make lock" --quiet --output-file $(LOCK)

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

serve: install
	$(BIN)/python manage.py collectstatic --noinput
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) \
		$(BIN)/gunicorn hitlplatform.wsgi --bind $(HOST):$(PORT) --workers 4

# Every rqworker runs the scheduler (hitlplatform.workers); run as many as you like.
worker: install
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) \
		$(BIN)/python manage.py rqworker judge webhooks exports default --with-scheduler

# The sweeps and drift alerts of hitlplatform.schedule; one per deployment.
cron: install
	$(BIN)/python manage.py cron

test: install
	tests/machine/services.sh
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python bench/ingest.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python bench/judge.py

clean:
	rm -rf $(VENV) db.sqlite3 .dev-secret-key staticfiles .prometheus
