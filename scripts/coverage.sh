#!/usr/bin/env bash
# Line coverage of edged/ and hal/ over the whole suite, daemon subprocesses included
# ([tool.coverage.run] patch = ["subprocess"] in pyproject.toml). Not part of scripts/test.sh.
#
#   bash scripts/coverage.sh                 # the whole suite
#   bash scripts/coverage.sh tests/payments  # or some of it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXTRAS=dev bash scripts/bootstrap.sh
rm -f .coverage .coverage.*
status=0
.venv/bin/python -m coverage run -m pytest -p no:cacheprovider -q "$@" || status=$?
.venv/bin/python -m coverage combine -q
.venv/bin/python -m coverage report --skip-covered --sort=cover
exit "$status"
