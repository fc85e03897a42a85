"""Webhooks: job events POSTed as signed JSON to the job's `callback_url` and/or the global `WEBHOOK_URL`.

A `WebhookDispatcher` listens on the process's `JobEvents` bus and delivers `job.completed`,
`job.failed`, `job.canceled` (and `job.progress` milestones for jobs submitted with
`callback_progress`). Each event becomes one delivery per target, retried with exponential backoff
for `WEBHOOK_RETRY_FOR_S` (the policy: retries.py); deliveries of one job to one target go
out in event order. How each attempt went is written on the job (`webhook_attempts`,
`webhook_last_result`).

Wire format (documented in docs/webhooks.md):

    POST <url>
    Content-Type: application/json
    webhook-id: <uuid; the same on every retry of one event>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>   (when a secret is set)
    MediaFlow-Event-Id, MediaFlow-Timestamp, MediaFlow-Signature   (deprecated, see signing.py)

    {"id": <event id>, "type": "job.completed", "created_at": <event time>, "data": <GET /status JSON>}

A callback URL is user input, so it is an SSRF vector: `callback_urls.py` checks it at `POST /process`
and again before every attempt, and the request is then sent to the very address that was checked
(see `sender.WebhookSender.post`), so a DNS answer that changes in between (DNS rebinding) cannot
redirect a delivery to an internal host.

The process that saw an event delivers it at once. Final events are also kept in the job's outbox
(outbox.py), written with the final transition: while this process retries it keeps the
entry's due time ahead of its next attempt, and clears the entry when done; should it die or stop,
another process's sweeper resumes the event with the same event id (at least once). Progress
milestones are best effort: in memory only, abandoned when their process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from mediaflow.jobs.events import EventType, JobEvent, JobEvents
from mediaflow.jobs.model import Job, JobStatus, utcnow
from mediaflow.logs import get_logger
from mediaflow.observability import tracing
from mediaflow.settings import Settings
from mediaflow.store import Expect, JobStore
from mediaflow.webhooks import outbox as outbox
from mediaflow.webhooks.callback_urls import CallbackUrlError, UnresolvableHostError
from mediaflow.webhooks.payload import event_payload
from mediaflow.webhooks.retries import (
    MAX_BACKOFF_S,
    Outcome,
    Verdict,
    backoff_delay,
    describe_transport_error,
    outcome_of_status,
)
from mediaflow.webhooks.sender import WebhookSender

log = get_logger("webhooks")

FINAL_EVENTS = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.CANCELED})
# Delivery results are written only on jobs in these statuses (see WebhookDispatcher._record).
RECORDABLE_STATUSES = frozenset(JobStatus) - {JobStatus.QUEUED}


# --- delivery --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    label: str  # shown in webhook_last_result when it is the global WEBHOOK_URL
    address_checked: bool  # a user's callback_url (checked, pinned); False for the operator's WEBHOOK_URL


@dataclass
class WebhookDelivery:
    """One event on its way to one target, across its attempts."""

    event_id: str
    event_type: EventType
    job_id: str
    target: Target
    body: bytes
    retry_until: datetime  # attempts start until then (wall clock: another process may carry on)
    outboxed: bool = False  # a final event kept in the job's outbox (see outbox.py)
    resumed: bool = False  # taken from the outbox by the sweeper, after its first process went away
    attempt: int = 0
    next_attempt_at: datetime | None = None  # while waiting between retries
    last_result: str = "not attempted yet"
    traceparent: str | None = None  # the job's trace: each attempt is a span of it

    @property
    def lane(self) -> tuple[str, str]:
        return self.job_id, self.target.url


class WebhookDispatcher:
    """Delivers one process's job events to webhooks, and the final events other processes left in
    the outbox. `dispatcher.attach(events)`; `await dispatcher.aclose()` on shutdown, before the
    store closes."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        *,
        backoff_base_s: float | None = None,
        verify: ssl.SSLContext | bool = True,  # certificate checks; a context trusting a private CA, in tests
    ) -> None:
        self.config = settings.webhooks  # all it reads: the WEBHOOK_* settings
        self.store = store
        self.backoff_base_s = backoff_base_s if backoff_base_s is not None else self.config.backoff_base_s
        self._secret = self.config.secret.get_secret_value() if self.config.secret else None
        self._sender = WebhookSender(self.config, self._secret, verify)
        self._tasks: dict[asyncio.Task, WebhookDelivery] = {}
        self._lanes: dict[tuple[str, str], asyncio.Task] = {}  # the newest delivery per (job, target)
        # Outboxed events being delivered here -> their targets not done yet (the entry is cleared
        # when the last one is done; the sweeper leaves these events alone).
        self._outboxed_targets: dict[str, set[str]] = {}
        self.sweeper = outbox.OutboxSweeper(self.config, store, self)
        self._closing = False
        if self.config.url and self._secret is None:
            log.warning(
                "webhook.unsigned",
                reason="WEBHOOK_URL is set but WEBHOOK_SECRET is not: deliveries "
                "are unsigned and receivers cannot verify they come from MediaFlow; set WEBHOOK_SECRET",
            )

    # --- from the event bus and the outbox ---------------------------------------------------------

    def attach(self, events: JobEvents) -> None:
        """Listen on `events`, have lifecycle keep an outbox entry for every final event with a
        target, and sweep the outbox for events other processes left behind. In the running loop."""
        events.subscribe(self.on_event)
        events.keep_outbox(self.outbox_entry)
        self.sweeper.start()

    def outbox_entry(self, job: Job, event_type: EventType) -> dict:
        """The outbox fields lifecycle writes with a final transition; {} when nobody is to be told."""
        if event_type not in FINAL_EVENTS or not self._targets(job):
            return {}
        return outbox.new_entry(event_type, outbox.attempt_window_s(self.config))

    def on_event(self, event: JobEvent) -> None:
        """The bus listener: returns at once; the deliveries run as tasks."""
        if not self._wanted(event):
            return
        job = event.job
        # A final event was written to the job's outbox with its id; others get a fresh one.
        outboxed_id = job.webhook_event_id if job.webhook_event == event.type.value else None
        if self._closing:
            reason = "shutting down" + ("; left in the outbox for another process" if outboxed_id else "")
            log.warning("webhook.not_sent", job_id=job.job_id, event_type=event.type.value, reason=reason)
            return
        event_id = outboxed_id if outboxed_id is not None else str(uuid.uuid4())
        self._dispatch(event, event_id, outboxed=outboxed_id is not None)

    def resume(self, job: Job) -> None:
        """Deliver the final event waiting in `job`'s outbox, just taken by the sweeper."""
        if job.webhook_event is None or job.webhook_event_id is None:
            log.warning("webhook.outbox_empty", job_id=job.job_id)  # the sweeper hands over jobs that hold one
            return
        event = JobEvent(EventType(job.webhook_event), job, at=job.completed_at or utcnow())
        self._dispatch(event, job.webhook_event_id, outboxed=True, resumed=True)

    def delivering(self, event_id: str) -> bool:
        return event_id in self._outboxed_targets

    def _dispatch(self, event: JobEvent, event_id: str, *, outboxed: bool, resumed: bool = False) -> None:
        targets = self._targets(event.job)
        if not targets:
            if resumed:  # WEBHOOK_URL set elsewhere, not here: a process that has it (or the deadline) will see to it
                log.warning("webhook.no_target", job_id=event.job.job_id, event_id=event_id)
            return
        body = event_payload(event, event_id)
        retry_until = outbox.retry_deadline(event.job, self.config)
        if outboxed:
            self._outboxed_targets[event_id] = {target.url for target in targets}
        for target in targets:
            self._schedule(
                WebhookDelivery(
                    event_id,
                    event.type,
                    event.job.job_id,
                    target,
                    body,
                    retry_until,
                    outboxed=outboxed,
                    resumed=resumed,
                    traceparent=event.job.traceparent,
                )
            )

    @staticmethod
    def _wanted(event: JobEvent) -> bool:
        return event.type in FINAL_EVENTS or (event.type is EventType.PROGRESS and event.job.callback_progress)

    def _targets(self, job: Job) -> list[Target]:
        targets = []
        if job.callback_url:
            targets.append(Target(job.callback_url, "callback_url", address_checked=True))
        if self.config.url and job.callback_url != self.config.url:
            targets.append(Target(self.config.url, "WEBHOOK_URL", address_checked=False))
        return targets

    def _schedule(self, delivery: WebhookDelivery) -> None:
        # Deliveries of one job to one target run one after another, in event order: a receiver sees
        # job.progress before job.completed. Different jobs and targets do not wait for each other.
        previous = self._lanes.get(delivery.lane)
        task = asyncio.get_running_loop().create_task(self._run(delivery, previous))
        self._lanes[delivery.lane] = task
        self._tasks[task] = delivery
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        delivery = self._tasks.pop(task, None)
        if delivery is not None and self._lanes.get(delivery.lane) is task:
            del self._lanes[delivery.lane]
        if delivery is not None and delivery.outboxed:
            self._target_done(delivery)

    def _target_done(self, delivery: WebhookDelivery) -> bool:
        """Note one target of an outboxed event as done; True if it was the last one in this process."""
        pending = self._outboxed_targets.get(delivery.event_id)
        if pending is None:
            return False
        pending.discard(delivery.target.url)
        if pending:
            return False
        del self._outboxed_targets[delivery.event_id]
        return True

    # --- one delivery ------------------------------------------------------------------------------

    async def _run(self, delivery: WebhookDelivery, previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # its outcome is its own business; only the order matters
        try:
            await self._deliver(delivery)
        except Exception:  # a bug here must not surface as "Task exception was never retrieved"
            log.exception("webhook.error", job_id=delivery.job_id, event_type=delivery.event_type.value)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        while True:
            delivery.attempt += 1
            outcome = await tracing.traced(
                "webhook.deliver",
                delivery.traceparent,
                self._attempt(delivery),
                {"mediaflow.job_id": delivery.job_id, "webhook.event": delivery.event_type.value},
            )
            delay, result = self._next_step(delivery, outcome)
            delivery.last_result = result
            delivery.next_attempt_at = utcnow() + timedelta(seconds=delay) if delay is not None else None
            await self._record(delivery, result, count_attempt=True, outbox_update=self._outbox_update(delivery))
            if delay is None:
                return
            await asyncio.sleep(delay)
            if delivery.outboxed and not await outbox.still_pending(self.store, delivery.job_id, delivery.event_id):
                # The job was retried (its old final event is obsolete), or another process took
                # over the event while this one was stalled and has dealt with it.
                log.info("webhook.obsolete", job_id=delivery.job_id, event_id=delivery.event_id)
                return

    def _outbox_update(self, delivery: WebhookDelivery) -> outbox.OutboxUpdate | None:
        """What this attempt changes in the job's outbox, written with its record."""
        if not delivery.outboxed:
            return None
        if delivery.next_attempt_at is not None:  # retrying: no other process takes it until that attempt is over
            window = timedelta(seconds=outbox.attempt_window_s(self.config))
            return outbox.due_no_earlier_than(delivery.next_attempt_at + window)
        return outbox.cleared if self._target_done(delivery) else None

    def _next_step(self, delivery: WebhookDelivery, outcome: Outcome) -> tuple[float | None, str]:
        """Whether (and when) to try again, and the line that tells the job's owner what happened."""
        notes = [delivery.target.label] if delivery.target.label != "callback_url" else []
        suffix = f" ({', '.join(notes + ['resumed'] * delivery.resumed)})" if notes or delivery.resumed else ""
        result = f"{delivery.event_type.value} attempt {delivery.attempt}{suffix}: {outcome.description}"
        if outcome.verdict is not Verdict.RETRY:
            return None, result if outcome.verdict is Verdict.DELIVERED else f"{result}, not retried"
        if self._superseded(delivery):
            return None, f"{result}, not retried: a newer event for this job is waiting"
        delay = backoff_delay(delivery.attempt, self.backoff_base_s)
        if outcome.retry_after_s is not None:  # the receiver said when; never sooner, and within our cap
            delay = min(max(delay, outcome.retry_after_s), MAX_BACKOFF_S)
        # A little jitter, so receivers that failed for many jobs at once are not retried in lockstep.
        delay = round(delay * random.uniform(1.0, 1.1), 2)
        if utcnow() + timedelta(seconds=delay) > delivery.retry_until:
            retry_for = self.config.retry_for_s
            return None, f"{result}, gave up after {delivery.attempt} attempts (WEBHOOK_RETRY_FOR_S={retry_for:g} s)"
        return delay, f"{result}, retrying in {delay:g} s"

    def _superseded(self, delivery: WebhookDelivery) -> bool:
        # A progress milestone is stale once a later event of the same job waits behind it; retrying
        # it would only hold up the newer (and final) event.
        current = asyncio.current_task()
        return delivery.event_type is EventType.PROGRESS and self._lanes.get(delivery.lane) is not current

    async def _attempt(self, delivery: WebhookDelivery) -> Outcome:
        timeout = self.config.timeout_s
        try:
            addresses = await self._sender.checked_addresses(delivery.target.url, delivery.target.address_checked)
            async with asyncio.timeout(timeout):  # the whole attempt, not only each read (slow drip)
                response = await self._sender.post(delivery.target.url, delivery.event_id, delivery.body, addresses)
        except UnresolvableHostError as exc:
            return Outcome(Verdict.RETRY, str(exc))
        except CallbackUrlError as exc:  # now resolves to a private address: refused for good
            return Outcome(Verdict.GIVE_UP, f"refused: {exc}")
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            return Outcome(Verdict.RETRY, describe_transport_error(exc, timeout))
        return outcome_of_status(response.status_code, response.reason_phrase, response.headers.get("retry-after"))

    # --- bookkeeping on the job --------------------------------------------------------------------

    async def _record(
        self,
        delivery: WebhookDelivery,
        result: str,
        *,
        count_attempt: bool,
        outbox_update: outbox.OutboxUpdate | None = None,
    ) -> None:
        """Write the outcome on the job: webhook_last_result, webhook_attempts + 1, and the change to
        its outbox entry (only while that entry is still this event: a newer one is never touched).

        Conditional on the version read, so two deliveries for one job (possibly in two processes)
        cannot lose an increment; and never on a queued job: a failed job retried meanwhile is
        claimed by a conditional update on the version a worker just read, which our write would
        bump and make the claim miss. The delivery itself goes on either way."""
        log.info("webhook.attempt", job_id=delivery.job_id, event_type=delivery.event_type.value, result=result)
        try:
            for _ in range(5):  # lost a race with a progress write or another delivery: read again
                job = await self.store.get(delivery.job_id)
                if job is None or job.status not in RECORDABLE_STATUSES:
                    return
                changes: dict[str, Any] = {"webhook_last_result": result[:1000]}
                if count_attempt:
                    changes["webhook_attempts"] = job.webhook_attempts + 1
                if outbox_update is not None and outbox.holds(job, delivery.event_id):
                    changes.update(outbox_update(job))
                expect = Expect(status=RECORDABLE_STATUSES, version=job.version)
                if await self.store.update(delivery.job_id, changes, expect):
                    return
            log.warning("webhook.not_recorded", job_id=delivery.job_id, reason="the job kept changing")
        except Exception as exc:  # the store being down must not stop deliveries
            log.warning("webhook.not_recorded", job_id=delivery.job_id, error=str(exc))

    # --- shutdown ----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop sweeping; give deliveries in flight WEBHOOK_SHUTDOWN_GRACE_S to finish; hand the final
        events among the rest back to the outbox (due at their next attempt), abandon the others."""
        self._closing = True
        await self.sweeper.stop()
        pending = set(self._tasks)
        if pending:
            grace = self.config.shutdown_grace_s
            log.info("webhook.draining", deliveries=len(pending), grace_s=grace)
            unfinished = pending
            if grace > 0:
                _, unfinished = await asyncio.wait(pending, timeout=grace)
            abandoned = [self._tasks[task] for task in unfinished if task in self._tasks]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            for delivery in abandoned:
                await self._note_abandoned(delivery)
        await self._sender.aclose()

    async def _note_abandoned(self, delivery: WebhookDelivery) -> None:
        log.warning(
            "webhook.abandoned",
            job_id=delivery.job_id,
            event_type=delivery.event_type.value,
            event_id=delivery.event_id,
            target=delivery.target.label,
            attempts=delivery.attempt,
            last_result=delivery.last_result,
        )
        fate = "abandoned: the process delivering it shut down"
        update = None
        if delivery.outboxed:  # any process may take it when its next attempt was due
            fate = "left in the outbox: the process delivering it shut down, another one resumes it"
            update = outbox.due_no_later_than(delivery.next_attempt_at or utcnow())
        note = f"{delivery.last_result}; {fate}"
        if delivery.attempt == 0:
            note = f"{delivery.event_type.value} not sent; {fate}"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._record(delivery, note, count_attempt=False, outbox_update=update), timeout=2)
