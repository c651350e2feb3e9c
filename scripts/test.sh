#!/usr/bin/env bash
# Install the test dependencies and run the whole suite: lint, layering, types, tests, notebooks.
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh -k hub     extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-deps.sh
python -m pip install -q --disable-pip-version-check -e ".[test]"
# An editable install leaves our sources uncompiled (a wheel install compiles them), and where
# PYTHONDONTWRITEBYTECODE is set, as on some CI images, every kernel and scheduler process the
# suite starts compiled them again: about 0.5 s a start on a 2-core machine.
python -m compileall -q vtkernel shells >/dev/null
# Strudel 1.1, the reference of the pattern tests, pinned by tests/strudel/package-lock.json
if command -v npm >/dev/null; then npm ci --prefix tests/strudel --no-audit --no-fund --loglevel=error >/dev/null; fi
python -m vtkernel install --sys-prefix >/dev/null
echo "== ruff"; python -m ruff check vtkernel shells tests benchmarks
echo "== import-linter"; lint-imports --no-cache
echo "== mypy --strict (engine, runtime, pictures, hand-off)"; python -m mypy --strict vtkernel/engine vtkernel/runtime vtkernel/pictures vtkernel/handoff.py vtkernel/kernel/prespawn.py
echo "== pytest"
set +e
python -m pytest -p no:cacheprovider "$@"
code=$?
if [ "$code" -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi
if [ "$code" -eq 0 ] && [ "$#" -eq 0 ] && [ -z "${VTKERNEL_PORTABLE:-}" ]; then
  # Once more with the code paths macOS and Windows take (docs/platforms.md). Browser tests
  # do not touch them, nor do the tests tests/conftest.py lists in PLATFORM_NEUTRAL (why each
  # is there is said beside it, and tests/test_hygiene.py keeps the list true).
  echo "== pytest, forced portable (VTKERNEL_PORTABLE=1)"
  VTKERNEL_PORTABLE=1 python -m pytest -p no:cacheprovider -q -m "not browser and not platform_neutral"
  code=$?
  if [ "$code" -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi
fi
set -e
exit "$code"
