#!/usr/bin/env bash
# One command from a fresh clone to a running MediaFlow on the embedded default
# (SQLite job store, local storage, API and a worker in one process): http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p media
exec .venv/bin/mediaflow serve "$@"
