# The two commands: `make run` (set up, then run the main job on the shipped data)
# and `make test` (set up, then run the tests). `make serve` serves the API;
# `make lint`, `make typecheck` and `make test-fast` are the developer's checks.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test test-fast lint typecheck serve venv clean-outputs cron-line

# The project itself is installed editable (pyproject.toml), so `import drs` works from anywhere.
$(VENV)/.deps: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.devdeps: $(VENV)/.deps requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.deps

run: $(VENV)/.deps
	PY=$(PY) PORT=$(PORT) bash tools/run_main_job.sh

test: $(VENV)/.devdeps
	$(PY) -m pytest -q

# Everything not marked slow (the fault-injection, load and browser tests are).
test-fast: $(VENV)/.devdeps
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)/.devdeps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.devdeps
	$(VENV)/bin/mypy

serve: $(VENV)/.deps
	exec env PORT=$(PORT) WORKERS=$(WORKERS) $(VENV)/bin/gunicorn --config gunicorn.conf.py 'app:create_app()'

# Remove everything the pipeline generated (not the shipped data).
clean-outputs:
	rm -rf ingesteddata/* practicemodels/* models/* production_deployment/* logs

# Print cronjob.txt's line with this project's path filled in (for crontab -e).
cron-line:
	@grep -v '^#' cronjob.txt | sed "s#/path/to/project#$(CURDIR)#"
