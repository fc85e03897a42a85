"""`mediaflow serve` on a port that is taken: it says so in words, with the way out (--port and
MEDIAFLOW_URL), before the app opens its store or starts a worker (it logs `worker.started` once it
does). Serving on a free port, from the socket bound first, is tests/test_first_page.py's test."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.apptools import REPO, make_settings, settings_env


def test_a_taken_port_is_named_with_the_way_out(tmp_path):
    settings = make_settings(tmp_path, LOG_LEVEL="INFO")
    env = settings_env(settings) | {"LOG_FORMAT": "json", "API_WORKERS": "1", "PYTHONPATH": str(REPO)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mediaflow", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 3, result.stderr
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr, result.stderr
    assert f"mediaflow serve --port {port + 1}" in result.stderr and f"MEDIAFLOW_URL=http://127.0.0.1:{port + 1}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "Errno 98" not in result.stderr
    assert "worker" not in result.stderr.lower(), "a worker started before the port was found taken"
