#!/usr/bin/env bash
# The test command of the README and of CI: installs everything, lints, runs the whole suite.
# Extra arguments go to pytest (e.g. infra/test.sh -k endpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -m "not slow" "$@"
