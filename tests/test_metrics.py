"""Observability on real things: jobs run by real workers on generated clips, the metrics scraped and
parsed with prometheus_client's own parser; request ids and the JSON access log of a real uvicorn API;
a real `python worker.py` serving its metrics port."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from mediaflow.jobs.model import Job, Method
from mediaflow.store import open_store
from tests.apptools import ApiServer, make_settings, running_app, start_worker, wait_for_final
from tests.media import make_clip, text_as_mp4
from tests.servers.process import free_port

Samples = dict[tuple[str, frozenset], float]

# Every route template of the API (and /ui, the dashboard mount): no other route label may appear.
KNOWN_ROUTE = re.compile(r"^(/[a-z]*|/(status|download)/\{job_id\}|/jobs/\{job_id\}/[a-z]+|unmatched)$")


def parse(text: str) -> Samples:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def label_values(samples: Samples, label: str) -> set[str]:
    return {v for _, labels in samples for k, v in labels if k == label}


async def submit(client: httpx.AsyncClient, source: str) -> str:
    response = await client.post("/process", json={"source": source, "method_name": "compress"})
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


async def scrape_until(client: httpx.AsyncClient, ready, timeout: float = 10) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        samples = parse(response.text)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.1)


async def test_metrics_count_what_the_jobs_and_requests_did(tmp_path):
    settings = make_settings(tmp_path)  # makes tmp_path/media
    make_clip(tmp_path / "media", "clip.mp4", width=320, height=240, seconds=2)
    text_as_mp4(tmp_path / "media", "text.mp4")
    async with running_app(settings, api_workers=1) as client:
        good, bad, doomed = [await submit(client, source) for source in ("clip.mp4", "text.mp4", "clip.mp4")]
        assert (await client.post(f"/jobs/{doomed}/cancel")).status_code == 200  # the worker is busy with `good`
        finals = {job_id: (await wait_for_final(client, job_id))["status"] for job_id in (good, bad, doomed)}
        assert finals == {good: "completed", bad: "failed", doomed: "canceled"}
        assert (await client.get(f"/no/such/{good}")).status_code == 404

        response = await client.get("/metrics")
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        # The worker settles its last job a moment after the record says failed.
        m = await scrape_until(client, lambda m: value(m, "mediaflow_workers_active") == 0)

    jobs = {
        status: value(m, "mediaflow_jobs", status=status)
        for status in ("queued", "processing", "completed", "failed", "canceled")
    }
    assert jobs == {"queued": 0, "processing": 0, "completed": 1, "failed": 1, "canceled": 1}
    assert value(m, "mediaflow_store_up") == 1
    assert (value(m, "mediaflow_workers"), value(m, "mediaflow_workers_active")) == (1, 0)

    for status in ("completed", "failed", "canceled"):
        assert value(m, "mediaflow_jobs_finished_total", status=status, method="compress") == 1, status
    assert value(m, "mediaflow_job_failures_total", reason="invalid_input") == 1
    assert sum(v for (name, _), v in m.items() if name == "mediaflow_job_failures_total") == 1
    assert value(m, "mediaflow_jobs_requeued_total") == 0

    assert value(m, "mediaflow_job_duration_seconds_count", method="compress") == 1
    assert value(m, "mediaflow_job_duration_seconds_sum", method="compress") > 0
    assert value(m, "mediaflow_job_queue_wait_seconds_count") == 2  # good and bad were claimed, doomed never
    assert value(m, "mediaflow_encode_speed_ratio_count", method="compress") == 1
    assert value(m, "mediaflow_encode_speed_ratio_sum", method="compress") > 0

    http = "mediaflow_http_requests_total"
    assert value(m, http, method="POST", route="/process", status="200") == 3
    assert value(m, http, method="POST", route="/jobs/{job_id}/cancel", status="200") == 1
    assert value(m, http, method="GET", route="/status/{job_id}", status="200") >= 3
    assert value(m, http, method="GET", route="unmatched", status="404") == 1
    assert value(m, "mediaflow_http_request_duration_seconds_count", method="POST", route="/process") == 3
    routes = label_values(m, "route")
    assert all(KNOWN_ROUTE.match(route) for route in routes), routes
    every_label_value = {v for _, labels in m for _, v in labels}
    assert not [v for v in every_label_value for job_id in (good, bad, doomed) if job_id in v]


async def test_a_store_that_fails_is_reported_not_a_failed_scrape(tmp_path):
    async with running_app(make_settings(tmp_path, METRICS_JOB_COUNTS_TTL_S=0)) as client:
        assert value(parse((await client.get("/metrics")).text), "mediaflow_store_up") == 1
        await client.app.state.store.close()  # the real store, gone
        response = await client.get("/metrics")
    assert response.status_code == 200
    m = parse(response.text)
    assert value(m, "mediaflow_store_up") == 0
    assert not [name for name, _ in m if name == "mediaflow_jobs"], "no stale counts"


def test_request_ids_are_echoed_and_logged_with_the_job(tmp_path):
    key = "k" * 24
    settings = make_settings(tmp_path, API_KEYS=f"ops:{key}")
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not a video: no worker runs in this API")
    auth = {"X-API-Key": key}
    with ApiServer(settings, tmp_path, LOG_LEVEL="INFO") as server:
        job_id = httpx.post(
            f"{server.url}/process", json={"source": "clip.mp4", "method_name": "compress"}, headers=auth
        ).json()["job_id"]
        mine = httpx.get(f"{server.url}/status/{job_id}", headers={**auth, "X-Request-ID": "trace-42.a_B"})
        assert mine.status_code == 200
        assert mine.headers["x-request-id"] == "trace-42.a_B"
        given = [
            httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
            for bad in ("has space", "x" * 129, "semi;colon", "")
        ]
        given.append(httpx.get(f"{server.url}/healthz").headers["x-request-id"])
        assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in given), given
        assert len(set(given)) == len(given)
        # /metrics is open like the health endpoints; the API itself still wants the key.
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert httpx.get(f"{server.url}/process").status_code == 401
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]

    access = [line for line in lines if line.get("request_id") == "trace-42.a_B"]
    assert len(access) == 1, access
    assert access[0] | {"timestamp": None, "duration_ms": None} == {
        "event": "http.request",
        "level": "info",
        "method": "GET",
        "route": "/status/{job_id}",
        "status": 200,
        "job_id": job_id,
        "request_id": "trace-42.a_B",
        "timestamp": None,
        "duration_ms": None,
    }
    assert access[0]["duration_ms"] >= 0
    queued = [line for line in lines if line.get("event") == "job.queued"]
    assert queued and queued[0]["request_id"], "lines written inside a request carry its id"
    submit_line = [
        line
        for line in lines
        if line.get("event") == "http.request" and line["route"] == "/process" and line["method"] == "POST"
    ]
    assert submit_line[0]["job_id"] == job_id and submit_line[0]["request_id"] == queued[0]["request_id"]
    requests = [line for line in lines if line.get("event") == "http.request" and line["route"] != "/readyz"]
    assert len(requests) == 9, requests  # one line per request (the /readyz ones are ApiServer waiting)


async def test_a_standalone_worker_serves_its_own_metrics(tmp_path):
    settings = make_settings(tmp_path)
    make_clip(tmp_path / "media", "clip.mp4", width=320, height=240, seconds=2)
    store = await open_store(settings)
    try:
        await store.create(Job(method_name=Method.COMPRESS, source="clip.mp4", output_format="mp4"))
    finally:
        await store.close()
    port = free_port()
    worker = start_worker(settings, tmp_path, WORKER_METRICS_PORT=str(port))
    try:
        m = await scrape_worker_until(
            f"http://127.0.0.1:{port}/metrics",
            worker,
            lambda m: value(m, "mediaflow_jobs_finished_total", status="completed", method="compress") == 1,
        )
        assert value(m, "mediaflow_workers") == 1
        assert value(m, "mediaflow_job_duration_seconds_count", method="compress") == 1
        assert value(m, "mediaflow_job_queue_wait_seconds_count") == 1
        assert not [name for name, _ in m if name in ("mediaflow_jobs", "mediaflow_store_up")], (
            "jobs by status come from the API, not from every worker"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0


async def scrape_worker_until(url: str, worker, ready, timeout: float = 30) -> Samples:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            assert worker.poll() is None, f"worker exited: {worker.returncode}"
            try:
                samples = parse((await client.get(url)).text)
                if ready(samples):
                    return samples
            except httpx.TransportError:  # not listening yet
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never showed the expected metrics")
