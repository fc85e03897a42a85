"""The one composition root: `open_runtime(settings)` opens everything a MediaFlow process runs on —
job store, storage, the queue (for publishing), the job event bus, the webhook dispatcher with its
outbox sweeper, and the retention sweeper — checks that each backend answers, and closes them in the
reverse order. The API's lifespan and `python worker.py` both start here, so they are wired alike.

A backend that cannot be reached raises one of `BACKEND_UNAVAILABLE`, whose message says which and why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.retention import RetentionSweeper
from mediaflow.jobs.service import JobService
from mediaflow.logs import get_logger
from mediaflow.queue import JobQueue, QueueUnavailableError, open_queue
from mediaflow.settings import Settings
from mediaflow.storage import Storage, StorageUnavailableError, open_storage
from mediaflow.store import JobStore, StoreUnavailableError, open_store
from mediaflow.webhooks.dispatcher import WebhookDispatcher
from mediaflow.webhooks.secret import with_webhook_secret

BACKEND_UNAVAILABLE = (StoreUnavailableError, QueueUnavailableError, StorageUnavailableError)

log = get_logger("runtime")


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    storage: Storage
    queue: JobQueue  # publishes; workers open their own consumers (see worker.loop.run_workers)
    events: JobEvents
    jobs: JobService
    stack: AsyncExitStack  # for what a host adds that must close before the backends (workers, watchers)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, events: JobEvents | None = None, retention: bool = True
) -> AsyncIterator[Runtime]:
    """`events`: the bus to use (the API creates its own first, so metrics can listen before start-up).
    `retention`: run the retention sweeper here (the API does; standalone workers leave it to the API)."""
    async with AsyncExitStack() as stack:
        # Which backends, and why (a seed .env with DB_BACKEND=mongodb selects Kafka and S3 by itself).
        log.info(
            "backends.chosen",
            store=settings.DB_BACKEND,
            queue=settings.backend_choices["QUEUE_BACKEND"],
            storage=settings.backend_choices["STORAGE_BACKEND"],
        )
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        storage = await open_storage(settings)
        stack.push_async_callback(storage.close)
        queue = await open_queue(settings, store, consumer=False)
        stack.push_async_callback(queue.close)
        for backend in (store, storage, queue):
            await backend.ping()
        events = events or JobEvents()
        # Delivers this process's job events; closed after the workers stopped and before the store
        # closes, so final events still go out.
        # Signed always: WEBHOOK_SECRET, or the secret generated once and kept in storage.
        webhooks = WebhookDispatcher(await with_webhook_secret(settings, storage), store)
        webhooks.attach(events)  # listens on the bus, keeps the outbox of final events and sweeps it
        stack.push_async_callback(webhooks.aclose)
        if retention:
            sweeper = RetentionSweeper(settings, store, storage)  # only when JOB_RETENTION_HOURS > 0
            sweeper.start()
            stack.push_async_callback(sweeper.stop)
        jobs = JobService(settings, store, queue, storage, events, store.templates)
        async with AsyncExitStack() as host_stack:
            yield Runtime(settings, store, storage, queue, events, jobs, host_stack)
