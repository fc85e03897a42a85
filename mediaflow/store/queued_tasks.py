"""Finding queued task records, for whatever hands work out from the store (the embedded queue's
every poll, a Kafka worker's store sweep, a burst worker's "anything left?").

`JobStore.list` leaves task records out (they are a job's inner work, not jobs), so they are found
through their parents: the processing jobs held by TASKS_HOLDER, whose work is out in tasks.
"""

from __future__ import annotations

from mediaflow.jobs.model import TASKS_HOLDER, Job, JobStatus

from .base import JobStore

PARENTS = 50  # running jobs looked at per search: more than a store has handed to tasks at once


async def queued_tasks(store: JobStore, *, limit: int, parents: int = PARENTS) -> list[Job]:
    """Up to `limit` queued task records, those of the oldest running jobs first."""
    running = await store.list(limit=parents, status=JobStatus.PROCESSING, oldest_first=True)
    found: list[Job] = []
    for parent in running:
        if parent.worker_id == TASKS_HOLDER:
            found += [task for task in await store.list_tasks(parent.job_id) if task.status is JobStatus.QUEUED]
            if len(found) >= limit:
                break
    return found[:limit]
