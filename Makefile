# The two commands of the README: `make test` and `make demo`.
# Everything else they need (uv, the virtual environment, the tools) is
# installed here, from PyPI, with the Python interpreters of this machine.

PYTHON ?= python3
# The interpreter's real path: uv rejects pyenv's shims.
PY := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
UV ?= $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 4
SUPPORTED_PYTHONS ?= 3.10 3.11 3.12 3.13

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT ?= $(VENV)

.PHONY: test lint typecheck layers unit demo soak test-pythons oslo-service bench clean

test: lint typecheck layers unit

$(CURDIR)/.tools/bin/uv:
	$(PY) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet 'uv>=0.5,<1'

$(BIN)/.synced: uv.lock pyproject.toml packages/*/pyproject.toml | $(UV)
	$(UV) sync --locked --python $(PY)
	touch $@

uv.lock: pyproject.toml packages/*/pyproject.toml | $(UV)
	$(UV) lock --python $(PY)

lint: $(BIN)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.synced
	$(BIN)/mypy packages/cotyledon-core/src packages/cotyledon-systemd/src packages/cotyledon-testkit/src
	@# One run per test folder: each has a conftest.py of its own.
	for tests in packages/*/tests/*/; do $(BIN)/mypy $$tests || exit 1; done
	$(BIN)/mypy examples
	$(BIN)/mypy benchmarks

layers: $(BIN)/.synced
	$(BIN)/lint-imports
	$(BIN)/python tools/check_core_imports.py

# loadgroup: the tests of one xdist_group run on one worker (the systemd
# sandbox tests share one sandbox per module).
unit: $(BIN)/.synced
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

demo: $(BIN)/.synced
	$(BIN)/python examples/jobqueue/demo.py

# The long versions of the reliability suites (about 20 minutes, not in
# CI). Each pytest process appends its figures to SOAK_REPORT as one JSON
# line; COTYLEDON_SEED=N replays the schedules of a seed. The faulthandler
# timeout follows the test timeout, so that a long scenario does not dump
# its stacks while it is still within its time.
SOAK_REPORT ?= $(CURDIR)/soak-report.jsonl

soak: $(BIN)/.synced
	rm -f $(SOAK_REPORT)
	COTYLEDON_SOAK=1 COTYLEDON_RELIABILITY_REPORT=$(SOAK_REPORT) \
	  $(BIN)/pytest -n 2 -o timeout=900 -o faulthandler_timeout=900 packages/cotyledon-core/tests/reliability
	cat $(SOAK_REPORT)

# Runs the test suite once per supported Python found under pyenv (or on
# PATH as pythonX.Y); each gets a virtual environment of its own.
test-pythons: | $(UV)
	@set -e; for v in $(SUPPORTED_PYTHONS); do \
	  py=$$(ls -d $$(pyenv root 2>/dev/null)/versions/$$v.*/bin/python$$v 2>/dev/null | tail -n 1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v || true); \
	  if [ -z "$$py" ]; then echo "python$$v: not found, skipped"; continue; fi; \
	  echo "== python$$v ($$py)"; \
	  UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venvs/py$$v $(UV) sync --locked --python $$py; \
	  $(CURDIR)/.venvs/py$$v/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup -q; \
	done

# oslo.service's threading backend, on this project's cotyledon: installs
# oslo.service from PyPI into .venvs/oslo-service, checks that no cotyledon
# 2.x code got in, then runs oslo.service's threading tests and ours.
# Needs Python 3.11 or later, like oslo.service 4.x.
OSLO_SERVICE_VERSION ?= 4.8.0

oslo-service:
	PYTHON=$(PY) OSLO_SERVICE_VERSION=$(OSLO_SERVICE_VERSION) bash tools/oslo_service/run.sh

# The benchmarks of BENCHMARKS.md, against cotyledon 2.2.0 from PyPI in a
# virtual environment of its own, with the same interpreter as .venv. This
# project and the floors run in another one, where cotyledon-core is
# installed alone, as a service would have it: .venv also holds the
# testkit, cotyledon-systemd and the development tools, whose .pth files
# and entry points each master would load at its start. It is installed
# again at each run, from the sources of the work tree.
BENCH_BASELINE := $(CURDIR)/.venvs/bench-2.2.0
BENCH_THIS := $(CURDIR)/.venvs/bench-this

$(BENCH_BASELINE)/.installed: | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PY) $(BENCH_BASELINE)
	$(UV) pip install --quiet --python $(BENCH_BASELINE)/bin/python 'cotyledon==2.2.0'
	touch $@

bench: $(BIN)/.synced $(BENCH_BASELINE)/.installed
	$(UV) venv --quiet --allow-existing --python $(PY) $(BENCH_THIS)
	$(UV) pip install --quiet --reinstall-package cotyledon-core --python $(BENCH_THIS)/bin/python ./packages/cotyledon-core
	$(BIN)/python -m benchmarks --this-python $(BENCH_THIS)/bin/python \
	  --baseline-python $(BENCH_BASELINE)/bin/python

clean:
	rm -rf $(VENV) .venvs .tools .mypy_cache .ruff_cache .hypothesis
