#!/usr/bin/env bash
# Set up, then run every check: lint, types and the whole test suite (slow end-to-end tests too).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest -q "$@"
