# Two commands do all set-up: `make run` and `make test`. Both need only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install setup clean bench

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "Python 3.11 is needed (python3.11 on PATH, or make PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# setuptools warns on every editable install that folders named like the packages (nurture/, content/)
# may take precedence in imports: here they are the packages themselves, so that warning is silenced.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

# The local demo: debug pages on, and a series "day" of 20 seconds unless set otherwise.
# (Target-specific, so `setup` sees the same values when `run` calls it.)
run setup: export DJANGO_DEBUG ?= 1
run: export NURTURE_DAY_SECONDS ?= 20
# The web server's port (`PORT=8010 make run`); the links in emails follow it unless SITE_URL is set.
PORT ?= 8000
run setup: export SITE_URL ?= http://127.0.0.1:$(PORT)

# Migrate, load the starter content and series, create the demo login, set up the schedule.
setup: install
	$(PY) manage.py setup_demo

# Web on 127.0.0.1:$(PORT) (8000), a Celery worker and Celery beat together; Ctrl-C stops them all.
# honcho hands the web process PORT (-p: the first process's port).
run: setup
	$(VENV)/bin/honcho -f Procfile.dev start -p $(PORT)

# The linter first ([tool.ruff] in pyproject.toml): a finding stops the run before the suite starts.
test: install
	$(VENV)/bin/ruff check .
	bash scripts/install_browser.sh
	$(PY) scripts/run_tests.py

clean:
	rm -rf var/

# Throughput and planning figures, the engine next to django-post-office (docs/benchmarks.md).
# Needs PostgreSQL and Redis (BENCH_DATABASE_URL / BENCH_REDIS_URL, defaults on 127.0.0.1);
# `make bench ARGS=--smoke` for a quick check, other sizes via ARGS (see --help).
bench: install
	$(PY) -m benchmarks.run_all $(ARGS)
