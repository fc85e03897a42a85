"""Prometheus metrics: what the jobs, the workers and the HTTP API are doing.

Each app (and each standalone worker process) keeps its metrics in its own `CollectorRegistry`, not in
prometheus_client's global one, so that several apps in one process (the tests) never collide.

Where the numbers come from:
- job histograms and counters: the process's `JobEvents` (lifecycle emits only changes the store
  actually applied, so a refused zombie update is never counted);
- `mediaflow_jobs{status}`: counted in the job store at scrape time (the store is the truth, shared by
  every process), cached briefly so scrapes cannot hammer it;
- `mediaflow_workers*`: read from this process's live `Worker` objects at scrape time, so the gauges
  cannot drift when a worker stops or crashes; `mediaflow_workers_alive` and `mediaflow_worker_slots_*`
  (API only): every machine's, from the presence beats in the store (presence_gauges.py);
- HTTP: a pure ASGI middleware labelling by route template, never by raw path.

Counters and histograms are per process: sum them across the API and the workers in PromQL.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mediaflow.jobs.events import EventType, FailureReason, JobEvent, JobEvents
from mediaflow.jobs.model import JobStatus, Method
from mediaflow.jobs.outputs import JobDetailResponse
from mediaflow.logs import get_logger
from mediaflow.media.outputs.spec import OUTPUT_TYPES
from mediaflow.observability.presence_gauges import PresenceGauges
from mediaflow.observability.queue_gauges import QueueGauges

if TYPE_CHECKING:
    from mediaflow.settings import Settings
    from mediaflow.store import JobStore

log = get_logger("metrics")

# Video jobs take seconds (a short clip) to hours (JOB_TIMEOUT_S defaults to 3 h).
JOB_DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600)
# From "picked up at once" to "waited behind a long backlog".
QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# ffmpeg speed in multiples of real time: < 1 is slower than playback (heavy 4K), hundreds for
# audio extraction or small clips.
ENCODE_SPEED_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)
# Most API calls take milliseconds; downloads, uploads and SSE streams can take minutes.
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600)

# Statuses a job ends in; each gets a `mediaflow_jobs_finished_total` series per method.
FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)
# Any other request method (clients can send any token) is counted as "other": labels stay bounded.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


# --- jobs, from events -------------------------------------------------------------------------------


class JobMetrics:
    """Job histograms and counters, fed by `JobEvents`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "mediaflow_job_duration_seconds",
            "Run time of completed jobs, from claim to completion",
            ["method"],
            buckets=JOB_DURATION_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "mediaflow_job_queue_wait_seconds",
            "Time a job waited in the queue before a worker claimed it",
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.encode_speed = Histogram(
            "mediaflow_encode_speed_ratio",
            "ffmpeg encode speed of completed jobs, in multiples of real time",
            ["method"],
            buckets=ENCODE_SPEED_BUCKETS,
            registry=registry,
        )
        self.finished = Counter(
            "mediaflow_jobs_finished_total",
            "Jobs that reached a final status",
            ["status", "method"],
            registry=registry,
        )
        self.failures = Counter(
            "mediaflow_job_failures_total",
            "Failed jobs by reason class",
            ["reason"],
            registry=registry,
        )
        self.requeued = Counter(
            "mediaflow_jobs_requeued_total",
            "Jobs handed back to the queue (worker shutdown, crash, transient error)",
            registry=registry,
        )
        self.outputs = Counter(
            "mediaflow_outputs_finished_total",
            "Outputs of POST /jobs jobs that ended, by output type",
            ["type", "status"],
            registry=registry,
        )
        self._initialise_series()

    def _initialise_series(self) -> None:
        # Every (bounded) counter series exists from the start at 0, so rate() and increase() see
        # the first event instead of a series appearing out of nowhere.
        for status in FINISHED_STATUSES:
            for method in [*(m.value for m in Method), "outputs"]:
                self.finished.labels(status.value, method)
            for output_type in OUTPUT_TYPES:
                self.outputs.labels(output_type, status.value)
        for reason in FailureReason:
            self.failures.labels(reason.value)

    def on_event(self, event: JobEvent) -> None:
        if event.type in (EventType.COMPLETED, EventType.FAILED, EventType.CANCELED):
            self.finished.labels(event.job.status.value, event.job.label).inc()
            for state in JobDetailResponse.from_job(event.job).outputs if event.job.has_outputs else ():
                self.outputs.labels(state.type, state.status).inc()
        if event.type is EventType.STARTED:
            self._observe_queue_wait(event)
        elif event.type is EventType.COMPLETED:
            self._observe_completed_run(event)
        elif event.type is EventType.FAILED:
            self.failures.labels((event.reason or FailureReason.OTHER).value).inc()
        elif event.type is EventType.REQUEUED:
            self.requeued.inc()

    def _observe_queue_wait(self, event: JobEvent) -> None:
        if event.queued_since is not None and event.job.started_at is not None:
            self.queue_wait.observe(_seconds_between(event.queued_since, event.job.started_at))

    def _observe_completed_run(self, event: JobEvent) -> None:
        job, method = event.job, event.job.label
        if job.started_at is not None and job.completed_at is not None:
            self.duration.labels(method).observe(_seconds_between(job.started_at, job.completed_at))
        if event.speed:  # None when ffmpeg never reported one (e.g. a run too short to measure)
            self.encode_speed.labels(method).observe(event.speed)


def _seconds_between(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)  # clocks of different machines may disagree a little


# --- workers, read at scrape time --------------------------------------------------------------------


class WorkerState(Protocol):
    running: bool  # inside its run loop

    @property
    def busy(self) -> bool: ...  # working on a job


class WorkerGauges(Collector):
    """`mediaflow_workers` and `mediaflow_workers_active` for the workers of this process.

    Read from the workers themselves when scraped: nothing to increment or decrement, so nothing
    to get wrong when a worker stops, crashes or is cancelled. Held weakly: a finished worker goes.
    """

    def __init__(self) -> None:
        self._workers: weakref.WeakSet = weakref.WeakSet()

    def watch(self, workers: Iterable[WorkerState]) -> None:
        self._workers.update(workers)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workers = list(self._workers)
        yield GaugeMetricFamily(
            "mediaflow_workers", "Workers running in this process", value=sum(1 for worker in workers if worker.running)
        )
        yield GaugeMetricFamily(
            "mediaflow_workers_active",
            "Workers in this process busy with a job",
            value=sum(1 for worker in workers if worker.running and worker.busy),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()


# --- jobs by status, from the store -----------------------------------------------------------------


class JobCounts(Collector):
    """`mediaflow_jobs{status}` from `store.count()`, plus `mediaflow_store_up`.

    prometheus_client collects synchronously, the stores are async: the /metrics route awaits
    `refresh()` first, and `collect()` reports what it found. One refresh per `ttl_s` at most, however
    many scrapers there are, and at most `timeout_s` long; a store that fails or times out gives
    `mediaflow_store_up 0` (and no stale counts) rather than a failed scrape.
    """

    def __init__(self, ttl_s: float = 2.0, timeout_s: float = 5.0) -> None:
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._counts: dict[JobStatus, int] | None = None
        self._refreshed_at = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self, store: JobStore | None) -> None:
        async with self._lock:  # concurrent scrapes wait for one refresh and share its result
            if time.monotonic() - self._refreshed_at < self._ttl_s:
                return
            self._counts = await self._count_quietly(store)
            self._refreshed_at = time.monotonic()

    async def _count_quietly(self, store: JobStore | None) -> dict[JobStatus, int] | None:
        if store is None:  # the lifespan has not opened the store (yet)
            return None
        try:
            return await asyncio.wait_for(self._count(store), timeout=self._timeout_s)
        except Exception as exc:  # TimeoutError, a store error: reported as mediaflow_store_up 0
            log.warning("metrics.store_unavailable", error=f"{type(exc).__name__}: {exc}")
            return None

    @staticmethod
    async def _count(store: JobStore) -> dict[JobStatus, int]:
        return {status: await store.count(status=status) for status in JobStatus}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._counts
        yield GaugeMetricFamily(
            "mediaflow_store_up", "1 if the job store answered the last count of jobs", value=0 if counts is None else 1
        )
        if counts is not None:
            jobs = GaugeMetricFamily("mediaflow_jobs", "Jobs in the store by status", labels=["status"])
            for status, count in counts.items():
                jobs.add_metric([status.value], count)
            yield jobs

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("mediaflow_store_up", "")
        yield GaugeMetricFamily("mediaflow_jobs", "", labels=["status"])


# --- one process's metrics ---------------------------------------------------------------------------


class Metrics:
    """The metrics of one app or worker process, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = JobMetrics(self.registry)
        self.workers = WorkerGauges()
        self.registry.register(self.workers)
        ProcessCollector(registry=self.registry)  # CPU, memory, open fds of this process
        self._observed: weakref.WeakSet = weakref.WeakSet()

    def observe(self, events: JobEvents) -> None:
        """Count the jobs announced on `events`. Once per bus however often it is called: the API
        subscribes its bus, and `run_workers` subscribes whichever bus its workers use."""
        if events not in self._observed:
            self._observed.add(events)
            events.subscribe(self.jobs.on_event)

    def track_workers(self, workers: Iterable[WorkerState], events: JobEvents) -> None:
        """Called by `run_workers`: the workers' gauges, and the jobs they announce."""
        self.workers.watch(workers)
        self.observe(events)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# --- HTTP ----------------------------------------------------------------------------------------------


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's template (`/status/{job_id}`), never the raw path: label values must stay
    bounded. Starlette records the matched route (or the mount, for /ui) in the scope while routing."""
    return getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE


def method_label(scope: dict[str, Any]) -> str:
    method = scope.get("method", "")
    return method if method in HTTP_METHODS else "other"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mediaflow_http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "mediaflow_http_request_duration_seconds",
            "Time to answer an HTTP request, body included",
            ["method", "route"],
            buckets=HTTP_DURATION_BUCKETS,
            registry=registry,
        )

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


def instrument_app(app: FastAPI, metrics: Metrics, job_counts_ttl_s: float = 2.0) -> HttpMetrics:
    """Add `GET /metrics` to the API; returns the HTTP metrics for the observability middleware.

    /metrics is open like the health endpoints, even with API_KEYS set: it shows only aggregate
    numbers (no job ids, no owners), and Prometheus scrapes it from the private network.
    """
    job_counts = JobCounts(ttl_s=job_counts_ttl_s)
    metrics.registry.register(job_counts)
    queue_gauges = QueueGauges()
    metrics.registry.register(queue_gauges)
    presence_gauges = PresenceGauges(ttl_s=job_counts_ttl_s)
    metrics.registry.register(presence_gauges)
    http_metrics = HttpMetrics(metrics.registry)

    async def scrape(request: Request) -> Response:
        await job_counts.refresh(getattr(request.app.state, "store", None))
        await queue_gauges.refresh(getattr(request.app.state, "queue", None))
        await presence_gauges.refresh(getattr(request.app.state, "store", None))
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    return http_metrics


# --- standalone workers ---------------------------------------------------------------------------------


class MetricsServerError(RuntimeError):
    """The worker's metrics port could not be opened (in use, not allowed)."""


@contextmanager
def worker_metrics_server(settings: Settings) -> Iterator[Metrics | None]:
    """With WORKER_METRICS_PORT set, serve this worker process's metrics over HTTP (prometheus_client's
    own server, in a daemon thread) while the block runs; otherwise yield None and serve nothing.
    Pass the metrics to `run_workers`, which connects them to its workers."""
    port = settings.WORKER_METRICS_PORT
    if port is None:
        yield None
        return
    metrics = Metrics()
    try:
        server, _thread = start_http_server(port, addr=settings.METRICS_HOST, registry=metrics.registry)
    except OSError as exc:
        raise MetricsServerError(
            f"cannot serve metrics on {settings.METRICS_HOST}:{port} (WORKER_METRICS_PORT): {exc}"
        ) from exc
    log.info("metrics.serving", host=settings.METRICS_HOST, port=port)
    try:
        yield metrics
    finally:
        server.shutdown()
        server.server_close()
