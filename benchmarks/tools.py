"""Measuring tools shared by the sections: wrk, RSS sampling, API and worker processes, S3 uploads,
waiting for jobs. Nothing here decides what a good figure is; sections do."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mediaflow.settings import Settings
from tests.apptools import REPO, ApiServer, settings_env

FINAL = ("completed", "failed", "canceled")


# --- HTTP load: wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors

    def __str__(self) -> str:
        return f"{self.requests_per_s:,.0f} req/s, p99 {self.p99_ms:.0f} ms"


_WRK_SCRIPT = """
{setup}
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format('WRK_JSON {{"requests": %d, "seconds": %f, "p50_us": %f, "p99_us": %f, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), errors))
end
"""


def wrk(
    url: str,
    *,
    body: dict | None = None,
    headers: dict | None = None,
    connections: int = 50,
    seconds: float = 10,
    threads: int = 1,
    workdir: Path,
) -> WrkResult:
    """Run wrk (Debian package `wrk`) against `url`: GET, or POST with a JSON body."""
    setup = ""
    if body is not None:
        setup = (
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    for name, value in (headers or {}).items():
        setup += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(_WRK_SCRIPT.format(setup=setup))
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        requests_per_s=data["requests"] / data["seconds"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"],
    )


# --- memory ----------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of one process (not its children: ffmpeg is measured apart)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Samples a process's RSS every 50 ms on a thread while the `with` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except OSError:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


# --- processes -------------------------------------------------------------------------------------


def start_api(settings: Settings, cwd: Path, *, api_workers: int = 0, **env: str) -> ApiServer:
    cwd.mkdir(parents=True, exist_ok=True)
    return ApiServer(settings, cwd, api_workers=api_workers, LOG_LEVEL="WARNING", **env)


def start_worker(settings: Settings, cwd: Path, *, cpu: int | None = None, **env: str) -> subprocess.Popen:
    """`python worker.py`, pinned to one CPU with taskset when `cpu` is given (ffmpeg inherits it)."""
    argv = [sys.executable, str(REPO / "worker.py")]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    log = open(cwd / f"worker-{time.monotonic_ns()}.log", "w")
    environment = settings_env(settings) | {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"} | env
    return subprocess.Popen(argv, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=log)


def worker_ready(log: Path, stack: str) -> bool:
    """The worker (its stderr log) is taking jobs: on Kafka, once the group gave it its partitions (or none)."""
    text = log.read_text() if log.exists() else ""
    if stack == "kafka":
        return "kafka.partitions_assigned" in text or "kafka.no_partition_assigned" in text
    return "worker.started" in text


def wait_workers_ready(directory: Path, stack: str, count: int, timeout: float = 60) -> None:
    """Until the `count` workers logging to `directory` (start_worker) take jobs, then let a Kafka group settle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = sorted(directory.glob("worker-*.log"))
        if len(logs) == count and all(worker_ready(log, stack) for log in logs):
            time.sleep(2 if stack == "kafka" else 0.5)  # the group settles after the last join
            return
        time.sleep(0.2)
    raise TimeoutError(f"{count} workers not ready after {timeout:g} s; see {directory}/worker-*.log")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process and of its children it has waited for (a worker's ffmpeg
    runs), from /proc/<pid>/stat: on a shared machine this moves far less than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after "pid (comm)": fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


def stop_processes(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- jobs ------------------------------------------------------------------------------------------


def submit(client: httpx.Client, source: str, method: str, **extra) -> str:
    response = client.post("/process", json={"source": source, "method_name": method, **extra})
    response.raise_for_status()
    return response.json()["job_id"]


def wait_final(client: httpx.Client, job_id: str, *, poll_s: float = 0.01, timeout: float = 600) -> dict:
    """Poll GET /status every `poll_s` (10 ms: the poll adds at most that to a measured time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/status/{job_id}").json()
        if body["status"] in FINAL:
            if body["status"] != "completed":
                raise RuntimeError(f"job {job_id} ended {body['status']}: {body.get('error')}")
            return body
        time.sleep(poll_s)
    raise TimeoutError(f"job {job_id} not finished after {timeout} s")


def wait_all_final(client: httpx.Client, job_ids: list[str], *, timeout: float = 900) -> None:
    pending = set(job_ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            body = client.get(f"/status/{job_id}").json()
            if body["status"] in FINAL:
                if body["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {body['status']}: {body.get('error')}")
                pending.discard(job_id)
        time.sleep(0.05)
    if pending:
        raise TimeoutError(f"{len(pending)} jobs not finished after {timeout} s")


def put_s3(settings: Settings, path: Path, bucket: str, key: str) -> str:
    """Upload a source to S3 (bucket created if needed); returns its s3:// URI."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.AWS_REGION,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def place_source(settings: Settings, stack: str, path: Path) -> str:
    """Put a source where the stack's workers read it: the bucket on `kafka` (an s3:// URI), the API's
    media folder otherwise (the bare file name, under LOCAL_SOURCE_ROOTS)."""
    if stack == "kafka":
        return put_s3(settings, path, settings.OUTPUT_BUCKET + "-src", f"videos/{path.name}")
    shutil.copyfile(path, settings.SQLITE_PATH.parent / "media" / path.name)
    return path.name


def ffmpeg_seconds(argv: list[str], repeat: int) -> float:
    """Median wall time of running `argv` alone."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
