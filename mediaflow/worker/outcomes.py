"""What one run of a claimed record (a job or a task) came to, as values the settling step matches on.

The work itself returns `Done` or `HandedOver`; a run stopped from outside its work (lease lost, a
time limit, the worker shutting down) ends as `Stopped` with a typed `Stop`; an exception out of the
work ends as `Failed`. Nothing here is raised: control flow is by result, exceptions are for errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mediaflow.jobs.events import FailureReason


@dataclass(frozen=True)
class Done:
    """The work is finished and stored: the record completes with these locations."""

    output_path: str
    log_path: str


@dataclass(frozen=True)
class HandedOver:
    """The job's work is out in task records; `queued` are the task ids still to publish."""

    queued: list[str]


class StopCause(Enum):
    LEASE_LOST = "lease_lost"  # canceled, or re-queued after this worker looked dead: write nothing
    TIME_LIMIT = "time_limit"  # JOB_TIMEOUT_S or STALL_TIMEOUT_S: the job fails with the reason
    SHUTDOWN = "shutdown"  # the worker is stopping: the job goes back to the queue for another


@dataclass(frozen=True)
class Stop:
    """Why a run was stopped from outside its work; `reason` is what the job's record shows."""

    cause: StopCause
    reason: str
    failure: FailureReason = FailureReason.OTHER


LEASE_LOST = Stop(StopCause.LEASE_LOST, "lease lost")
SHUTDOWN = Stop(StopCause.SHUTDOWN, "worker shutting down")


@dataclass(frozen=True)
class Stopped:
    stop: Stop


@dataclass(frozen=True)
class Failed:
    """The work raised: a permanent error fails the job, anything else gives it back for another attempt."""

    error: Exception


WorkResult = Done | HandedOver
Outcome = Done | HandedOver | Stopped | Failed
