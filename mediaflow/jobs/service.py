"""The job service: what a caller can do to jobs — submit, cancel, retry, delete — in one place, for the
HTTP routes and anything else that acts on jobs. Routes translate its errors to HTTP; they hold no logic.

Every change is conditional (lifecycle.py, retention.py), so a request racing a worker, another request
or the retention sweeper gets a `JobStateError` (409) with the job's current state, or `JobGoneError`
(404) when the job was removed meanwhile, never a half-applied change. A job is published to the queue
only after its record is durable; if the queue refuses it, the job is marked failed (so nothing waits
forever on a message that never went out) and `QueueRejectedError` says to try again.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.model import FINAL_STATUSES, Job, JobStatus, Method
from mediaflow.jobs.output_requests import OutputsRequestError, method_job_fields, resolve_outputs
from mediaflow.jobs.retention import remove_job, remove_tasks_folder
from mediaflow.logs import bind_job_id, get_logger
from mediaflow.media.errors import InvalidFormatError
from mediaflow.media.operations import resolve_output_format
from mediaflow.media.outputs import OutputSpec
from mediaflow.media.sources import SourceError, check_source_exists, parse_source
from mediaflow.observability import tracing
from mediaflow.queue import JobQueue, QueueError
from mediaflow.settings import Settings
from mediaflow.storage import Storage
from mediaflow.storage.destinations import DestinationError, check_destination
from mediaflow.store import JobExistsError, JobStore
from mediaflow.store.templates import TemplateStore
from mediaflow.webhooks.callback_urls import CallbackUrlError, check_callback_url

log = get_logger("jobs")


# Longer strings are no job id of ours (uuid4, 36 characters): answered without a store read.
MAX_JOB_ID_LENGTH = 64


class JobRequestError(ValueError):
    """The request cannot become a job (source, format or callback URL refused); the text says why."""


class IdempotencyConflictError(Exception):
    """The Idempotency-Key was already used with a different request."""


class JobStateError(Exception):
    """The job is not in a state that allows the action (e.g. cancel a completed job)."""


class JobGoneError(LookupError):
    """The job was removed while the action ran."""


class TooManyActiveJobsError(Exception):
    """The caller's key has MAX_ACTIVE_JOBS_PER_KEY jobs queued or processing already."""

    retry_after_s = 10  # a short job's time: by then one of them has likely finished


class QueueRejectedError(Exception):
    """The queue did not take the job; it was marked failed and the caller may try again."""


@dataclass(frozen=True)
class Submission:
    """What a caller asks for, before it is checked: a seed method (POST /process), or outputs (already
    validated by the route's model) or a template's name (POST /jobs)."""

    source: str
    method_name: Method | None = None
    output_format: str | None = None
    callback_url: str | None = None
    callback_progress: bool = False
    outputs: list[OutputSpec] | None = None
    template: str | None = None
    destination: str | None = None


class JobService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        queue: JobQueue,
        storage: Storage,
        events: JobEvents,
        templates: TemplateStore | None = None,
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.store = store
        self.queue = queue
        self.storage = storage
        self.events = events

    # --- reads: every caller asks here, so the owner scoping of a key's view is written once ----------

    async def find(self, job_id: str, *, owner: str | None) -> Job | None:
        """The job, if it exists and `owner` may see it (None: no API keys, every job); tasks are not jobs."""
        job = await self.store.get(job_id) if len(job_id) <= MAX_JOB_ID_LENGTH else None
        return job if job is not None and (owner is None or job.owner == owner) else None

    async def page(self, *, owner: str | None, limit: int, skip: int, status: JobStatus | None) -> list[Job]:
        """One page of `owner`'s jobs (every job without API keys), newest first."""
        return await self.store.list(limit=limit, skip=skip, status=status, owner=owner)

    async def by_idempotency_key(self, key: str, *, owner: str | None) -> Job | None:
        return await self.store.find_by_idempotency_key(owner, key)

    async def tasks_of(self, job: Job) -> list[Job]:
        """The tasks a job was spread into (none for a job that cannot be spread)."""
        return await self.store.list_tasks(job.job_id) if job.has_outputs else []

    # --- changes ----------------------------------------------------------------------------------

    async def submit(self, submission: Submission, *, owner: str | None, idempotency_key: str | None = None) -> Job:
        """Check the request, store the job, queue it. With an idempotency key already used by this
        owner, the first job is returned instead (a different request with it is a conflict)."""
        job = await self._checked_job(submission, owner, idempotency_key)
        if idempotency_key:
            existing = await self.store.find_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return _replayed(existing, job)  # a replay adds no job, so the limit does not apply
        await self._check_active_limit(owner)
        try:
            await self.store.create(job)
        except JobExistsError:
            existing = await self.store.find_by_idempotency_key(owner, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return _replayed(existing, job)  # a concurrent request with the same key won the insert
        bind_job_id(job.job_id)
        await self._publish(job, "could not be queued")
        log.info("job.queued", job_id=job.job_id, method=job.label)
        return job

    async def cancel(self, job: Job) -> Job:
        canceled = await lifecycle.cancel(self.store, job, events=self.events)
        if canceled is None:
            current = await self._current(job)
            raise JobStateError(
                f"job {job.job_id} is {current.status.value}; only queued or processing jobs can be canceled"
            )
        # A chunked job's tasks go with it; a worker running one stops at its next lease renewal.
        for task in await self.store.list_tasks(job.job_id):
            if not task.status.is_final:
                await lifecycle.cancel(self.store, task)
        if job.has_outputs:  # its split pieces and encoded chunks: no worker takes it back to join them
            await remove_tasks_folder(self.settings, self.storage, job.job_id)
        log.info("job.canceled", job_id=job.job_id)
        return canceled

    async def retry(self, job: Job) -> Job:
        await self._check_active_limit(job.owner)
        if job.status in FINAL_STATUSES:  # a chunked job's old tasks: its next run splits afresh
            for task in await self.store.list_tasks(job.job_id):
                await self.store.delete(task.job_id)
        queued = await lifecycle.retry(self.store, job.job_id, events=self.events)
        if queued is None:
            current = await self._current(job)
            raise JobStateError(
                f"job {job.job_id} is {current.status.value}; only failed or canceled jobs can be retried"
            )
        await self._publish(queued, "could not be queued")
        log.info("job.retried", job_id=job.job_id)
        return queued

    async def delete(self, job: Job) -> None:
        """Remove a finished job, its output and its log."""
        if job.status in FINAL_STATUSES and await remove_job(self.store, self.storage, job, self.settings):
            return
        current = await self._current(job)
        raise JobStateError(
            f"job {job.job_id} is {current.status.value}; only completed, failed or canceled jobs "
            "can be removed (cancel it first)"
        )

    # --- helpers ------------------------------------------------------------------------------------

    async def _checked_job(self, submission: Submission, owner: str | None, idempotency_key: str | None) -> Job:
        try:
            if submission.method_name is None:
                outputs_job = await resolve_outputs(
                    submission.outputs, submission.template, owner, self.settings, self.templates
                )
            else:
                fmt = resolve_output_format(submission.method_name, submission.output_format)
            source = parse_source(submission.source, self.settings, self.storage, owner)
            if submission.destination is not None:
                check_destination(submission.destination, self.settings, self.storage)
            await check_source_exists(source, self.storage, self.settings)
            if submission.callback_url is not None:  # checked again before every delivery (DNS can change)
                await check_callback_url(
                    submission.callback_url,
                    allow_private=self.settings.WEBHOOK_ALLOW_PRIVATE,
                    timeout=self.settings.WEBHOOK_TIMEOUT_S,
                )
        except (InvalidFormatError, SourceError, CallbackUrlError, OutputsRequestError, DestinationError) as exc:
            raise JobRequestError(str(exc)) from exc
        common = dict(
            source=submission.source,
            owner=owner,
            idempotency_key=idempotency_key,
            callback_url=submission.callback_url,
            callback_progress=submission.callback_progress,
            destination=submission.destination,
            traceparent=tracing.current_traceparent(),
        )
        if submission.method_name is None:
            return Job(**common, **outputs_job)
        # The record keeps the method and format (what /status, listings and the CLI show) beside the
        # one output its template makes: the worker runs every job the same way.
        return Job(
            method_name=submission.method_name,
            output_format=fmt.name,
            **common,
            **method_job_fields(submission.method_name, fmt.name),
        )

    async def _check_active_limit(self, owner: str | None) -> None:
        limit = self.settings.MAX_ACTIVE_JOBS_PER_KEY
        if owner is None or not limit:  # no API keys: one tenant, nobody to protect from another
            return
        active = await self.store.count_active(owner)
        if active >= limit:
            raise TooManyActiveJobsError(
                f"this API key has {active} jobs queued or processing, the most allowed (MAX_ACTIVE_JOBS_PER_KEY="
                f"{limit}); wait for some to finish, or cancel some, then try again"
            )

    async def _publish(self, job: Job, failure: str) -> None:
        try:
            await self.queue.publish(job.job_id, tracing.current_headers())  # after the write is durable, never before
        except QueueError as exc:
            await lifecycle.fail_queued(self.store, job, f"{failure}: {exc}", events=self.events)
            raise QueueRejectedError(f"the job could not be queued ({exc}); it was marked failed, try again") from exc

    async def _current(self, job: Job) -> Job:
        """The job as stored now, after a conditional change was refused."""
        current = await self.store.get(job.job_id)
        if current is None:  # removed meanwhile by another request or the retention sweeper
            raise JobGoneError(f"job {job.job_id} not found")
        return current


def _replayed(existing: Job, requested: Job) -> Job:
    def request_of(job: Job) -> tuple:
        # A /process job's outputs follow from its method and format (a record stored before they were
        # written on it has none), so they are not part of what was asked.
        outputs = (job.template, job.outputs_spec) if job.method_name is None else ()
        return (
            job.source,
            job.method_name,
            job.output_format,
            job.callback_url,
            job.callback_progress,
            job.destination,
            *outputs,
        )

    if request_of(existing) != request_of(requested):
        raise IdempotencyConflictError("this Idempotency-Key was already used with a different request body")
    return existing
