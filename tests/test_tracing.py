"""OpenTelemetry: configured by the standard OTEL_* variables, off (nothing imported) without them, and one
submitted job yields one connected trace across two real processes — the API (`uvicorn main:app`) and
a `python worker.py` — down to the webhook, whose receiver gets the trace's `traceparent`. Each process
exports with the SDK's console exporter (OTEL_TRACES_EXPORTER=console) into its stdout file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from mediaflow.observability.tracing import TracingConfigError, exporter_names
from tests.apptools import REPO, make_settings, settings_env
from tests.media import make_clip
from tests.servers.process import free_port
from tests.webhook_receiver import Receiver

OTEL_ENV = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
WORKER_SPANS = ["job.claim", "job.run", "job.download", "job.probe", "job.encode", "job.upload", "webhook.deliver"]


def test_exporters_come_from_the_standard_variables():
    assert exporter_names({}) == [] and exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console"}) == ["console"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp,console"}) == ["otlp_proto_http", "console"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == [
        "otlp_proto_grpc"
    ]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) == []
    with pytest.raises(TracingConfigError, match="not one of"):
        exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon"})


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in settings_env(make_settings(Path("/tmp"))).items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean | env, capture_output=True, text=True, timeout=60
    )


def test_tracing_off_costs_nothing():
    """No SDK, instrumentation or exporter is imported (FastAPI itself imports the small opentelemetry API)."""
    result = run_python(
        "import sys, main, worker; from mediaflow.api.app import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.instrumentation', 'opentelemetry.exporter'))))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_exporter_that_is_not_installed_stops_the_worker_with_a_reason():
    result = run_python("import worker, sys; sys.exit(worker.main([]))", OTEL_TRACES_EXPORTER="zipkin")
    assert result.returncode == 2
    assert "'zipkin', which is not installed" in result.stderr and "mediaflow[tracing]" in result.stderr


# --- one job, two processes, one trace -----------------------------------------------------------------


def spans_in(path: Path) -> list[dict]:
    """The spans the console exporter printed (JSON objects, one after another) into `path`."""
    text, decoder, spans, position = path.read_text(), json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict) and "context" in value and "name" in value:
            spans.append(value)
    return spans


def span_tree(spans: list[dict]) -> str:
    """The trace as an indented tree: name [service] duration."""
    children: dict[str | None, list[dict]] = {}
    for span in sorted(spans, key=lambda s: s["start_time"]):
        children.setdefault(span["parent_id"], []).append(span)
    ids = {span["context"]["span_id"] for span in spans}
    lines: list[str] = []

    def walk(span: dict, depth: int) -> None:
        service = span["resource"]["attributes"].get("service.name")
        took = datetime.fromisoformat(span["end_time"]) - datetime.fromisoformat(span["start_time"])
        lines.append(f"{'  ' * depth}{span['name']}  [{service}] {took.total_seconds() * 1000:.1f} ms")
        for child in children.get(span["context"]["span_id"], []):
            walk(child, depth + 1)

    for root in [s for s in spans if s["parent_id"] is None or s["parent_id"] not in ids]:
        walk(root, 0)
    return "\n".join(lines)


def start(args: list[str], env: dict, cwd: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=open(cwd / f"{name}.spans", "w"),
        stderr=open(cwd / f"{name}.log", "w"),
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("queue", ["embedded", pytest.param("kafka", marks=pytest.mark.backend)])
def test_one_job_is_one_trace_across_the_api_and_the_worker(tmp_path, request, queue):
    """Embedded queue: the worker finds the trace on the job record; Kafka: in the message's headers."""
    kafka = request.getfixturevalue("kafka_settings") if queue == "kafka" else {}
    settings = make_settings(
        tmp_path, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_SECRET="trace-secret", FFMPEG_THREADS=1, **kafka
    )
    clip = make_clip(tmp_path / "media", "clip.mp4", width=320, height=240, seconds=1)
    env = settings_env(settings) | {"API_WORKERS": "0", "LOG_FORMAT": "json"} | OTEL_ENV
    port = free_port()
    api = start(
        [
            "-m",
            "uvicorn",
            "main:app",
            "--app-dir",
            str(REPO),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env,
        tmp_path,
        "api",
    )
    worker = start([str(REPO / "worker.py")], env, tmp_path, "worker")
    try:
        with Receiver() as receiver, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and api.poll() is None, (tmp_path / "api.log").read_text()[-2000:]
                time.sleep(0.1)
            response = client.post(
                "/process", json={"source": str(clip), "method_name": "compress", "callback_url": receiver.url()}
            )
            assert response.status_code == 200, response.text
            job_id = response.json()["job_id"]
            deadline = time.monotonic() + 60
            while not receiver.of_type("job.completed"):
                assert time.monotonic() < deadline, client.get(f"/status/{job_id}").json()
                time.sleep(0.1)
            [delivery] = receiver.of_type("job.completed")
    finally:
        stop(worker)
        stop(api)

    spans = spans_in(tmp_path / "api.spans") + spans_in(tmp_path / "worker.spans")
    [root] = [s for s in spans if s["name"] == "POST /process" and s["parent_id"] is None]
    trace_id = root["context"]["trace_id"]
    trace = [s for s in spans if s["context"]["trace_id"] == trace_id]
    print(f"\n{span_tree(trace)}")  # shown with pytest -s
    names = [s["name"] for s in trace]
    assert not [name for name in names if name.endswith((" http send", " http receive"))], (
        "no span per ASGI message: a streamed download would make thousands"
    )
    for name in WORKER_SPANS:
        assert names.count(name) == 1, f"{name}: {names}"
    ids = {s["context"]["span_id"] for s in trace}
    assert all(s["parent_id"] in ids for s in trace if s is not root), "every span hangs off the request's trace"
    by_name = {s["name"]: s for s in trace}
    assert by_name["job.claim"]["attributes"]["mediaflow.trace_context_from"] == ("message" if kafka else "job")
    services = {name: by_name[name]["resource"]["attributes"]["service.name"] for name in ("POST /process", "job.run")}
    assert services == {"POST /process": "mediaflow-api", "job.run": "mediaflow-worker"}, "two processes, one trace"
    run_id = by_name["job.run"]["context"]["span_id"]
    assert all(
        by_name[name]["parent_id"] == run_id for name in ("job.download", "job.probe", "job.encode", "job.upload")
    )
    assert by_name["job.run"]["attributes"]["mediaflow.job_id"] == job_id
    # The receiver can join the trace too: traceparent names the delivery's span.
    webhook = by_name["webhook.deliver"]
    version, sent_trace, sent_span, flags = delivery.headers["traceparent"].split("-")
    assert (version, sent_trace, sent_span) == ("00", trace_id[2:], webhook["context"]["span_id"][2:])
    assert int(flags, 16) & 1, "sampled"
    assert delivery.standard_ok("trace-secret")
