"""The webhook outbox: a job's final event waits on the job record itself until it is delivered.

A job's `job.completed` / `job.failed` / `job.canceled` must reach its webhooks at least once, even if
the process that made the job final is killed before (or while) delivering it. So the final transition
writes an outbox entry on the job in the same conditional update (lifecycle._finish, with the entry
made here by `new_entry`): `webhook_event`, `webhook_event_id` (the MediaFlow-Event-Id of every
attempt) and `webhook_due_at`, when any process may next attempt it.

The entry's due time is a lease. The process that saw the event delivers it at once (dispatcher.py) and
keeps the due time ahead of its next attempt while it waits between retries (`due_no_earlier_than`),
so nobody else takes it; it clears the entry when the event is delivered, refused for good, or out of
WEBHOOK_RETRY_FOR_S (counted from the job's completed_at). Every write is conditional on the version
just read and checks the entry still holds this event id, so a newer event is never cleared.

`OutboxSweeper` runs in every process with a dispatcher (the API, `python worker.py`): every
WEBHOOK_SWEEP_INTERVAL_S it lists the entries that are due — their process died, or stopped and gave
them back (`due_no_later_than`) — takes each with a conditional update that moves the due time past
one attempt (two sweepers never deliver the same attempt), and hands it to its dispatcher.

At least once, not exactly once: a process killed after a receiver answered 2xx but before it cleared
the entry, or one so slow that its lease ran out, means a second delivery with the same event id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from mediaflow.jobs.events import EventType
from mediaflow.jobs.model import FINAL_STATUSES, WEBHOOK_OUTBOX_FIELDS, Job, utcnow
from mediaflow.logs import get_logger
from mediaflow.settings_groups import WebhookSettings
from mediaflow.store import Expect, JobStore
from mediaflow.sweeper import Sweeper

log = get_logger("webhooks")

SWEEP_BATCH = 50  # due events taken per sweep; the rest wait for the next one
# Extra changes to write with a delivery's record, from the job just read (only if it holds the event).
OutboxUpdate = Callable[[Job], dict[str, Any]]


def attempt_window_s(config: WebhookSettings) -> float:
    """How long one attempt holds the entry: resolving the callback host and the POST may each take
    WEBHOOK_TIMEOUT_S; one second more for the store writes and for clocks a little apart."""
    return 2 * config.timeout_s + 1


def new_entry(event_type: EventType, hold_s: float) -> dict[str, Any]:
    """The outbox fields for a final event. Due only after the first attempt's window: the process
    that saw the event makes that attempt at once, and another process's sweep must not race it."""
    return {
        "webhook_event": event_type.value,
        "webhook_event_id": str(uuid.uuid4()),
        "webhook_due_at": utcnow() + timedelta(seconds=hold_s),
    }


def holds(job: Job, event_id: str) -> bool:
    """Whether `job`'s outbox still waits for this event (not delivered meanwhile, not replaced by a
    retry and a newer final event)."""
    return job.webhook_event_id == event_id


async def still_pending(store: JobStore, job_id: str, event_id: str) -> bool:
    """Read again: is the event still waiting in the job's outbox (checked before each retry)?"""
    try:
        job = await store.get(job_id)
    except Exception:  # the store is down: the receiver may still be worth trying
        return True
    return job is not None and holds(job, event_id)


def cleared(_: Job) -> dict[str, Any]:
    """Nothing left to deliver."""
    return dict.fromkeys(WEBHOOK_OUTBOX_FIELDS)


def due_no_earlier_than(when: datetime) -> OutboxUpdate:
    """This process attempts again at about `when`: keep the entry away from sweepers until then
    (never moved back: another target of the same event may be waiting longer)."""
    return lambda job: {"webhook_due_at": max(when, job.webhook_due_at or when)}


def due_no_later_than(when: datetime) -> OutboxUpdate:
    """This process stops: let any process take the entry from `when` (its next planned attempt)."""
    return lambda job: {"webhook_due_at": min(when, job.webhook_due_at or when)}


def retry_deadline(job: Job, config: WebhookSettings) -> datetime:
    """Attempts of a final event start until then, whichever process makes them."""
    return (job.completed_at or utcnow()) + timedelta(seconds=config.retry_for_s)


class Resumer(Protocol):
    """What the sweeper needs from its process's dispatcher."""

    def delivering(self, event_id: str) -> bool:
        """This process is delivering that event right now."""

    def resume(self, job: Job) -> None:
        """Deliver the event in `job`'s outbox (just taken by the sweeper)."""


class OutboxSweeper(Sweeper):
    """Takes final events whose delivery is due and hands them to this process's dispatcher."""

    def __init__(self, config: WebhookSettings, store: JobStore, dispatcher: Resumer) -> None:
        self.config = config
        self.store = store
        self.dispatcher = dispatcher
        super().__init__()

    name = "webhook.sweep"

    def interval_s(self) -> float:
        return self.config.sweep_interval_s

    async def sweep_once(self) -> object:
        return await self.sweep()

    async def sweep(self, now: datetime | None = None) -> list[Job]:
        """One pass: every due event is taken and handed over, or expired. Returns the jobs taken."""
        now = now or utcnow()
        taken = []
        for job in await self.store.list_webhooks_due(now, limit=SWEEP_BATCH):
            if job.webhook_event_id is None or self.dispatcher.delivering(job.webhook_event_id):
                continue  # this process is on it already (its due-time write may have failed)
            if now > retry_deadline(job, self.config):
                await self._expire(job)
                continue
            leased = await self._take(job, now)
            if leased is not None:
                log.info(
                    "webhook.resumed", job_id=job.job_id, event_type=job.webhook_event, event_id=job.webhook_event_id
                )
                taken.append(leased)
                self.dispatcher.resume(leased)
        return taken

    async def _take(self, job: Job, now: datetime) -> Job | None:
        """Lease the event for one attempt. Conditional on the version listed (and a final status):
        of two sweepers that listed it, one takes it; a job changed meanwhile is left alone."""
        until = now + timedelta(seconds=attempt_window_s(self.config))
        return await self.store.update(
            job.job_id, {"webhook_due_at": until}, Expect(status=FINAL_STATUSES, version=job.version)
        )

    async def _expire(self, job: Job) -> None:
        """Every process that could deliver it was gone for longer than WEBHOOK_RETRY_FOR_S."""
        retry_for = self.config.retry_for_s
        note = (
            f"{job.webhook_event} not delivered: WEBHOOK_RETRY_FOR_S={retry_for:g} s passed since the job "
            f"finished; last: {job.webhook_last_result or 'no attempt'}"
        )
        log.warning("webhook.expired", job_id=job.job_id, event_id=job.webhook_event_id, result=note)
        await self.store.update(
            job.job_id,
            {**cleared(job), "webhook_last_result": note[:1000]},
            Expect(status=FINAL_STATUSES, version=job.version),
        )
