"""Helpers for tests that run the API and workers in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from mediaflow.settings import Settings


def make_settings(base: Path, **overrides: Any) -> Settings:
    """Settings for a test: everything under `base`, quick polling, no .env file."""
    (base / "media").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "SQLITE_PATH": base / "mediaflow.db",
        "LOCAL_STORAGE_DIR": base / "storage",
        "LOCAL_SOURCE_ROOTS": [base / "media"],
        "WORK_DIR": None,
        "POLL_INTERVAL_S": 0.2,
        "PROGRESS_WRITE_INTERVAL_S": 0.2,
        "LEASE_SECONDS": 6,
        "LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_app(settings: Settings, api_workers: int = 0) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it in-process."""
    from mediaflow.api.app import create_app

    app = create_app(settings, api_workers=api_workers)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mediaflow.test", timeout=30) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def wait_for_final(
    client: httpx.AsyncClient, job_id: str, timeout: float = 60, *, view: str = "/status/{}"
) -> dict:
    """Poll /status (or `view`, e.g. "/jobs/{}") until the job is completed, failed or canceled; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await client.get(view.format(job_id))).json()
        if body["status"] in ("completed", "failed", "canceled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s: {body}")


REPO = Path(__file__).resolve().parent.parent


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess (worker.py, uvicorn) the same settings."""
    import json
    import os

    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            env.pop(name, None)
        elif name == "LOCAL_SOURCE_ROOTS":
            env[name] = ",".join(value)
        elif isinstance(value, (dict, list)):
            env[name] = json.dumps(value)
        else:
            env[name] = str(value)
    env["API_KEYS"] = settings.API_KEYS.get_secret_value()
    if settings.AWS_SECRET_ACCESS_KEY is not None:
        env["AWS_SECRET_ACCESS_KEY"] = settings.AWS_SECRET_ACCESS_KEY.get_secret_value()
    if settings.WEBHOOK_SECRET is not None:
        env["WEBHOOK_SECRET"] = settings.WEBHOOK_SECRET.get_secret_value()
    return env


def start_worker(settings: Settings, cwd: Path, *args: str, **env_overrides: str):
    """A `python worker.py` process with JSON logs on stderr (read them with `worker_events`)."""
    import subprocess
    import sys

    env = settings_env(settings) | {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"} | env_overrides
    log = open(cwd / f"worker-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "worker.py"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    process.log_file = log  # type: ignore[attr-defined]
    return process


def stop_workers(workers, timeout: float = 60) -> None:
    """SIGTERM every worker process at once (each finishes or hands back its job), then wait for them.
    One still running after `timeout` is killed, so it cannot outlive its test, and the test fails:
    a worker that ignores SIGTERM that long is a bug (SHUTDOWN_GRACE_S is 30 s by default)."""
    import signal
    import subprocess

    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    stuck = []
    for worker in workers:
        try:
            worker.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            stuck.append(worker.pid)
    assert not stuck, f"workers {stuck} were still running {timeout:g} s after SIGTERM (killed)"


def worker_events(process) -> list[dict]:
    import json

    process.log_file.flush()
    text = Path(process.log_file.name).read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def wait_for_kafka_assignments(workers, timeout: float = 60) -> None:
    """Until every `worker.py` process has been given its partitions: a job submitted before the group's
    last rebalance has all its messages on the first worker's partitions."""
    deadline = time.monotonic() + timeout
    while not all(any(e["event"] == "kafka.partitions_assigned" for e in worker_events(w)) for w in workers):
        if time.monotonic() > deadline:
            raise AssertionError(f"not every worker was assigned partitions within {timeout} s")
        await asyncio.sleep(0.1)


def ffmpeg_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains `marker` (e.g. a job's temp dir prefix)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if marker in cmdline and "ffmpeg" in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


class ApiServer:
    """The real API (`uvicorn main:app`) in a subprocess on a free 127.0.0.1 port."""

    def __init__(
        self,
        settings: Settings,
        cwd: Path,
        *,
        api_workers: int = 0,
        probe_timeout: float = 1,
        start_timeout: float = 30,
        **env_overrides: str,
    ) -> None:
        import subprocess
        import sys

        from tests.servers.process import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = settings_env(settings) | {"API_WORKERS": str(api_workers), "LOG_FORMAT": "json"} | env_overrides
        self.log_path = cwd / f"api-{self.port}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
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
                str(self.port),
            ],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=probe_timeout).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"API not ready after {start_timeout:g} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        import signal
        import subprocess

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


@asynccontextmanager
async def finished_job(settings, cwd: Path, source: str, outputs: list[dict], timeout: float = 180):
    """The API (uvicorn) and one `python worker.py` on `settings`: POST /jobs with `outputs`, wait until
    the job is final; yields (the server's URL, the job) while both still run, to fetch its files."""
    with ApiServer(settings, cwd) as server:
        worker = start_worker(settings, cwd)
        try:
            created = httpx.post(f"{server.url}/jobs", json={"source": source, "outputs": outputs})
            assert created.status_code == 201, created.text
            async with httpx.AsyncClient(base_url=server.url) as client:
                job = await wait_for_final(client, created.json()["job_id"], timeout, view="/jobs/{}")
            yield server.url, job
        finally:
            stop_workers([worker])
