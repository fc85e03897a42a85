"""The MediaFlow HTTP API: `create_app(settings)` builds it; top-level `main.py` holds `app` for
`uvicorn main:app`.

No connection is opened at import: the lifespan opens the runtime (job store, queue, storage, webhooks,
sweepers — `mediaflow.runtime`), fails fast with a readable message when a backend is unreachable,
optionally hosts in-process workers, and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mediaflow.api.dashboard import register_dashboard
from mediaflow.api.docs import register_api_docs
from mediaflow.api.errors import add_error_handlers
from mediaflow.api.head_requests import HeadAsGet
from mediaflow.api.hosts import HostAndOriginGuard
from mediaflow.api.openapi import complete_openapi, operation_id
from mediaflow.api.request_limits import add_request_limits
from mediaflow.api.routes import actions, events, files, health, home, jobs, process, templates, uploads, workers
from mediaflow.api.server import throttle_accept_errors
from mediaflow.api.sse import JobWatch
from mediaflow.jobs import schemas
from mediaflow.jobs.events import JobEvents
from mediaflow.logs import configure_logging, get_logger
from mediaflow.observability import tracing
from mediaflow.observability.http import HttpObservabilityMiddleware
from mediaflow.observability.metrics import Metrics, instrument_app
from mediaflow.runtime import BACKEND_UNAVAILABLE, open_runtime
from mediaflow.settings import Settings
from mediaflow.worker.loop import run_workers

log = get_logger("api")


def default_api_workers(settings: Settings) -> int:
    if settings.API_WORKERS is not None:
        return settings.API_WORKERS
    embedded = settings.DB_BACKEND == "sqlite" and settings.QUEUE_BACKEND == "embedded"
    return 1 if embedded else 0


@asynccontextmanager
async def serve_runtime(app: FastAPI, settings: Settings, api_workers: int) -> AsyncIterator[None]:
    """The lifespan: the runtime on `app.state`, and `api_workers` in-process workers beside the API."""
    throttle_accept_errors(asyncio.get_running_loop())
    try:
        async with open_runtime(settings, events=app.state.events) as runtime:
            state = app.state
            state.runtime, state.jobs = runtime, runtime.jobs
            state.store, state.storage, state.queue = runtime.store, runtime.storage, runtime.queue
            # One store poller per job followed over SSE, shared by all its followers.
            state.job_watch = JobWatch(runtime.store, settings.sse.poll_interval_s)
            runtime.stack.push_async_callback(state.job_watch.close)
            stop = asyncio.Event()
            workers = None
            if api_workers:  # the API process doubles as a worker host
                workers = asyncio.create_task(run_workers(runtime, api_workers, stop, metrics=state.metrics))
            log.info(
                "api.started",
                store=settings.DB_BACKEND,
                queue=settings.QUEUE_BACKEND,
                storage=settings.STORAGE_BACKEND,
                workers=api_workers,
                dashboard="/ui/",
            )
            try:
                yield
            finally:
                stop.set()
                if workers is not None:
                    await asyncio.gather(workers, return_exceptions=True)
    except BACKEND_UNAVAILABLE as exc:
        # Fail fast with the reason on one line; uvicorn then reports "Application startup failed".
        log.error("api.cannot_start", error=str(exc))
        raise


def create_app(settings: Settings | None = None, *, api_workers: int | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    # One line per request, ours (`http.request`, with the request id); `uvicorn main:app` would add its own.
    logging.getLogger("uvicorn.access").disabled = True
    tracing.configure("mediaflow-api")  # OTEL_TRACES_EXPORTER etc.; off when unset
    hosted_workers = default_api_workers(settings) if api_workers is None else api_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve_runtime(app, settings, hosted_workers):
            yield

    app = FastAPI(
        responses={400: {"description": "The request body could not be parsed"}},
        title="MediaFlow",
        version="0.1.0",
        summary="Hand a video to an HTTP API, get the processed file back, with live progress.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's /docs and /redoc load from a CDN; ours (api/docs.py) works offline
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    # Listeners (webhooks, metrics) subscribe here; in-process workers share it with the routes.
    app.state.events = JobEvents()
    app.state.metrics = Metrics()
    app.state.metrics.observe(app.state.events)
    for module in (home, health, uploads, process, files, events, actions, jobs, templates, workers):
        app.include_router(module.router)
    app.include_router(files.download_router)
    app.include_router(jobs.signed_router)
    add_error_handlers(app)
    complete_openapi(app, schemas)
    add_request_limits(app, settings.MAX_REQUEST_BODY_BYTES, settings.API_BODY_IDLE_TIMEOUT_S)
    register_dashboard(app)
    register_api_docs(app)  # GET /docs, with Swagger UI's files from the package
    app.add_middleware(HeadAsGet)  # HEAD on every GET endpoint; innermost, so logs and metrics say HEAD
    http_metrics = instrument_app(app, app.state.metrics, job_counts_ttl_s=settings.METRICS_JOB_COUNTS_TTL_S)
    tracing.instrument_app(app)
    # Before the observability middleware: a refused Host or Origin is still logged and counted.
    app.add_middleware(HostAndOriginGuard, access=settings.access)
    # Added last: outermost, so its request id, access log line and metrics cover everything.
    app.add_middleware(HttpObservabilityMiddleware, http_metrics=http_metrics)
    # That middleware writes the access log (with request and job ids); uvicorn's own line per request
    # would say it twice and cost a formatted write on every request.
    logging.getLogger("uvicorn.access").disabled = True
    return app
