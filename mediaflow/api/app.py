"""The MediaFlow HTTP API. `uvicorn main:app` serves it; `python main.py` (or `mediaflow serve`) serves
it with in-process workers.

No connection is opened at import: the lifespan opens the job store, queue and storage (failing fast
with a readable message when one is unreachable) and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from mediaflow.api import download_links
from mediaflow.jobs import lifecycle
from mediaflow.api.deps import (
    EventsDep,
    JobDep,
    OwnerDep,
    QueueDep,
    RangeHeader,
    SettingsDep,
    StorageDep,
    StoreDep,
    get_job_for_download,
)
from mediaflow.api.dashboard import register_dashboard
from mediaflow.api.downloads import stream_stored
from mediaflow.api.auth import authenticate
from mediaflow.store import JobExistsError, open_store
from mediaflow.jobs.events import JobEvents
from mediaflow.media.operations import InvalidFormatError, allowed_formats, default_format, resolve_output_format
from mediaflow.queue import QueueError, open_queue
from mediaflow.api.sse import HEADERS as SSE_HEADERS, JobWatch, job_events
from mediaflow.logs import configure_logging, get_logger
from mediaflow.observability.metrics import Metrics, instrument_app
from mediaflow.observability.request_ids import RequestIdMiddleware, bind_job_id
from mediaflow.webhooks.callback_urls import CallbackUrlError, check_callback_url
from mediaflow.jobs.service import register_job_actions
from mediaflow.jobs.retention import RetentionSweeper
from mediaflow.webhooks.dispatcher import WebhookDispatcher
from mediaflow.worker.loop import BACKEND_UNAVAILABLE, run_workers
from mediaflow.jobs.model import Job, JobStatus
from mediaflow.jobs.schemas import DownloadLinkResponse, JobListResponse, JobStatusResponse, METHOD_LABELS, MethodInfo, MethodsResponse, ProcessRequest, ProcessResponse, UploadResponse
from mediaflow.settings import Settings
from mediaflow.media.sources import SourceError, check_source_exists, parse_source, upload_source
from mediaflow.storage import UploadTooLargeError, open_storage
from mediaflow.api.uploads import UploadFormatError, open_upload

log = get_logger("api")


def default_api_workers(settings: Settings) -> int:
    if settings.API_WORKERS is not None:
        return settings.API_WORKERS
    embedded = settings.DB_BACKEND == "sqlite" and settings.QUEUE_BACKEND == "embedded"
    return 1 if embedded else 0


@asynccontextmanager
async def open_backends(app: FastAPI, settings: Settings, api_workers: int) -> AsyncIterator[None]:
    try:
        async with _backends(app, settings, api_workers):
            yield
    except BACKEND_UNAVAILABLE as exc:
        # Fail fast with the reason on one line; uvicorn then reports "Application startup failed".
        log.error("api.cannot_start", error=str(exc))
        raise


@asynccontextmanager
async def _backends(app: FastAPI, settings: Settings, api_workers: int) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        storage = await open_storage(settings)
        stack.push_async_callback(storage.close)
        queue = await open_queue(settings, store, consumer=False)
        stack.push_async_callback(queue.close)
        for backend in (store, storage, queue):
            await backend.ping()
        app.state.store, app.state.storage, app.state.queue = store, storage, queue
        # One store poller per job followed over SSE, shared by all its followers.
        app.state.job_watch = JobWatch(store, settings.SSE_POLL_INTERVAL_S)
        stack.push_async_callback(app.state.job_watch.close)
        events: JobEvents = app.state.events
        # Delivers this process's job events (cancels through the API, in-process workers' results);
        # closed after the workers stopped and before the store closes, so final events still go out.
        webhooks = WebhookDispatcher(settings, store)
        webhooks.attach(events)  # listens on the bus, keeps the outbox of final events and sweeps it
        stack.push_async_callback(webhooks.aclose)
        retention = RetentionSweeper(settings, store, storage)  # only when JOB_RETENTION_HOURS > 0
        retention.start()
        stack.push_async_callback(retention.stop)

        stop = asyncio.Event()
        workers = None
        if api_workers:
            # The API process doubles as a worker host.
            workers = asyncio.create_task(
                run_workers(settings, api_workers, stop, store=store, storage=storage, shared_queue=queue,
                            events=events, metrics=app.state.metrics)
            )
        log.info("api.started", store=settings.DB_BACKEND, queue=settings.QUEUE_BACKEND,
                 storage=settings.STORAGE_BACKEND, workers=api_workers)
        try:
            yield
        finally:
            stop.set()
            if workers is not None:
                await asyncio.gather(workers, return_exceptions=True)


def create_app(settings: Settings | None = None, *, api_workers: int | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    workers = default_api_workers(settings) if api_workers is None else api_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_backends(app, settings, workers):
            yield

    app = FastAPI(
        responses={400: {"description": "The request body could not be parsed"}},
        title="MediaFlow",
        version="0.1.0",
        summary="Hand a video to an HTTP API, get the processed file back, with live progress.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Listeners (webhooks, metrics) subscribe here; in-process workers share it with the routes.
    app.state.events = JobEvents()
    app.state.metrics = Metrics()
    app.state.metrics.observe(app.state.events)
    register_routes(app)
    instrument_app(app, app.state.metrics, job_counts_ttl_s=settings.METRICS_JOB_COUNTS_TTL_S)  # GET /metrics
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so its id and access log cover everything
    return app


def unprocessable(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


# --- routes ----------------------------------------------------------------------------------------


def register_routes(app: FastAPI) -> None:
    """Health endpoints are open; everything else is on `api`, which checks the API key (if any)."""
    api = APIRouter(
        dependencies=[Depends(authenticate)],
        responses={401: {"description": "Missing or invalid API key (only when API_KEYS is set)"}},
    )

    @app.get("/", summary="Liveness check (the seed's health endpoint)")
    async def root() -> dict:
        return {"status": "ok"}

    @app.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: every configured backend answers")
    async def readyz(store: StoreDep, queue: QueueDep, storage: StorageDep, settings: SettingsDep) -> JSONResponse:
        checks = {
            f"store:{settings.DB_BACKEND}": store,
            f"queue:{settings.QUEUE_BACKEND}": queue,
            f"storage:{settings.STORAGE_BACKEND}": storage,
        }
        results, ready = {}, True
        for name, backend in checks.items():
            try:
                await asyncio.wait_for(backend.ping(), timeout=5)
                results[name] = "ok"
            except Exception as exc:
                ready = False
                results[name] = f"unavailable: {exc}"
        return JSONResponse({"status": "ready" if ready else "unavailable", "backends": results},
                            status_code=200 if ready else 503)

    @api.post(
        "/upload",
        response_model=UploadResponse,
        status_code=201,
        summary="Upload a file (multipart/form-data, part 'file'); use the returned source in POST /process",
        responses={413: {"description": "Larger than UPLOAD_MAX_BYTES"}, 422: {"description": "Not a multipart upload"}},
    )
    async def upload(request: Request, storage: StorageDep, settings: SettingsDep) -> UploadResponse:
        limit = settings.UPLOAD_MAX_BYTES
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:  # + room for multipart framing
            raise HTTPException(413, detail=f"upload is larger than the limit of {limit} bytes (UPLOAD_MAX_BYTES)")
        try:
            upload_stream = await open_upload(request)
            source, key = upload_source(upload_stream.filename)
            size = await storage.put_stream(key, upload_stream.chunks, upload_stream.content_type, limit)
        except UploadFormatError as exc:
            raise unprocessable(str(exc)) from exc
        except UploadTooLargeError as exc:
            raise HTTPException(413, detail=f"upload is larger than the limit of {limit} bytes (UPLOAD_MAX_BYTES)") from exc
        log.info("upload.stored", source=source, size=size)
        return UploadResponse(source=source, filename=key.rsplit("/", 1)[-1], size=size)

    @api.post(
        "/process",
        response_model=ProcessResponse,
        summary="Queue a processing job",
        responses={409: {"description": "Idempotency-Key reused with a different request"},
                   422: {"description": "Invalid source, method or output format"},
                   503: {"description": "The queue did not accept the job"}},
    )
    async def process(
        body: ProcessRequest,
        store: StoreDep,
        queue: QueueDep,
        storage: StorageDep,
        settings: SettingsDep,
        events: EventsDep,
        owner: OwnerDep,
        idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200, description=(
            "Repeat a request safely: the same key (per API key) with the same body returns the first job"))] = None,
    ) -> ProcessResponse:
        try:
            fmt = resolve_output_format(body.method_name, body.output_format)
            source = parse_source(body.source, settings, storage)
            await check_source_exists(source, storage)
            if body.callback_url is not None:  # checked again before every delivery (DNS can change)
                await check_callback_url(body.callback_url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE,
                                         timeout=settings.WEBHOOK_TIMEOUT_S)
        except (InvalidFormatError, SourceError, CallbackUrlError) as exc:
            raise unprocessable(str(exc)) from exc
        job = Job(method_name=body.method_name, source=body.source, output_format=fmt.name,
                  owner=owner, idempotency_key=idempotency_key,
                  callback_url=body.callback_url, callback_progress=body.callback_progress)
        if idempotency_key:
            existing = await store.find_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return _replay(existing, job)
        try:
            await store.create(job)
        except JobExistsError:
            existing = await store.find_by_idempotency_key(owner, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return _replay(existing, job)
        bind_job_id(job.job_id)
        try:
            await queue.publish(job.job_id)  # after the write is durable, never before
        except QueueError as exc:
            await lifecycle.fail_queued(store, job, f"could not be queued: {exc}", events=events)
            raise HTTPException(503, detail=f"the job could not be queued ({exc}); it was marked failed, try again") from exc
        log.info("job.queued", job_id=job.job_id, method=job.method_name.value)
        return ProcessResponse(job_id=job.job_id, status=JobStatus.QUEUED)

    def _replay(existing: Job, requested: Job) -> ProcessResponse:
        def request_of(job: Job) -> tuple:
            return job.source, job.method_name, job.output_format, job.callback_url, job.callback_progress

        same = request_of(existing) == request_of(requested)
        if not same:
            raise HTTPException(409, detail="this Idempotency-Key was already used with a different request body")
        return ProcessResponse(job_id=existing.job_id, status=existing.status)

    @api.get("/methods", response_model=MethodsResponse, summary="The processing methods and their output formats")
    async def methods() -> MethodsResponse:
        return MethodsResponse(methods=[
            MethodInfo(name=method, label=label, description=description,
                       formats=list(allowed_formats(method)), default_format=default_format(method))
            for method, (label, description) in METHOD_LABELS.items()
        ])

    @api.get("/process", response_model=JobListResponse, summary="List jobs, newest first")
    async def list_jobs(
        store: StoreDep,
        owner: OwnerDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        skip: Annotated[int, Query(ge=0, le=100_000)] = 0,
        status: JobStatus | None = None,
        idempotency_key: Annotated[str | None, Query(min_length=1, max_length=200, description=(
            "Only the job submitted with this Idempotency-Key, if any (e.g. to resume a client that "
            "uploads its file anew on each try)"))] = None,
    ) -> JobListResponse:
        if idempotency_key is not None:
            found = await store.find_by_idempotency_key(owner, idempotency_key)
            jobs = [found] if found is not None and (status is None or found.status is status) and skip == 0 else []
        else:
            jobs = await store.list(limit=limit, skip=skip, status=status, owner=owner)
        return JobListResponse(jobs=[JobStatusResponse.from_job(job) for job in jobs], count=len(jobs))

    @api.get("/status/{job_id}", response_model=JobStatusResponse, summary="A job's status and progress",
             responses={404: {"description": "Unknown job id"}})
    async def status(job: JobDep) -> JobStatusResponse:
        return JobStatusResponse.from_job(job)

    @api.get("/jobs/{job_id}/download-url", response_model=DownloadLinkResponse,
             summary="A signed, expiring link to the job's output that needs no API key header",
             responses={404: {"description": "Unknown job id"}})
    async def download_url(job: JobDep, settings: SettingsDep) -> DownloadLinkResponse:
        token, expires = download_links.make_token(settings, job)
        return DownloadLinkResponse(url=f"/download/{job.job_id}?token={token}",
                                    expires_at=datetime.fromtimestamp(expires, timezone.utc))

    # On the app, not on `api`: a signed link stands in for the API key (checked in get_job_for_download).
    @app.get(
        "/download/{job_id}",
        summary="Download a completed job's output",
        response_class=StreamingResponse,
        responses={206: {"description": "One byte range of the output (a `Range: bytes=…` request)"},
                   401: {"description": "Missing or invalid API key (only when API_KEYS is set)"},
                   403: {"description": "The signed link is invalid or expired"},
                   404: {"description": "Unknown job id"}, 409: {"description": "The job has not completed"},
                   416: {"description": "The requested range starts past the end of the file"}},
    )
    async def download(
        job: Annotated[Job, Depends(get_job_for_download)],
        storage: StorageDep,
        settings: SettingsDep,
        range_header: RangeHeader = None,
    ):
        if job.status is not JobStatus.COMPLETED:
            reason = f": {job.error}" if job.status is JobStatus.FAILED and job.error else ""
            raise HTTPException(409, detail=f"job {job.job_id} is {job.status.value}{reason}; only a completed job has an output")
        return await stream_stored(job.output_path, storage, settings, disposition="attachment",
                                    range_header=range_header)

    @api.get(
        "/jobs/{job_id}/events",
        summary="Follow a job's status and progress as Server-Sent Events until it ends",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "`event: job` frames whose data is the GET /status JSON; "
                                        "the stream closes after the final status"},
                   404: {"description": "Unknown job id"}},
    )
    async def job_events_stream(
        job: JobDep,
        request: Request,
        settings: SettingsDep,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse:
        frames = job_events(
            request.app.state.job_watch, job.job_id,
            keepalive_s=settings.SSE_KEEPALIVE_S,
            max_stream_s=settings.SSE_MAX_STREAM_S,
            last_event_id=last_event_id,
        )
        return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)

    @api.get("/jobs/{job_id}/log", summary="The ffmpeg log of a job's last run", response_class=StreamingResponse,
             responses={404: {"description": "Unknown job, or no log yet"}})
    async def job_log(job: JobDep, storage: StorageDep, settings: SettingsDep):
        if not job.log_path:
            raise HTTPException(404, detail=f"job {job.job_id} has no ffmpeg log yet")
        return await stream_stored(job.log_path, storage, settings, disposition="inline")

    register_job_actions(api)
    app.include_router(api)
    register_dashboard(app)

