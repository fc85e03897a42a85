"""The seed's production shape started the way a seed user starts it: only the seed README's variable
names in the environment (DB_BACKEND, MONGO_URL, KAFKA_*, OUTPUT_*, AWS_*) plus the endpoint URLs of
the test servers; never QUEUE_BACKEND, STORAGE_BACKEND or KAFKA_TOPIC_PARTITIONS, which are ours."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mediaflow.settings import Settings
from tests.apptools import REPO
from tests.servers.process import free_port

FINAL = ("completed", "failed", "canceled")


def seed_environment(**seed_vars: str) -> dict[str, str]:
    """os.environ without any MediaFlow setting (so nothing of ours leaks in), plus `seed_vars`."""
    ours = set(Settings.model_fields)
    env = {name: value for name, value in os.environ.items() if name.upper() not in ours}
    return env | {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"} | seed_vars


class Process:
    """A subprocess with its stderr/stdout in a log file; `events()` parses its JSON log lines."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, name: str) -> None:
        self.log_path = cwd / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def events(self) -> list[dict]:
        if not self._log.closed:
            self._log.flush()
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_api(env: dict[str, str], cwd: Path) -> tuple[Process, str]:
    """`uvicorn main:app` as the seed README runs it; returns it and its URL once /readyz answers 200."""
    port = free_port()
    api = Process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "main:app",
            "--app-dir",
            str(REPO),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        cwd,
        "api",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise AssertionError(f"API exited with {api.process.returncode}:\n{api.log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return api, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    api.stop()
    raise AssertionError(f"API not ready after 30 s:\n{api.log_path.read_text()[-3000:]}")


def start_worker(env: dict[str, str], cwd: Path) -> Process:
    """`python worker.py`, as in the seed README's "three terminals"."""
    return Process([sys.executable, str(REPO / "worker.py")], env, cwd, "worker")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_all_final(url: str, job_ids: list[str], timeout: float) -> dict[str, dict]:
    statuses: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = {job_id: httpx.get(f"{url}/status/{job_id}").json() for job_id in job_ids}
        if all(status["status"] in FINAL for status in statuses.values()):
            return statuses
        time.sleep(0.3)
    raise AssertionError(f"jobs not final after {timeout} s: {[s['status'] for s in statuses.values()]}")
