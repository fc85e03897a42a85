"""The `mediaflow` command line as a user runs it: a subprocess against a real API server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apptools import REPO, ApiServer, make_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ApiServer:
    """The embedded default with one in-process worker: jobs really run."""
    base = tmp_path_factory.mktemp("cli-server")
    with ApiServer(make_settings(base), base, api_workers=1) as api_server:
        api_server.media_root = base / "media"  # type: ignore[attr-defined]
        yield api_server


def cli_env(server_url: str, api_key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    env["MEDIAFLOW_URL"] = server_url
    if api_key:
        env["MEDIAFLOW_API_KEY"] = api_key
    # `-m cli` from another directory: this checkout's modules, whatever the installed entry point knows.
    env["PYTHONPATH"] = str(REPO)
    return env


def mediaflow(
    server_url: str, cwd: Path, *args: str, api_key: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """`python -m mediaflow ARGS` in `cwd`, talking to `server_url`; its exit code and output, captured."""
    return subprocess.run(
        [sys.executable, "-m", "mediaflow", *args],
        cwd=cwd,
        env=cli_env(server_url, api_key),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
