#!/usr/bin/env bash
# `make oslo-service`: oslo.service's threading backend on this project.
#
# 1. A fresh virtual environment, .venvs/oslo-service, gets this project's
#    distributions from the working tree: cotyledon-core[oslo], cotyledon
#    (the 2.x name, which installs cotyledon-core) and cotyledon-testkit.
# 2. pip installs oslo.service[threading] next to them, as a user would.
#    oslo.service requires cotyledon>=2.2.0, which the installed 3.0.0.dev0
#    satisfies; check_install.py fails if any cotyledon 2.x file got in.
# 3. oslo.service's own tests of the threading backend run twice: as its
#    unit test environment runs them (eventlet monkey-patched by
#    oslo_service.tests), and as the threading backend runs in production
#    (OSLO_SERVICE_SKIP_EVENTLET=1: no monkey-patching).
# 4. packages/cotyledon-core/tests/oslo/test_oslo_service_launcher.py drives
#    oslo.service's launcher with real processes (make test runs it too).
#
# Needs Python 3.11 or later (oslo.service 4.x does) and PyPI.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tools/oslo_service
PYTHON=${PYTHON:-python3}
VERSION=${OSLO_SERVICE_VERSION:-4.8.0}
VENV=$ROOT/.venvs/oslo-service
PY=$VENV/bin/python

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "oslo-service: oslo.service $VERSION needs Python 3.11 or later;" \
        "set PYTHON to one (PYTHON=python3.12 make oslo-service)" >&2
    exit 2
fi

echo "== fresh environment $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pip_install() {
    "$PY" -m pip install --quiet --disable-pip-version-check "$@"
}

echo "== this project: cotyledon-core[oslo], cotyledon, cotyledon-testkit"
pip_install "$ROOT/packages/cotyledon-core[oslo]" "$ROOT/packages/cotyledon" \
    "$ROOT/packages/cotyledon-testkit"

echo "== pip install oslo.service[threading]==$VERSION and its test tools"
pip_install "oslo.service[threading]==$VERSION" oslotest fixtures pytest-timeout
"$PY" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -i -E '^(cotyledon(-core|-testkit)?|oslo\.(service|config)|eventlet|futurist) '

echo "== no cotyledon 2.x code"
"$PY" "$HERE/check_install.py"

# The test modules of oslo.service that cover the threading backend.
MODULES=(
    oslo_service.tests.backend.threading.test_launcher
    oslo_service.tests.backend.threading.test_signal_handler
    oslo_service.tests.backend.threading.test_threadgroup
    oslo_service.tests.test_spawn_context_integration
    oslo_service.tests.functional.test_fork_safety_regression
)
# This test expects ConfigOpts pickling to fail with AttributeError or
# PicklingError, as it does with oslo.config 10.5. oslo.config 10.6 and later
# raise their own ConfigOptsSerializationError instead. No cotyledon code
# runs in this test.
KNOWN_FAILURES=(-k "not (LauncherTestCase and test_explicit_spawn_rejects_unpicklable_conf)")

# Outside the repository, so that its pytest configuration stays out.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
run_pytest() {
    "$PY" -m pytest -c "$HERE/pytest.ini" --rootdir "$WORK" "$@"
}

echo "== oslo.service $VERSION threading tests, eventlet monkey-patched"
run_pytest --pyargs "${MODULES[@]}" "${KNOWN_FAILURES[@]}"

echo "== oslo.service $VERSION threading tests, without eventlet (OSLO_SERVICE_SKIP_EVENTLET=1)"
OSLO_SERVICE_SKIP_EVENTLET=1 run_pytest --pyargs "${MODULES[@]}" "${KNOWN_FAILURES[@]}"

echo "== oslo.service's launcher driven with real processes"
run_pytest "$ROOT/packages/cotyledon-core/tests/oslo/test_oslo_service_launcher.py"
