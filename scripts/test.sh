#!/usr/bin/env bash
# One command from a fresh clone to the whole test suite, real servers included
# (Kafka, MongoDB, DynamoDB, S3, ffmpeg, Chromium). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
mkdir -p test-artifacts

# The static checks come first and fail the run on any finding (set -e): lint, formatting, types,
# all configured in pyproject.toml.
echo "==> ruff check";          .venv/bin/ruff check .
echo "==> ruff format --check"; .venv/bin/ruff format --check .
echo "==> mypy";                .venv/bin/mypy

pytest=(.venv/bin/python -m pytest -ra "$@")
# DynamoDB Local cannot be told to bind 127.0.0.1 only. Where we may, run the suite in a private
# network namespace that has nothing but loopback, so no test server is reachable from outside.
if unshare -n true 2>/dev/null && command -v ip >/dev/null 2>&1; then
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${pytest[@]}"
fi
exec "${pytest[@]}"
